/**
 * Worker tuning read from the environment: PostgreSQL connections opened at start and kept open, workflow
 * task slots and pollers, and the refusals of settings the SDK would reject later.
 */
import { ConfigError, loadConfig } from '../infra/config';
import { createWarmPool } from '../infra/database';
import { createLogger } from '../infra/logger';
import { templateDatabase, testServerUrl } from './support/environment';

const BASE_ENV = { LOG_FORMAT: 'json' };

test('by default the worker keeps 10 PostgreSQL connections, caches 500 workflows and the SDK chooses slots and pollers', () => {
  const { worker } = loadConfig(BASE_ENV);

  expect(worker.databaseConnections).toBe(10);
  expect(worker.maxCachedWorkflows).toBe(500);
  expect(worker.workflowTaskSlots).toBeUndefined();
  expect(worker.workflowTaskPollers).toBeUndefined();
  expect(worker.workflowThreads).toBeUndefined();
});

test('workflow task slots, pollers and threads are taken from the environment', () => {
  const { worker } = loadConfig({
    ...BASE_ENV,
    WORKER_DATABASE_CONNECTIONS: '4',
    WORKER_WORKFLOW_TASK_SLOTS: '80',
    WORKER_WORKFLOW_TASK_POLLERS: '40',
    WORKER_WORKFLOW_THREADS: '2',
    WORKER_MAX_CACHED_WORKFLOWS: '0',
  });

  expect(worker).toMatchObject({
    databaseConnections: 4,
    maxCachedWorkflows: 0,
    workflowTaskSlots: 80,
    workflowTaskPollers: 40,
    workflowThreads: 2,
  });
});

test.each([
  [
    { WORKER_WORKFLOW_TASK_POLLERS: '50' },
    'WORKER_WORKFLOW_TASK_POLLERS=50 cannot exceed WORKER_WORKFLOW_TASK_SLOTS=40',
  ],
  [
    { WORKER_WORKFLOW_TASK_SLOTS: '1' },
    'WORKER_WORKFLOW_TASK_SLOTS="1" must be a whole number from 2 to 10000',
  ],
  [{ WORKER_WORKFLOW_THREADS: '0' }, 'WORKER_WORKFLOW_THREADS="0" must be a whole number from 1 to 16'],
  [{ WORKER_MAX_CACHED_WORKFLOWS: '1' }, 'WORKER_MAX_CACHED_WORKFLOWS=1 must be 0 (no cache) or at least 2'],
  [
    { WORKER_MAX_CACHED_WORKFLOWS: '20' },
    'WORKER_WORKFLOW_TASK_SLOTS=40 cannot exceed WORKER_MAX_CACHED_WORKFLOWS=20',
  ],
  [
    { WORKER_MAX_CACHED_WORKFLOWS: '-1' },
    'WORKER_MAX_CACHED_WORKFLOWS="-1" must be a whole number from 0 to 1000000',
  ],
  [
    { WORKER_DATABASE_CONNECTIONS: '0' },
    'WORKER_DATABASE_CONNECTIONS="0" must be a whole number from 1 to 500',
  ],
])('%j is refused with a message naming the variable', (env, message) => {
  expect(() => loadConfig({ ...BASE_ENV, ...env })).toThrow(new ConfigError(message));
});

test('a warm pool opens all its connections at once and keeps them while idle', async () => {
  const logger = createLogger({ log: { level: 'silent', format: 'json' } });
  const pool = await createWarmPool(testServerUrl(templateDatabase()), logger, 3);
  try {
    expect(pool.totalCount).toBe(3);
    expect(pool.idleCount).toBe(3);
    expect(pool.options.min).toBe(3);
  } finally {
    await pool.end();
  }
});

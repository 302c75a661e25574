/**
 * The worker as a service: the built `workers/main.js` run as its own process, the way it runs on the
 * Master. It becomes ready, serves Prometheus metrics and health endpoints, writes only JSON log lines,
 * lets an in-flight activity finish on SIGTERM and exits 0; two of them start together safely.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Pool } from 'pg';
import { monitorWorkflowId } from '../domain/names';
import { MIGRATIONS_DIR } from '../infra/migrate';
import { TestAgents } from './support/agents';
import { pluginReinstalls } from './support/db';
import { keepHeartbeating } from './support/heartbeat-loop';
import { testServerUrl } from './support/environment';
import { site, slave, standby } from './support/site';
import { eventually, monitorReaches } from './support/wait';
import { serviceEnv as serviceEnvOf } from './support/service-env';
import { buildService, killAllServices, startService } from './support/service-process';
import type { ServiceProcess } from './support/service-process';
import { useTestWorld } from './support/world';

const hasLogged = (worker: ServiceProcess, message: string): Promise<true> =>
  eventually(`the worker to log "${message}"`, () =>
    Promise.resolve(worker.logs().some((line) => line.msg === message) ? true : undefined),
  );

const freePort = async (): Promise<number> => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
};

const httpGet = async (url: string): Promise<{ status: number; body: string }> => {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
};

beforeAll(buildService, 180_000);

afterEach(killAllServices);

const world = useTestWorld();

/** This test's site, with the simulated VMS and the gateway on free ports: two services run side by side. */
const serviceEnv = (): Record<string, string> => serviceEnvOf(world.current);

test('the service becomes ready, serves metrics and health, and exits 0 on SIGTERM', async () => {
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const worker = startService({
    ...serviceEnv(),
    METRICS_PORT: String(metricsPort),
    HEALTH_PORT: String(healthPort),
  });

  await worker.ready();
  expect(await httpGet(`http://127.0.0.1:${healthPort}/readyz`)).toEqual({
    status: 200,
    body: JSON.stringify({ status: 'RUNNING' }),
  });
  expect((await httpGet(`http://127.0.0.1:${healthPort}/healthz`)).status).toBe(200);
  const pollers = new RegExp(`^temporal_num_pollers\\{[^}]*task_queue="${world.current.taskQueue}"`, 'm');
  const metrics = await eventually('the pollers to show in the Prometheus metrics', async () => {
    const { body } = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`);
    return pollers.test(body) ? body : undefined;
  });
  expect(metrics).toMatch(/^temporal_request\{/m);

  worker.child.kill('SIGTERM');

  expect(await worker.exited).toBe(0);
  expect(existsSync(worker.readyFile)).toBe(false);
  expect(worker.logs().map((line) => line.msg)).toEqual(
    expect.arrayContaining([
      'Worker ready',
      'Shutdown requested: finishing in-flight activities',
      'Worker stopped',
    ]),
  );
  expect(worker.unstructuredLines()).toEqual([]);
});

/** Whether a backend of the test's database waits for a lock on `table` (a query blocked behind a test's lock). */
const waitsForLockOn = async (db: Pool, table: string): Promise<boolean> => {
  const { rows } = await db.query<{ waiting: boolean }>(
    `SELECT EXISTS (
       SELECT 1 FROM pg_locks WHERE NOT granted AND relation = to_regclass($1) AND database = (
         SELECT oid FROM pg_database WHERE datname = current_database()
       )
     ) AS waiting`,
    [table],
  );
  return rows[0]?.waiting === true;
};

test('the service is ready only once its gateway knows the agents: a heartbeat sent as it turns ready is taken', async () => {
  const { db } = world.current;
  await world.current.seed(site(slave({ id: 'rec-01', timeout: '1h' }), standby('fo-01')));
  let worker: ServiceProcess | undefined;
  const agents = new TestAgents(db, () => [worker?.gateway() ?? 'http://127.0.0.1:1']);
  await agents.tokenOf('rec-01');
  const healthPort = await freePort();
  // The credentials cannot be read while this lock is held: the service's first read of them waits.
  const lock = await db.connect();
  try {
    await lock.query('BEGIN');
    await lock.query('LOCK TABLE agent_credentials IN ACCESS EXCLUSIVE MODE');
    worker = startService({ ...serviceEnv(), HEALTH_PORT: String(healthPort) });
    await eventually('the service to read the agent credentials', () =>
      waitsForLockOn(db, 'agent_credentials'),
    );
    await hasLogged(worker, 'Heartbeat gateway listening');

    expect((await httpGet(`http://127.0.0.1:${healthPort}/readyz`)).status).toBe(503);
    expect(existsSync(worker.readyFile)).toBe(false);
    await lock.query('COMMIT');
  } finally {
    await lock.query('ROLLBACK').catch(() => undefined);
    lock.release();
  }
  await worker.ready();
  try {
    await expect(agents.heartbeat('rec-01')).resolves.toBeUndefined();
  } finally {
    agents.close();
  }
});

test('on SIGTERM an in-flight activity finishes before the process exits', async () => {
  const { db, fleet, seed } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '1s', plugins: ['ANPR+'] }), standby('fo-01')));
  // The plugin install of the failover blocks on this lock until the test lets it go.
  const vmsLock = await db.connect();
  await vmsLock.query('BEGIN');
  await vmsLock.query('LOCK TABLE vms_sim.plugins IN EXCLUSIVE MODE');
  const worker = startService(serviceEnv());
  await worker.ready();
  // The promoted server's agent heartbeats (agents run on standbys too): fo-01 stays in service, and the
  // reinstall stays this failover's.
  const fo01 = keepHeartbeating(new TestAgents(db, () => [worker.gateway()]), ['fo-01'], 250);

  try {
    await fleet.startMonitor('rec-01');
    const failoverId = (await monitorReaches(world.current, 'rec-01', (state) => state.broken !== null))
      .broken?.failoverId as string;
    await eventually('the plugin install to wait on the lock', async () => {
      const { rowCount } = await db.query(
        `SELECT 1 FROM pg_locks
          WHERE relation = 'vms_sim.plugins'::regclass AND NOT granted
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      return rowCount !== 0 ? true : undefined;
    });

    worker.child.kill('SIGTERM');
    await hasLogged(worker, 'Shutdown requested: finishing in-flight activities');
    expect(existsSync(worker.readyFile)).toBe(false);
    expect(worker.child.exitCode).toBeNull();
    await vmsLock.query('COMMIT');

    expect(await worker.exited).toBe(0);
    expect(worker.logs().map((line) => line.msg)).toContain('Worker stopped');
    expect(await pluginReinstalls(db)).toMatchObject([
      { plugin: 'ANPR+', server_id: 'fo-01', status: 'installed', attempts: 1 },
    ]);
    const installed = await db.query('SELECT plugin FROM vms_sim.plugins WHERE server_id = $1', ['fo-01']);
    expect(installed.rows).toEqual([{ plugin: 'ANPR+' }]);

    // No worker is left to finish this site's workflows: end them so the dev server stays tidy.
    for (const workflowId of [monitorWorkflowId(world.current.site, 'rec-01'), failoverId]) {
      await world.current.client.workflow.getHandle(workflowId).terminate('test finished');
    }
    await world.current.client.workflow
      .getHandle(monitorWorkflowId(world.current.site, 'fo-01'))
      .terminate('test finished')
      .catch(() => undefined);
  } finally {
    await fo01.stop();
    await vmsLock.query('ROLLBACK').catch(() => undefined);
    vmsLock.release();
  }
});

test('two workers started together on an empty database both migrate it safely and become ready', async () => {
  const databaseName = `vms_test_empty_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const admin = new Pool({ connectionString: testServerUrl('postgres'), max: 1 });
  await admin.query(`CREATE DATABASE ${databaseName}`);
  const env = { ...serviceEnv(), DATABASE_URL: testServerUrl(databaseName) };
  try {
    const workers = [
      startService({ ...env, WORKER_IDENTITY: 'master-worker' }),
      startService({ ...env, WORKER_IDENTITY: 'second-host-worker' }),
    ];

    await Promise.all(workers.map((worker) => worker.ready()));

    const migrated = new Pool({ connectionString: testServerUrl(databaseName), max: 1 });
    const { rows } = await migrated.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY id');
    await migrated.end();
    expect(rows.map((row) => row.name)).toEqual(
      readdirSync(MIGRATIONS_DIR)
        .filter((file) => file.endsWith('.sql'))
        .sort(),
    );
    const applied = workers.map(
      (worker) => worker.logs().filter((line) => line.msg === 'Migration applied').length,
    );
    expect(applied.sort()).toEqual([0, rows.length]);
    for (const worker of workers) worker.child.kill('SIGTERM');
    expect(await Promise.all(workers.map((worker) => worker.exited))).toEqual([0, 0]);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
    await admin.end();
  }
});

test('a bad setting stops the service at once with a message naming the variable', async () => {
  const worker = startService({ ...serviceEnv(), METRICS_PORT: 'ninety' });

  expect(await worker.exited).toBe(1);
  expect(worker.output()).toContain(
    'vms-failover: configuration error: METRICS_PORT="ninety" must be a whole number from 0 to 65535',
  );
  expect(worker.output()).not.toMatch(/\n\s+at /);
});

test('a metrics port already in use stops the service with a message naming METRICS_PORT', async () => {
  const occupied = createServer();
  await new Promise<void>((resolve) => occupied.listen(0, '0.0.0.0', resolve));
  const { port } = occupied.address() as AddressInfo;
  try {
    const worker = startService({ ...serviceEnv(), METRICS_PORT: String(port) });

    expect(await worker.exited).toBe(1);
    expect(worker.logs()).toContainEqual(
      expect.objectContaining({
        msg: 'Worker service cannot start',
        problem: expect.stringContaining(`METRICS_PORT=${port} cannot serve Prometheus metrics`) as string,
      }),
    );
    expect(worker.output()).not.toMatch(/\n\s+at /);
  } finally {
    await new Promise((resolve) => occupied.close(resolve));
  }
});

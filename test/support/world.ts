/**
 * The world each test runs in: the real Temporal dev server and real PostgreSQL. Per test file: one client
 * connection. Per test: its own database (a copy of the migrated template), its own site id (so workflow
 * ids never collide, even across runs of the persistent dev server) and its own task queue.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { NativeConnection, Worker, WorkerOptions } from '@temporalio/worker';
import { Pool } from 'pg';
import type { Fleet } from '../../app/fleet';
import { parseSite } from '../../domain/site-file';
import type { AppConfig } from '../../infra/config';
import { loadConfig } from '../../infra/config';
import { createPool } from '../../infra/database';
import { createLogger } from '../../infra/logger';
import type { Logger } from '../../infra/logger';
import { connectClient } from '../../infra/temporal';
import { connectWorkerConnection } from '../../infra/worker-connection';
import type { ImportSummary } from '../../store/site-import';
import { importSite } from '../../store/site-import';
import { siteInvariantViolations } from './db';
import { TestAgents } from './agents';
import { signalReporter } from '../../liveness/reporter';
import { LivenessService } from '../../liveness/service';
import { VmsSimulator } from '../../vms/simulator';
import { createFleet } from '../../app/fleet';
import { createVmsWorker } from '../../workers/worker';
import { TakeOversHere } from '../../failover/take-over';
import { templateDatabase, WORKFLOW_BUNDLE_PATH, temporalConfig, testServerUrl } from './environment';

export interface TestContext {
  site: string;
  taskQueue: string;
  config: AppConfig;
  db: Pool;
  databaseUrl: string;
  vms: VmsSimulator;
  client: Client;
  fleet: Fleet;
  logger: Logger;
  /** The liveness layer of this test's worker: gateway (on a free port), lease writer, detector. */
  liveness: LivenessService;
  /** The Slaves' agents, heartbeating to this test's gateway. */
  agents: TestAgents;
  /** Starts the liveness layer (`withWorker` and `createWorker` do); stopped after the test. */
  startLiveness(): Promise<void>;
  /** Loads a site description (the same format as `vms site import`). */
  seed(site: unknown): Promise<ImportSummary>;
  /** Runs a worker (and the liveness layer) for this test's task queue until `work` settles, then shuts it down. */
  withWorker<T>(work: () => Promise<T>, options?: Partial<WorkerOptions>): Promise<T>;
  /** Creates a worker for this test's task queue; the caller runs and shuts it down. */
  createWorker(options?: Partial<WorkerOptions>, placement?: WorkerPlacement): Promise<Worker>;
}

/** A worker shares the detector's process (as in the worker service) unless it is apart, as in another process. */
export interface WorkerPlacement {
  apartFromDetector: boolean;
}

/** Test-speed tuning: plugin retries in milliseconds rather than minutes. */
const TEST_ENV = {
  LOG_LEVEL: 'warn',
  LOG_FORMAT: 'json',
  METRICS_PORT: '0',
  PLUGIN_RETRY_INITIAL: '50ms',
  PLUGIN_RETRY_MAX_INTERVAL: '200ms',
  PLUGIN_RETRY_MAX_ATTEMPTS: '4',
  PROMOTED_SERVER_UP_TIMEOUT: '3s',
  FAILOVER_STANDBY_RECHECK: '30s',
  GATEWAY_HOST: '127.0.0.1',
  GATEWAY_PORT: '0',
  LEASE_WRITE_INTERVAL: '100ms',
  LIVENESS_CHECKPOINT_PERIOD: '5s',
};

export const useTestWorld = (env: Record<string, string> = {}): { current: TestContext } => {
  let client: Client;
  let nativeConnection: NativeConnection;
  let admin: Pool;
  let context: TestContext | undefined;
  let databaseName: string;

  beforeAll(async () => {
    client = await connectClient(temporalConfig());
    nativeConnection = await connectWorkerConnection(temporalConfig());
    admin = new Pool({ connectionString: testServerUrl('postgres'), max: 1 });
  });

  afterAll(async () => {
    await client.connection.close();
    await nativeConnection.close();
    await admin.end();
  });

  beforeEach(async () => {
    const id = randomUUID().replace(/-/g, '').slice(0, 12);
    databaseName = `vms_test_${id}`;
    await admin.query(`CREATE DATABASE ${databaseName} TEMPLATE ${templateDatabase()}`);
    const databaseUrl = testServerUrl(databaseName);
    const config = loadConfig({
      ...process.env,
      ...TEST_ENV,
      ...env,
      DATABASE_URL: databaseUrl,
      VMS_SITE: `t${id}`,
      TEMPORAL_TASK_QUEUE: `test-${id}`,
      WORKER_IDENTITY: `test-worker-${id}`,
    });
    const logger = createLogger(config);
    // Planned as in the worker service, whose detector and activities this pool serves.
    const db = createPool(databaseUrl, logger, { plans: 'generic' });
    const vms = new VmsSimulator(db);
    const fleet = createFleet({ config, client, db });
    // As in the worker service: the detector and the worker share one process.
    const takeOversHere = new TakeOversHere();
    const liveness = new LivenessService(
      {
        site: config.site,
        db,
        databaseUrl,
        reporter: signalReporter(client, config),
        vms,
        failover: config.failover,
        takeOversHere,
        identity: config.worker.identity,
        logger,
      },
      config.liveness,
    );
    let livenessStarted: Promise<void> | undefined;
    const startLiveness = (): Promise<void> => {
      livenessStarted ??= liveness.start().then(() => undefined);
      return livenessStarted;
    };
    const agents = new TestAgents(db, () => {
      const address = liveness.gateway.address();
      if (address === undefined)
        throw new Error('the gateway is not listening: start the liveness layer first');
      return [`http://127.0.0.1:${address.port}`];
    });
    const createWorker = async (options?: Partial<WorkerOptions>, placement?: WorkerPlacement) => {
      await startLiveness();
      return createVmsWorker({
        config,
        connection: nativeConnection,
        client,
        db,
        vms,
        workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH },
        ...(placement?.apartFromDetector !== true && { takeOversHere }),
        ...(options !== undefined && { options }),
      });
    };
    context = {
      site: config.site,
      taskQueue: config.temporal.taskQueue,
      config,
      db,
      databaseUrl,
      vms,
      client,
      fleet,
      logger,
      liveness,
      agents,
      startLiveness,
      seed: async (site) => importSite(db, parseSite(site)),
      createWorker,
      withWorker: async (work, options) => (await createWorker(options)).runUntil(work),
    };
  });

  afterEach(async () => {
    context?.agents.close();
    await context?.liveness.stop();
    const violations = context ? await siteInvariantViolations(context.db) : [];
    await context?.db.end();
    context = undefined;
    await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
    // Checked after every test: a failure here means the test left the site in a state that must never exist.
    expect(violations).toEqual([]);
  });

  return {
    get current(): TestContext {
      if (!context) throw new Error('the test world exists only inside a test');
      return context;
    },
  };
};

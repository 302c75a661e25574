/**
 * The worker service, deployed on the Master (and, for capacity, on further hosts of the same site).
 * Applies migrations, registers search attributes, runs the failover workflows and activities.
 *
 * Lifecycle: it is ready once it polls (WORKER_READY_FILE written, `/readyz` answers 200). On SIGTERM or
 * SIGINT readiness is withdrawn at once, polling stops, in-flight activities get the worker's shutdown grace
 * time to finish, then PostgreSQL and the Temporal connections close and the process exits 0. The Temporal
 * Runtime owns the signal handlers; it drops them after the first signal, so a second one kills at once.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { State, Worker } from '@temporalio/worker';
import { ConfigError, loadConfig } from '../infra/config';
import type { AppConfig } from '../infra/config';
import { createWarmPool, ensureDatabase } from '../infra/database';
import { createLogger } from '../infra/logger';
import type { Logger } from '../infra/logger';
import { migrate } from '../infra/migrate';
import { installTemporalRuntime } from '../infra/runtime';
import { FAILOVER_SECONDS_BUCKETS, HISTOGRAM_NAMES, SiteMetrics } from './site-metrics';
import { ensureSearchAttributes } from '../infra/search-attributes';
import { connectClient } from '../infra/temporal';
import { connectWorkerConnection } from '../infra/worker-connection';
import { signalReporter } from '../liveness/reporter';
import { prepareTakeOverStatements } from '../store/warm-up';
import { LivenessService } from '../liveness/service';
import { AlertDispatcher } from './alert-dispatcher';
import { connectVms } from './vms-bridge';
import { createVmsWorker } from './worker';
import { TakeOversHere } from '../failover/take-over';

type ServiceStatus = 'STARTING' | State;

/** Alive unless the worker failed; ready only while it polls. */
const HEALTH_CHECKS: Record<string, (status: ServiceStatus) => boolean> = {
  '/healthz': (status) => status !== 'FAILED',
  '/readyz': (status) => status === 'RUNNING',
};

const startHealthServer = async (
  port: number,
  status: () => ServiceStatus,
  logger: Logger,
): Promise<Server | undefined> => {
  if (port === 0) return undefined;
  const server = createServer((request, response) => {
    const check = HEALTH_CHECKS[request.url ?? ''];
    if (check === undefined) {
      response.writeHead(404).end();
      return;
    }
    const current = status();
    response
      .writeHead(check(current) ? 200 : 503, { 'content-type': 'application/json' })
      .end(JSON.stringify({ status: current }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(new ConfigError(`HEALTH_PORT=${port} cannot serve the health endpoints: ${error.message}`)),
    );
    server.listen(port, '0.0.0.0', resolve);
  });
  logger.info({ port }, 'Health endpoints listening');
  return server;
};

const closeServer = (server: Server | undefined): Promise<void> =>
  new Promise((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));

const withdrawReadiness = (config: AppConfig): void => {
  if (config.worker.readyFile !== undefined) rmSync(config.worker.readyFile, { force: true });
};

async function run(config: AppConfig, logger: Logger): Promise<void> {
  const runtime = installTemporalRuntime(
    logger,
    config.worker.metricsPort,
    Object.fromEntries(HISTOGRAM_NAMES.map((name) => [name, FAILOVER_SECONDS_BUCKETS])),
  );

  const service: { worker?: Worker; liveness?: LivenessService; shutdownRequested: boolean } = {
    shutdownRequested: false,
  };
  const onShutdownSignal = (signal: NodeJS.Signals): void => {
    service.shutdownRequested = true;
    withdrawReadiness(config);
    logger.info({ signal }, 'Shutdown requested: finishing in-flight activities');
    // The detector's lead goes to another worker at once; agents turn to their next gateway.
    void service.liveness?.stop();
  };
  process.once('SIGTERM', onShutdownSignal);
  process.once('SIGINT', onShutdownSignal);
  const status = (): ServiceStatus => {
    const state = service.worker?.getState() ?? 'STARTING';
    return service.shutdownRequested && state === 'RUNNING' ? 'STOPPING' : state;
  };
  const health = await startHealthServer(config.worker.healthPort, status, logger);

  await ensureDatabase(config.databaseUrl, logger);
  const db = await createWarmPool(config.databaseUrl, logger, config.worker.databaseConnections, 'generic');
  await migrate(db, logger);
  // A burst of failovers right after a start finds the take-over's statements prepared on every connection.
  const { failed } = await prepareTakeOverStatements(db, config.worker.databaseConnections);
  if (failed.length > 0) logger.warn({ statements: failed }, 'Take-over statements not prepared at start');
  const vms = await connectVms(config, db, logger);

  const client = await connectClient(config.temporal);
  await ensureSearchAttributes(client.connection, config.temporal.namespace, logger);
  const connection = await connectWorkerConnection(config.temporal);
  // The detector's take-overs, which the take-over activities of this worker await instead of polling for them.
  const takeOversHere = new TakeOversHere();
  const worker = await createVmsWorker({
    config,
    connection,
    client,
    db,
    vms: vms.controlPlane,
    takeOversHere,
  });
  service.worker = worker;
  const liveness = new LivenessService(
    {
      site: config.site,
      db,
      databaseUrl: config.databaseUrl,
      reporter: signalReporter(client, config),
      vms: vms.controlPlane,
      failover: config.failover,
      takeOversHere,
      identity: config.worker.identity,
      logger,
    },
    config.liveness,
  );
  service.liveness = liveness;
  const alerts = new AlertDispatcher({
    db,
    client,
    site: config.site,
    taskQueue: config.temporal.taskQueue,
    alerts: config.alerts,
    logger,
  });
  liveness.listen(alerts);
  const gateway = await liveness.start().catch((error: unknown) => {
    // Listening, it failed to read the credentials: PostgreSQL's fault, not the port's.
    if (liveness.gateway.address() !== undefined) throw error;
    throw new ConfigError(
      `GATEWAY_PORT=${config.liveness.gateway.port} cannot serve heartbeats: ${(error as Error).message}`,
    );
  });
  // Listening on every address: this host's agents (and tests) reach it on the loopback.
  const gatewayHost =
    gateway.address === '0.0.0.0' || gateway.address === '::' ? '127.0.0.1' : gateway.address;
  const gatewayUrl = `${config.liveness.gateway.tls === undefined ? 'http' : 'https'}://${gatewayHost}:${gateway.port}`;

  const siteMetrics =
    config.worker.metricsPort > 0
      ? new SiteMetrics({
          db,
          meter: runtime.metricMeter,
          leading: () => liveness.detector.status().leading,
          periodMs: config.worker.siteMetricsIntervalMs,
          logger,
        })
      : undefined;

  const running = worker.run();
  alerts.start();
  siteMetrics?.start();
  if (config.worker.readyFile !== undefined && !service.shutdownRequested) {
    writeFileSync(config.worker.readyFile, `${JSON.stringify({ pid: process.pid, gateway: gatewayUrl })}\n`);
  }
  logger.info(
    {
      site: config.site,
      taskQueue: config.temporal.taskQueue,
      namespace: config.temporal.namespace,
      temporal: config.temporal.address,
      identity: config.worker.identity,
      metrics: config.worker.metricsPort > 0 ? `http://0.0.0.0:${config.worker.metricsPort}/metrics` : 'off',
      health: config.worker.healthPort > 0 ? `http://0.0.0.0:${config.worker.healthPort}/readyz` : 'off',
      gateway: gatewayUrl,
      vms: vms.embeddedSimulator ? `simulated site at ${vms.url}` : vms.url,
    },
    'Worker ready',
  );
  try {
    await running;
  } finally {
    withdrawReadiness(config);
    await liveness.stop();
    await alerts.stop();
    await siteMetrics?.stop();
    await vms.close();
    await client.connection.close();
    await connection.close();
    await db.end();
    await closeServer(health);
  }
  logger.info({ site: config.site, taskQueue: config.temporal.taskQueue }, 'Worker stopped');
}

const loadConfigOrExit = (): AppConfig => {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`vms-failover: configuration error: ${error.message}\n`);
    process.exit(1);
  }
};

const config = loadConfigOrExit();
const logger = createLogger(config);
run(config, logger).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    // A setting that does not fit this host (a port in use): the message says which; no stack trace.
    logger.fatal({ problem: error.message }, 'Worker service cannot start');
  } else {
    logger.fatal({ err: error }, 'Worker service failed');
  }
  process.exit(1);
});

/**
 * The worker service, deployed on the Master. Applies migrations, registers search attributes, runs the
 * failover workflows and activities; SIGTERM or SIGINT stops polling and lets in-flight work finish.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../infra/config';
import { createPool, ensureDatabase } from '../infra/database';
import { createLogger } from '../infra/logger';
import { migrate } from '../infra/migrate';
import { installTemporalRuntime } from '../infra/runtime';
import { ensureSearchAttributes } from '../infra/search-attributes';
import { connectClient, connectWorkerConnection } from '../infra/temporal';
import { VmsSimulator } from '../vms/simulator';
import { createVmsWorker } from './worker';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config);
  installTemporalRuntime(logger, config.worker.metricsPort);

  await ensureDatabase(config.databaseUrl, logger);
  const db = createPool(config.databaseUrl, logger);
  await migrate(db, logger);
  const vms = new VmsSimulator(db);
  await vms.install();

  const client = await connectClient(config.temporal);
  await ensureSearchAttributes(client.connection, config.temporal.namespace, logger);
  const connection = await connectWorkerConnection(config.temporal);
  const worker = await createVmsWorker({ config, connection, client, db, vms });

  const running = worker.run();
  if (config.worker.readyFile !== undefined) writeFileSync(config.worker.readyFile, `${process.pid}\n`);
  logger.info(
    {
      taskQueue: config.temporal.taskQueue,
      namespace: config.temporal.namespace,
      temporal: config.temporal.address,
      identity: config.worker.identity,
      metrics: config.worker.metricsPort > 0 ? `http://0.0.0.0:${config.worker.metricsPort}/metrics` : 'off',
      vms: 'simulator',
    },
    'Worker ready',
  );
  try {
    await running;
  } finally {
    if (config.worker.readyFile !== undefined) rmSync(config.worker.readyFile, { force: true });
    await client.connection.close();
    await connection.close();
    await db.end();
    logger.info({}, 'Worker stopped');
  }
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`vms-failover: configuration error: ${error.message}\n`);
  } else {
    process.stderr.write(
      `vms-failover: worker failed: ${error instanceof Error ? error.stack : String(error)}\n`,
    );
  }
  process.exit(1);
});

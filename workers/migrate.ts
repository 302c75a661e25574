/**
 * `node dist/workers/migrate.js`: applies the database migrations and the VMS simulator's schema as the
 * database owner (DATABASE_URL), then exits. Run before a worker that connects as the least-privilege role
 * of deploy/least-privilege.sql, which may not create anything (scripts/production-stack.sh, compose).
 */
import { ConfigError, loadConfig } from '../infra/config';
import { createPool, ensureDatabase } from '../infra/database';
import { createLogger } from '../infra/logger';
import { migrate } from '../infra/migrate';
import { VmsSimulator } from '../vms/simulator';

const main = async (): Promise<void> => {
  const config = loadConfig();
  const logger = createLogger(config);
  await ensureDatabase(config.databaseUrl, logger);
  // migrate() holds one connection for its lock while each migration runs in a transaction on another.
  const db = createPool(config.databaseUrl, logger, { max: 2 });
  try {
    const applied = await migrate(db, logger);
    await new VmsSimulator(db).install();
    logger.info({ applied }, 'Database migrated');
  } finally {
    await db.end();
  }
};

main().catch((error: unknown) => {
  const message = error instanceof ConfigError ? `configuration error: ${error.message}` : String(error);
  process.stderr.write(`vms-failover migrate: ${message}\n`);
  process.exit(1);
});

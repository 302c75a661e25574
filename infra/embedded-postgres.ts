/**
 * An embedded PostgreSQL for development machines that have no PostgreSQL server: PGlite (PostgreSQL
 * compiled to WebAssembly, running in this process) served over the PostgreSQL wire protocol on 127.0.0.1,
 * its data kept in EMBEDDED_PG_DATA_DIR. `scripts/postgres.sh` starts it when it finds no server; the same
 * `pg` code (pool, migrations, stores, simulator) runs against it unchanged.
 *
 * How it differs from a PostgreSQL server, and why the project still runs correctly on it:
 * - One backend serves every connection. pglite-socket queues the protocol messages of all connections and
 *   runs them one at a time; while a transaction is open it runs only that connection's messages. So
 *   transactions are serialized, row locks (FOR UPDATE, SKIP LOCKED) never wait, and the pool keeps its
 *   usual size. A transaction that waited on a query from another connection would wait forever; no code in
 *   this project does that.
 * - Every connection shares one session: session advisory locks never block anyone (they are taken by the
 *   same backend), so the migration lock does not keep two processes from migrating at the same moment.
 *   Start one worker at a time on the embedded server.
 * - There is a single database: the database name in a connection URL is ignored and every connection works
 *   in "postgres". `CREATE DATABASE` succeeds but the new database cannot be connected to.
 */
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { ConfigError, loadConfig } from './config';
import type { AppConfig } from './config';
import { createLogger } from './logger';
import type { Logger } from './logger';

const HOST = '127.0.0.1';
/**
 * Connections are cheap here (they share one backend), and past this limit pglite-socket answers with a bare
 * text line that clients report as a protocol error: room for the worker's pool, the CLI and tests at once.
 */
const MAX_CONNECTIONS = 100;

interface EmbeddedPostgres {
  /** The port actually listened on (the one chosen by the system when 0 was asked for). */
  port: number;
  /** Stops accepting connections, closes the open ones (rolling back an open transaction) and the database. */
  stop(): Promise<void>;
}

const startEmbeddedPostgres = async (
  options: AppConfig['embeddedPostgres'],
  logger: Logger,
): Promise<EmbeddedPostgres> => {
  mkdirSync(options.dataDir, { recursive: true });
  const db = await PGlite.create({ dataDir: options.dataDir });
  const server = new PGLiteSocketServer({
    db,
    host: HOST,
    port: options.port,
    maxConnections: MAX_CONNECTIONS,
  });
  server.addEventListener('error', (event) => {
    const detail = (event as CustomEvent<unknown>).detail;
    logger.error(
      { err: detail instanceof Error ? detail.message : String(detail) },
      'Embedded PostgreSQL error',
    );
  });
  try {
    await server.start();
  } catch (error) {
    await db.close();
    throw error;
  }
  const port = Number(server.getServerConn().split(':').pop());
  logger.warn(
    { host: HOST, port, dataDir: options.dataDir, url: `postgres://postgres@${HOST}:${port}/postgres` },
    'Embedded PostgreSQL (PGlite) in use: for development only, one backend shared by all connections',
  );
  return {
    port,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
};

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config);
  const embedded = await startEmbeddedPostgres(config.embeddedPostgres, logger);
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'Embedded PostgreSQL stopping');
    embedded.stop().then(
      () => {
        logger.info({}, 'Embedded PostgreSQL stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error(
          { err: error instanceof Error ? error.message : String(error) },
          'Embedded PostgreSQL stop failed',
        );
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`vms-failover: configuration error: ${error.message}\n`);
  } else if ((error as { code?: string }).code === 'EADDRINUSE') {
    process.stderr.write(`vms-failover: embedded PostgreSQL: ${(error as Error).message}\n`);
  } else {
    process.stderr.write(
      `vms-failover: embedded PostgreSQL failed: ${error instanceof Error ? error.stack : String(error)}\n`,
    );
  }
  process.exit(1);
});

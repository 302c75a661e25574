/**
 * What one CLI command runs with: the config loaded once, and the PostgreSQL pool and the Temporal client
 * opened only when the command asks for them, each bounded so that an unreachable service is reported
 * within about ten seconds, and all of it closed when the command ends.
 */
import type { Client } from '@temporalio/client';
import pino from 'pino';
import type { Pool } from 'pg';
import { createFleet } from '../app/fleet';
import type { Fleet } from '../app/fleet';
import { SiteView } from '../app/site-view';
import { loadConfig } from '../infra/config';
import type { AppConfig } from '../infra/config';
import { createPool } from '../infra/database';
import { createLogger } from '../infra/logger';
import type { Logger } from '../infra/logger';
import { connectClient } from '../infra/temporal';
import { isDeadlineExceeded } from '../app/failures';
import { CliError, ExitCode, workerNotAnswering } from './cli-errors';

const CONNECT_TIMEOUT_MS = 10_000;

export interface Session {
  config: AppConfig;
  logger: Logger;
  /** The PostgreSQL pool, checked to answer. */
  db(): Promise<Pool>;
  /** The Temporal client, connected. */
  client(): Promise<Client>;
  /** The fleet operations, over both. */
  fleet(): Promise<Fleet>;
  /** What PostgreSQL records of the site, without a Temporal connection. */
  site(): Promise<SiteView>;
  /**
   * Runs a call that needs a worker to answer (an update, a restore) with a deadline, so that the command
   * reports "worker not answering" rather than waiting forever.
   */
  answeredByWorker<T>(what: string, call: () => Promise<T>): Promise<T>;
}

/** How long an update or a restore may wait for the worker. */
const WORKER_DEADLINE_MS = 20_000;

/** host:port/database, never the password. */
const databaseTarget = (databaseUrl: string): string => {
  const url = new URL(databaseUrl);
  return `${url.hostname}:${url.port || '5432'}${url.pathname}`;
};

const reason = (error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown }).code;
  return message !== '' ? message : typeof code === 'string' ? code : 'no answer';
};

export interface SessionOptions {
  /** Where logs go: stderr for commands whose stdout is their result, stdout for the agent. */
  logTo: 'stderr' | 'stdout';
}

export const withSession = async <T>(
  work: (session: Session) => Promise<T>,
  options: SessionOptions = { logTo: 'stderr' },
): Promise<T> => {
  const config = loadConfig();
  const logger =
    options.logTo === 'stderr' ? createLogger(config, pino.destination(2)) : createLogger(config);
  let pool: Pool | undefined;
  let checkedPool: Promise<Pool> | undefined;
  let client: Promise<Client> | undefined;

  const openPool = (): Pool => {
    pool ??= createPool(config.databaseUrl, logger, { connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    return pool;
  };
  const db = (): Promise<Pool> => {
    checkedPool ??= (async () => {
      const opened = openPool();
      try {
        await opened.query('SELECT 1');
      } catch (error) {
        throw new CliError(
          `PostgreSQL at ${databaseTarget(config.databaseUrl)} is unreachable: ${reason(error)}`,
          ExitCode.Unavailable,
        );
      }
      return opened;
    })();
    return checkedPool;
  };
  const temporal = (): Promise<Client> => {
    client ??= connectClient(config.temporal).catch((error: unknown) => {
      // Not cached: the heartbeat agent tries again on its next tick.
      client = undefined;
      throw new CliError(
        `Temporal at ${config.temporal.address} is unreachable: ${reason(error)}`,
        ExitCode.Unavailable,
      );
    });
    return client;
  };

  const session: Session = {
    config,
    logger,
    db,
    client: temporal,
    fleet: async () => createFleet({ config, client: await temporal(), db: await db() }),
    site: async () => new SiteView(await db()),
    answeredByWorker: async (what, call) => {
      const connected = await temporal();
      try {
        return await connected.withDeadline(Date.now() + WORKER_DEADLINE_MS, call);
      } catch (error) {
        if (isDeadlineExceeded(error)) throw workerNotAnswering(what, WORKER_DEADLINE_MS);
        throw error;
      }
    },
  };
  try {
    return await work(session);
  } finally {
    const connected = await client?.catch(() => undefined);
    await connected?.connection.close();
    await pool?.end();
    logger.flush();
  }
};

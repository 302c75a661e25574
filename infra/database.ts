/** PostgreSQL access: one pool per process, the database created when missing, transactions. */
import { Pool } from 'pg';
import type { ClientBase, PoolClient, PoolConfig, QueryResult, QueryResultRow } from 'pg';
import type { Logger } from './logger';

/** Where a query runs: the pool, or the client of an open transaction. */
export type Queryable = Pool | PoolClient;

const DUPLICATE_DATABASE = '42P04';
/** Two processes creating the same database at once: the loser hits the catalog's unique index. */
const UNIQUE_VIOLATION = '23505';
const INVALID_CATALOG_NAME = '3D000';

/**
 * How PostgreSQL plans the statements of a pool's connections. `generic`: planned once for any values, for a
 * process whose hot path runs prepared statements (`queryPrepared`), which PostgreSQL then neither parses nor
 * plans again. The setting (`plan_cache_mode = force_generic_plan`) holds for every statement with parameters
 * on those connections, prepared or not: each statement run there must read the same rows, by the same
 * indexes, whatever its values: no filter that a missing value turns off (test/sql-style.test.ts). Those
 * connections do not compile plans to machine code either (`jit = off`): PostgreSQL does so for a plan whose
 * estimated cost passes `jit_above_cost`, as the detector's full roster read does from about 12,000 Slaves,
 * and compiling took 184 ms of such a read's 390 ms, for statements that read a few rows by key.
 * `custom` (PostgreSQL's default): planned for each execution's values.
 */
export type PlanMode = 'generic' | 'custom';

export interface PoolOptions extends PoolConfig {
  plans?: PlanMode;
}

export const createPool = (
  databaseUrl: string,
  logger: Logger,
  { plans = 'custom', ...options }: PoolOptions = {},
): Pool => {
  const pool = new Pool({
    connectionString: databaseUrl,
    max: 10,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    ...(plans === 'generic' && {
      // Awaited before the pool hands the new connection out (pg-pool 3.14; its types still say void).
      // eslint-disable-next-line @typescript-eslint/no-misused-promises
      onConnect: async (client: ClientBase) => {
        await client.query(HOT_PATH_SESSION).catch((error: unknown) => {
          logger.warn({ err: (error as Error).message }, 'PostgreSQL connection keeps its default planning');
        });
      },
    }),
    ...options,
  });
  // An idle client losing its connection (PostgreSQL restarted) must not crash the process: the pool
  // drops it and the next query opens a new one.
  pool.on('error', (error) => logger.warn({ err: error.message }, 'PostgreSQL idle connection lost'));
  return pool;
};

const HOT_PATH_SESSION = 'SET plan_cache_mode = force_generic_plan; SET jit = off';

/**
 * A statement of a hot path (a take-over's), prepared once on each connection that runs it: PostgreSQL then
 * neither parses nor plans it again on that connection. Parsing and planning were most of its CPU (the claim:
 * about 0.97 ms a run unprepared, 0.13 ms prepared; docs/benchmark.md). Its name is its identity on every
 * connection, so one name is only ever given one text.
 */
export interface PreparedStatement {
  readonly name: string;
  readonly text: string;
}

const preparedNames = new Map<string, string>();

export const preparedStatement = (name: string, text: string): PreparedStatement => {
  const known = preparedNames.get(name);
  if (known !== undefined && known !== text) throw new Error(`prepared statement "${name}" given two texts`);
  preparedNames.set(name, text);
  return Object.freeze({ name, text });
};

const connectionIds = new WeakMap<PoolClient, number>();
let lastConnectionId = 0;

/**
 * The statement's name on this connection: its own on each. The embedded PostgreSQL (PGlite) serves every
 * connection from one session, where a statement prepared by one connection exists for all of them, and a
 * second connection preparing the same name would fail.
 */
const nameOn = (client: PoolClient, statement: PreparedStatement): string => {
  let id = connectionIds.get(client);
  if (id === undefined) {
    lastConnectionId += 1;
    id = lastConnectionId;
    connectionIds.set(client, id);
  }
  return `${statement.name}-${id}`;
};

export const queryPrepared = async <Row extends QueryResultRow>(
  db: Queryable,
  statement: PreparedStatement,
  values: unknown[],
): Promise<QueryResult<Row>> => {
  if (!(db instanceof Pool))
    return db.query<Row>({ name: nameOn(db, statement), text: statement.text, values });
  // A connection that failed a query is not given out again, as with the pool's own query.
  const client = await checkOut(db);
  let failure: Error | undefined;
  try {
    return await client.query<Row>({ name: nameOn(client, statement), text: statement.text, values });
  } catch (error) {
    failure = error as Error;
    throw error;
  } finally {
    client.checkIn(failure);
  }
};

/**
 * Opens every connection of the pool now and keeps them open while idle: in steady state the worker may not
 * touch the database for longer than any idle timeout, and a failover should not pay for starting PostgreSQL
 * backends (docs/benchmark.md: on the benchmark machine the commit flush, not this, dominates a step).
 */
export const createWarmPool = async (
  databaseUrl: string,
  logger: Logger,
  size: number,
  plans: PlanMode = 'custom',
): Promise<Pool> => {
  const pool = createPool(databaseUrl, logger, { max: size, min: size, plans });
  const clients = await Promise.all(Array.from({ length: size }, () => pool.connect()));
  for (const client of clients) client.release();
  return pool;
};

const databaseName = (databaseUrl: string): string =>
  decodeURIComponent(new URL(databaseUrl).pathname.slice(1));

/** Creates the database named in the URL when it does not exist yet (first start on a new machine). */
export const ensureDatabase = async (databaseUrl: string, logger: Logger): Promise<void> => {
  const probe = new Pool({ connectionString: databaseUrl, max: 1, connectionTimeoutMillis: 10_000 });
  try {
    await probe.query('SELECT 1');
    return;
  } catch (error) {
    if ((error as { code?: string }).code !== INVALID_CATALOG_NAME) throw error;
  } finally {
    await probe.end();
  }
  const name = databaseName(databaseUrl);
  const maintenanceUrl = new URL(databaseUrl);
  maintenanceUrl.pathname = '/postgres';
  const admin = new Pool({ connectionString: maintenanceUrl.toString(), max: 1 });
  try {
    await admin.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    logger.info({ database: name }, 'Database created');
  } catch (error) {
    const { code } = error as { code?: string };
    if (code !== DUPLICATE_DATABASE && code !== UNIQUE_VIOLATION) throw error;
  } finally {
    await admin.end();
  }
};

/**
 * Checks a client out with a listener for its connection being lost: pg-pool drops its own listener on
 * checkout, and an unhandled 'error' event would end the process. The running query still rejects, so the
 * caller (an activity) fails and is retried.
 */
export const checkOut = async (db: Pool): Promise<PoolClient & { checkIn(failure?: Error): void }> => {
  const client = await db.connect();
  const onConnectionLost = (): void => undefined;
  client.on('error', onConnectionLost);
  return Object.assign(client, {
    /** Given the failure of its last query, the connection is closed rather than given out again. */
    checkIn: (failure?: Error) => {
      client.off('error', onConnectionLost);
      client.release(failure);
    },
  });
};

/** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
export const withTransaction = async <T>(db: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> => {
  const client = await checkOut(db);
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.checkIn();
  }
};

/**
 * A failover's take-over run by the detector is marked by a PostgreSQL advisory lock named by the failover,
 * held on the detector's own session: PostgreSQL frees it when the run ends or the session does (the worker
 * killed, its host gone). Any other run of the take-over's steps waits until no one holds it (failover/take-over.ts).
 */
import type { ClientBase } from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queryable } from '../infra/database';

/**
 * The first key of the lock's two (the second is the failover id's hash): two-key advisory locks never meet
 * the detector's one-key lock. Two failovers whose ids hash alike only wait for each other.
 */
const TAKE_OVER_LOCK_SPACE = 72_639_141;
/** A waiting run asks again after this, then twice as long each time up to the most: a take-over runs for tens to hundreds of milliseconds. */
const FIRST_RECHECK_MS = 10;
const MAX_RECHECK_MS = 80;

/** Takes the locks of these failovers on the session: the ids it took (another run holds the others). */
export const tryLockTakeOvers = async (session: ClientBase, failoverIds: string[]): Promise<Set<string>> => {
  const { rows } = await session.query<{ id: string }>(
    `SELECT id FROM unnest($2::text[]) AS id WHERE pg_try_advisory_lock($1, hashtext(id))`,
    [TAKE_OVER_LOCK_SPACE, failoverIds],
  );
  return new Set(rows.map((row) => row.id));
};

export const unlockTakeOvers = async (session: ClientBase, failoverIds: string[]): Promise<void> => {
  await session.query('SELECT pg_advisory_unlock($1, hashtext(id)) FROM unnest($2::text[]) AS id', [
    TAKE_OVER_LOCK_SPACE,
    failoverIds,
  ]);
};

/**
 * Returns once no session holds the failover's lock. A transaction-level try is freed as its statement
 * ends, so the wait holds no connection between its checks.
 */
export const waitUntilNotTakenOver = async (db: Queryable, failoverId: string): Promise<void> => {
  for (let recheckMs = FIRST_RECHECK_MS; ; recheckMs = Math.min(recheckMs * 2, MAX_RECHECK_MS)) {
    const { rows } = await db.query<{ free: boolean }>(
      'SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS free',
      [TAKE_OVER_LOCK_SPACE, failoverId],
    );
    if (rows[0]?.free === true) return;
    await sleep(recheckMs);
  }
};

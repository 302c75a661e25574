/**
 * Stops a step of the failover inside its PostgreSQL transaction, for crash tests of the steps that touch
 * only PostgreSQL (move to Broken recorders, claim a standby). A trigger installed in the test's own
 * database makes the insert of a given failover event wait on an advisory lock that the test holds: the
 * step's other writes are done but not committed when the worker is killed (a step that is one statement
 * commits whole once the hold lets it go, its worker dead or not: PostgreSQL finds its client gone only when it
 * answers).
 */
import type { Pool, PoolClient } from 'pg';
import { eventually } from './wait';

const HOLD_LOCK_CLASS = 72_639_141;

const INSTALL = `
  CREATE TABLE IF NOT EXISTS test_event_holds (
    id        serial PRIMARY KEY,
    event     text NOT NULL,
    server_id text NOT NULL,
    consumed  boolean NOT NULL DEFAULT false
  );
  CREATE OR REPLACE FUNCTION test_hold_event() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE
    hold_id integer;
  BEGIN
    SELECT id INTO hold_id FROM test_event_holds
     WHERE event = NEW.event AND server_id = NEW.server_id AND NOT consumed ORDER BY id LIMIT 1;
    IF hold_id IS NOT NULL THEN
      PERFORM pg_advisory_xact_lock(${HOLD_LOCK_CLASS}, hold_id);
    END IF;
    RETURN NEW;
  END $$;
  DROP TRIGGER IF EXISTS test_hold_event ON failover_events;
  CREATE TRIGGER test_hold_event BEFORE INSERT ON failover_events
    FOR EACH ROW EXECUTE FUNCTION test_hold_event();
`;

export interface TransactionHold {
  /** Whether a transaction waits on the hold. */
  reached(): Promise<boolean>;
  /** Lets the waiting transaction go on; later transactions are not held. */
  release(): Promise<void>;
}

/** Holds the transaction that appends `event` for `serverId`, until released. */
export const holdEventTransaction = async (
  db: Pool,
  event: string,
  serverId: string,
): Promise<TransactionHold> => {
  const connection: PoolClient = await db.connect();
  try {
    await connection.query(INSTALL);
    const { rows } = await connection.query<{ id: number }>(
      'INSERT INTO test_event_holds (event, server_id) VALUES ($1, $2) RETURNING id',
      [event, serverId],
    );
    const id = (rows[0] as { id: number }).id;
    await connection.query('SELECT pg_advisory_lock($1, $2)', [HOLD_LOCK_CLASS, id]);
    let released = false;
    return {
      reached: async () => {
        const waiting = await db.query(
          `SELECT 1 FROM pg_locks
            WHERE locktype = 'advisory' AND NOT granted AND classid = $1 AND objid = $2
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          [HOLD_LOCK_CLASS, id],
        );
        return waiting.rowCount !== 0;
      },
      release: async () => {
        if (released) return;
        released = true;
        await connection.query('UPDATE test_event_holds SET consumed = true WHERE id = $1', [id]);
        await connection.query('SELECT pg_advisory_unlock($1, $2)', [HOLD_LOCK_CLASS, id]);
        connection.release();
      },
    };
  } catch (error) {
    connection.release();
    throw error;
  }
};

/** Waits until a hold has caught its call. */
export const holdReached = (hold: { reached(): Promise<boolean> }, what: string, timeoutMs = 60_000) =>
  eventually(what, async () => ((await hold.reached()) ? true : undefined), { timeoutMs, intervalMs: 100 });

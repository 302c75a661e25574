/**
 * The liveness detector's term. One leader at a time holds a PostgreSQL advisory lock; each new leadership
 * starts a term, from which every server gets a full timeout. Reports and failovers carry their term.
 */
import type { ClientBase } from 'pg';
import type { Queryable } from '../infra/database';

export interface DetectorTerm {
  term: number;
  leader: string;
  observingSinceMs: number;
  renewedAtMs: number;
  /** Since when the leader hears the VMS's server status; null when its polls fail (or it has none). */
  vmsObservingSinceMs: number | null;
}

interface TermRow {
  term: string;
  leader: string;
  observing_since: Date;
  renewed_at: Date;
  vms_observing_since: Date | null;
}

const TERM_COLUMNS = 'term, leader, observing_since, renewed_at, vms_observing_since';

const toDetectorTerm = (row: TermRow): DetectorTerm => ({
  term: Number(row.term),
  leader: row.leader,
  observingSinceMs: row.observing_since.getTime(),
  renewedAtMs: row.renewed_at.getTime(),
  vmsObservingSinceMs: row.vms_observing_since?.getTime() ?? null,
});

/** Starts the next term; `observingSinceMs` is the leader's own clock (it judges every deadline with it). */
export const beginTerm = async (
  connection: ClientBase,
  leader: string,
  observingSinceMs: number,
): Promise<DetectorTerm> => {
  const { rows } = await connection.query<TermRow>(
    `INSERT INTO detector_term (term, leader, observing_since, renewed_at)
     VALUES (1, $1, to_timestamp($2 / 1000.0), now())
     ON CONFLICT (singleton) DO UPDATE
        SET term = detector_term.term + 1, leader = excluded.leader,
            observing_since = excluded.observing_since, renewed_at = now(), vms_observing_since = NULL
     RETURNING ${TERM_COLUMNS}`,
    [leader, observingSinceMs],
  );
  return toDetectorTerm(rows[0] as TermRow);
};

/** Renews the leader's term; false when another leader has started a newer one. */
export const renewTerm = async (connection: ClientBase, term: number): Promise<boolean> => {
  const { rowCount } = await connection.query('UPDATE detector_term SET renewed_at = now() WHERE term = $1', [
    term,
  ]);
  return rowCount === 1;
};

export const currentTerm = async (db: Queryable): Promise<DetectorTerm | undefined> => {
  const { rows } = await db.query<TermRow>(`SELECT ${TERM_COLUMNS} FROM detector_term`);
  return rows[0] && toDetectorTerm(rows[0]);
};

/** The leader heard the VMS's status again (since then), or stopped hearing it (null). */
export const recordVmsObservation = async (
  connection: ClientBase,
  term: number,
  sinceMs: number | null,
): Promise<void> => {
  await connection.query(
    'UPDATE detector_term SET vms_observing_since = to_timestamp($2 / 1000.0) WHERE term = $1',
    [term, sinceMs],
  );
};

/**
 * Mass-failure holds: failovers held because many Slaves went silent at once. At most one hold is open; Slaves
 * whose deadline passes while it is open join it. An operator releases (they fail over) or dismisses it.
 */
import type { Pool } from 'pg';
import { DomainError, ErrorType } from '../domain/errors';
import type { Queryable } from '../infra/database';
import { withTransaction } from '../infra/database';
import { raiseAlert } from './alerts';
import { appendEvent } from './events';

export type HoldStatus = 'open' | 'released' | 'dismissed';

export interface Hold {
  id: string;
  status: HoldStatus;
  openedAt: Date;
  protectedSlaves: number;
  decidedBy: string | null;
  decidedAt: Date | null;
  slaves: { serverId: string; deadlineMs: number }[];
}

interface HoldRow {
  id: string;
  status: HoldStatus;
  opened_at: Date;
  protected_slaves: number;
  decided_by: string | null;
  decided_at: Date | null;
  slaves: { server_id: string; deadline_ms: number }[];
}

const SELECT_HOLDS = `
  SELECT h.id, h.status, h.opened_at, h.protected_slaves, h.decided_by, h.decided_at,
         coalesce((SELECT json_agg(json_build_object('server_id', s.server_id,
                                   'deadline_ms', (extract(epoch FROM s.deadline_at) * 1000)::float8)
                                   ORDER BY s.deadline_at, s.server_id)
                     FROM mass_failure_held_slaves s WHERE s.hold_id = h.id), '[]') AS slaves
    FROM mass_failure_holds h`;

const toHold = (row: HoldRow): Hold => ({
  id: row.id,
  status: row.status,
  openedAt: row.opened_at,
  protectedSlaves: row.protected_slaves,
  decidedBy: row.decided_by,
  decidedAt: row.decided_at,
  slaves: row.slaves.map((slave) => ({
    serverId: slave.server_id,
    deadlineMs: Math.round(slave.deadline_ms),
  })),
});

export const findHold = async (db: Queryable, holdId: string): Promise<Hold | undefined> => {
  const { rows } = await db.query<HoldRow>(`${SELECT_HOLDS} WHERE h.id = $1`, [holdId]);
  return rows[0] && toHold(rows[0]);
};

export const findOpenHold = async (db: Queryable): Promise<Hold | undefined> => {
  const { rows } = await db.query<HoldRow>(`${SELECT_HOLDS} WHERE h.status = 'open'`);
  return rows[0] && toHold(rows[0]);
};

export const listHolds = async (db: Queryable, limit = 20): Promise<Hold[]> => {
  const { rows } = await db.query<HoldRow>(`${SELECT_HOLDS} ORDER BY h.opened_at DESC, h.id DESC LIMIT $1`, [
    limit,
  ]);
  return rows.map(toHold);
};

/**
 * Holds the failover of a Slave whose deadline passed: in the open hold, or in a new one (with its alert).
 * Returns the hold id. Safe to repeat.
 */
export const holdFailover = (
  db: Pool,
  input: { newHoldId: string; serverId: string; deadlineMs: number; protectedSlaves: number; silent: number },
): Promise<string> =>
  withTransaction(db, async (tx) => {
    await tx.query(
      `INSERT INTO mass_failure_holds (id, status, protected_slaves) VALUES ($1, 'open', $2) ON CONFLICT DO NOTHING`,
      [input.newHoldId, input.protectedSlaves],
    );
    const { rows } = await tx.query<{ id: string }>(
      "SELECT id FROM mass_failure_holds WHERE status = 'open'",
    );
    const holdId = rows[0]?.id ?? input.newHoldId;
    await tx.query(
      `INSERT INTO mass_failure_held_slaves (hold_id, server_id, deadline_at)
       VALUES ($1, $2, to_timestamp($3 / 1000.0)) ON CONFLICT DO NOTHING`,
      [holdId, input.serverId, input.deadlineMs],
    );
    if (holdId === input.newHoldId) {
      await raiseAlert(tx, {
        id: `${holdId}:opened`,
        kind: 'mass-failure-held',
        message:
          `${input.silent} of ${input.protectedSlaves} protected Slaves went silent at once: their failovers are ` +
          `held (the network to the Master may be down). Release them (vms hold release ${holdId}) or dismiss them.`,
        details: { holdId, silent: input.silent, protectedSlaves: input.protectedSlaves },
      });
    }
    await appendEvent(tx, {
      serverId: input.serverId,
      event: 'failover-held',
      details: { holdId, deadline: new Date(input.deadlineMs).toISOString() },
      requestId: holdId,
    });
    return holdId;
  });

/** An operator's decision on an open hold; its alert is acknowledged with it. */
export const decideHold = (
  db: Pool,
  input: { holdId: string; decision: 'released' | 'dismissed'; by: string },
): Promise<Hold> =>
  withTransaction(db, async (tx) => {
    const { rows } = await tx.query<{ status: HoldStatus }>(
      'SELECT status FROM mass_failure_holds WHERE id = $1 FOR UPDATE',
      [input.holdId],
    );
    const current = rows[0];
    if (current === undefined)
      throw new DomainError(ErrorType.InvalidInput, `no mass-failure hold "${input.holdId}"`);
    if (current.status !== 'open') {
      throw new DomainError(
        ErrorType.InvalidInput,
        `hold "${input.holdId}" was ${current.status} already: only an open hold can be decided`,
      );
    }
    await tx.query(
      'UPDATE mass_failure_holds SET status = $2, decided_by = $3, decided_at = now() WHERE id = $1',
      [input.holdId, input.decision, input.by],
    );
    await tx.query(
      'UPDATE alerts SET acknowledged_at = now(), acknowledged_by = $2 WHERE id = $1 AND acknowledged_at IS NULL',
      [`${input.holdId}:opened`, input.by],
    );
    const hold = (await findHold(tx, input.holdId)) as Hold;
    for (const { serverId } of hold.slaves) {
      await appendEvent(tx, {
        serverId,
        event: input.decision === 'released' ? 'failover-released' : 'failover-dismissed',
        details: { holdId: input.holdId, by: input.by },
        requestId: input.holdId,
      });
    }
    return hold;
  });

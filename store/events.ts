/** The append-only history of failover events. */
import type { Pool, PoolClient } from 'pg';

type Queryable = Pool | PoolClient;

export type FailoverEventName =
  | 'failover-started'
  | 'moved-to-broken-recorders'
  | 'waiting-for-standby'
  | 'standby-claimed'
  | 'standby-promoted'
  | 'cameras-rebound'
  | 'plugin-reinstalled'
  | 'plugin-needs-manual-action'
  | 'failover-completed'
  | 'late-heartbeat'
  | 'disks-degraded'
  | 'settings-changed'
  | 'maintenance-started'
  | 'restored-as-standby'
  | 'failover-held'
  | 'failover-released'
  | 'failover-dismissed';

export interface FailoverEvent {
  serverId: string;
  failoverId?: string;
  event: FailoverEventName;
  details?: Record<string, unknown>;
  /** Set when the caller may run twice (activities): the event is then recorded once. */
  idempotencyKey?: string;
}

export const appendEvent = async (db: Queryable, event: FailoverEvent): Promise<void> => {
  await db.query(
    `INSERT INTO failover_events (server_id, failover_id, event, details, idempotency_key)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING`,
    [
      event.serverId,
      event.failoverId ?? null,
      event.event,
      event.details ?? {},
      event.idempotencyKey ?? null,
    ],
  );
};

export interface FailoverEventRecord {
  id: string;
  serverId: string;
  failoverId: string | null;
  event: FailoverEventName;
  details: Record<string, unknown>;
  at: Date;
}

export const listEvents = async (
  db: Queryable,
  serverId?: string,
  limit = 200,
): Promise<FailoverEventRecord[]> => {
  const { rows } = await db.query<FailoverEventRecord>(
    `SELECT id, server_id AS "serverId", failover_id AS "failoverId", event, details, at
       FROM failover_events
      WHERE $1::text IS NULL OR server_id = $1
         OR failover_id IN (SELECT id FROM failovers WHERE slave_id = $1 OR failover_server_id = $1)
      ORDER BY id DESC LIMIT $2`,
    [serverId ?? null, limit],
  );
  return rows.reverse();
};

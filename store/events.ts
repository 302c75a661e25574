/** The append-only history of failover events. */
import type { Queryable } from '../infra/database';

export type FailoverEventName =
  | 'failover-started'
  | 'moved-to-broken-recorders'
  | 'waiting-for-standby'
  | 'standby-claimed'
  | 'standby-released'
  | 'standby-out-of-service'
  | 'standby-in-service'
  | 'standby-promoted'
  | 'slave-fenced'
  | 'slave-not-fenced'
  | 'cameras-rebound'
  | 'plugin-reinstalled'
  | 'plugin-needs-manual-action'
  | 'plugin-handed-over'
  | 'failover-completed'
  | 'late-heartbeat'
  | 'disks-degraded'
  | 'settings-changed'
  | 'maintenance-started'
  | 'restored-as-standby'
  | 'demoted-to-standby'
  | 'failover-held'
  | 'failover-released'
  | 'failover-dismissed';

interface EventOf {
  serverId: string;
  event: FailoverEventName;
  details?: Record<string, unknown>;
}

/**
 * An event and what makes it once: the steps that record events run in activities, which may run twice (a
 * retry, a replay), so every event names what it records.
 */
export type FailoverEvent = EventOf &
  (
    | {
        /** The failover the event belongs to: an event of a failover is recorded once. */
        failoverId: string;
        /** What the event is about when a failover has one per subject (a plugin): recorded once per subject. */
        subject?: string;
      }
    | {
        /**
         * The request a server's own event records (a mass-failure hold, a monitor's step, an operator's
         * command): recorded once per request and server.
         */
        requestId: string;
      }
  );

/** `failoverId:event[:subject]` for an event of a failover, `requestId:event:serverId` for one a request caused. */
const idempotencyKey = (event: FailoverEvent): string =>
  'failoverId' in event
    ? [event.failoverId, event.event, ...(event.subject === undefined ? [] : [event.subject])].join(':')
    : [event.requestId, event.event, event.serverId].join(':');

export const appendEvent = async (db: Queryable, event: FailoverEvent): Promise<void> => {
  await db.query(
    `INSERT INTO failover_events (server_id, failover_id, event, details, idempotency_key)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING`,
    [
      event.serverId,
      'failoverId' in event ? event.failoverId : null,
      event.event,
      event.details ?? {},
      idempotencyKey(event),
    ],
  );
};

/**
 * SQL for a statement that changes a failover and records its event at once: appends one event per row of
 * `source` (a CTE of that statement, with columns server_id, failover_id and details), keyed as
 * {@link appendEvent} keys an event of a failover, so that the statement run again records nothing more.
 * `subject` is an SQL expression over the row, for a failover that has one such event per subject.
 */
export const appendEventFrom = (source: string, event: FailoverEventName, subject?: string): string => `
  INSERT INTO failover_events (server_id, failover_id, event, details, idempotency_key)
  SELECT server_id, failover_id, '${event}', details,
         failover_id || ':${event}'${subject === undefined ? '' : ` || ':' || ${subject}`}
    FROM ${source}
  ON CONFLICT (idempotency_key) DO NOTHING`;

export interface FailoverEventRecord {
  id: string;
  serverId: string;
  failoverId: string | null;
  event: FailoverEventName;
  details: Record<string, unknown>;
  at: Date;
}

interface FailoverEventRow {
  id: string;
  server_id: string;
  failover_id: string | null;
  event: FailoverEventName;
  details: Record<string, unknown>;
  at: Date;
}

const toEventRecord = (row: FailoverEventRow): FailoverEventRecord => ({
  id: row.id,
  serverId: row.server_id,
  failoverId: row.failover_id,
  event: row.event,
  details: row.details,
  at: row.at,
});

const SELECT_EVENTS = 'SELECT id, server_id, failover_id, event, details, at FROM failover_events';

export const listEvents = async (
  db: Queryable,
  serverId?: string,
  limit = 200,
): Promise<FailoverEventRecord[]> => {
  const { rows } =
    serverId === undefined
      ? await db.query<FailoverEventRow>(`${SELECT_EVENTS} ORDER BY id DESC LIMIT $1`, [limit])
      : await db.query<FailoverEventRow>(
          `${SELECT_EVENTS}
            WHERE server_id = $1
               OR failover_id IN (SELECT id FROM failovers WHERE slave_id = $1 OR failover_server_id = $1)
            ORDER BY id DESC LIMIT $2`,
          [serverId, limit],
        );
  return rows.map(toEventRecord).reverse();
};

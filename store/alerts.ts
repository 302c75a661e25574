/** Alerts: events that need a person, shown until acknowledged. Raising one twice records it once. */
import type { Pool, PoolClient } from 'pg';

export type AlertKind =
  | 'mass-failure-held'
  | 'no-matched-standby'
  | 'standby-out-of-service'
  | 'plugin-needs-manual-action'
  | 'fencing-failed';

export interface Alert {
  id: string;
  kind: AlertKind;
  serverId: string | null;
  message: string;
  details: Record<string, unknown>;
  raisedAt: Date;
  acknowledgedAt: Date | null;
  acknowledgedBy: string | null;
}

export const raiseAlert = async (
  db: Pool | PoolClient,
  alert: {
    id: string;
    kind: AlertKind;
    serverId?: string;
    message: string;
    details?: Record<string, unknown>;
  },
): Promise<boolean> => {
  const { rowCount } = await db.query(
    `INSERT INTO alerts (id, kind, server_id, message, details) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (id) DO NOTHING`,
    [alert.id, alert.kind, alert.serverId ?? null, alert.message, alert.details ?? {}],
  );
  return rowCount === 1;
};

export const listAlerts = async (db: Pool, options: { all?: boolean } = {}): Promise<Alert[]> => {
  const { rows } = await db.query<Alert>(
    `SELECT id, kind, server_id AS "serverId", message, details, raised_at AS "raisedAt",
            acknowledged_at AS "acknowledgedAt", acknowledged_by AS "acknowledgedBy"
       FROM alerts WHERE $1 OR acknowledged_at IS NULL ORDER BY raised_at, id`,
    [options.all === true],
  );
  return rows;
};

/** Acknowledges alerts by id; returns the ids acknowledged now (unknown or already acknowledged: left out). */
export const acknowledgeAlerts = async (db: Pool, ids: string[], by: string): Promise<string[]> => {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE alerts SET acknowledged_at = now(), acknowledged_by = $2
      WHERE id = ANY($1) AND acknowledged_at IS NULL RETURNING id`,
    [ids, by],
  );
  return rows.map((row) => row.id).sort();
};

/** Alerts: events that need a person, shown until acknowledged. Raising one twice records it once. */
import type { Queryable } from '../infra/database';

export const ALERT_KINDS = [
  'mass-failure-held',
  'no-matched-standby',
  'standby-out-of-service',
  'plugin-needs-manual-action',
  'fencing-failed',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

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

export interface AlertRow {
  id: string;
  kind: AlertKind;
  server_id: string | null;
  message: string;
  details: Record<string, unknown>;
  raised_at: Date;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
}

export const toAlert = (row: AlertRow): Alert => ({
  id: row.id,
  kind: row.kind,
  serverId: row.server_id,
  message: row.message,
  details: row.details,
  raisedAt: row.raised_at,
  acknowledgedAt: row.acknowledged_at,
  acknowledgedBy: row.acknowledged_by,
});

export const raiseAlert = async (
  db: Queryable,
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

/**
 * {@link raiseAlert} for a statement that changes something and raises its alert at once: raises one alert per
 * row of `source` (a CTE of that statement, with columns alert_id, kind, server_id, message and details).
 */
export const raiseAlertFrom = (source: string): string => `
  INSERT INTO alerts (id, kind, server_id, message, details)
  SELECT alert_id, kind, server_id, message, details FROM ${source}
  ON CONFLICT (id) DO NOTHING`;

export const listAlerts = async (db: Queryable, options: { all?: boolean } = {}): Promise<Alert[]> => {
  const { rows } = await db.query<AlertRow>(
    `SELECT id, kind, server_id, message, details, raised_at, acknowledged_at, acknowledged_by
       FROM alerts WHERE $1 OR acknowledged_at IS NULL ORDER BY raised_at, id`,
    [options.all === true],
  );
  return rows.map(toAlert);
};

/** Acknowledges alerts by id; returns the ids acknowledged now (unknown or already acknowledged: left out). */
export const acknowledgeAlerts = async (db: Queryable, ids: string[], by: string): Promise<string[]> => {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE alerts SET acknowledged_at = now(), acknowledged_by = $2
      WHERE id = ANY($1) AND acknowledged_at IS NULL RETURNING id`,
    [ids, by],
  );
  return rows.map((row) => row.id).sort();
};

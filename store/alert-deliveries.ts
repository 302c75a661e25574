/** Deliveries of alerts to the operator's webhooks: one per alert and webhook, attempts and outcome kept. */
import type { Queryable } from '../infra/database';
import type { Alert } from './alerts';
import { toAlert } from './alerts';
import type { AlertRow } from './alerts';

export interface AlertDelivery {
  alertId: string;
  webhook: string;
  attempts: number;
  lastError: string | null;
  deliveredAt: Date | null;
}

interface DeliveryRow {
  alert_id: string;
  webhook: string;
  attempts: number;
  last_error: string | null;
  delivered_at: Date | null;
}

const toDelivery = (row: DeliveryRow): AlertDelivery => ({
  alertId: row.alert_id,
  webhook: row.webhook,
  attempts: row.attempts,
  lastError: row.last_error,
  deliveredAt: row.delivered_at,
});

/** Alerts some webhook has not taken yet, oldest first (raised before a webhook was configured: sent too). */
export const alertsToDeliver = async (db: Queryable, webhooks: string[]): Promise<Alert[]> => {
  const { rows } = await db.query<AlertRow>(
    `SELECT a.id, a.kind, a.server_id, a.message, a.details, a.raised_at, a.acknowledged_at, a.acknowledged_by
       FROM alerts a
      WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) AS w(webhook)
                     WHERE NOT EXISTS (SELECT 1 FROM alert_deliveries d
                                        WHERE d.alert_id = a.id AND d.webhook = w.webhook AND d.delivered_at IS NOT NULL))
      ORDER BY a.raised_at, a.id`,
    [webhooks],
  );
  return rows.map(toAlert);
};

export const findAlert = async (db: Queryable, alertId: string): Promise<Alert | undefined> => {
  const { rows } = await db.query<AlertRow>(
    `SELECT id, kind, server_id, message, details, raised_at, acknowledged_at, acknowledged_by
       FROM alerts WHERE id = $1`,
    [alertId],
  );
  return rows[0] && toAlert(rows[0]);
};

/**
 * Counts an attempt before its request is sent, so one cut short (the worker killed while the webhook had it)
 * is counted too.
 */
export const beginDeliveryAttempt = async (
  db: Queryable,
  input: { alertId: string; webhook: string },
): Promise<void> => {
  await db.query(
    `INSERT INTO alert_deliveries AS d (alert_id, webhook, attempts)
     VALUES ($1, $2, 1)
     ON CONFLICT (alert_id, webhook) DO UPDATE SET attempts = d.attempts + 1`,
    [input.alertId, input.webhook],
  );
};

/** Records how an attempt begun ended; `error` null means the webhook took it. */
export const recordDeliveryOutcome = async (
  db: Queryable,
  input: { alertId: string; webhook: string; error: string | null },
): Promise<void> => {
  await db.query(
    `UPDATE alert_deliveries
        SET last_error = coalesce($3, last_error),
            delivered_at = coalesce(delivered_at, CASE WHEN $3::text IS NULL THEN now() END)
      WHERE alert_id = $1 AND webhook = $2`,
    [input.alertId, input.webhook, input.error],
  );
};

export const deliveryOf = async (
  db: Queryable,
  alertId: string,
  webhook: string,
): Promise<AlertDelivery | undefined> => {
  const { rows } = await db.query<DeliveryRow>(
    'SELECT alert_id, webhook, attempts, last_error, delivered_at FROM alert_deliveries WHERE alert_id = $1 AND webhook = $2',
    [alertId, webhook],
  );
  return rows[0] && toDelivery(rows[0]);
};

export const deliveriesOf = async (db: Queryable, alertIds: string[]): Promise<AlertDelivery[]> => {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT alert_id, webhook, attempts, last_error, delivered_at FROM alert_deliveries
      WHERE alert_id = ANY($1) ORDER BY alert_id, webhook`,
    [alertIds],
  );
  return rows.map(toDelivery);
};

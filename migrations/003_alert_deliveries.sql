-- Alerts go to the operator's webhooks: one delivery per alert and webhook, retried until it is taken.

CREATE TABLE alert_deliveries (
  alert_id     text NOT NULL REFERENCES alerts (id),
  -- The webhook's URL without credentials or query (what the operator configured, for the record).
  webhook      text NOT NULL,
  attempts     integer NOT NULL DEFAULT 0,
  last_error   text,
  delivered_at timestamptz,
  PRIMARY KEY (alert_id, webhook)
);

-- A new alert is delivered at once: every worker hears of it on commit.
CREATE TRIGGER alerts_raised AFTER INSERT ON alerts
  FOR EACH STATEMENT EXECUTE FUNCTION notify_liveness_table('vms_alerts');

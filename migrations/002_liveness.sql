-- Liveness: who may report a heartbeat, what was last heard of each server, the detector's term, when each
-- monitored server's silence counts from, mass-failure holds, and alerts for the operator.

-- While a monitor runs: heartbeats count from monitored_since; with none heard since, silence counts from
-- silence_from (monitoring start, or for a promoted server, server-up).
ALTER TABLE servers
  ADD COLUMN monitored_since timestamptz,
  ADD COLUMN silence_from timestamptz;

-- One credential per agent; the token is shown once when issued and only its SHA-256 is kept.
CREATE TABLE agent_credentials (
  id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{8,16}$'),
  server_id  text NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
  token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  issued_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
CREATE INDEX agent_credentials_server ON agent_credentials (server_id) WHERE revoked_at IS NULL;

-- What the gateways last heard of each server, written in batches. last_seen_at is the receiving gateway's
-- clock; sent_at the agent's, for the record only.
CREATE TABLE server_leases (
  server_id    text PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
  last_seen_at timestamptz NOT NULL,
  sent_at      timestamptz,
  disks        jsonb NOT NULL DEFAULT '[]',
  -- The usual time between two heartbeats, smoothed: the mass-failure rule counts missed heartbeats with it.
  interval_ms  integer CHECK (interval_ms > 0),
  heard_by     text NOT NULL,
  written_at   timestamptz NOT NULL DEFAULT now()
);

-- The liveness detector: one leader at a time (a PostgreSQL advisory lock), a term per leadership. Reports
-- and failovers carry the term they were decided in; a stale leader's are refused.
CREATE TABLE detector_term (
  singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  term            bigint NOT NULL CHECK (term > 0),
  leader          text NOT NULL,
  -- Nobody heard heartbeats before this moment: every server gets a full timeout from it.
  observing_since timestamptz NOT NULL,
  renewed_at      timestamptz NOT NULL
);

-- Failovers held because many Slaves went silent at once; an operator releases or dismisses them.
CREATE TABLE mass_failure_holds (
  id               text PRIMARY KEY,
  opened_at        timestamptz NOT NULL DEFAULT now(),
  status           text NOT NULL CHECK (status IN ('open', 'released', 'dismissed')),
  protected_slaves integer NOT NULL CHECK (protected_slaves >= 0),
  decided_by       text,
  decided_at       timestamptz,
  CONSTRAINT decided_when_closed CHECK ((status = 'open') = (decided_at IS NULL))
);
CREATE UNIQUE INDEX mass_failure_holds_one_open ON mass_failure_holds ((true)) WHERE status = 'open';

CREATE TABLE mass_failure_held_slaves (
  hold_id     text NOT NULL REFERENCES mass_failure_holds (id),
  server_id   text NOT NULL REFERENCES servers (id),
  deadline_at timestamptz NOT NULL,
  PRIMARY KEY (hold_id, server_id)
);

-- Events that need a person, shown until acknowledged. The id names the event, so it is raised once.
CREATE TABLE alerts (
  id              text PRIMARY KEY,
  kind            text NOT NULL,
  server_id       text,
  message         text NOT NULL,
  details         jsonb NOT NULL DEFAULT '{}',
  raised_at       timestamptz NOT NULL DEFAULT now(),
  acknowledged_at timestamptz,
  acknowledged_by text
);
CREATE INDEX alerts_unacknowledged ON alerts (raised_at) WHERE acknowledged_at IS NULL;

-- Changes the liveness layer must hear of at once, delivered on commit.
CREATE FUNCTION notify_liveness_roster() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('vms_liveness_roster', NEW.id);
  RETURN NULL;
END $$;
CREATE TRIGGER servers_liveness_roster AFTER INSERT OR UPDATE OF
    role, status, protected, failover_timeout_ms, maintenance_until, monitored_since, silence_from
  ON servers FOR EACH ROW EXECUTE FUNCTION notify_liveness_roster();

CREATE FUNCTION notify_liveness_table() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify(TG_ARGV[0], '');
  RETURN NULL;
END $$;
CREATE TRIGGER agent_credentials_changed AFTER INSERT OR UPDATE OR DELETE ON agent_credentials
  FOR EACH STATEMENT EXECUTE FUNCTION notify_liveness_table('vms_agent_credentials');
CREATE TRIGGER mass_failure_holds_changed AFTER UPDATE ON mass_failure_holds
  FOR EACH STATEMENT EXECUTE FUNCTION notify_liveness_table('vms_mass_failure_holds');

-- The VMS site: servers in their folders, drives, cameras, plugins, failover settings.

CREATE TABLE servers (
  id                  text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
  hostname            text NOT NULL CHECK (length(hostname) BETWEEN 1 AND 253),
  role                text NOT NULL CHECK (role IN ('master', 'slave', 'failover')),
  status              text NOT NULL CHECK (status IN ('active', 'broken', 'standby')),
  -- The folder of the VMS server list follows from role and status; stored so it can be indexed and listed.
  folder              text GENERATED ALWAYS AS (
                        CASE WHEN status = 'broken' THEN 'BrokenRecorders'
                             WHEN role = 'failover' THEN 'FailoverServers'
                             ELSE 'Servers' END) STORED,
  protected           boolean NOT NULL DEFAULT false,
  failover_timeout_ms integer NOT NULL DEFAULT 60000 CHECK (failover_timeout_ms BETWEEN 1000 AND 86400000),
  maintenance_until   timestamptz,
  -- The broken Slave this server took over from. Unique: a Slave is never served by two servers, and a
  -- single column: a failover server serves at most one Slave.
  replaces_server_id  text UNIQUE REFERENCES servers (id),
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT master_cannot_be_protected CHECK (role <> 'master' OR NOT protected),
  CONSTRAINT standby_not_protected CHECK (role <> 'failover' OR NOT protected),
  CONSTRAINT status_fits_role CHECK (
    (role = 'master' AND status = 'active') OR
    (role = 'slave' AND status IN ('active', 'broken')) OR
    (role = 'failover' AND status = 'standby')),
  CONSTRAINT not_its_own_replacement CHECK (replaces_server_id <> id)
);
CREATE UNIQUE INDEX servers_one_master ON servers ((true)) WHERE role = 'master';
CREATE INDEX servers_standby ON servers (created_at) WHERE role = 'failover' AND status = 'standby';

CREATE TABLE drives (
  server_id  text NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
  letter     text NOT NULL CHECK (letter ~ '^[A-Z]$'),
  -- Material disks hold recordings; a Slave whose material disks are all broken has failed.
  material   boolean NOT NULL DEFAULT true,
  healthy    boolean NOT NULL DEFAULT true,
  checked_at timestamptz,
  PRIMARY KEY (server_id, letter)
);

CREATE TABLE cameras (
  id        text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  name      text NOT NULL,
  kind      text NOT NULL CHECK (kind IN ('ip', 'analog')),
  -- One column: a camera is bound to at most one recording server.
  server_id text NOT NULL REFERENCES servers (id),
  address   text
);
CREATE INDEX cameras_server ON cameras (server_id);

CREATE TABLE plugins (
  server_id    text NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
  installed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (server_id, name)
);

-- Failovers and their history.

CREATE TABLE failovers (
  id                   text PRIMARY KEY, -- the failover workflow id
  slave_id             text NOT NULL REFERENCES servers (id),
  reason               text NOT NULL CHECK (reason IN ('heartbeat-timeout', 'all-disks-broken')),
  deadline_at          timestamptz NOT NULL, -- when the Slave was due to be deemed broken
  started_at           timestamptz NOT NULL DEFAULT now(),
  status               text NOT NULL CHECK (status IN (
                         'started', 'waiting-for-standby', 'standby-claimed', 'promoted', 'recording-restored', 'completed')),
  failover_server_id   text REFERENCES servers (id),
  cameras_committed_at timestamptz,
  ip_cameras_moved     integer,
  analog_cameras_left  integer,
  completed_at         timestamptz,
  CONSTRAINT claimed_before_promoted CHECK (
    status IN ('started', 'waiting-for-standby') OR failover_server_id IS NOT NULL)
);
-- At most one failover in progress per Slave: no double failover.
CREATE UNIQUE INDEX failovers_one_open_per_slave ON failovers (slave_id) WHERE status <> 'completed';
CREATE INDEX failovers_waiting ON failovers (started_at) WHERE status = 'waiting-for-standby';

CREATE TABLE plugin_reinstalls (
  failover_id text NOT NULL REFERENCES failovers (id),
  plugin      text NOT NULL,
  server_id   text NOT NULL REFERENCES servers (id),
  status      text NOT NULL CHECK (status IN ('pending', 'installed', 'needs-manual-action')),
  attempts    integer NOT NULL DEFAULT 0,
  last_error  text,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (failover_id, plugin)
);

CREATE TABLE failover_events (
  id              bigserial PRIMARY KEY,
  server_id       text NOT NULL,
  failover_id     text,
  event           text NOT NULL,
  details         jsonb NOT NULL DEFAULT '{}',
  -- Activities may run twice; an event they append carries a key so that it is recorded once.
  idempotency_key text UNIQUE,
  at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX failover_events_server ON failover_events (server_id, at);

CREATE FUNCTION failover_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'failover_events is append-only';
END $$;
CREATE TRIGGER failover_events_append_only BEFORE UPDATE OR DELETE ON failover_events
  FOR EACH ROW EXECUTE FUNCTION failover_events_append_only();

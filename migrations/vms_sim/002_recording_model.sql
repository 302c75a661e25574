-- The simulated site as a VMS sees it: each server's role and state (up, down, partitioned), fencing, disks,
-- which servers record which camera (a camera recorded by two servers is the split brain fencing prevents),
-- request ids as idempotency keys, plugin installs as operations, and faults of the HTTP service.

-- Put once a site is loaded (PUT /v1/simulator/site): from then on only its servers and cameras exist.
-- Without a site, every server id asked about is taken as an up standby (the in-process simulator).
CREATE TABLE vms_sim.site (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  put_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vms_sim.servers (
  server_id       text PRIMARY KEY,
  role            text NOT NULL CHECK (role IN ('master', 'recorder', 'standby')),
  replaces_server text,
  -- down: crashed, records nothing; partitioned: records what it recorded, but nothing reaches it.
  state           text NOT NULL DEFAULT 'up' CHECK (state IN ('up', 'down', 'partitioned')),
  -- Stopped recording and streaming until promoted or demoted.
  fenced          boolean NOT NULL DEFAULT false,
  changed_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO vms_sim.servers (server_id, role, replaces_server)
  SELECT server_id, 'recorder', replaces_server FROM vms_sim.recorders;
INSERT INTO vms_sim.servers (server_id, role)
  SELECT DISTINCT server_id, 'recorder' FROM vms_sim.camera_bindings ON CONFLICT (server_id) DO NOTHING;
INSERT INTO vms_sim.servers (server_id, role, state)
  SELECT server_id, 'standby', 'down' FROM vms_sim.down_servers
  ON CONFLICT (server_id) DO UPDATE SET state = 'down';
DROP TABLE vms_sim.recorders, vms_sim.down_servers;

CREATE TABLE vms_sim.disks (
  server_id text NOT NULL REFERENCES vms_sim.servers ON DELETE CASCADE,
  letter    text NOT NULL CHECK (letter ~ '^[A-Z]$'),
  healthy   boolean NOT NULL DEFAULT true,
  PRIMARY KEY (server_id, letter)
);

-- Analog cameras are wired to their server: bound, never rebound.
ALTER TABLE vms_sim.camera_bindings
  ADD COLUMN kind text NOT NULL DEFAULT 'ip' CHECK (kind IN ('ip', 'analog'));

CREATE TABLE vms_sim.recordings (
  camera_id text NOT NULL,
  server_id text NOT NULL REFERENCES vms_sim.servers ON DELETE CASCADE,
  since     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (camera_id, server_id)
);
INSERT INTO vms_sim.recordings (camera_id, server_id)
  SELECT b.camera_id, b.server_id FROM vms_sim.camera_bindings b
    JOIN vms_sim.servers s ON s.server_id = b.server_id WHERE s.state = 'up';

-- One row per request id and subject of a mutating call that took effect: a repeat with the same body is
-- already applied, with another body a conflict.
CREATE TABLE vms_sim.requests (
  call       text NOT NULL,
  request_id text NOT NULL,
  subject    text NOT NULL,
  body       jsonb NOT NULL,
  at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (call, request_id, subject)
);

CREATE TABLE vms_sim.operations (
  operation_id text PRIMARY KEY,
  request_id   text NOT NULL,
  server_id    text NOT NULL,
  plugin       text NOT NULL,
  status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  started_at   timestamptz NOT NULL DEFAULT now(),
  -- 'infinity' while the install hangs.
  finishes_at  timestamptz NOT NULL,
  outcome      text CHECK (outcome IN ('applied', 'already-applied')),
  message      text,
  CHECK ((status = 'succeeded') = (outcome IS NOT NULL)),
  CHECK ((status = 'failed') = (message IS NOT NULL))
);
-- Two installs of one plugin on one server never run at once.
CREATE UNIQUE INDEX operations_one_running ON vms_sim.operations (server_id, plugin) WHERE status = 'running';
CREATE INDEX operations_by_request ON vms_sim.operations (request_id, server_id, plugin);

-- Slow or hung calls of the HTTP service, and the duration of plugin installs ('install-plugin').
CREATE TABLE vms_sim.call_faults (
  call     text PRIMARY KEY,
  delay_ms integer CHECK (delay_ms >= 0),
  hang     boolean NOT NULL DEFAULT false,
  CHECK (hang <> (delay_ms IS NOT NULL))
);

ALTER TABLE vms_sim.calls ADD COLUMN error_code text;

-- The VMS simulator's first schema, as VmsSimulator.install() created it before its migrations existed:
-- IF NOT EXISTS everywhere, so that a database made then adopts this migration unchanged.

CREATE SCHEMA IF NOT EXISTS vms_sim;
CREATE TABLE IF NOT EXISTS vms_sim.recorders (
  server_id       text PRIMARY KEY,
  replaces_server text,
  promoted_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS vms_sim.camera_bindings (
  camera_id text PRIMARY KEY,
  server_id text NOT NULL,
  bound_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS vms_sim.plugins (
  server_id    text NOT NULL,
  plugin       text NOT NULL,
  installed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (server_id, plugin)
);
CREATE TABLE IF NOT EXISTS vms_sim.down_servers (server_id text PRIMARY KEY);
CREATE TABLE IF NOT EXISTS vms_sim.plugin_install_faults (
  server_id text NOT NULL,
  plugin    text NOT NULL,
  remaining integer NOT NULL CHECK (remaining >= 0),
  PRIMARY KEY (server_id, plugin)
);
CREATE TABLE IF NOT EXISTS vms_sim.calls (
  id         bigserial PRIMARY KEY,
  operation  text NOT NULL,
  request_id text NOT NULL,
  subject    text NOT NULL,
  outcome    text NOT NULL CHECK (outcome IN ('applied', 'already-applied', 'failed')),
  at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS vms_sim.holds (
  id         serial PRIMARY KEY,
  operation  text NOT NULL,
  subject    text,
  request_id text,
  reached_at timestamptz
);

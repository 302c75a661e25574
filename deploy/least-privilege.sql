-- The least-privilege PostgreSQL role of the worker service: it reads the site and records failovers, and
-- can do nothing else. No DDL (the migrations run as the database owner), no deletes of history
-- (failover_events is append-only), no new servers or cameras (site imports are the operator's, as owner).
--
-- Run as the database owner, after the migrations:
--   psql -v ON_ERROR_STOP=1 -v worker_role=vms_worker -d vms_failover -f deploy/least-privilege.sql
-- then give the role its password out of band (never in a file under version control):
--   ALTER ROLE vms_worker PASSWORD '...';   -- and DATABASE_URL_FILE on the worker host
-- test/reliability/security.test.ts creates the role from this file and runs a whole failover as it.

CREATE ROLE :"worker_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;

GRANT USAGE ON SCHEMA public TO :"worker_role";
GRANT SELECT ON schema_migrations TO :"worker_role";

-- Failover, claim, promotion, restore, settings and maintenance change these columns only.
GRANT SELECT ON servers TO :"worker_role";
GRANT UPDATE (role, status, protected, failover_timeout_ms, maintenance_until, replaces_server_id, updated_at)
  ON servers TO :"worker_role";
GRANT SELECT, UPDATE (healthy, checked_at) ON drives TO :"worker_role";
-- IP cameras move to the promoted server.
GRANT SELECT, UPDATE (server_id) ON cameras TO :"worker_role";
-- Plugins reinstalled on the promoted server; a restored server starts without plugins.
GRANT SELECT, INSERT, DELETE ON plugins TO :"worker_role";

GRANT SELECT, INSERT ON failovers TO :"worker_role";
GRANT UPDATE (status, failover_server_id, cameras_committed_at, ip_cameras_moved, analog_cameras_left, completed_at)
  ON failovers TO :"worker_role";
GRANT SELECT, INSERT ON plugin_reinstalls TO :"worker_role";
GRANT UPDATE (status, attempts, last_error, updated_at) ON plugin_reinstalls TO :"worker_role";
GRANT SELECT, INSERT ON failover_events TO :"worker_role";
GRANT USAGE ON SEQUENCE failover_events_id_seq TO :"worker_role";

-- Only while the VMS is the in-process simulator (schema vms_sim): a VMS bridge needs none of this.
GRANT USAGE ON SCHEMA vms_sim TO :"worker_role";
GRANT SELECT ON vms_sim.schema_migrations, vms_sim.site, vms_sim.disks, vms_sim.call_faults TO :"worker_role";
GRANT SELECT, INSERT, UPDATE ON vms_sim.servers, vms_sim.camera_bindings, vms_sim.operations TO :"worker_role";
GRANT SELECT, INSERT, DELETE ON vms_sim.recordings TO :"worker_role";
GRANT SELECT, INSERT ON vms_sim.plugins, vms_sim.requests, vms_sim.calls TO :"worker_role";
GRANT SELECT, UPDATE ON vms_sim.plugin_install_faults, vms_sim.holds TO :"worker_role";
GRANT USAGE ON SEQUENCE vms_sim.calls_id_seq TO :"worker_role";

-- Liveness (migrations/002_liveness.sql): the worker reads credentials, writes leases, leads the detector,
-- holds failovers and raises alerts; operators (as owner) issue credentials and decide holds.
GRANT SELECT ON agent_credentials TO :"worker_role";
GRANT SELECT, INSERT, UPDATE ON server_leases TO :"worker_role";
GRANT SELECT, INSERT, UPDATE ON detector_term TO :"worker_role";
GRANT SELECT, INSERT ON mass_failure_holds, mass_failure_held_slaves TO :"worker_role";
GRANT SELECT, INSERT ON alerts TO :"worker_role";
GRANT UPDATE (monitored_since, silence_from) ON servers TO :"worker_role";
-- Alert deliveries (migrations/003_alert_deliveries.sql).
GRANT SELECT, INSERT, UPDATE ON alert_deliveries TO :"worker_role";
-- A Slave heard through its agent, the VMS or both (migrations/004_liveness_source.sql), changed by `vms settings`.
GRANT UPDATE (liveness_source) ON servers TO :"worker_role";
-- Failover hardening (migrations/005_failover_hardening.sql): the broken Slave's fence, a claimed standby's
-- failing since, standbys out of service and back (`vms standby in-service`).
GRANT UPDATE (slave_fence, slave_fenced_at, standby_failing_since) ON failovers TO :"worker_role";
GRANT UPDATE (out_of_service_since, out_of_service_reason) ON servers TO :"worker_role";
-- Chained failovers (migrations/006_chained_failovers.sql): a failover takes over the reinstalls its broken
-- Slave's own promotion left unfinished.
GRANT UPDATE (handed_over_to) ON plugin_reinstalls TO :"worker_role";
-- Restored servers (migrations/007_restored_server_leases.sql): leases heard before the restore do not count.
GRANT UPDATE (lease_valid_from) ON servers TO :"worker_role";

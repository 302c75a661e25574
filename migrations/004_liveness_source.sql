-- Agentless liveness: a server is heard through its agent, through the VMS (the bridge's server status,
-- polled by the detector), or both. A recorder nobody may install an agent on is watched through the VMS.
ALTER TABLE servers
  ADD COLUMN liveness_source text NOT NULL DEFAULT 'agent' CHECK (liveness_source IN ('agent', 'vms', 'both'));

-- Since when the detector hears the VMS's server status (null: its polls fail): a server watched through the
-- VMS only gets its grace from here, as every server does from the term's start.
ALTER TABLE detector_term ADD COLUMN vms_observing_since timestamptz;

DROP TRIGGER servers_liveness_roster ON servers;
CREATE TRIGGER servers_liveness_roster AFTER INSERT OR UPDATE OF
    role, status, protected, failover_timeout_ms, maintenance_until, monitored_since, silence_from, liveness_source
  ON servers FOR EACH ROW EXECUTE FUNCTION notify_liveness_roster();

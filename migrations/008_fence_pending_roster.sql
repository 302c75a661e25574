-- A broken Slave whose fence the VMS could not deliver is watched through the VMS's server status until it
-- is fenced (its agent may never come back): the detector hears of a fence's outcome on commit.
CREATE FUNCTION notify_liveness_roster_of_slave() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('vms_liveness_roster', NEW.slave_id);
  RETURN NULL;
END $$;
CREATE TRIGGER failovers_slave_fence AFTER UPDATE OF slave_fence ON failovers
  FOR EACH ROW EXECUTE FUNCTION notify_liveness_roster_of_slave();

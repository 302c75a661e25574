-- The detector takes a failover over at its deadline and tells the Slave's monitor afterwards; a failover its
-- monitor has not been told of yet (the detector stopped in between, or the monitor was stopped) is told again by
-- the detector, or its failover workflow started when no monitor runs. Failovers that began before were told.
ALTER TABLE failovers ADD COLUMN monitor_told_at timestamptz;
UPDATE failovers SET monitor_told_at = started_at;
CREATE INDEX failovers_monitor_not_told ON failovers (started_at) WHERE monitor_told_at IS NULL;

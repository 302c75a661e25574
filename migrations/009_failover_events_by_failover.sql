-- A failover's own events are read on its path: how many standbys it released (the subject of each claim) and
-- what its camera move committed. Without an index each read scans every event the site ever recorded.
CREATE INDEX failover_events_failover ON failover_events (failover_id, event);

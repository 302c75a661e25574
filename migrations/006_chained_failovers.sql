-- Chained failovers: a promoted server that breaks in turn while plugins are still being reinstalled on it.

-- Its own failover takes over the reinstalls its promotion left pending or for manual action: they become
-- 'handed-over', naming that failover, which reinstalls them on its own promoted server.
ALTER TABLE plugin_reinstalls
  DROP CONSTRAINT plugin_reinstalls_status_check,
  ADD CONSTRAINT plugin_reinstalls_status_check
    CHECK (status IN ('pending', 'installed', 'needs-manual-action', 'handed-over')),
  ADD COLUMN handed_over_to text REFERENCES failovers (id),
  ADD CONSTRAINT handed_over_names_its_failover CHECK ((status = 'handed-over') = (handed_over_to IS NOT NULL));
CREATE INDEX plugin_reinstalls_handed_over_to ON plugin_reinstalls (handed_over_to)
  WHERE handed_over_to IS NOT NULL;

-- A failover that has restored recording no longer holds its Slave: restored, promoted again and broken while
-- that failover still reinstalls plugins, the server fails over again. At most one failover per Slave is
-- still moving its cameras.
DROP INDEX failovers_one_open_per_slave;
CREATE UNIQUE INDEX failovers_one_moving_per_slave ON failovers (slave_id)
  WHERE status NOT IN ('recording-restored', 'completed');

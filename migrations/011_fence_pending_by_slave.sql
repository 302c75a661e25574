-- Whether a Slave's fence waits to be repeated is read for each Slave of the detector's roster, and as the
-- Slave is heard again. Without an index each read scans every failover the site ever had: a full roster read
-- of 10,000 Slaves scanned the failovers table 10,000 times.
CREATE INDEX failovers_fence_pending ON failovers (slave_id) WHERE slave_fence = 'unreachable';

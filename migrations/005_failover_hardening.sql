-- Failover hardening: the broken Slave fenced in the VMS before its cameras move, and standbys that failed
-- a failover taken out of service until an operator puts them back.

-- What the fence of the broken Slave came to: 'fenced' (it records nothing), 'not-recording' (the VMS does not
-- hold it as a recorder: nothing to stop), 'unreachable' (the VMS could not reach it: repeated when it is
-- heard again), 'refused' (the VMS refused for another reason: an operator looks). Null until tried.
ALTER TABLE failovers
  ADD COLUMN slave_fence text CHECK (slave_fence IN ('fenced', 'not-recording', 'unreachable', 'refused')),
  ADD COLUMN slave_fenced_at timestamptz,
  ADD CONSTRAINT fenced_when_fenced CHECK ((slave_fence = 'fenced') = (slave_fenced_at IS NOT NULL));

-- A standby that failed to take over (not up, promotion or rebind out of its budget) is out of service: no
-- failover claims it until `vms standby in-service` puts it back.
ALTER TABLE servers
  ADD COLUMN out_of_service_since timestamptz,
  ADD COLUMN out_of_service_reason text,
  ADD CONSTRAINT out_of_service_has_reason CHECK ((out_of_service_since IS NULL) = (out_of_service_reason IS NULL));

-- Since when the VMS has answered that the claimed standby cannot be reached (promotion or rebind): once that
-- lasts longer than the standby budget, the standby is released and taken out of service.
ALTER TABLE failovers ADD COLUMN standby_failing_since timestamptz;

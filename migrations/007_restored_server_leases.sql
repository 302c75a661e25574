-- A restored server starts a new life: what its agent said before the restore (its last heartbeat, the disks
-- that broke it) is not its health any more. Leases last heard before this moment do not count: promoted, its
-- first deadline runs from server-up or its own first heartbeat, and its old disk health fails nothing over.
-- (006 is taken by the chained failovers' schema.)
ALTER TABLE servers ADD COLUMN lease_valid_from timestamptz;

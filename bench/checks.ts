/**
 * What one run measured in PostgreSQL, the system of record: the timings of each failover and the
 * correctness counters that must all be 0.
 */
import type { Pool } from 'pg';

export interface FailoverTiming {
  /** Also the failover workflow's id. */
  id: string;
  slaveId: string;
  failoverServerId: string | null;
  status: string;
  deadlineMs: number;
  startedMs: number;
  camerasCommittedMs: number | null;
}

export const failoverTimings = async (db: Pool): Promise<FailoverTiming[]> => {
  const { rows } = await db.query<{
    id: string;
    slave_id: string;
    failover_server_id: string | null;
    status: string;
    deadline_ms: string;
    started_ms: string;
    committed_ms: string | null;
  }>(
    `SELECT id, slave_id, failover_server_id, status,
            (extract(epoch FROM deadline_at) * 1000)::float8 AS deadline_ms,
            (extract(epoch FROM started_at) * 1000)::float8 AS started_ms,
            (extract(epoch FROM cameras_committed_at) * 1000)::float8 AS committed_ms
       FROM failovers ORDER BY started_at`,
  );
  return rows.map((row) => ({
    id: row.id,
    slaveId: row.slave_id,
    failoverServerId: row.failover_server_id,
    status: row.status,
    deadlineMs: Number(row.deadline_ms),
    startedMs: Number(row.started_ms),
    camerasCommittedMs: row.committed_ms === null ? null : Number(row.committed_ms),
  }));
};

/** Failovers whose IP cameras are bound to the promoted server, by failed Slave. */
export const committedCount = async (db: Pool, slaveIds: string[]): Promise<number> => {
  const { rows } = await db.query<{ count: string }>(
    'SELECT count(*) FROM failovers WHERE slave_id = ANY($1) AND cameras_committed_at IS NOT NULL',
    [slaveIds],
  );
  return Number(rows[0]?.count ?? 0);
};

/** Promoted servers whose failover is complete: their monitor runs and they heartbeat from now on. */
export const promotedServers = async (db: Pool): Promise<string[]> => {
  const { rows } = await db.query<{ id: string }>(
    "SELECT failover_server_id AS id FROM failovers WHERE status = 'completed' AND failover_server_id IS NOT NULL",
  );
  return rows.map((row) => row.id);
};

/** What the system of record and the VMS say about the cameras and failovers at the end of a run. */
export interface SiteCorrectness {
  /** A standby serving two Slaves, or a Slave failed over twice. */
  doubleClaims: number;
  /**
   * IP cameras recorded by nobody they should be: the server PostgreSQL names is not an active Slave or
   * Master, or the VMS does not have that server (up, unfenced, a recorder) recording the camera.
   */
  lostCameras: number;
  /** IP cameras the VMS binds to another server than PostgreSQL's, or to none. */
  splitCameras: number;
  /** IP cameras the VMS has recorded by two servers or more at once. */
  camerasRecordedTwice: number;
  /**
   * Slaves that stopped and were not failed over whole: no failover whose cameras are committed, or one of
   * the Slave's own IP cameras not bound to (in PostgreSQL and in the VMS) and recorded by its promoted
   * server, or that server not an active Slave.
   */
  missed: number;
  /** Slaves failed over although they kept heartbeating. */
  falseFailovers: number;
}

/** The failed Slaves and the IP cameras each had at the start, for `missed`. */
export interface FailedSlaves {
  slaveIds: string[];
  /** Camera ids, and the failed Slave each belonged to, in the same order. */
  cameraIds: string[];
  cameraSlaveIds: string[];
}

/**
 * The counters over every IP camera of the site and every failed Slave, read from PostgreSQL (the system
 * of record) and from the simulated VMS (vms_sim: its bindings, and which servers record each camera). Every
 * heartbeat agent stops at `heartbeatsStoppedAtMs`, so a server whose deadline comes after that (its monitor
 * not yet ended when its timeout ran out) was failed over by the end of the benchmark, not by the system. A
 * genuine false failover has a deadline while heartbeats were still being sent, since the timeout is longer
 * than the interval.
 */
export const siteCorrectness = async (
  db: Pool,
  failed: FailedSlaves,
  heartbeatsStoppedAtMs: number,
): Promise<SiteCorrectness> => {
  const { rows } = await db.query<{ [K in keyof SiteCorrectness]: string }>(
    `WITH after_run AS (
       SELECT slave_id FROM failovers WHERE deadline_at >= to_timestamp($2 / 1000.0) AND NOT (slave_id = ANY($1))
     ),
     recording AS (
       SELECT r.camera_id, r.server_id FROM vms_sim.recordings r JOIN vms_sim.servers s USING (server_id)
        WHERE s.state = 'up' AND NOT s.fenced AND s.role = 'recorder'
     ),
     owned (camera_id, slave_id) AS (SELECT unnest($3::text[]), unnest($4::text[])),
     committed AS (
       SELECT f.slave_id, f.failover_server_id FROM failovers f JOIN servers p ON p.id = f.failover_server_id
        WHERE f.cameras_committed_at IS NOT NULL AND p.role = 'slave' AND p.status = 'active'
     )
     SELECT
       (SELECT count(*) FROM (SELECT failover_server_id FROM failovers WHERE failover_server_id IS NOT NULL
                               GROUP BY failover_server_id HAVING count(*) > 1) AS standby_twice)
     + (SELECT count(*) FROM (SELECT slave_id FROM failovers GROUP BY slave_id HAVING count(*) > 1) AS slave_twice)
         AS "doubleClaims",
       (SELECT count(*) FROM cameras c JOIN servers s ON s.id = c.server_id
         WHERE c.kind = 'ip' AND s.id NOT IN (SELECT slave_id FROM after_run)
           AND (NOT (s.status = 'active' AND s.role IN ('slave', 'master'))
                OR NOT EXISTS (SELECT 1 FROM recording r WHERE r.camera_id = c.id AND r.server_id = c.server_id)))
         AS "lostCameras",
       (SELECT count(*) FROM cameras c LEFT JOIN vms_sim.camera_bindings b ON b.camera_id = c.id
         WHERE c.kind = 'ip' AND c.server_id NOT IN (SELECT slave_id FROM after_run)
           AND b.server_id IS DISTINCT FROM c.server_id) AS "splitCameras",
       (SELECT count(*) FROM (SELECT camera_id FROM recording GROUP BY camera_id HAVING count(*) > 1) AS twice)
         AS "camerasRecordedTwice",
       (SELECT count(*) FROM unnest($1::text[]) AS stopped (id)
         WHERE NOT EXISTS (SELECT 1 FROM committed f WHERE f.slave_id = stopped.id)
            OR EXISTS (
                 SELECT 1 FROM owned o
                   LEFT JOIN committed f ON f.slave_id = o.slave_id
                   LEFT JOIN cameras c ON c.id = o.camera_id
                   LEFT JOIN vms_sim.camera_bindings b ON b.camera_id = o.camera_id
                  WHERE o.slave_id = stopped.id
                    AND (c.server_id IS DISTINCT FROM f.failover_server_id
                         OR b.server_id IS DISTINCT FROM f.failover_server_id
                         OR NOT EXISTS (SELECT 1 FROM recording r
                                         WHERE r.camera_id = o.camera_id AND r.server_id = f.failover_server_id))))
         AS "missed",
       (SELECT count(*) FROM failovers f
         WHERE NOT (f.slave_id = ANY($1)) AND f.slave_id NOT IN (SELECT slave_id FROM after_run)) AS "falseFailovers"`,
    [failed.slaveIds, heartbeatsStoppedAtMs, failed.cameraIds, failed.cameraSlaveIds],
  );
  const row = rows[0];
  if (row === undefined) throw new Error('the correctness query returned no row');
  return {
    doubleClaims: Number(row.doubleClaims),
    lostCameras: Number(row.lostCameras),
    splitCameras: Number(row.splitCameras),
    camerasRecordedTwice: Number(row.camerasRecordedTwice),
    missed: Number(row.missed),
    falseFailovers: Number(row.falseFailovers),
  };
};

/**
 * Monitored servers whose latest heartbeat acknowledged to their agent is not in PostgreSQL's lease (what
 * the detector of any worker reads), given the gateway's receive time of that heartbeat per server.
 */
export const leasesBehind = async (db: Pool, targets: Map<string, number>): Promise<string[]> => {
  const { rows } = await db.query<{ id: string }>(
    `SELECT target.id FROM unnest($1::text[], $2::float8[]) AS target (id, received_ms)
       LEFT JOIN server_leases l ON l.server_id = target.id
      WHERE l.last_seen_at IS NULL OR (extract(epoch FROM l.last_seen_at) * 1000) < target.received_ms - 1`,
    [[...targets.keys()], [...targets.values()]],
  );
  return rows.map((row) => row.id);
};

/** Monitored servers the detector does not watch: not in its roster (servers.monitored_since unset). */
export const outsideRoster = async (db: Pool, serverIds: string[]): Promise<string[]> => {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM servers WHERE id = ANY($1) AND (monitored_since IS NULL OR silence_from IS NULL)`,
    [serverIds],
  );
  return rows.map((row) => row.id);
};

/** Failovers the end of the benchmark caused (see `correctness`); reported, not counted as errors. */
export const failoversAfterRun = async (
  db: Pool,
  failedSlaveIds: string[],
  heartbeatsStoppedAtMs: number,
): Promise<number> => {
  const { rows } = await db.query<{ count: string }>(
    'SELECT count(*) FROM failovers WHERE deadline_at >= to_timestamp($2 / 1000.0) AND NOT (slave_id = ANY($1))',
    [failedSlaveIds, heartbeatsStoppedAtMs],
  );
  return Number(rows[0]?.count ?? 0);
};

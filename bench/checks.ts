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

export interface Correctness {
  /** A standby serving two Slaves, or a Slave failed over twice. */
  doubleClaims: number;
  /** IP cameras recorded by no live server (bound to a broken server or a standby). */
  lostCameras: number;
  /** IP cameras the VMS binds to one server while the system of record names another. */
  splitCameras: number;
  /** Slaves whose heartbeats stopped and whose IP cameras were not moved to a promoted server. */
  missed: number;
  /** Slaves failed over although they kept heartbeating. */
  falseFailovers: number;
}

/**
 * The counters, over the run proper: every heartbeat agent stops at `heartbeatsStoppedAtMs`, so a server
 * whose deadline comes after that (its monitor not yet ended when its timeout ran out) was failed over by the
 * end of the benchmark, not by the system. A genuine false failover has a deadline while heartbeats were
 * still being sent, since the timeout is longer than the interval.
 */
export const correctness = async (
  db: Pool,
  failedSlaveIds: string[],
  heartbeatsStoppedAtMs: number,
): Promise<Correctness> => {
  const { rows } = await db.query<{ [K in keyof Correctness]: string }>(
    `WITH after_run AS (
       SELECT slave_id FROM failovers WHERE deadline_at >= to_timestamp($2 / 1000.0) AND NOT (slave_id = ANY($1))
     )
     SELECT
       (SELECT count(*) FROM (SELECT failover_server_id FROM failovers WHERE failover_server_id IS NOT NULL
                               GROUP BY failover_server_id HAVING count(*) > 1) AS standby_twice)
     + (SELECT count(*) FROM (SELECT slave_id FROM failovers GROUP BY slave_id HAVING count(*) > 1) AS slave_twice)
         AS "doubleClaims",
       (SELECT count(*) FROM cameras c JOIN servers s ON s.id = c.server_id
         WHERE c.kind = 'ip' AND NOT (s.status = 'active' AND s.role IN ('slave', 'master'))
           AND s.id NOT IN (SELECT slave_id FROM after_run)) AS "lostCameras",
       (SELECT count(*) FROM cameras c JOIN vms_sim.camera_bindings b ON b.camera_id = c.id
         WHERE b.server_id <> c.server_id) AS "splitCameras",
       (SELECT count(*) FROM unnest($1::text[]) AS failed (id)
         WHERE NOT EXISTS (SELECT 1 FROM failovers f
                            WHERE f.slave_id = failed.id AND f.cameras_committed_at IS NOT NULL)) AS "missed",
       (SELECT count(*) FROM failovers f
         WHERE NOT (f.slave_id = ANY($1)) AND f.slave_id NOT IN (SELECT slave_id FROM after_run)) AS "falseFailovers"`,
    [failedSlaveIds, heartbeatsStoppedAtMs],
  );
  const row = rows[0];
  if (row === undefined) throw new Error('the correctness query returned no row');
  return {
    doubleClaims: Number(row.doubleClaims),
    lostCameras: Number(row.lostCameras),
    splitCameras: Number(row.splitCameras),
    missed: Number(row.missed),
    falseFailovers: Number(row.falseFailovers),
  };
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

/**
 * Which servers are monitored, and from when their silence counts: the roster the liveness detector
 * watches. A monitor enters its Slave when it starts and removes it when it ends.
 */
import type { DiskHealth, LivenessSource, ServerStatus } from '../domain/site';
import { preparedStatement, queryPrepared } from '../infra/database';
import type { Queryable } from '../infra/database';

export interface RosterEntry {
  serverId: string;
  status: ServerStatus;
  /** How it is heard: its agent, the VMS's server status, or both. */
  source: LivenessSource;
  timeoutMs: number;
  maintenanceUntilMs: number | null;
  monitoredSinceMs: number;
  silenceFromMs: number;
  /** Leases last heard before this moment (its restore) belong to an earlier life: they do not count. */
  leaseValidFromMs: number | null;
  /** A broken Slave the VMS could not reach to fence it: to fence again once the VMS reaches it. */
  fencePending: boolean;
}

interface RosterRow {
  id: string;
  status: ServerStatus;
  liveness_source: LivenessSource;
  failover_timeout_ms: number;
  maintenance_until: Date | null;
  monitored_since: Date;
  silence_from: Date;
  lease_valid_from: Date | null;
  fence_pending: boolean;
}

const SELECT_ROSTER = `
  SELECT id, status, liveness_source, failover_timeout_ms, maintenance_until, monitored_since, silence_from,
         lease_valid_from,
         EXISTS (SELECT 1 FROM failovers f WHERE f.slave_id = servers.id AND f.slave_fence = 'unreachable')
           AS fence_pending
    FROM servers
   WHERE role = 'slave' AND monitored_since IS NOT NULL AND silence_from IS NOT NULL
     AND (status = 'broken' OR protected)`;

const toRosterEntry = (row: RosterRow): RosterEntry => ({
  serverId: row.id,
  status: row.status,
  source: row.liveness_source,
  timeoutMs: row.failover_timeout_ms,
  maintenanceUntilMs: row.maintenance_until?.getTime() ?? null,
  monitoredSinceMs: row.monitored_since.getTime(),
  silenceFromMs: row.silence_from.getTime(),
  leaseValidFromMs: row.lease_valid_from?.getTime() ?? null,
  fencePending: row.fence_pending,
});

/**
 * Monitored servers: protected active Slaves (their deadlines), and broken ones whose monitor still runs
 * (a heartbeat from them is a late heartbeat). `serverIds` limits it to those servers.
 */
export const loadRoster = async (db: Queryable, serverIds?: string[]): Promise<RosterEntry[]> => {
  const { rows } =
    serverIds === undefined
      ? await db.query<RosterRow>(`${SELECT_ROSTER} ORDER BY id`)
      : await db.query<RosterRow>(`${SELECT_ROSTER} AND id = ANY($1) ORDER BY id`, [serverIds]);
  return rows.map(toRosterEntry);
};

/** The monitor of a Slave has started: heartbeats count from now, and so does its silence (unless later). */
export const startMonitoring = async (db: Queryable, serverId: string): Promise<void> => {
  await db.query(
    'UPDATE servers SET monitored_since = now(), silence_from = greatest(now(), silence_from) WHERE id = $1',
    [serverId],
  );
};

export const stopMonitoring = async (db: Queryable, serverId: string): Promise<void> => {
  await db.query('UPDATE servers SET monitored_since = NULL WHERE id = $1', [serverId]);
};

/** A promoted server answers: if it was never heard, its silence counts from now, not from the up timeout. */
export const recordServerUp = async (db: Queryable, serverId: string): Promise<void> => {
  await db.query('UPDATE servers SET silence_from = least(silence_from, now()) WHERE id = $1', [serverId]);
};

/**
 * What PostgreSQL knows of a monitored server's liveness, read in one statement, with PostgreSQL's clock. A
 * lease heard before the server's restore is none of its current life's: read as no lease.
 */
export interface LivenessRecord {
  nowMs: number;
  term: {
    term: number;
    observingSinceMs: number;
    renewedAtMs: number;
    vmsObservingSinceMs: number | null;
  } | null;
  lease: { lastSeenMs: number; disks: DiskHealth[] } | null;
  livenessSource: LivenessSource;
  monitoredSinceMs: number | null;
  silenceFromMs: number | null;
  timeoutMs: number;
  maintenanceUntilMs: number | null;
}

interface LivenessRow {
  id: string;
  now: Date;
  term: string | null;
  observing_since: Date | null;
  renewed_at: Date | null;
  vms_observing_since: Date | null;
  last_seen_at: Date | null;
  disks: DiskHealth[] | null;
  monitored_since: Date | null;
  silence_from: Date | null;
  failover_timeout_ms: number;
  maintenance_until: Date | null;
  liveness_source: LivenessSource;
}

const toLivenessRecord = (row: LivenessRow): LivenessRecord => ({
  nowMs: row.now.getTime(),
  term:
    row.term === null || row.observing_since === null || row.renewed_at === null
      ? null
      : {
          term: Number(row.term),
          observingSinceMs: row.observing_since.getTime(),
          renewedAtMs: row.renewed_at.getTime(),
          vmsObservingSinceMs: row.vms_observing_since?.getTime() ?? null,
        },
  lease:
    row.last_seen_at === null ? null : { lastSeenMs: row.last_seen_at.getTime(), disks: row.disks ?? [] },
  monitoredSinceMs: row.monitored_since?.getTime() ?? null,
  silenceFromMs: row.silence_from?.getTime() ?? null,
  timeoutMs: row.failover_timeout_ms,
  maintenanceUntilMs: row.maintenance_until?.getTime() ?? null,
  livenessSource: row.liveness_source,
});

const LIVENESS_RECORDS_SQL = `
  SELECT s.id, clock_timestamp() AS now, t.term, t.observing_since, t.renewed_at, t.vms_observing_since,
         l.last_seen_at, l.disks, s.monitored_since, s.silence_from, s.failover_timeout_ms, s.maintenance_until,
         s.liveness_source
    FROM servers s
    LEFT JOIN server_leases l
           ON l.server_id = s.id AND (s.lease_valid_from IS NULL OR l.last_seen_at >= s.lease_valid_from)
    LEFT JOIN detector_term t ON true
   WHERE s.id = ANY($1)`;
export const LIVENESS_RECORDS = preparedStatement('liveness-records', LIVENESS_RECORDS_SQL);

/** The liveness records of these servers that exist, by id, read in one statement. */
export const livenessRecords = async (
  db: Queryable,
  serverIds: string[],
): Promise<Map<string, LivenessRecord>> => {
  const { rows } = await queryPrepared<LivenessRow>(db, LIVENESS_RECORDS, [serverIds]);
  return new Map(rows.map((row) => [row.id, toLivenessRecord(row)]));
};

export const livenessRecord = async (db: Queryable, serverId: string): Promise<LivenessRecord | undefined> =>
  (await livenessRecords(db, [serverId])).get(serverId);

/** How a server is heard from now on; the detector hears of the change at once. */
export const saveLivenessSource = async (
  db: Queryable,
  serverId: string,
  source: LivenessSource,
): Promise<void> => {
  await db.query('UPDATE servers SET liveness_source = $2, updated_at = now() WHERE id = $1', [
    serverId,
    source,
  ]);
};

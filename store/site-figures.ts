/**
 * The site's figures as operators graph them: servers by folder, failovers by reason and outcome, plugin
 * reinstalls and alerts, and the timings of failovers that restored recording. Read-only, one round trip each.
 */
import type { Queryable } from '../infra/database';

export interface SiteFigures {
  /** Servers by role and status (master/active, slave/active, slave/broken, failover/standby). */
  servers: { role: string; status: string; count: number }[];
  /** Slaves with a monitor watching them. */
  monitored: number;
  failovers: { reason: string; status: string; count: number }[];
  pluginReinstalls: { status: string; count: number }[];
  alerts: { kind: string; acknowledged: boolean; count: number }[];
}

/** A failover whose cameras were rebound: how late it began, and how long cameras went unrecorded. */
export interface RestoredFailover {
  id: string;
  reason: string;
  /** From the Slave's deadline to the failover's start. */
  detectionMs: number;
  /** From the Slave's deadline to its cameras committed to the promoted server. */
  recordingGapMs: number;
  camerasCommittedAt: Date;
}

const count = (value: string): number => Number.parseInt(value, 10);

export const readSiteFigures = async (db: Queryable): Promise<SiteFigures> => {
  const [servers, monitored, failovers, pluginReinstalls, alerts] = await Promise.all([
    db.query<{ role: string; status: string; count: string }>(
      `SELECT role, status, count(*) AS count FROM servers GROUP BY role, status`,
    ),
    db.query<{ count: string }>(`SELECT count(*) AS count FROM servers WHERE monitored_since IS NOT NULL`),
    db.query<{ reason: string; status: string; count: string }>(
      `SELECT reason, status, count(*) AS count FROM failovers GROUP BY reason, status`,
    ),
    db.query<{ status: string; count: string }>(
      `SELECT status, count(*) AS count FROM plugin_reinstalls GROUP BY status`,
    ),
    db.query<{ kind: string; acknowledged: boolean; count: string }>(
      `SELECT kind, acknowledged_at IS NOT NULL AS acknowledged, count(*) AS count FROM alerts GROUP BY 1, 2`,
    ),
  ]);
  return {
    servers: servers.rows.map((row) => ({ role: row.role, status: row.status, count: count(row.count) })),
    monitored: count(monitored.rows[0]?.count ?? '0'),
    failovers: failovers.rows.map((row) => ({
      reason: row.reason,
      status: row.status,
      count: count(row.count),
    })),
    pluginReinstalls: pluginReinstalls.rows.map((row) => ({ status: row.status, count: count(row.count) })),
    alerts: alerts.rows.map((row) => ({
      kind: row.kind,
      acknowledged: row.acknowledged,
      count: count(row.count),
    })),
  };
};

/** Where a reader of restored failovers stands: the last one it read. */
export interface RestoredCursor {
  camerasCommittedAt: Date;
  id: string;
}

/** PostgreSQL's clock, which stamps every failover: a reader starting now starts from it. */
export const databaseNow = async (db: Queryable): Promise<Date> => {
  const { rows } = await db.query<{ now: Date }>(`SELECT now() AS now`);
  return rows[0]?.now ?? new Date();
};

/** Failovers whose cameras were committed after `after` (oldest first, at most `limit`). */
export const listRestoredAfter = async (
  db: Queryable,
  after: RestoredCursor,
  limit: number,
): Promise<RestoredFailover[]> => {
  const { rows } = await db.query<{
    id: string;
    reason: string;
    detection_ms: number;
    recording_gap_ms: number;
    cameras_committed_at: Date;
  }>(
    `SELECT id, reason,
            (extract(epoch FROM started_at - deadline_at) * 1000)::float8 AS detection_ms,
            (extract(epoch FROM cameras_committed_at - deadline_at) * 1000)::float8 AS recording_gap_ms,
            cameras_committed_at
       FROM failovers
      WHERE (cameras_committed_at, id) > ($1, $2)
      ORDER BY cameras_committed_at, id
      LIMIT $3`,
    [after.camerasCommittedAt, after.id, limit],
  );
  return rows.map((row) => ({
    id: row.id,
    reason: row.reason,
    detectionMs: row.detection_ms,
    recordingGapMs: row.recording_gap_ms,
    camerasCommittedAt: row.cameras_committed_at,
  }));
};

/**
 * Which servers are monitored, and from when their silence counts: the roster the liveness detector
 * watches. A monitor registers its Slave when it starts and removes it when it ends.
 */
import type { Pool } from 'pg';
import type { ServerStatus } from '../domain/site';

export interface RosterEntry {
  serverId: string;
  status: ServerStatus;
  timeoutMs: number;
  maintenanceUntilMs: number | null;
  monitoredSinceMs: number;
  silenceFromMs: number;
}

const SELECT_ROSTER = `
  SELECT id AS "serverId", status, failover_timeout_ms AS "timeoutMs",
         (extract(epoch FROM maintenance_until) * 1000)::float8 AS "maintenanceUntilMs",
         (extract(epoch FROM monitored_since) * 1000)::float8 AS "monitoredSinceMs",
         (extract(epoch FROM silence_from) * 1000)::float8 AS "silenceFromMs"
    FROM servers
   WHERE role = 'slave' AND monitored_since IS NOT NULL AND silence_from IS NOT NULL
     AND (status = 'broken' OR protected)`;

/**
 * Monitored servers: protected active Slaves (their deadlines), and broken ones whose monitor still runs
 * (a heartbeat from them is a late heartbeat). `serverIds` limits it to those servers.
 */
export const loadRoster = async (db: Pool, serverIds?: string[]): Promise<RosterEntry[]> => {
  const { rows } = await db.query<RosterEntry>(
    `${SELECT_ROSTER} AND ($1::text[] IS NULL OR id = ANY($1)) ORDER BY id`,
    [serverIds ?? null],
  );
  return rows;
};

/** The monitor of a Slave has started: heartbeats count from now, and so does its silence (unless later). */
export const startMonitoring = async (db: Pool, serverId: string): Promise<RosterEntry | undefined> => {
  const { rows } = await db.query<{ serverId: string }>(
    `UPDATE servers SET monitored_since = now(), silence_from = greatest(now(), silence_from)
      WHERE id = $1 RETURNING id AS "serverId"`,
    [serverId],
  );
  if (rows.length === 0) return undefined;
  return (await loadRoster(db, [serverId]))[0];
};

export const stopMonitoring = async (db: Pool, serverId: string): Promise<void> => {
  await db.query('UPDATE servers SET monitored_since = NULL WHERE id = $1', [serverId]);
};

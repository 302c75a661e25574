/** Reads of the system of record, for assertions. */
import type { Pool } from 'pg';

export const serverRow = async (db: Pool, id: string) =>
  (
    await db.query<{
      role: string;
      status: string;
      folder: string;
      replaces_server_id: string | null;
      protected: boolean;
    }>('SELECT role, status, folder, replaces_server_id, protected FROM servers WHERE id = $1', [id])
  ).rows[0];

export const camerasOf = async (db: Pool, serverId: string): Promise<string[]> =>
  (
    await db.query<{ id: string }>('SELECT id FROM cameras WHERE server_id = $1 ORDER BY id', [serverId])
  ).rows.map((row) => row.id);

export const pluginsOf = async (db: Pool, serverId: string): Promise<string[]> =>
  (
    await db.query<{ name: string }>('SELECT name FROM plugins WHERE server_id = $1 ORDER BY name', [
      serverId,
    ])
  ).rows.map((row) => row.name);

export const eventsOf = async (db: Pool, serverId: string): Promise<string[]> =>
  (
    await db.query<{ event: string }>('SELECT event FROM failover_events WHERE server_id = $1 ORDER BY id', [
      serverId,
    ])
  ).rows.map((row) => row.event);

export const failoverRows = async (db: Pool) =>
  (
    await db.query<{
      id: string;
      slave_id: string;
      status: string;
      failover_server_id: string | null;
      reason: string;
    }>('SELECT id, slave_id, status, failover_server_id, reason FROM failovers ORDER BY started_at, id')
  ).rows;

export const pluginReinstalls = async (db: Pool) =>
  (
    await db.query<{
      plugin: string;
      server_id: string;
      status: string;
      attempts: number;
      last_error: string | null;
    }>('SELECT plugin, server_id, status, attempts, last_error FROM plugin_reinstalls ORDER BY plugin')
  ).rows;

/**
 * The invariants that must hold after anything: every IP camera bound to exactly one live recording server
 * (an active Slave or the Master), no server replacing two Slaves, every completed failover matched by state.
 */
export const siteInvariantViolations = async (db: Pool): Promise<string[]> => {
  const { rows } = await db.query<{ problem: string }>(`
    SELECT 'IP camera ' || c.id || ' bound to ' || s.id || ' which is ' || s.folder AS problem
      FROM cameras c JOIN servers s ON s.id = c.server_id
     WHERE c.kind = 'ip' AND NOT (s.status = 'active' AND s.role IN ('slave', 'master'))
       AND NOT EXISTS (SELECT 1 FROM failovers f WHERE f.slave_id = s.id AND f.status IN ('started', 'waiting-for-standby', 'standby-claimed', 'promoted'))
    UNION ALL
    SELECT 'failover ' || f.id || ' completed but ' || f.slave_id || ' is not in Broken recorders or restored'
      FROM failovers f JOIN servers s ON s.id = f.slave_id
     WHERE f.status = 'completed' AND s.status = 'active' AND s.role = 'slave'
       AND NOT EXISTS (SELECT 1 FROM failover_events e
                        WHERE e.server_id = f.slave_id AND e.event = 'restored-as-standby' AND e.at >= f.started_at)
    UNION ALL
    SELECT 'slave ' || slave_id || ' has ' || count(*) || ' open failovers'
      FROM failovers WHERE status <> 'completed' GROUP BY slave_id HAVING count(*) > 1
  `);
  return rows.map((row) => row.problem);
};

/** Reads of the system of record, for assertions. */
import type { Pool } from 'pg';
import type { VmsSimulator } from '../../vms/simulator';

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

/** The IP cameras the simulated VMS records on a server (its own view, not PostgreSQL's). */
export const cameraBindingsOf = async (vms: VmsSimulator, serverId: string): Promise<string[]> =>
  [...(await vms.cameraBindings()).entries()]
    .filter(([, boundTo]) => boundTo === serverId)
    .map(([cameraId]) => cameraId)
    .sort();

/** Every row of every table of the site and of the simulated VMS: compared before and after bad input. */
export const snapshotAllTables = async (db: Pool): Promise<Record<string, unknown[]>> => {
  const { rows: tables } = await db.query<{ name: string }>(
    `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS name FROM information_schema.tables
      WHERE table_schema IN ('public', 'vms_sim') AND table_type = 'BASE TABLE' ORDER BY 1`,
  );
  const snapshot: Record<string, unknown[]> = {};
  for (const { name } of tables) {
    // Names come from the catalog, quoted by PostgreSQL itself.
    const { rows } = await db.query(`SELECT to_jsonb(t) AS row FROM ${name} t ORDER BY to_jsonb(t)::text`);
    snapshot[name] = rows.map((row: { row: unknown }) => row.row);
  }
  return snapshot;
};

/**
 * The invariants that must hold after anything, each row a problem:
 * - every IP camera bound to exactly one live recording server (an active Slave or the Master), unless its
 *   Slave's cameras are moving right now, and the simulated VMS binds every IP camera where PostgreSQL says
 *   (a camera with no binding in the VMS is where the site put it: none may be missing once the simulator was
 *   given the site, nor for a camera a failover moved);
 * - no camera recorded by two servers in the simulated VMS (the split brain fencing prevents), and no
 *   failover that moved cameras without trying to fence its Slave first;
 * - no failover server serving two Slaves, nor one out of service, and each replacement matched by the
 *   failover that made it (the server a failover claimed replaces its Slave until it fails over in turn);
 * - every failover in history matched by state: the Slave in Broken recorders (or restored since), the
 *   events of its steps recorded (a claim for each standby it held), recording restored before it
 *   completed, no plugin left pending;
 * - every plugin reinstall handed over taken by a later failover of the server it was to be installed on,
 *   which reinstalls it once its cameras are committed;
 * - no server in Broken recorders without a failover, at most one failover per Slave still moving its
 *   cameras (an older one may still reinstall plugins: the Slave was restored and promoted again since).
 */
export const siteInvariantViolations = async (db: Pool): Promise<string[]> => {
  const { rows } = await db.query<{ problem: string }>(`
    WITH open_failovers AS (
      SELECT * FROM failovers WHERE status <> 'completed'
    ), moving_failovers AS (
      SELECT * FROM open_failovers WHERE cameras_committed_at IS NULL
    ), latest_failovers AS (
      SELECT DISTINCT ON (slave_id) * FROM failovers ORDER BY slave_id, started_at DESC, id DESC
    )
    SELECT 'IP camera ' || c.id || ' bound to ' || s.id || ' which is ' || s.folder AS problem
      FROM cameras c JOIN servers s ON s.id = c.server_id
     WHERE c.kind = 'ip' AND NOT (s.status = 'active' AND s.role IN ('slave', 'master'))
       AND NOT EXISTS (SELECT 1 FROM moving_failovers f WHERE f.slave_id = s.id)
    UNION ALL
    SELECT 'IP camera ' || c.id || ' bound to ' || c.server_id || ' but to ' || coalesce(b.server_id, 'no server')
           || ' in the VMS'
      FROM cameras c LEFT JOIN vms_sim.camera_bindings b ON b.camera_id = c.id
     WHERE c.kind = 'ip'
       AND CASE WHEN b.camera_id IS NOT NULL THEN b.server_id <> c.server_id
                ELSE EXISTS (SELECT 1 FROM vms_sim.site)
                  OR EXISTS (SELECT 1 FROM failovers f
                              WHERE f.failover_server_id = c.server_id AND f.cameras_committed_at IS NOT NULL)
           END
       AND NOT EXISTS (SELECT 1 FROM moving_failovers f
                        WHERE f.slave_id = c.server_id OR f.failover_server_id IN (c.server_id, b.server_id))
    UNION ALL
    SELECT 'camera ' || r.camera_id || ' recorded by ' || string_agg(r.server_id, ' and ' ORDER BY r.server_id)
      FROM vms_sim.recordings r GROUP BY r.camera_id HAVING count(*) > 1
    UNION ALL
    SELECT 'failover ' || f.id || ' moved the cameras of ' || f.slave_id || ' without fencing it first'
      FROM failovers f WHERE f.cameras_committed_at IS NOT NULL AND f.slave_fence IS NULL
    UNION ALL
    SELECT 'failover ' || f.id || ' completed but ' || f.slave_id || ' is not in Broken recorders or restored'
      FROM latest_failovers f JOIN servers s ON s.id = f.slave_id
     WHERE f.status = 'completed' AND s.status = 'active' AND s.role = 'slave'
       AND NOT EXISTS (SELECT 1 FROM failover_events e WHERE e.server_id = s.id AND e.event = 'restored-as-standby')
    UNION ALL
    SELECT 'failover ' || f.id || ' is ' || f.status || ' but ' || f.slave_id || ' is not in Broken recorders'
      FROM open_failovers f JOIN servers s ON s.id = f.slave_id
     WHERE s.status <> 'broken'
       -- A Slave may be restored once its recording is; its failover goes on reinstalling plugins.
       AND NOT (f.status = 'recording-restored' AND EXISTS (
             SELECT 1 FROM failover_events e
              WHERE e.server_id = s.id AND e.event = 'restored-as-standby' AND e.at >= f.started_at))
    UNION ALL
    SELECT 'slave ' || slave_id || ' has ' || count(*) || ' failovers moving its cameras'
      FROM moving_failovers GROUP BY slave_id HAVING count(*) > 1
    UNION ALL
    SELECT 'server ' || s.id || ' is in Broken recorders without a failover'
      FROM servers s WHERE s.status = 'broken' AND NOT EXISTS (SELECT 1 FROM failovers f WHERE f.slave_id = s.id)
    UNION ALL
    SELECT 'server ' || s.id || ' replaces ' || s.replaces_server_id || ' but no failover of it names it'
      FROM servers s WHERE s.replaces_server_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM failovers f WHERE f.slave_id = s.replaces_server_id AND f.failover_server_id = s.id)
    UNION ALL
    SELECT 'failover ' || f.id || ' claimed ' || f.failover_server_id || ' which does not replace ' || f.slave_id
      FROM latest_failovers f JOIN servers slave ON slave.id = f.slave_id
      JOIN servers claimed ON claimed.id = f.failover_server_id
     WHERE slave.status = 'broken' AND claimed.replaces_server_id IS DISTINCT FROM f.slave_id
       -- Unless the promoted server failed over in turn: its own failover's server records the cameras now, and
       -- once restored it may replace another Slave.
       AND NOT EXISTS (SELECT 1 FROM failovers later
                        WHERE later.slave_id = claimed.id AND later.started_at > f.started_at)
    UNION ALL
    SELECT 'server ' || f.failover_server_id || ' serves ' || count(*) || ' open failovers'
      FROM failovers f WHERE f.status <> 'completed' AND f.failover_server_id IS NOT NULL
     GROUP BY f.failover_server_id HAVING count(*) > 1
    UNION ALL
    SELECT 'failover ' || f.id || ' has ' || count(e.id) || ' "' || expected.event || '" events'
      FROM failovers f
      -- Each standby released (it failed the failover) was claimed before the one that holds it now.
      CROSS JOIN LATERAL (SELECT count(*) AS standbys FROM failover_events r
                           WHERE r.failover_id = f.id AND r.event = 'standby-released') released
      CROSS JOIN LATERAL (VALUES ('moved-to-broken-recorders', 1),
                                 ('standby-claimed', (f.failover_server_id IS NOT NULL)::int + released.standbys),
                                 ('cameras-rebound', (f.cameras_committed_at IS NOT NULL)::int),
                                 ('failover-completed', (f.status = 'completed')::int)) AS expected(event, due)
      LEFT JOIN failover_events e ON e.failover_id = f.id AND e.event = expected.event
     GROUP BY f.id, expected.event, expected.due
    HAVING count(e.id) <> expected.due
    UNION ALL
    SELECT 'server ' || s.id || ' is out of service but replaces ' || s.replaces_server_id
      FROM servers s WHERE s.out_of_service_since IS NOT NULL AND s.replaces_server_id IS NOT NULL
    UNION ALL
    SELECT 'failover ' || f.id || ' completed before its cameras were rebound'
      FROM failovers f WHERE f.status = 'completed' AND f.cameras_committed_at IS NULL
    UNION ALL
    SELECT 'plugin ' || r.plugin || ' of ' || f.status || ' failover ' || r.failover_id || ' is still pending'
      FROM plugin_reinstalls r JOIN failovers f ON f.id = r.failover_id
     WHERE r.status = 'pending'
    UNION ALL
    SELECT 'plugin ' || r.plugin || ' of failover ' || r.failover_id || ' handed over to ' || r.handed_over_to
           || ', not a later failover of ' || f.failover_server_id
      FROM plugin_reinstalls r JOIN failovers f ON f.id = r.failover_id
      JOIN failovers later ON later.id = r.handed_over_to
     WHERE later.slave_id IS DISTINCT FROM f.failover_server_id OR later.started_at < f.started_at
    UNION ALL
    SELECT 'plugin ' || r.plugin || ' handed over to failover ' || r.handed_over_to || ', which does not reinstall it'
      FROM plugin_reinstalls r JOIN failovers later ON later.id = r.handed_over_to
     WHERE later.cameras_committed_at IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM plugin_reinstalls t WHERE t.failover_id = later.id AND t.plugin = r.plugin)
  `);
  return rows.map((row) => row.problem);
};

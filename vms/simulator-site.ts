/**
 * The simulated site and its faults, for tests, the benchmark and demonstrations: a site put as a whole,
 * servers that crash, are cut off and come back, disks, slow and hung calls, failing installs; and the truth
 * behind what the VMS reports (bindings, recordings, the call log).
 */
import type { Pool } from 'pg';
import type { DiskHealth } from '../domain/site';
import type { Site } from '../domain/site-file';
import { withTransaction } from '../infra/database';
import type { VmsServerRole } from './control-plane';
import { endHungInstalls, lockServer, recordBoundCameras, toCallFault } from './simulator-sql';
import type { CallOutcome, ServerState } from './simulator-sql';

/** The calls of the HTTP service that can be made slow or hang; 'install-plugin' is the install itself. */
export const FAULTABLE_CALLS = [
  'health',
  'status',
  'promote',
  'fence',
  'demote',
  'rebind',
  'install-start',
  'install-status',
  'install-plugin',
] as const;
export type FaultableCall = (typeof FAULTABLE_CALLS)[number];
export type CallFault = { delayMs: number } | { hang: true };

export interface CallRecord {
  operation: string;
  requestId: string;
  subject: string;
  outcome: CallOutcome;
  /** The error code of a failed call. */
  code: string | null;
}

/** The whole simulated site, the truth behind what the VMS reports. */
export interface SimulatorState {
  servers: {
    serverId: string;
    role: VmsServerRole;
    state: ServerState;
    fenced: boolean;
    replacesServerId: string | null;
    /** The cameras bound to it in the VMS. */
    boundCameras: string[];
    /** The cameras it records (whatever the VMS thinks). */
    recordedCameras: string[];
  }[];
  plugins: { serverId: string; plugin: string }[];
}

const ROLE_OF_SITE_ROLE = { master: 'master', slave: 'recorder', failover: 'standby' } as const;

/**
 * Replaces the whole simulated site with `site`: every server up and unfenced, every disk healthy, every
 * camera bound to its server and recorded by it (unless it is a standby), the site's plugins installed.
 * Faults, operations, request ids and the call log start empty.
 */
export const putSite = async (db: Pool, site: Site): Promise<void> => {
  const servers = site.servers;
  const cameras = servers.flatMap((server) =>
    server.cameras.map((camera) => ({ ...camera, serverId: server.id, role: server.role })),
  );
  await withTransaction(db, async (tx) => {
    await tx.query(
      `TRUNCATE vms_sim.site, vms_sim.servers, vms_sim.disks, vms_sim.camera_bindings, vms_sim.recordings,
                  vms_sim.plugins, vms_sim.operations, vms_sim.requests, vms_sim.calls, vms_sim.call_faults,
                  vms_sim.plugin_install_faults`,
    );
    await tx.query('INSERT INTO vms_sim.site DEFAULT VALUES');
    await tx.query(
      'INSERT INTO vms_sim.servers (server_id, role) SELECT unnest($1::text[]), unnest($2::text[])',
      [servers.map((server) => server.id), servers.map((server) => ROLE_OF_SITE_ROLE[server.role])],
    );
    const drives = servers.flatMap((server) => server.drives.map((drive) => [server.id, drive.letter]));
    await tx.query(
      'INSERT INTO vms_sim.disks (server_id, letter) SELECT unnest($1::text[]), unnest($2::text[])',
      [drives.map(([serverId]) => serverId), drives.map(([, letter]) => letter)],
    );
    await tx.query(
      `INSERT INTO vms_sim.camera_bindings (camera_id, server_id, kind)
         SELECT unnest($1::text[]), unnest($2::text[]), unnest($3::text[])`,
      [
        cameras.map((camera) => camera.id),
        cameras.map((camera) => camera.serverId),
        cameras.map((c) => c.kind),
      ],
    );
    const recorded = cameras.filter((camera) => camera.role !== 'failover');
    await tx.query(
      'INSERT INTO vms_sim.recordings (camera_id, server_id) SELECT unnest($1::text[]), unnest($2::text[])',
      [recorded.map((camera) => camera.id), recorded.map((camera) => camera.serverId)],
    );
    const plugins = servers.flatMap((server) => server.plugins.map((plugin) => [server.id, plugin]));
    await tx.query(
      'INSERT INTO vms_sim.plugins (server_id, plugin) SELECT unnest($1::text[]), unnest($2::text[])',
      [plugins.map(([serverId]) => serverId), plugins.map(([, plugin]) => plugin)],
    );
  });
};

/**
 * Down: crashed, it records nothing. Partitioned: nothing reaches it, it records what it recorded. Up from
 * down: it records what is bound to it (unless fenced or a standby); up from partitioned: as before.
 */
export const setServerState = async (db: Pool, serverId: string, state: ServerState): Promise<void> => {
  await withTransaction(db, async (tx) => {
    const server = await lockServer(tx, serverId);
    await tx.query('UPDATE vms_sim.servers SET state = $2, changed_at = now() WHERE server_id = $1', [
      serverId,
      state,
    ]);
    if (state === 'down') {
      await tx.query('DELETE FROM vms_sim.recordings WHERE server_id = $1', [serverId]);
    } else if (server.state === 'down' && server.role !== 'standby' && !server.fenced) {
      await recordBoundCameras(tx, serverId);
    }
  });
};

export const failPluginInstalls = async (
  db: Pool,
  serverId: string,
  plugin: string,
  times: number,
): Promise<void> => {
  await db.query(
    `INSERT INTO vms_sim.plugin_install_faults (server_id, plugin, remaining) VALUES ($1, $2, $3)
       ON CONFLICT (server_id, plugin) DO UPDATE SET remaining = excluded.remaining`,
    [serverId, plugin, times],
  );
};

/** The disk health the server reports from now on; drives not named keep theirs. */
export const setDisks = async (db: Pool, serverId: string, disks: DiskHealth[]): Promise<void> => {
  await withTransaction(db, async (tx) => {
    await lockServer(tx, serverId);
    await tx.query(
      `INSERT INTO vms_sim.disks (server_id, letter, healthy) SELECT $1, unnest($2::text[]), unnest($3::boolean[])
         ON CONFLICT (server_id, letter) DO UPDATE SET healthy = excluded.healthy`,
      [serverId, disks.map((disk) => disk.letter), disks.map((disk) => disk.healthy)],
    );
  });
};

/**
 * Makes a call of the HTTP service slow or hang (null: normal again). For 'install-plugin' it is the
 * install that takes that long, or never ends; lifting a hang lets hung installs end.
 */
export const setCallFault = async (db: Pool, call: FaultableCall, fault: CallFault | null): Promise<void> => {
  await withTransaction(db, async (tx) => {
    if (fault === null) {
      await tx.query('DELETE FROM vms_sim.call_faults WHERE call = $1', [call]);
    } else {
      const delayMs = 'delayMs' in fault ? fault.delayMs : null;
      await tx.query(
        `INSERT INTO vms_sim.call_faults (call, delay_ms, hang) VALUES ($1, $2, $3)
           ON CONFLICT (call) DO UPDATE SET delay_ms = excluded.delay_ms, hang = excluded.hang`,
        [call, delayMs, delayMs === null],
      );
    }
    if (call === 'install-plugin' && (fault === null || 'delayMs' in fault)) await endHungInstalls(tx);
  });
};

export const callFault = async (db: Pool, call: FaultableCall): Promise<CallFault | null> => {
  const { rows } = await db.query<{ delay_ms: number | null; hang: boolean }>(
    'SELECT delay_ms, hang FROM vms_sim.call_faults WHERE call = $1',
    [call],
  );
  return rows[0] === undefined ? null : toCallFault(rows[0]);
};

/** Every fault lifted: servers up, disks healthy, calls and installs normal, no install failing. */
export const resetFaults = async (db: Pool): Promise<void> => {
  await withTransaction(db, async (tx) => {
    await tx.query('DELETE FROM vms_sim.call_faults');
    await tx.query('DELETE FROM vms_sim.plugin_install_faults');
    await endHungInstalls(tx);
    await tx.query('UPDATE vms_sim.disks SET healthy = true WHERE NOT healthy');
    // Servers back from down record what is bound to them.
    await tx.query(
      `WITH revived AS (
           UPDATE vms_sim.servers SET state = 'up', changed_at = now() WHERE state = 'down'
           RETURNING server_id, role, fenced)
         INSERT INTO vms_sim.recordings (camera_id, server_id)
         SELECT b.camera_id, b.server_id FROM vms_sim.camera_bindings b JOIN revived r ON r.server_id = b.server_id
          WHERE r.role <> 'standby' AND NOT r.fenced
         ON CONFLICT DO NOTHING`,
    );
    await tx.query("UPDATE vms_sim.servers SET state = 'up', changed_at = now() WHERE state = 'partitioned'");
  });
};

const SELECT_CALLS = `SELECT operation, request_id AS "requestId", subject, outcome, error_code AS code
                        FROM vms_sim.calls`;

export const calls = async (db: Pool, operation?: string): Promise<CallRecord[]> => {
  const { rows } =
    operation === undefined
      ? await db.query<CallRecord>(`${SELECT_CALLS} ORDER BY id`)
      : await db.query<CallRecord>(`${SELECT_CALLS} WHERE operation = $1 ORDER BY id`, [operation]);
  return rows;
};

export const cameraBindings = async (db: Pool): Promise<Map<string, string>> => {
  const { rows } = await db.query<{ camera_id: string; server_id: string }>(
    'SELECT camera_id, server_id FROM vms_sim.camera_bindings',
  );
  return new Map(rows.map((row) => [row.camera_id, row.server_id]));
};

/** Cameras recorded by more than one server, each with its servers: what fencing must prevent. */
export const camerasRecordedTwice = async (
  db: Pool,
): Promise<{ cameraId: string; serverIds: string[] }[]> => {
  const { rows } = await db.query<{ cameraId: string; serverIds: string[] }>(
    `SELECT camera_id AS "cameraId", array_agg(server_id ORDER BY server_id) AS "serverIds"
         FROM vms_sim.recordings GROUP BY camera_id HAVING count(*) > 1 ORDER BY camera_id`,
  );
  return rows;
};

export const state = async (db: Pool): Promise<SimulatorState> => {
  const servers = await db.query<SimulatorState['servers'][number]>(
    `SELECT s.server_id AS "serverId", s.role, s.state, s.fenced, s.replaces_server AS "replacesServerId",
              coalesce((SELECT array_agg(b.camera_id ORDER BY b.camera_id) FROM vms_sim.camera_bindings b
                         WHERE b.server_id = s.server_id), '{}') AS "boundCameras",
              coalesce((SELECT array_agg(r.camera_id ORDER BY r.camera_id) FROM vms_sim.recordings r
                         WHERE r.server_id = s.server_id), '{}') AS "recordedCameras"
         FROM vms_sim.servers s ORDER BY s.server_id`,
  );
  const plugins = await db.query<{ serverId: string; plugin: string }>(
    'SELECT server_id AS "serverId", plugin FROM vms_sim.plugins ORDER BY server_id, plugin',
  );
  return { servers: servers.rows, plugins: plugins.rows };
};

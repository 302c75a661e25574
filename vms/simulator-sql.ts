/**
 * The statements the VMS simulator's modules share (schema vms_sim): servers looked up and locked, the
 * cameras a server records, plugin install operations, the call log and the holds of calls.
 */
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { VmsOutcome, VmsServerRole } from './control-plane';
import { VmsRejected } from './control-plane';
import type { PluginInstallOperation } from './bridge-protocol';

type Db = Pool | PoolClient;

export type VmsOperation = 'promote' | 'rebind' | 'install-plugin' | 'fence' | 'demote';
export type ServerState = 'up' | 'down' | 'partitioned';
export type CallOutcome = 'applied' | 'already-applied' | 'failed';

/** First key of the advisory locks that holds wait on; the second key is the hold's id. */
export const HOLD_LOCK_CLASS = 72_639_140;
const INSTALLER_FAILURE = 'installer exited with code 1603';

export interface ServerRow {
  server_id: string;
  role: VmsServerRole;
  state: ServerState;
  fenced: boolean;
  replaces_server: string | null;
}

export interface OperationRow {
  operation_id: string;
  request_id: string;
  server_id: string;
  plugin: string;
  status: PluginInstallOperation['status'];
  progress: number;
  outcome: VmsOutcome | null;
  message: string | null;
}

const OPERATION_COLUMNS = `operation_id, request_id, server_id, plugin, status, outcome, message,
  CASE WHEN status <> 'running' THEN 100
       WHEN finishes_at = 'infinity' THEN 0
       ELSE LEAST(99, GREATEST(0, floor(100 * extract(epoch FROM now() - started_at)
                                   / NULLIF(extract(epoch FROM finishes_at - started_at), 0))))::int
  END AS progress`;

const SERVER_COLUMNS = 'server_id, role, state, fenced, replaces_server';
const LOCK_SERVER = `SELECT ${SERVER_COLUMNS} FROM vms_sim.servers WHERE server_id = $1 FOR UPDATE`;

export const toOperation = (row: OperationRow): PluginInstallOperation => ({
  operationId: row.operation_id,
  requestId: row.request_id,
  serverId: row.server_id,
  plugin: row.plugin,
  status: row.status,
  progress: row.progress ?? 0,
  outcome: row.outcome,
  message: row.message,
});

export const sitePut = async (db: Db): Promise<boolean> => {
  const { rowCount } = await db.query('SELECT 1 FROM vms_sim.site');
  return rowCount !== 0;
};

export const findServer = async (db: Db, serverId: string): Promise<ServerRow | undefined> => {
  const { rows } = await db.query<ServerRow>(
    `SELECT ${SERVER_COLUMNS} FROM vms_sim.servers WHERE server_id = $1`,
    [serverId],
  );
  return rows[0];
};

/** The role the VMS gives a server of the orchestrator's site: its Slaves record, its failovers stand by. */
const VMS_ROLE_OF_SITE_SERVER = `CASE role WHEN 'master' THEN 'master' WHEN 'failover' THEN 'standby' ELSE 'recorder' END`;
const SELECT_SITE_SERVER_ROLES = `SELECT id, ${VMS_ROLE_OF_SITE_SERVER} AS role FROM public.servers`;

/**
 * Without a site put, the simulated VMS has every server it is asked about, up: with the role the
 * orchestrator's site gives it when the simulator shares its database (the worker's embedded simulated site),
 * else as a standby.
 */
export const implicitServers = async (
  db: Db,
  serverIds?: string[],
): Promise<{ serverId: string; role: VmsServerRole }[]> => {
  const { rows: present } = await db.query<{ present: boolean }>(
    `SELECT to_regclass('public.servers') IS NOT NULL AS present`,
  );
  if (present[0]?.present !== true)
    return (serverIds ?? []).map((serverId) => ({ serverId, role: 'standby' }));
  const { rows } =
    serverIds === undefined
      ? await db.query<{ id: string; role: VmsServerRole }>(`${SELECT_SITE_SERVER_ROLES} ORDER BY id`)
      : await db.query<{ id: string; role: VmsServerRole }>(
          `${SELECT_SITE_SERVER_ROLES} WHERE id = ANY($1) ORDER BY id`,
          [serverIds],
        );
  const known = new Map(rows.map((row) => [row.id, row.role]));
  return serverIds === undefined
    ? rows.map((row) => ({ serverId: row.id, role: row.role }))
    : serverIds.map((serverId) => ({ serverId, role: known.get(serverId) ?? 'standby' }));
};

/** The server, locked for this transaction; without a site, one never heard of is up (implicitServers). */
export const lockServer = async (tx: PoolClient, serverId: string): Promise<ServerRow> => {
  const found = (await tx.query<ServerRow>(LOCK_SERVER, [serverId])).rows[0];
  if (found !== undefined) return found;
  if (await sitePut(tx)) throw new VmsRejected('unknown-server', `the VMS has no server ${serverId}`);
  const [implicit] = await implicitServers(tx, [serverId]);
  await tx.query('INSERT INTO vms_sim.servers (server_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
    serverId,
    implicit?.role ?? 'standby',
  ]);
  return (await tx.query<ServerRow>(LOCK_SERVER, [serverId])).rows[0] as ServerRow;
};

export const boundCameraCount = async (tx: PoolClient, serverId: string): Promise<number> => {
  const { rows } = await tx.query<{ count: number }>(
    'SELECT count(*)::int AS count FROM vms_sim.camera_bindings WHERE server_id = $1',
    [serverId],
  );
  return rows[0]?.count ?? 0;
};

/** The server records every camera bound to it. */
export const recordBoundCameras = async (tx: PoolClient, serverId: string): Promise<void> => {
  await tx.query(
    `INSERT INTO vms_sim.recordings (camera_id, server_id)
       SELECT camera_id, server_id FROM vms_sim.camera_bindings WHERE server_id = $1 ON CONFLICT DO NOTHING`,
    [serverId],
  );
};

export const checkIpCameras = async (tx: PoolClient, cameraIds: string[]): Promise<void> => {
  const { rows } = await tx.query<{ camera_id: string; kind: string | null }>(
    `SELECT wanted.camera_id, b.kind FROM unnest($1::text[]) AS wanted (camera_id)
         LEFT JOIN vms_sim.camera_bindings b ON b.camera_id = wanted.camera_id`,
    [cameraIds],
  );
  const unknown = rows.find((row) => row.kind === null);
  if (unknown !== undefined) {
    throw new VmsRejected('unknown-camera', `the VMS has no camera ${unknown.camera_id}`);
  }
  const analog = rows.find((row) => row.kind === 'analog');
  if (analog !== undefined) {
    throw new VmsRejected(
      'camera-not-ip',
      `camera ${analog.camera_id} is analog: it is wired to its server and cannot be rebound`,
    );
  }
};

export const runningInstall = async (
  tx: PoolClient,
  serverId: string,
  plugin: string,
): Promise<PluginInstallOperation | undefined> => {
  const { rows } = await tx.query<OperationRow>(
    `SELECT ${OPERATION_COLUMNS} FROM vms_sim.operations
        WHERE server_id = $1 AND plugin = $2 AND status = 'running'`,
    [serverId, plugin],
  );
  return rows[0] && toOperation(rows[0]);
};

export const succeededInstall = async (
  tx: PoolClient,
  request: { requestId: string; serverId: string; plugin: string },
): Promise<PluginInstallOperation | undefined> => {
  const { rows } = await tx.query<OperationRow>(
    `SELECT ${OPERATION_COLUMNS} FROM vms_sim.operations
        WHERE request_id = $1 AND server_id = $2 AND plugin = $3 AND status = 'succeeded'
        ORDER BY started_at DESC LIMIT 1`,
    [request.requestId, request.serverId, request.plugin],
  );
  return rows[0] && toOperation(rows[0]);
};

/** The install, locked for this transaction, and whether its time to end has come. */
export const lockOperation = async (
  tx: PoolClient,
  operationId: string,
): Promise<(OperationRow & { due: boolean }) | undefined> => {
  const { rows } = await tx.query<OperationRow & { due: boolean }>(
    `SELECT ${OPERATION_COLUMNS}, status = 'running' AND now() >= finishes_at AS due
       FROM vms_sim.operations WHERE operation_id = $1 FOR UPDATE`,
    [operationId],
  );
  return rows[0];
};

/** A new install: running for the injected duration (none by default, forever when installs hang). */
export const insertOperation = async (
  tx: PoolClient,
  request: { requestId: string; serverId: string; plugin: string },
  end: { status: 'running' } | { status: 'succeeded'; outcome: 'already-applied' },
): Promise<PluginInstallOperation> => {
  const { rows } = await tx.query<OperationRow>(
    `INSERT INTO vms_sim.operations (operation_id, request_id, server_id, plugin, status, outcome, finishes_at)
       SELECT $1, $2, $3, $4, $5, $6,
              CASE WHEN $5 <> 'running' THEN now()
                   WHEN f.hang THEN 'infinity'
                   ELSE now() + make_interval(secs => coalesce(f.delay_ms, 0) / 1000.0) END
         FROM (SELECT 1) AS one LEFT JOIN vms_sim.call_faults f ON f.call = 'install-plugin'
       RETURNING ${OPERATION_COLUMNS}`,
    [
      randomUUID(),
      request.requestId,
      request.serverId,
      request.plugin,
      end.status,
      end.status === 'succeeded' ? end.outcome : null,
    ],
  );
  return toOperation(rows[0] as OperationRow);
};

/** Ends a running install whose time has come, and logs its outcome. */
export const endInstall = async (tx: PoolClient, row: OperationRow): Promise<PluginInstallOperation> => {
  const subject = `${row.server_id}/${row.plugin}`;
  const server = await findServer(tx, row.server_id);
  let ending:
    { status: 'failed'; message: string; code: string } | { status: 'succeeded'; outcome: VmsOutcome };
  if (server?.state !== 'up') {
    ending = {
      status: 'failed',
      message: `server ${row.server_id} stopped answering during the install`,
      code: 'server-unreachable',
    };
  } else {
    const fault = await tx.query(
      `UPDATE vms_sim.plugin_install_faults SET remaining = remaining - 1
          WHERE server_id = $1 AND plugin = $2 AND remaining > 0`,
      [row.server_id, row.plugin],
    );
    if (fault.rowCount !== 0) {
      ending = { status: 'failed', message: INSTALLER_FAILURE, code: 'install-failed' };
    } else {
      const installed = await tx.query(
        'INSERT INTO vms_sim.plugins (server_id, plugin) VALUES ($1, $2) ON CONFLICT DO NOTHING',
        [row.server_id, row.plugin],
      );
      ending = { status: 'succeeded', outcome: installed.rowCount === 0 ? 'already-applied' : 'applied' };
    }
  }
  const { rows } = await tx.query<OperationRow>(
    `UPDATE vms_sim.operations SET status = $2, outcome = $3, message = $4, finishes_at = now()
        WHERE operation_id = $1 RETURNING ${OPERATION_COLUMNS}`,
    [
      row.operation_id,
      ending.status,
      ending.status === 'succeeded' ? ending.outcome : null,
      ending.status === 'failed' ? ending.message : null,
    ],
  );
  if (ending.status === 'failed') {
    await recordCall(tx, 'install-plugin', row.request_id, subject, 'failed', ending.code);
  } else {
    await recordCall(tx, 'install-plugin', row.request_id, subject, ending.outcome);
  }
  return toOperation(rows[0] as OperationRow);
};

export const endHungInstalls = async (tx: PoolClient): Promise<void> => {
  await tx.query(
    "UPDATE vms_sim.operations SET finishes_at = now() WHERE status = 'running' AND finishes_at = 'infinity'",
  );
};

export const waitIfHeld = async (
  db: Pool,
  operation: VmsOperation,
  requestId: string,
  subject: string,
): Promise<void> => {
  const { rows } = await db.query<{ id: number }>(
    `UPDATE vms_sim.holds SET reached_at = now(), request_id = $3
        WHERE id = (SELECT id FROM vms_sim.holds
                     WHERE operation = $1 AND (subject IS NULL OR subject = $2) AND reached_at IS NULL
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING id`,
    [operation, subject, requestId],
  );
  const hold = rows[0];
  if (hold === undefined) return;
  // Autocommit: the lock is granted once the test releases it, and let go as the statement ends.
  await db.query('SELECT pg_advisory_xact_lock($1, $2)', [HOLD_LOCK_CLASS, hold.id]);
};

export const recordCall = async (
  db: Db,
  operation: string,
  requestId: string,
  subject: string,
  outcome: CallOutcome,
  code: string | null = null,
): Promise<void> => {
  await db.query(
    `INSERT INTO vms_sim.calls (operation, request_id, subject, outcome, error_code)
       VALUES ($1, $2, $3, $4, $5)`,
    [operation, requestId, subject, outcome, code],
  );
};

/**
 * The statements the VMS simulator's modules share (schema vms_sim): servers looked up and locked, request ids
 * claimed, the effects of the mutating calls, the cameras a server records, plugin install operations, the
 * call log and the holds of calls.
 */
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { preparedStatement, queryPrepared } from '../infra/database';
import type { PreparedStatement } from '../infra/database';
import type { VmsOutcome, VmsServerRole } from './control-plane';
import { VmsRejected } from './control-plane';
import type { PluginInstallOperation } from './bridge-protocol';
import type { CallFault } from './simulator-site';

type Db = Pool | PoolClient;

export type VmsOperation = 'promote' | 'rebind' | 'install-plugin' | 'fence' | 'demote';
export type ServerState = 'up' | 'down' | 'partitioned';
export type CallOutcome = 'applied' | 'already-applied' | 'failed';

/** A mutating call: its request id is its idempotency key for its subject, given with its body. */
export interface MutatingCall {
  operation: VmsOperation;
  requestId: string;
  subject: string;
  body: object;
}

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

/*
 * The statements of every mutating call are prepared on each connection (queryPrepared): PostgreSQL parses
 * and plans them once there. Parsing and planning were about 40% of the PostgreSQL CPU of these calls.
 */

const SERVER_COLUMNS = 'server_id, role, state, fenced, replaces_server';
const LOCK_SERVER = preparedStatement(
  'vms-sim-lock-server',
  `SELECT ${SERVER_COLUMNS} FROM vms_sim.servers WHERE server_id = $1 FOR UPDATE`,
);

interface FaultRow {
  delay_ms: number | null;
  hang: boolean | null;
}

/** An injected fault as read (a row of nulls: none). */
export const toCallFault = (row: FaultRow): CallFault | null => {
  if (row.hang === null) return null;
  return row.hang ? { hang: true } : { delayMs: row.delay_ms ?? 0 };
};

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
  const found = (await queryPrepared<ServerRow>(tx, LOCK_SERVER, [serverId])).rows[0];
  return found ?? lockServerNotPut(tx, serverId);
};

/** A server the VMS does not hold: refused once a site is put, else added (implicitServers) and locked. */
const lockServerNotPut = async (tx: PoolClient, serverId: string): Promise<ServerRow> => {
  if (await sitePut(tx)) throw new VmsRejected('unknown-server', `the VMS has no server ${serverId}`);
  const [implicit] = await implicitServers(tx, [serverId]);
  await tx.query('INSERT INTO vms_sim.servers (server_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
    serverId,
    implicit?.role ?? 'standby',
  ]);
  return (await queryPrepared<ServerRow>(tx, LOCK_SERVER, [serverId])).rows[0] as ServerRow;
};

/**
 * A mutating call's first statement: its request id claimed for its subject ($1 call, $2 request id, $3
 * subject, $4 body), its injected fault read ($5: the call, or null to read none) and, once claimed, its
 * server (its subject) locked, with `serverColumns`. The claim is made before the lock is asked for (the lock
 * reads the claim), and a call repeated locks nothing. Having waited for the lock, the statement answers the
 * server as the lock's last holder left it (FOR UPDATE reads the newest row); all else it reads as the
 * statement began. `same`: whether the request id, claimed before, came with the same body; null when that
 * claim was committed while the statement waited for it.
 */
const claimAndLock = (serverColumns: string): string =>
  `WITH claim AS (
       INSERT INTO vms_sim.requests (call, request_id, subject, body) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING RETURNING true),
     locked AS (
       SELECT ${serverColumns} FROM vms_sim.servers
        WHERE server_id = $3 AND EXISTS (SELECT 1 FROM claim) FOR UPDATE)
   SELECT EXISTS (SELECT 1 FROM claim) AS claimed,
          (SELECT r.body = $4::jsonb FROM vms_sim.requests r
            WHERE r.call = $1 AND r.request_id = $2 AND r.subject = $3) AS same,
          f.delay_ms, f.hang, locked.*
     FROM (SELECT 1) AS one
     LEFT JOIN vms_sim.call_faults f ON f.call = $5
     LEFT JOIN locked ON true`;

const CLAIM_AND_LOCK_SQL = claimAndLock(SERVER_COLUMNS);
const CLAIM_AND_LOCK = preparedStatement('vms-sim-claim-and-lock', CLAIM_AND_LOCK_SQL);
/**
 * As CLAIM_AND_LOCK, with whether the VMS has the server the standby replaces ($6; any server, without a site
 * put). Read as the statement began, before it waited for the lock: still true after, since a put site's
 * servers change only when putSite replaces them all.
 */
const CLAIM_AND_LOCK_TO_PROMOTE_SQL = claimAndLock(`${SERVER_COLUMNS},
          NOT EXISTS (SELECT 1 FROM vms_sim.site)
            OR EXISTS (SELECT 1 FROM vms_sim.servers replaced WHERE replaced.server_id = $6) AS replaced_known`);
const CLAIM_AND_LOCK_TO_PROMOTE = preparedStatement(
  'vms-sim-claim-and-lock-to-promote',
  CLAIM_AND_LOCK_TO_PROMOTE_SQL,
);

/**
 * A mutating call as its first statement found it: a fault to wait out first (roll back, nothing done), its
 * request id claimed before (with the same body or not), or claimed now with its server locked.
 */
export type ClaimedCall<S extends ServerRow> =
  { fault: CallFault } | { claimed: false; same: boolean } | { claimed: true; server: S };

type ClaimRow<S extends ServerRow> = FaultRow & { claimed: boolean; same: boolean | null } & S;

const claimCall = async <S extends ServerRow>(
  tx: PoolClient,
  statement: PreparedStatement,
  call: MutatingCall,
  readFault: boolean,
  more: { values: unknown[]; notPut: () => Promise<S> },
): Promise<ClaimedCall<S>> => {
  const { rows } = await queryPrepared<ClaimRow<S>>(tx, statement, [
    call.operation,
    call.requestId,
    call.subject,
    call.body,
    readFault ? call.operation : null,
    ...more.values,
  ]);
  const row = rows[0] as ClaimRow<S>;
  const fault = toCallFault(row);
  if (fault !== null) return { fault };
  if (!row.claimed) return { claimed: false, same: row.same ?? (await sameRequest(tx, call)) };
  // No server locked: one the VMS does not hold (lockServerNotPut, the rare path).
  return { claimed: true, server: row.server_id === null ? await more.notPut() : row };
};

/**
 * Claims the request id of a mutating call for its subject, reads its injected fault when `readFault`, and
 * locks its server (the subject) once claimed: one statement, unless the server is not held yet.
 */
export const claimAndLockServer = (
  tx: PoolClient,
  call: MutatingCall,
  readFault: boolean,
): Promise<ClaimedCall<ServerRow>> =>
  claimCall(tx, CLAIM_AND_LOCK, call, readFault, {
    values: [],
    notPut: () => lockServerNotPut(tx, call.subject),
  });

/** As claimAndLockServer, for a promotion: with whether the VMS has the server it replaces. */
export const claimAndLockServerToPromote = (
  tx: PoolClient,
  call: MutatingCall,
  readFault: boolean,
  replacesServerId: string,
): Promise<ClaimedCall<ServerRow & { replaced_known: boolean }>> =>
  claimCall(tx, CLAIM_AND_LOCK_TO_PROMOTE, call, readFault, {
    values: [replacesServerId],
    // Without a site put, every server asked about exists: the one it replaces too.
    notPut: async () => ({ ...(await lockServerNotPut(tx, call.subject)), replaced_known: true }),
  });

/** Whether the request id claimed before came with the same body (else it is a conflict). */
const sameRequest = async (tx: PoolClient, call: MutatingCall): Promise<boolean> => {
  const { rows } = await tx.query<{ same: boolean }>(
    `SELECT body = $4::jsonb AS same FROM vms_sim.requests
      WHERE call = $1 AND request_id = $2 AND subject = $3`,
    [call.operation, call.requestId, call.subject, call.body],
  );
  return rows[0]?.same === true;
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

/*
 * A mutating call's last statement: its effect on its server, its log entry, and the hold waiting for the call,
 * if any, marked reached, so that the hold is reached as the effect commits. Their values: $1 the call's
 * operation, $2 its request id, $3 its subject (its server), then the call's own.
 */

/** The call's hold: the oldest waiting for a call of its operation, on its subject or on any. */
const HOLD_WAITING = `SELECT id FROM vms_sim.holds
  WHERE operation = $1 AND (subject IS NULL OR subject = $3) AND reached_at IS NULL
  ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`;
const REACH_HOLD = `UPDATE vms_sim.holds SET reached_at = now(), request_id = $2 WHERE id = (${HOLD_WAITING})
  RETURNING id`;

/** The call logged with `outcome`. */
const logCall = (outcome: string): string =>
  `INSERT INTO vms_sim.calls (operation, request_id, subject, outcome) VALUES ($1, $2, $3, ${outcome})`;
/** The call logged with the outcome given as $4. */
const LOG_CALL = logCall('$4');
const LOG_APPLIED_CALL = logCall("'applied'");

/** $4: the outcome. */
const RECORD_CALL_REACHING_HOLD = preparedStatement(
  'vms-sim-record-call-reaching-hold',
  `WITH logged AS (${LOG_CALL}),
        reached AS (${REACH_HOLD})
   SELECT id FROM reached`,
);

/** $4: the server it replaces. */
const PROMOTE_SERVER = preparedStatement(
  'vms-sim-promote-server',
  `WITH promoted AS (
          UPDATE vms_sim.servers SET role = 'recorder', replaces_server = $4, fenced = false, changed_at = now()
           WHERE server_id = $3),
        recorded AS (
          INSERT INTO vms_sim.recordings (camera_id, server_id)
            SELECT camera_id, server_id FROM vms_sim.camera_bindings WHERE server_id = $3
          ON CONFLICT DO NOTHING),
        logged AS (${LOG_APPLIED_CALL}),
        reached AS (${REACH_HOLD})
   SELECT id FROM reached`,
);

const FENCE_SERVER = preparedStatement(
  'vms-sim-fence-server',
  `WITH fenced AS (UPDATE vms_sim.servers SET fenced = true, changed_at = now() WHERE server_id = $3),
        stopped AS (DELETE FROM vms_sim.recordings WHERE server_id = $3),
        logged AS (${LOG_APPLIED_CALL}),
        reached AS (${REACH_HOLD})
   SELECT id FROM reached`,
);

const DEMOTE_SERVER = preparedStatement(
  'vms-sim-demote-server',
  `WITH demoted AS (
          UPDATE vms_sim.servers SET role = 'standby', replaces_server = NULL, fenced = false, changed_at = now()
           WHERE server_id = $3),
        stopped AS (DELETE FROM vms_sim.recordings WHERE server_id = $3),
        logged AS (${LOG_APPLIED_CALL}),
        reached AS (${REACH_HOLD})
   SELECT id FROM reached`,
);

/**
 * $4: the cameras. Refused (with a site put, a camera the VMS does not have, or an analog one): nothing
 * written, nothing logged, no hold reached. Else applied when a binding or a recording is new.
 */
const BIND_CAMERAS = preparedStatement(
  'vms-sim-bind-cameras',
  `WITH wanted AS (
          SELECT camera_id, position FROM unnest($4::text[]) WITH ORDINALITY AS w (camera_id, position)),
        refused AS (
          SELECT wanted.camera_id, wanted.position, b.kind FROM wanted
            LEFT JOIN vms_sim.camera_bindings b ON b.camera_id = wanted.camera_id
           WHERE (b.kind IS NULL OR b.kind = 'analog') AND EXISTS (SELECT 1 FROM vms_sim.site)),
        bound AS (
          INSERT INTO vms_sim.camera_bindings (camera_id, server_id)
            SELECT camera_id, $3 FROM wanted WHERE NOT EXISTS (SELECT 1 FROM refused)
          ON CONFLICT (camera_id) DO UPDATE SET server_id = excluded.server_id, bound_at = now()
          WHERE vms_sim.camera_bindings.server_id <> excluded.server_id
          RETURNING camera_id),
        recorded AS (
          INSERT INTO vms_sim.recordings (camera_id, server_id)
            SELECT camera_id, $3 FROM wanted WHERE NOT EXISTS (SELECT 1 FROM refused)
          ON CONFLICT DO NOTHING
          RETURNING camera_id),
        logged AS (
          INSERT INTO vms_sim.calls (operation, request_id, subject, outcome)
            SELECT $1, $2, $3,
                   CASE WHEN EXISTS (SELECT 1 FROM bound) OR EXISTS (SELECT 1 FROM recorded) THEN 'applied'
                        ELSE 'already-applied' END
             WHERE NOT EXISTS (SELECT 1 FROM refused)
          RETURNING outcome),
        reached AS (
          UPDATE vms_sim.holds SET reached_at = now(), request_id = $2
           WHERE id = (${HOLD_WAITING}) AND EXISTS (SELECT 1 FROM logged)
          RETURNING id)
   SELECT (SELECT camera_id FROM refused WHERE kind IS NULL ORDER BY position LIMIT 1) AS unknown_camera,
          (SELECT camera_id FROM refused WHERE kind = 'analog' ORDER BY position LIMIT 1) AS analog_camera,
          (SELECT outcome FROM logged) AS outcome,
          (SELECT id FROM reached) AS id`,
);

/** A mutating call logged with its outcome, and the hold it reached, if any (the caller waits for its release). */
export interface LoggedCall {
  outcome: VmsOutcome;
  holdId: number | undefined;
}

const applyLogged = async (
  tx: PoolClient,
  statement: PreparedStatement,
  call: MutatingCall,
  outcome: VmsOutcome,
  values: unknown[],
): Promise<LoggedCall> => {
  const { rows } = await queryPrepared<{ id: number }>(tx, statement, [
    call.operation,
    call.requestId,
    call.subject,
    ...values,
  ]);
  return { outcome, holdId: rows[0]?.id };
};

/** Logs a call without effect (it had taken effect), with the hold waiting for it reached. */
export const recordCallReachingHold = (
  tx: PoolClient,
  call: MutatingCall,
  outcome: VmsOutcome,
): Promise<LoggedCall> => applyLogged(tx, RECORD_CALL_REACHING_HOLD, call, outcome, [outcome]);

/** The standby (the call's subject) made a recorder in place of another, recording every camera bound to it. */
export const promoteServer = (
  tx: PoolClient,
  call: MutatingCall,
  replacesServerId: string,
): Promise<LoggedCall> => applyLogged(tx, PROMOTE_SERVER, call, 'applied', [replacesServerId]);

/** The recorder (the call's subject) fenced: it stops recording and streaming. */
export const fenceServer = (tx: PoolClient, call: MutatingCall): Promise<LoggedCall> =>
  applyLogged(tx, FENCE_SERVER, call, 'applied', []);

/** The recorder (the call's subject) made a standby: it records nothing. */
export const demoteServer = (tx: PoolClient, call: MutatingCall): Promise<LoggedCall> =>
  applyLogged(tx, DEMOTE_SERVER, call, 'applied', []);

type BindRow = {
  unknown_camera: string | null;
  analog_camera: string | null;
  outcome: VmsOutcome | null;
  id: number | null;
};

/**
 * Binds the IP cameras to the server (the call's subject), which records them: applied when any binding or
 * recording is new. With a site put, a camera the VMS does not have, or an analog one (wired to its server),
 * is refused, and nothing is written.
 */
export const bindCameras = async (
  tx: PoolClient,
  call: MutatingCall,
  cameraIds: string[],
): Promise<LoggedCall> => {
  const { rows } = await queryPrepared<BindRow>(tx, BIND_CAMERAS, [
    call.operation,
    call.requestId,
    call.subject,
    cameraIds,
  ]);
  const row = rows[0] as BindRow;
  if (row.unknown_camera !== null) {
    throw new VmsRejected('unknown-camera', `the VMS has no camera ${row.unknown_camera}`);
  }
  if (row.analog_camera !== null) {
    throw new VmsRejected(
      'camera-not-ip',
      `camera ${row.analog_camera} is analog: it is wired to its server and cannot be rebound`,
    );
  }
  // Not refused: logged.
  return { outcome: row.outcome as VmsOutcome, holdId: row.id ?? undefined };
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

/** Waits until the hold is released. */
export const waitForRelease = async (db: Pool, holdId: number): Promise<void> => {
  // Autocommit: the lock is granted once the test releases it, and let go as the statement ends.
  await db.query('SELECT pg_advisory_xact_lock($1, $2)', [HOLD_LOCK_CLASS, holdId]);
};

export const waitIfHeld = async (
  db: Pool,
  operation: VmsOperation,
  requestId: string,
  subject: string,
): Promise<void> => {
  const { rows } = await db.query<{ id: number }>(REACH_HOLD, [operation, requestId, subject]);
  const hold = rows[0];
  if (hold !== undefined) await waitForRelease(db, hold.id);
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

/**
 * A simulated Mirasys site, kept in PostgreSQL (schema vms_sim, migrations/vms_sim/) so that every process
 * sees the same site: the in-process control plane of the tests and the HTTP service of
 * vms/simulator-server.ts. It models what failover hardening needs: servers that are up, down (crashed: not
 * reachable, recording nothing) or partitioned (recording what they recorded, not reachable); camera
 * bindings and, apart from them, which servers record which camera (a rebind makes the new server record;
 * the old one stops only when fenced or down), so that a camera recorded by two servers can be seen; request
 * ids as idempotency keys; plugin installs as operations with a duration, failures or a hang; calls held
 * after their effect until released (to crash a worker at a chosen step); and a log of every call.
 *
 * Without a site (never given one with putSite) every server id asked about is an up standby, as the
 * simulator was before it had a site; once a site is put, only its servers and cameras exist.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { Pool, PoolClient } from 'pg';
import type { DiskHealth } from '../domain/site';
import type { Site } from '../domain/site-file';
import { withTransaction } from '../infra/database';
import type { Logger } from '../infra/logger';
import { MIGRATIONS_DIR, migrate } from '../infra/migrate';
import type { MigrationSet } from '../infra/migrate';
import type {
  InstallProgress,
  VmsControlPlane,
  VmsOutcome,
  VmsServerRole,
  VmsServerStatus,
} from './control-plane';
import { PluginInstallFailed, VmsRejected, VmsUnavailable } from './control-plane';
import type { PluginInstallOperation } from './bridge-protocol';

export const SIMULATOR_MIGRATIONS: MigrationSet = {
  dir: join(MIGRATIONS_DIR, 'vms_sim'),
  table: 'vms_sim.schema_migrations',
  lockId: 7_263_914_002,
};

/** First key of the advisory locks that holds wait on; the second key is the hold's id. */
const HOLD_LOCK_CLASS = 72_639_140;
/** How often the in-process installPlugin looks at a running install. */
const INSTALL_POLL_MS = 50;
const INSTALLER_FAILURE = 'installer exited with code 1603';

export type VmsOperation = 'promote' | 'rebind' | 'install-plugin' | 'fence' | 'demote';

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

export type ServerState = 'up' | 'down' | 'partitioned';

/** A call held by {@link VmsSimulator.hold}: its effect is applied, its caller waits for `release()`. */
export interface VmsHold {
  /** Whether a matching call has arrived and waits. */
  reached(): Promise<boolean>;
  /** Lets the held call return (and any later call pass: a hold catches one call). */
  release(): Promise<void>;
}

export type CallOutcome = 'applied' | 'already-applied' | 'failed';

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

interface ServerRow {
  server_id: string;
  role: VmsServerRole;
  state: ServerState;
  fenced: boolean;
  replaces_server: string | null;
}

interface OperationRow {
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

const ROLE_OF_SITE_ROLE = { master: 'master', slave: 'recorder', failover: 'standby' } as const;

const toOperation = (row: OperationRow): PluginInstallOperation => ({
  operationId: row.operation_id,
  requestId: row.request_id,
  serverId: row.server_id,
  plugin: row.plugin,
  status: row.status,
  progress: row.progress ?? 0,
  outcome: row.outcome,
  message: row.message,
});

const errorCode = (error: unknown): string =>
  error instanceof VmsRejected || error instanceof VmsUnavailable ? error.code : 'internal';

const unreachable = (serverId: string): VmsUnavailable =>
  new VmsUnavailable('server-unreachable', `the VMS cannot reach server ${serverId}`);

/** Migration logs of the in-process simulator stay out of the worker's log (the site's migrations are in). */
const SILENT = pino({ level: 'silent' });

export class VmsSimulator implements VmsControlPlane {
  constructor(private readonly db: Pool) {}

  /** Applies the simulator's migrations; safe when several processes do it at once. */
  async install(logger: Logger = SILENT): Promise<void> {
    await migrate(this.db, logger, SIMULATOR_MIGRATIONS);
  }

  // The control plane.

  promoteToRecorder(request: {
    requestId: string;
    serverId: string;
    replacesServerId: string;
  }): Promise<VmsOutcome> {
    const { requestId, serverId, replacesServerId } = request;
    return this.mutate('promote', requestId, serverId, { replacesServerId }, async (tx) => {
      const server = await this.lockServer(tx, serverId);
      if ((await this.sitePut(tx)) && (await this.findServer(tx, replacesServerId)) === undefined) {
        throw new VmsRejected('unknown-server', `the VMS has no server ${replacesServerId}`);
      }
      if (server.role === 'master') {
        throw new VmsRejected('not-a-standby', `${serverId} is the Master, not a standby failover server`);
      }
      if (server.state !== 'up') throw unreachable(serverId);
      if (server.role === 'recorder' && server.replaces_server === replacesServerId && !server.fenced) {
        return 'already-applied';
      }
      if (server.role === 'recorder' && (await this.boundCameraCount(tx, serverId)) > 0) {
        throw new VmsRejected('not-a-standby', `${serverId} is a recorder with cameras of its own`);
      }
      await tx.query(
        `UPDATE vms_sim.servers SET role = 'recorder', replaces_server = $2, fenced = false, changed_at = now()
          WHERE server_id = $1`,
        [serverId, replacesServerId],
      );
      await this.recordBoundCameras(tx, serverId);
      return 'applied';
    });
  }

  fenceRecorder(request: { requestId: string; serverId: string }): Promise<VmsOutcome> {
    const { requestId, serverId } = request;
    return this.mutate('fence', requestId, serverId, {}, async (tx) => {
      const server = await this.lockServer(tx, serverId);
      if (server.role !== 'recorder') {
        throw new VmsRejected(
          'not-a-recorder',
          `${serverId} is ${server.role === 'master' ? 'the Master' : 'a standby'}: only recorders are fenced`,
        );
      }
      if (server.state !== 'up') throw unreachable(serverId);
      if (server.fenced) return 'already-applied';
      await tx.query('UPDATE vms_sim.servers SET fenced = true, changed_at = now() WHERE server_id = $1', [
        serverId,
      ]);
      await tx.query('DELETE FROM vms_sim.recordings WHERE server_id = $1', [serverId]);
      return 'applied';
    });
  }

  demoteToStandby(request: { requestId: string; serverId: string }): Promise<VmsOutcome> {
    const { requestId, serverId } = request;
    return this.mutate('demote', requestId, serverId, {}, async (tx) => {
      const server = await this.lockServer(tx, serverId);
      if (server.role === 'master') {
        throw new VmsRejected('not-a-recorder', `${serverId} is the Master: it cannot become a standby`);
      }
      if (server.state !== 'up') throw unreachable(serverId);
      if (server.role === 'standby') return 'already-applied';
      await tx.query(
        `UPDATE vms_sim.servers SET role = 'standby', replaces_server = NULL, fenced = false, changed_at = now()
          WHERE server_id = $1`,
        [serverId],
      );
      await tx.query('DELETE FROM vms_sim.recordings WHERE server_id = $1', [serverId]);
      return 'applied';
    });
  }

  rebindCameras(request: {
    requestId: string;
    cameraIds: string[];
    toServerId: string;
  }): Promise<VmsOutcome> {
    const { requestId, cameraIds, toServerId } = request;
    return this.mutate('rebind', requestId, toServerId, { cameraIds }, async (tx) => {
      const server = await this.lockServer(tx, toServerId);
      if (server.role === 'standby') {
        throw new VmsRejected(
          'not-a-recorder',
          `${toServerId} is a standby: promote it before binding cameras`,
        );
      }
      if (server.fenced)
        throw new VmsRejected('server-fenced', `${toServerId} is fenced: it records nothing`);
      if (server.state !== 'up') throw unreachable(toServerId);
      if (await this.sitePut(tx)) await this.checkIpCameras(tx, cameraIds);
      const bound = await tx.query(
        `INSERT INTO vms_sim.camera_bindings (camera_id, server_id) SELECT unnest($1::text[]), $2
         ON CONFLICT (camera_id) DO UPDATE SET server_id = excluded.server_id, bound_at = now()
         WHERE vms_sim.camera_bindings.server_id <> excluded.server_id`,
        [cameraIds, toServerId],
      );
      const recorded = await tx.query(
        `INSERT INTO vms_sim.recordings (camera_id, server_id) SELECT unnest($1::text[]), $2
         ON CONFLICT DO NOTHING`,
        [cameraIds, toServerId],
      );
      return bound.rowCount === 0 && recorded.rowCount === 0 ? 'already-applied' : 'applied';
    });
  }

  /** Starts an install and follows it to its end (see startPluginInstall and pluginInstallStatus). */
  async installPlugin(
    request: { requestId: string; serverId: string; plugin: string },
    onProgress?: InstallProgress,
  ): Promise<VmsOutcome> {
    let operation = await this.startPluginInstall(request);
    // Ended before this call: this request, or another, installed it earlier.
    if (operation.status === 'succeeded') return 'already-applied';
    while (operation.status === 'running') {
      operation = await this.pluginInstallStatus(operation.operationId);
      if (operation.status === 'running') {
        onProgress?.(operation.progress);
        await sleep(INSTALL_POLL_MS);
      }
    }
    if (operation.status === 'failed') {
      throw new PluginInstallFailed(
        `installing ${request.plugin} on ${request.serverId} failed: ${operation.message ?? 'no reason given'}`,
      );
    }
    return operation.outcome ?? 'applied';
  }

  /**
   * Starts installing a plugin, or answers the install already under way: the running install of that
   * plugin on that server (whatever its request id), or the install this request id already completed. A
   * request id whose install failed starts a new attempt. An install answered 'succeeded' had ended before
   * this call: for this caller it is already applied.
   */
  async startPluginInstall(request: {
    requestId: string;
    serverId: string;
    plugin: string;
  }): Promise<PluginInstallOperation> {
    const { requestId, serverId, plugin } = request;
    const subject = `${serverId}/${plugin}`;
    try {
      return await withTransaction(this.db, async (tx) => {
        // Locked: two starts for one server are decided one after the other.
        const server = await this.lockServer(tx, serverId);
        if (server.state !== 'up') throw unreachable(serverId);
        const running = await this.runningInstall(tx, serverId, plugin);
        if (running !== undefined) return running;
        const done = await this.succeededInstall(tx, request);
        if (done !== undefined) {
          await this.record(tx, 'install-plugin', requestId, subject, 'already-applied');
          return done;
        }
        const installed = await tx.query(
          'SELECT 1 FROM vms_sim.plugins WHERE server_id = $1 AND plugin = $2',
          [serverId, plugin],
        );
        if (installed.rowCount !== 0) {
          await this.record(tx, 'install-plugin', requestId, subject, 'already-applied');
          return this.insertOperation(tx, request, { status: 'succeeded', outcome: 'already-applied' });
        }
        return this.insertOperation(tx, request, { status: 'running' });
      });
    } catch (error) {
      await this.record(this.db, 'install-plugin', requestId, subject, 'failed', errorCode(error));
      throw error;
    }
  }

  /**
   * A plugin install as it stands. The install ends when it is read after its duration: it fails when its
   * server went away meanwhile or a failure was injected, and installs the plugin otherwise.
   */
  async pluginInstallStatus(operationId: string): Promise<PluginInstallOperation> {
    const { operation, ended } = await withTransaction(this.db, async (tx) => {
      const { rows } = await tx.query<OperationRow & { due: boolean }>(
        `SELECT ${OPERATION_COLUMNS}, status = 'running' AND now() >= finishes_at AS due
           FROM vms_sim.operations WHERE operation_id = $1 FOR UPDATE`,
        [operationId],
      );
      const row = rows[0];
      if (row === undefined) {
        throw new VmsRejected('unknown-operation', `the VMS has no operation ${operationId}`);
      }
      if (!row.due) return { operation: toOperation(row), ended: false };
      return { operation: await this.endInstall(tx, row), ended: true };
    });
    if (ended && operation.status === 'succeeded') {
      await this.waitIfHeld(
        'install-plugin',
        operation.requestId,
        `${operation.serverId}/${operation.plugin}`,
      );
    }
    return operation;
  }

  async serverStatus(): Promise<VmsServerStatus[]> {
    const { rows } = await this.db.query<ServerRow & { disks: DiskHealth[]; observed_at: Date }>(
      `SELECT s.server_id, s.role, s.state, s.fenced, now() AS observed_at,
              coalesce(json_agg(json_build_object('letter', d.letter, 'healthy', d.healthy) ORDER BY d.letter)
                       FILTER (WHERE d.letter IS NOT NULL), '[]') AS disks
         FROM vms_sim.servers s LEFT JOIN vms_sim.disks d ON d.server_id = s.server_id
        GROUP BY s.server_id ORDER BY s.server_id`,
    );
    return rows.map((row) => ({
      serverId: row.server_id,
      role: row.role,
      reachable: row.state === 'up',
      recording: row.state === 'up' ? row.role !== 'standby' && !row.fenced : null,
      disks: row.disks,
      observedAt: row.observed_at,
    }));
  }

  /** Rejects with VmsUnavailable when the simulated VMS (its database) does not answer. */
  async ping(): Promise<void> {
    try {
      await this.db.query('SELECT 1');
    } catch (error) {
      throw new VmsUnavailable(
        'unavailable',
        `the simulated VMS does not answer: ${(error as Error).message}`,
      );
    }
  }

  async isServerUp(serverId: string): Promise<boolean> {
    const server = await this.findServer(this.db, serverId);
    if (server !== undefined) return server.state === 'up';
    if (await this.sitePut(this.db)) {
      throw new VmsRejected('unknown-server', `the VMS has no server ${serverId}`);
    }
    return true;
  }

  // The site and its faults, for tests, the benchmark and demonstrations.

  /**
   * Replaces the whole simulated site with `site`: every server up and unfenced, every disk healthy, every
   * camera bound to its server and recorded by it (unless it is a standby), the site's plugins installed.
   * Faults, operations, request ids and the call log start empty.
   */
  async putSite(site: Site): Promise<void> {
    const servers = site.servers;
    const cameras = servers.flatMap((server) =>
      server.cameras.map((camera) => ({ ...camera, serverId: server.id, role: server.role })),
    );
    await withTransaction(this.db, async (tx) => {
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
  }

  /**
   * Down: crashed, it records nothing. Partitioned: nothing reaches it, it records what it recorded. Up from
   * down: it records what is bound to it (unless fenced or a standby); up from partitioned: as before.
   */
  async setServerState(serverId: string, state: ServerState): Promise<void> {
    await withTransaction(this.db, async (tx) => {
      const server = await this.lockServer(tx, serverId);
      await tx.query('UPDATE vms_sim.servers SET state = $2, changed_at = now() WHERE server_id = $1', [
        serverId,
        state,
      ]);
      if (state === 'down') {
        await tx.query('DELETE FROM vms_sim.recordings WHERE server_id = $1', [serverId]);
      } else if (server.state === 'down' && server.role !== 'standby' && !server.fenced) {
        await this.recordBoundCameras(tx, serverId);
      }
    });
  }

  async setServerDown(serverId: string, down: boolean): Promise<void> {
    await this.setServerState(serverId, down ? 'down' : 'up');
  }

  async failPluginInstalls(serverId: string, plugin: string, times: number): Promise<void> {
    await this.db.query(
      `INSERT INTO vms_sim.plugin_install_faults (server_id, plugin, remaining) VALUES ($1, $2, $3)
       ON CONFLICT (server_id, plugin) DO UPDATE SET remaining = excluded.remaining`,
      [serverId, plugin, times],
    );
  }

  /** The disk health the server reports from now on; drives not named keep theirs. */
  async setDisks(serverId: string, disks: DiskHealth[]): Promise<void> {
    await withTransaction(this.db, async (tx) => {
      await this.lockServer(tx, serverId);
      await tx.query(
        `INSERT INTO vms_sim.disks (server_id, letter, healthy) SELECT $1, unnest($2::text[]), unnest($3::boolean[])
         ON CONFLICT (server_id, letter) DO UPDATE SET healthy = excluded.healthy`,
        [serverId, disks.map((disk) => disk.letter), disks.map((disk) => disk.healthy)],
      );
    });
  }

  /**
   * Makes a call of the HTTP service slow or hang (null: normal again). For 'install-plugin' it is the
   * install that takes that long, or never ends; lifting a hang lets hung installs end.
   */
  async setCallFault(call: FaultableCall, fault: CallFault | null): Promise<void> {
    await withTransaction(this.db, async (tx) => {
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
      if (call === 'install-plugin' && (fault === null || 'delayMs' in fault)) await this.endHungInstalls(tx);
    });
  }

  async callFault(call: FaultableCall): Promise<CallFault | null> {
    const { rows } = await this.db.query<{ delay_ms: number | null; hang: boolean }>(
      'SELECT delay_ms, hang FROM vms_sim.call_faults WHERE call = $1',
      [call],
    );
    const row = rows[0];
    if (row === undefined) return null;
    return row.hang ? { hang: true } : { delayMs: row.delay_ms ?? 0 };
  }

  /** Every fault lifted: servers up, disks healthy, calls and installs normal, no install failing. */
  async resetFaults(): Promise<void> {
    await withTransaction(this.db, async (tx) => {
      await tx.query('DELETE FROM vms_sim.call_faults');
      await tx.query('DELETE FROM vms_sim.plugin_install_faults');
      await this.endHungInstalls(tx);
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
      await tx.query(
        "UPDATE vms_sim.servers SET state = 'up', changed_at = now() WHERE state = 'partitioned'",
      );
    });
  }

  /**
   * Holds the next call of `operation` (on `subject`, or on any subject) once its effect is applied and
   * logged, before it returns: the VMS did the work but the caller has not heard back yet. The hold is an
   * advisory lock kept on a connection of its own until `release()`.
   */
  async hold(operation: VmsOperation, subject?: string): Promise<VmsHold> {
    const connection = await this.db.connect();
    try {
      const { rows } = await connection.query<{ id: number }>(
        'INSERT INTO vms_sim.holds (operation, subject) VALUES ($1, $2) RETURNING id',
        [operation, subject ?? null],
      );
      const id = (rows[0] as { id: number }).id;
      await connection.query('SELECT pg_advisory_lock($1, $2)', [HOLD_LOCK_CLASS, id]);
      let released = false;
      return {
        reached: async () => {
          const reached = await this.db.query(
            'SELECT 1 FROM vms_sim.holds WHERE id = $1 AND reached_at IS NOT NULL',
            [id],
          );
          return reached.rowCount !== 0;
        },
        release: async () => {
          if (released) return;
          released = true;
          // Consumed even if no call came: a later call must not wait on a hold nobody will release.
          await connection.query(
            'UPDATE vms_sim.holds SET reached_at = coalesce(reached_at, now()) WHERE id = $1',
            [id],
          );
          await connection.query('SELECT pg_advisory_unlock($1, $2)', [HOLD_LOCK_CLASS, id]);
          connection.release();
        },
      };
    } catch (error) {
      connection.release();
      throw error;
    }
  }

  async calls(operation?: string): Promise<CallRecord[]> {
    const { rows } = await this.db.query<CallRecord>(
      `SELECT operation, request_id AS "requestId", subject, outcome, error_code AS code FROM vms_sim.calls
        WHERE $1::text IS NULL OR operation = $1 ORDER BY id`,
      [operation ?? null],
    );
    return rows;
  }

  async cameraBindings(): Promise<Map<string, string>> {
    const { rows } = await this.db.query<{ camera_id: string; server_id: string }>(
      'SELECT camera_id, server_id FROM vms_sim.camera_bindings',
    );
    return new Map(rows.map((row) => [row.camera_id, row.server_id]));
  }

  /** Cameras recorded by more than one server, each with its servers: what fencing must prevent. */
  async camerasRecordedTwice(): Promise<{ cameraId: string; serverIds: string[] }[]> {
    const { rows } = await this.db.query<{ cameraId: string; serverIds: string[] }>(
      `SELECT camera_id AS "cameraId", array_agg(server_id ORDER BY server_id) AS "serverIds"
         FROM vms_sim.recordings GROUP BY camera_id HAVING count(*) > 1 ORDER BY camera_id`,
    );
    return rows;
  }

  async state(): Promise<SimulatorState> {
    const servers = await this.db.query<SimulatorState['servers'][number]>(
      `SELECT s.server_id AS "serverId", s.role, s.state, s.fenced, s.replaces_server AS "replacesServerId",
              coalesce((SELECT array_agg(b.camera_id ORDER BY b.camera_id) FROM vms_sim.camera_bindings b
                         WHERE b.server_id = s.server_id), '{}') AS "boundCameras",
              coalesce((SELECT array_agg(r.camera_id ORDER BY r.camera_id) FROM vms_sim.recordings r
                         WHERE r.server_id = s.server_id), '{}') AS "recordedCameras"
         FROM vms_sim.servers s ORDER BY s.server_id`,
    );
    const plugins = await this.db.query<{ serverId: string; plugin: string }>(
      'SELECT server_id AS "serverId", plugin FROM vms_sim.plugins ORDER BY server_id, plugin',
    );
    return { servers: servers.rows, plugins: plugins.rows };
  }

  // Inside.

  /**
   * One mutating call: its request id and subject claimed first (a concurrent twin waits, then sees it),
   * the effect and the log entry in the same transaction, then the hold, if one waits for this call.
   */
  private async mutate(
    operation: VmsOperation,
    requestId: string,
    subject: string,
    body: object,
    apply: (tx: PoolClient) => Promise<VmsOutcome>,
  ): Promise<VmsOutcome> {
    let outcome: VmsOutcome;
    try {
      outcome = await withTransaction(this.db, async (tx) => {
        const claimed = await tx.query(
          `INSERT INTO vms_sim.requests (call, request_id, subject, body) VALUES ($1, $2, $3, $4)
           ON CONFLICT DO NOTHING`,
          [operation, requestId, subject, body],
        );
        let result: VmsOutcome;
        if (claimed.rowCount === 0) {
          const earlier = await tx.query<{ same: boolean }>(
            `SELECT body = $4::jsonb AS same FROM vms_sim.requests
              WHERE call = $1 AND request_id = $2 AND subject = $3`,
            [operation, requestId, subject, body],
          );
          if (earlier.rows[0]?.same !== true) {
            throw new VmsRejected(
              'request-id-conflict',
              `request id ${requestId} was used for another ${operation} of ${subject}`,
            );
          }
          result = 'already-applied';
        } else {
          result = await apply(tx);
        }
        await this.record(tx, operation, requestId, subject, result);
        return result;
      });
    } catch (error) {
      await this.record(this.db, operation, requestId, subject, 'failed', errorCode(error));
      throw error;
    }
    await this.waitIfHeld(operation, requestId, subject);
    return outcome;
  }

  private async sitePut(db: Pool | PoolClient): Promise<boolean> {
    const { rowCount } = await db.query('SELECT 1 FROM vms_sim.site');
    return rowCount !== 0;
  }

  private async findServer(db: Pool | PoolClient, serverId: string): Promise<ServerRow | undefined> {
    const { rows } = await db.query<ServerRow>(
      `SELECT ${SERVER_COLUMNS} FROM vms_sim.servers WHERE server_id = $1`,
      [serverId],
    );
    return rows[0];
  }

  /** The server, locked for this transaction; without a site, one never heard of is an up standby. */
  private async lockServer(tx: PoolClient, serverId: string): Promise<ServerRow> {
    const found = (await tx.query<ServerRow>(LOCK_SERVER, [serverId])).rows[0];
    if (found !== undefined) return found;
    if (await this.sitePut(tx)) throw new VmsRejected('unknown-server', `the VMS has no server ${serverId}`);
    await tx.query(
      "INSERT INTO vms_sim.servers (server_id, role) VALUES ($1, 'standby') ON CONFLICT DO NOTHING",
      [serverId],
    );
    return (await tx.query<ServerRow>(LOCK_SERVER, [serverId])).rows[0] as ServerRow;
  }

  private async boundCameraCount(tx: PoolClient, serverId: string): Promise<number> {
    const { rows } = await tx.query<{ count: number }>(
      'SELECT count(*)::int AS count FROM vms_sim.camera_bindings WHERE server_id = $1',
      [serverId],
    );
    return rows[0]?.count ?? 0;
  }

  /** The server records every camera bound to it. */
  private async recordBoundCameras(tx: PoolClient, serverId: string): Promise<void> {
    await tx.query(
      `INSERT INTO vms_sim.recordings (camera_id, server_id)
       SELECT camera_id, server_id FROM vms_sim.camera_bindings WHERE server_id = $1 ON CONFLICT DO NOTHING`,
      [serverId],
    );
  }

  private async checkIpCameras(tx: PoolClient, cameraIds: string[]): Promise<void> {
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
  }

  private async runningInstall(
    tx: PoolClient,
    serverId: string,
    plugin: string,
  ): Promise<PluginInstallOperation | undefined> {
    const { rows } = await tx.query<OperationRow>(
      `SELECT ${OPERATION_COLUMNS} FROM vms_sim.operations
        WHERE server_id = $1 AND plugin = $2 AND status = 'running'`,
      [serverId, plugin],
    );
    return rows[0] && toOperation(rows[0]);
  }

  private async succeededInstall(
    tx: PoolClient,
    request: { requestId: string; serverId: string; plugin: string },
  ): Promise<PluginInstallOperation | undefined> {
    const { rows } = await tx.query<OperationRow>(
      `SELECT ${OPERATION_COLUMNS} FROM vms_sim.operations
        WHERE request_id = $1 AND server_id = $2 AND plugin = $3 AND status = 'succeeded'
        ORDER BY started_at DESC LIMIT 1`,
      [request.requestId, request.serverId, request.plugin],
    );
    return rows[0] && toOperation(rows[0]);
  }

  /** A new install: running for the injected duration (none by default, forever when installs hang). */
  private async insertOperation(
    tx: PoolClient,
    request: { requestId: string; serverId: string; plugin: string },
    end: { status: 'running' } | { status: 'succeeded'; outcome: 'already-applied' },
  ): Promise<PluginInstallOperation> {
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
  }

  /** Ends a running install whose time has come, and logs its outcome. */
  private async endInstall(tx: PoolClient, row: OperationRow): Promise<PluginInstallOperation> {
    const subject = `${row.server_id}/${row.plugin}`;
    const server = await this.findServer(tx, row.server_id);
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
      await this.record(tx, 'install-plugin', row.request_id, subject, 'failed', ending.code);
    } else {
      await this.record(tx, 'install-plugin', row.request_id, subject, ending.outcome);
    }
    return toOperation(rows[0] as OperationRow);
  }

  private async endHungInstalls(tx: PoolClient): Promise<void> {
    await tx.query(
      "UPDATE vms_sim.operations SET finishes_at = now() WHERE status = 'running' AND finishes_at = 'infinity'",
    );
  }

  private async waitIfHeld(operation: VmsOperation, requestId: string, subject: string): Promise<void> {
    const { rows } = await this.db.query<{ id: number }>(
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
    await this.db.query('SELECT pg_advisory_xact_lock($1, $2)', [HOLD_LOCK_CLASS, hold.id]);
  }

  private async record(
    db: Pool | PoolClient,
    operation: string,
    requestId: string,
    subject: string,
    outcome: CallOutcome,
    code: string | null = null,
  ): Promise<void> {
    await db.query(
      `INSERT INTO vms_sim.calls (operation, request_id, subject, outcome, error_code)
       VALUES ($1, $2, $3, $4, $5)`,
      [operation, requestId, subject, outcome, code],
    );
  }
}

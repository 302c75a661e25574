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
 *
 * This class is the control plane and the API of tests; the site and its faults are in simulator-site.ts,
 * the statements both share in simulator-sql.ts, the HTTP service in simulator-server.ts.
 */
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
import type { InstallProgress, VmsControlPlane, VmsOutcome, VmsServerStatus } from './control-plane';
import { PluginInstallFailed, VmsRejected, VmsUnavailable } from './control-plane';
import type { PluginInstallOperation } from './bridge-protocol';
import {
  HOLD_LOCK_CLASS,
  bindCameras,
  boundCameraCount,
  claimAndLockServer,
  claimAndLockServerToPromote,
  demoteServer,
  endInstall,
  fenceServer,
  findServer,
  insertOperation,
  lockOperation,
  implicitServers,
  lockServer,
  promoteServer,
  recordCall,
  recordCallReachingHold,
  runningInstall,
  sitePut,
  succeededInstall,
  toOperation,
  waitForRelease,
  waitIfHeld,
} from './simulator-sql';
import type {
  ClaimedCall,
  LoggedCall,
  MutatingCall,
  ServerRow,
  ServerState,
  VmsOperation,
} from './simulator-sql';
import {
  callFault,
  calls,
  cameraBindings,
  camerasRecordedTwice,
  failPluginInstalls,
  putSite,
  resetFaults,
  setCallFault,
  setDisks,
  setServerState,
  state,
} from './simulator-site';
import type { CallFault, CallRecord, FaultableCall, SimulatorState } from './simulator-site';

export type { VmsOperation } from './simulator-sql';

export const SIMULATOR_MIGRATIONS: MigrationSet = {
  dir: join(MIGRATIONS_DIR, 'vms_sim'),
  table: 'vms_sim.schema_migrations',
  lockId: 7_263_914_002,
};

/** How often the in-process installPlugin looks at a running install. */
const INSTALL_POLL_MS = 50;

/**
 * How the HTTP service waits out a call's injected fault before the call takes effect; it rejects when the
 * caller went away (the call is dropped, unapplied). A mutating call given one reads its fault with its first
 * statement; the in-process control plane suffers no fault.
 */
export type SufferFault = (fault: CallFault) => Promise<void>;

/** Thrown to roll back a call whose injected fault is to be waited out before it takes effect. */
class FaultToSuffer extends Error {
  constructor(readonly fault: CallFault) {
    super('the call waits out its injected fault first');
  }
}

/** A mutating call's two statements, each its own per kind of call. */
interface CallSteps<S extends ServerRow> {
  /** Claims its request id, reads its fault when asked, locks its server once claimed (claimAndLockServer). */
  claim(tx: PoolClient, readFault: boolean): Promise<ClaimedCall<S>>;
  /** Checks the server, then applies the call and logs it with its hold reached, in one statement. */
  apply(tx: PoolClient, server: S): Promise<LoggedCall>;
}

/** A call held by {@link VmsSimulator.hold}: its effect is applied, its caller waits for `release()`. */
export interface VmsHold {
  /** Whether a matching call has arrived and waits. */
  reached(): Promise<boolean>;
  /** Lets the held call return (and any later call pass: a hold catches one call). */
  release(): Promise<void>;
}

const errorCode = (error: unknown): string =>
  error instanceof VmsRejected || error instanceof VmsUnavailable ? error.code : 'internal';

const unreachable = (serverId: string): VmsUnavailable =>
  new VmsUnavailable('server-unreachable', `the VMS cannot reach server ${serverId}`);

/** Migration logs of the in-process simulator stay out of the worker's log (the site's migrations are in). */
const SILENT = pino({ level: 'silent' });

/** Each server's status as the simulated VMS reports it: its state and its disks' health. */
const SELECT_STATUS = `SELECT s.server_id, s.role, s.state, s.fenced, now() AS observed_at,
       coalesce(json_agg(json_build_object('letter', d.letter, 'healthy', d.healthy) ORDER BY d.letter)
                FILTER (WHERE d.letter IS NOT NULL), '[]') AS disks
  FROM vms_sim.servers s LEFT JOIN vms_sim.disks d ON d.server_id = s.server_id`;
const STATUS_GROUPED = 'GROUP BY s.server_id ORDER BY s.server_id';

export class VmsSimulator implements VmsControlPlane {
  constructor(private readonly db: Pool) {}

  /** Applies the simulator's migrations; safe when several processes do it at once. */
  async install(logger: Logger = SILENT): Promise<void> {
    await migrate(this.db, logger, SIMULATOR_MIGRATIONS);
  }

  // The control plane.

  promoteToRecorder(
    request: { requestId: string; serverId: string; replacesServerId: string },
    sufferFault?: SufferFault,
  ): Promise<VmsOutcome> {
    const { requestId, serverId, replacesServerId } = request;
    const call = { operation: 'promote', requestId, subject: serverId, body: { replacesServerId } } as const;
    return this.mutate(call, sufferFault, {
      claim: (tx, readFault) => claimAndLockServerToPromote(tx, call, readFault, replacesServerId),
      apply: async (tx, server) => {
        if (!server.replaced_known) {
          throw new VmsRejected('unknown-server', `the VMS has no server ${replacesServerId}`);
        }
        if (server.role === 'master') {
          throw new VmsRejected('not-a-standby', `${serverId} is the Master, not a standby failover server`);
        }
        if (server.state !== 'up') throw unreachable(serverId);
        if (server.role === 'recorder' && server.replaces_server === replacesServerId && !server.fenced) {
          return recordCallReachingHold(tx, call, 'already-applied');
        }
        if (server.role === 'recorder' && (await boundCameraCount(tx, serverId)) > 0) {
          throw new VmsRejected('not-a-standby', `${serverId} is a recorder with cameras of its own`);
        }
        return promoteServer(tx, call, replacesServerId);
      },
    });
  }

  fenceRecorder(
    request: { requestId: string; serverId: string },
    sufferFault?: SufferFault,
  ): Promise<VmsOutcome> {
    const { requestId, serverId } = request;
    const call = { operation: 'fence', requestId, subject: serverId, body: {} } as const;
    return this.mutate(call, sufferFault, {
      claim: (tx, readFault) => claimAndLockServer(tx, call, readFault),
      apply: (tx, server) => {
        if (server.role !== 'recorder') {
          throw new VmsRejected(
            'not-a-recorder',
            `${serverId} is ${server.role === 'master' ? 'the Master' : 'a standby'}: only recorders are fenced`,
          );
        }
        if (server.state !== 'up') throw unreachable(serverId);
        if (server.fenced) return recordCallReachingHold(tx, call, 'already-applied');
        return fenceServer(tx, call);
      },
    });
  }

  demoteToStandby(
    request: { requestId: string; serverId: string },
    sufferFault?: SufferFault,
  ): Promise<VmsOutcome> {
    const { requestId, serverId } = request;
    const call = { operation: 'demote', requestId, subject: serverId, body: {} } as const;
    return this.mutate(call, sufferFault, {
      claim: (tx, readFault) => claimAndLockServer(tx, call, readFault),
      apply: (tx, server) => {
        if (server.role === 'master') {
          throw new VmsRejected('not-a-recorder', `${serverId} is the Master: it cannot become a standby`);
        }
        if (server.state !== 'up') throw unreachable(serverId);
        if (server.role === 'standby') return recordCallReachingHold(tx, call, 'already-applied');
        return demoteServer(tx, call);
      },
    });
  }

  rebindCameras(
    request: { requestId: string; cameraIds: string[]; toServerId: string },
    sufferFault?: SufferFault,
  ): Promise<VmsOutcome> {
    const { requestId, cameraIds, toServerId } = request;
    const call = { operation: 'rebind', requestId, subject: toServerId, body: { cameraIds } } as const;
    return this.mutate(call, sufferFault, {
      claim: (tx, readFault) => claimAndLockServer(tx, call, readFault),
      apply: (tx, server) => {
        if (server.role === 'standby') {
          throw new VmsRejected(
            'not-a-recorder',
            `${toServerId} is a standby: promote it before binding cameras`,
          );
        }
        if (server.fenced)
          throw new VmsRejected('server-fenced', `${toServerId} is fenced: it records nothing`);
        if (server.state !== 'up') throw unreachable(toServerId);
        return bindCameras(tx, call, cameraIds);
      },
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
        const server = await lockServer(tx, serverId);
        if (server.state !== 'up') throw unreachable(serverId);
        const running = await runningInstall(tx, serverId, plugin);
        if (running !== undefined) return running;
        const done = await succeededInstall(tx, request);
        if (done !== undefined) {
          await recordCall(tx, 'install-plugin', requestId, subject, 'already-applied');
          return done;
        }
        const installed = await tx.query(
          'SELECT 1 FROM vms_sim.plugins WHERE server_id = $1 AND plugin = $2',
          [serverId, plugin],
        );
        if (installed.rowCount !== 0) {
          await recordCall(tx, 'install-plugin', requestId, subject, 'already-applied');
          return insertOperation(tx, request, { status: 'succeeded', outcome: 'already-applied' });
        }
        return insertOperation(tx, request, { status: 'running' });
      });
    } catch (error) {
      await recordCall(this.db, 'install-plugin', requestId, subject, 'failed', errorCode(error));
      throw error;
    }
  }

  /**
   * A plugin install as it stands. The install ends when it is read after its duration: it fails when its
   * server went away meanwhile or a failure was injected, and installs the plugin otherwise.
   */
  async pluginInstallStatus(operationId: string): Promise<PluginInstallOperation> {
    const { operation, ended } = await withTransaction(this.db, async (tx) => {
      const row = await lockOperation(tx, operationId);
      if (row === undefined) {
        throw new VmsRejected('unknown-operation', `the VMS has no operation ${operationId}`);
      }
      if (!row.due) return { operation: toOperation(row), ended: false };
      return { operation: await endInstall(tx, row), ended: true };
    });
    if (ended && operation.status === 'succeeded') {
      await waitIfHeld(
        this.db,
        'install-plugin',
        operation.requestId,
        `${operation.serverId}/${operation.plugin}`,
      );
    }
    return operation;
  }

  /**
   * One server's status, for a question about that server alone (is the standby to claim up?): a failover
   * asks it, and a hundred failovers at once must not each read the whole site.
   */
  async serverStatusOf(serverId: string): Promise<VmsServerStatus> {
    const [status] = await this.serverStatusesOf([serverId]);
    if (status !== undefined) return status;
    throw new VmsRejected('unknown-server', `the VMS has no server ${serverId}`);
  }

  /**
   * The servers named, in one statement: failovers decided together ask about theirs at once. Servers it
   * has without a site put are looked for only when the statement did not find every one.
   */
  async serverStatusesOf(serverIds: readonly string[]): Promise<VmsServerStatus[]> {
    const asked = new Set(serverIds);
    const statuses = await this.statusRows(serverIds);
    if (statuses.length === asked.size) return statuses;
    const implicit = await this.serversNotPut(statuses);
    return [...statuses, ...implicit.filter((server) => asked.has(server.serverId))];
  }

  async serverStatus(): Promise<VmsServerStatus[]> {
    const statuses = await this.statusRows(null);
    return [...statuses, ...(await this.serversNotPut(statuses))];
  }

  /** The servers the simulated VMS holds: all of them, or those named. */
  private async statusRows(serverIds: readonly string[] | null): Promise<VmsServerStatus[]> {
    type StatusRow = ServerRow & { disks: DiskHealth[]; observed_at: Date };
    const { rows } =
      serverIds === null
        ? await this.db.query<StatusRow>(`${SELECT_STATUS} ${STATUS_GROUPED}`)
        : await this.db.query<StatusRow>(`${SELECT_STATUS} WHERE s.server_id = ANY($1) ${STATUS_GROUPED}`, [
            serverIds,
          ]);
    return rows.map((row) => ({
      serverId: row.server_id,
      role: row.role,
      reachable: row.state === 'up',
      recording: row.state === 'up' ? row.role !== 'standby' && !row.fenced : null,
      disks: row.disks,
      observedAt: row.observed_at,
    }));
  }

  /** Servers the simulated VMS has without being told of them (no site put): up, as implicitServers says. */
  private async serversNotPut(known: VmsServerStatus[]): Promise<VmsServerStatus[]> {
    if (await sitePut(this.db)) return [];
    const { rows } = await this.db.query<{ now: Date }>('SELECT now() AS now');
    const listed = new Set(known.map((server) => server.serverId));
    return (await implicitServers(this.db))
      .filter((server) => !listed.has(server.serverId))
      .map((server) => ({
        serverId: server.serverId,
        role: server.role,
        reachable: true,
        recording: server.role !== 'standby',
        disks: [],
        observedAt: rows[0]?.now ?? new Date(),
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
    const server = await findServer(this.db, serverId);
    if (server !== undefined) return server.state === 'up';
    if (await sitePut(this.db)) {
      throw new VmsRejected('unknown-server', `the VMS has no server ${serverId}`);
    }
    return true;
  }

  // The site and its faults, for tests, the benchmark and demonstrations (vms/simulator-site.ts).

  putSite(site: Site): Promise<void> {
    return putSite(this.db, site);
  }

  setServerState(serverId: string, serverState: ServerState): Promise<void> {
    return setServerState(this.db, serverId, serverState);
  }

  setServerDown(serverId: string, down: boolean): Promise<void> {
    return setServerState(this.db, serverId, down ? 'down' : 'up');
  }

  failPluginInstalls(serverId: string, plugin: string, times: number): Promise<void> {
    return failPluginInstalls(this.db, serverId, plugin, times);
  }

  setDisks(serverId: string, disks: DiskHealth[]): Promise<void> {
    return setDisks(this.db, serverId, disks);
  }

  setCallFault(call: FaultableCall, fault: CallFault | null): Promise<void> {
    return setCallFault(this.db, call, fault);
  }

  callFault(call: FaultableCall): Promise<CallFault | null> {
    return callFault(this.db, call);
  }

  resetFaults(): Promise<void> {
    return resetFaults(this.db);
  }

  calls(operation?: string): Promise<CallRecord[]> {
    return calls(this.db, operation);
  }

  cameraBindings(): Promise<Map<string, string>> {
    return cameraBindings(this.db);
  }

  camerasRecordedTwice(): Promise<{ cameraId: string; serverIds: string[] }[]> {
    return camerasRecordedTwice(this.db);
  }

  state(): Promise<SimulatorState> {
    return state(this.db);
  }

  // Holds.

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

  // Inside.

  /**
   * One mutating call, in one transaction of two statements: its request id claimed for its subject (a
   * concurrent twin waits, then sees it), with its injected fault read when the HTTP service serves it, and its
   * server locked (calls on one server are decided one after the other); then its effect, its log entry and the
   * hold waiting for this call, if any, marked reached. After the commit, a held call waits for its release.
   */
  private async mutate<S extends ServerRow>(
    call: MutatingCall,
    sufferFault: SufferFault | undefined,
    steps: CallSteps<S>,
  ): Promise<VmsOutcome> {
    const attempt = await this.attempt(call, sufferFault !== undefined, steps);
    if ('fault' in attempt) {
      // Rolled back, nothing applied: the call takes effect once its fault is waited out, as if read first.
      await sufferFault?.(attempt.fault);
      return this.mutate(call, undefined, steps);
    }
    if (attempt.holdId !== undefined) await waitForRelease(this.db, attempt.holdId);
    return attempt.outcome;
  }

  /** The call's transaction, or its fault to wait out first; a call that fails is logged with its code. */
  private async attempt<S extends ServerRow>(
    call: MutatingCall,
    readFault: boolean,
    steps: CallSteps<S>,
  ): Promise<{ fault: CallFault } | LoggedCall> {
    try {
      return await withTransaction(this.db, async (tx) => {
        const claimed = await steps.claim(tx, readFault);
        if ('fault' in claimed) throw new FaultToSuffer(claimed.fault);
        if (claimed.claimed) return steps.apply(tx, claimed.server);
        if (!claimed.same) {
          throw new VmsRejected(
            'request-id-conflict',
            `request id ${call.requestId} was used for another ${call.operation} of ${call.subject}`,
          );
        }
        return recordCallReachingHold(tx, call, 'already-applied');
      });
    } catch (error) {
      if (error instanceof FaultToSuffer) return { fault: error.fault };
      await recordCall(this.db, call.operation, call.requestId, call.subject, 'failed', errorCode(error));
      throw error;
    }
  }
}

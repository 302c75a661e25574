/**
 * Operations on the monitored fleet, shared by the CLI, the worker's activities, the
 * benchmark and the tests. Each validates its input first, so that bad input changes nothing; refusals are
 * DomainErrors, or the ApplicationFailure a workflow answered with.
 */
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import type { FailoverTuning } from '../domain/contracts';
import { DomainError, ErrorType } from '../domain/errors';
import { monitorWorkflowId, restoreWorkflowId } from '../domain/names';
import { checkMonitorable, checkRestorable, isMonitorable, monitoredSlave } from '../domain/rules';
import { VmsFolder, VmsRole, VmsServerId } from '../domain/search-attributes';
import { isFolder } from '../domain/site';
import type { FailoverSettings, Folder } from '../domain/site';
import {
  InvalidInput,
  checkDriveLetters,
  checkMaintenanceMs,
  checkServerId,
  checkSettings,
} from '../domain/validation';
import type { AppConfig } from '../infra/config';
import { waitingFailoverIds } from '../store/failovers';
import { getServer } from '../store/servers';
import { putInService } from '../store/standbys';
import { saveMaintenance, saveSettings } from '../store/settings';
import type { MonitorState, RestoreWorkflowResult } from '../workflows/definitions';
import {
  maintenanceUpdate,
  monitorStateQuery,
  standbyAvailableSignal,
  stopMonitorSignal,
  updateSettingsUpdate,
} from '../workflows/definitions';
import type { slaveMonitorWorkflow } from '../workflows/monitor';
import type { restoreServerWorkflow } from '../workflows/restore';
import { failureType, isUpdateAbortedWithItsTask, rootFailure } from './failures';

export interface FleetDeps {
  site: string;
  client: Client;
  db: Pool;
  taskQueue: string;
  tuning: FailoverTuning;
  /** The detector's checkpoint period: a monitor's durable backstop waits this long and a timeout. */
  checkpointPeriodMs: number;
  signalsPerRun?: number;
}

const checked = <T>(check: () => T): T => {
  try {
    return check();
  } catch (error) {
    if (error instanceof InvalidInput) throw new DomainError(ErrorType.InvalidInput, error.message);
    throw error;
  }
};

/** Looks at the running monitor again after a concurrent caller changed it (stopped it, started another). */
const ENSURE_MONITORING_ATTEMPTS = 3;
/** How long a replaced monitor may take to end (it leaves the roster first); the caller's retry waits on. */
const MONITOR_END_WAIT_MS = 10_000;
const MONITOR_END_POLL_MS = 100;
/** How long the state query of a running monitor may wait for a worker to answer it. */
const MONITOR_QUERY_DEADLINE_MS = 10_000;
/** Asks a running monitor again for a change the server aborted with its workflow task; then the error stands. */
const MONITOR_UPDATE_ATTEMPTS = 3;

const monitorNotReplacedYet = (serverId: string, why: string): ApplicationFailure =>
  ApplicationFailure.retryable(`the monitor of "${serverId}" ${why}`, 'MonitorNotReplacedYet');

const notMonitored = (serverId: string): DomainError =>
  new DomainError(
    ErrorType.MonitorNotRunning,
    `"${serverId}" is not monitored: start its monitor first (vms monitor start ${serverId})`,
  );

export type MonitorRecord =
  { running: false } | { running: true; folder: Folder | undefined; taskAttempt: number | undefined };

export class Fleet {
  constructor(private readonly deps: FleetDeps) {}

  private monitorHandle(serverId: string): WorkflowHandle<typeof slaveMonitorWorkflow> {
    return this.deps.client.workflow.getHandle<typeof slaveMonitorWorkflow>(
      monitorWorkflowId(this.deps.site, serverId),
    );
  }

  /** Starts failover protection of a Slave; a Master, a standby or an unprotected server is refused. */
  async startMonitor(serverId: string): Promise<{ workflowId: string }> {
    checked(() => checkServerId(serverId));
    const slave = checkMonitorable(await getServer(this.deps.db, serverId));
    const workflowId = monitorWorkflowId(this.deps.site, serverId);
    try {
      await this.deps.client.workflow.start<typeof slaveMonitorWorkflow>('slaveMonitorWorkflow', {
        workflowId,
        taskQueue: this.deps.taskQueue,
        // One monitor at a time: a second start fails (ensureMonitoring relies on it), a new one may follow an
        // ended one. Never TERMINATE_EXISTING: it could end a monitor a concurrent caller has just started.
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        args: [
          {
            site: this.deps.site,
            serverId,
            slave: monitoredSlave(slave),
            tuning: this.deps.tuning,
            checkpointPeriodMs: this.deps.checkpointPeriodMs,
            ...(this.deps.signalsPerRun !== undefined && { signalsPerRun: this.deps.signalsPerRun }),
          },
        ],
        staticSummary: `Failover protection of Slave ${serverId} (${slave.hostname})`,
        staticDetails: [
          `Slave **${serverId}** (${slave.hostname}), drives ${slave.driveLetters.join(', ')}.`,
          `Deemed broken after ${slave.settings.timeoutMs} ms without a heartbeat, or when all material disks`,
          `(${slave.materialDriveLetters.join(', ')}) are broken; a standby with the same drive letters takes its place.`,
        ].join('\n'),
        typedSearchAttributes: [
          { key: VmsServerId, value: serverId },
          { key: VmsFolder, value: 'Servers' },
          { key: VmsRole, value: 'slave' },
        ],
      });
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        throw new DomainError(
          ErrorType.MonitorAlreadyRunning,
          `"${serverId}" is already monitored (${workflowId})`,
        );
      }
      throw error;
    }
    return { workflowId };
  }

  /**
   * Starts the monitor when the server is a protected Slave and no monitor of its current life runs. A running
   * monitor that is not monitoring is one of an earlier life: the server failed over as a Slave, was restored
   * and is now promoted, and the restore's stop has not reached that monitor (it watches nothing, and would
   * leave the server unprotected). It is stopped, and a fresh one started once it has ended. Concurrent
   * callers agree: a monitor is stopped by its run id only, and only one start succeeds.
   */
  async ensureMonitoring(serverId: string): Promise<{ started: boolean }> {
    if (!isMonitorable(await getServer(this.deps.db, serverId))) return { started: false };
    for (let attempt = 1; attempt <= ENSURE_MONITORING_ATTEMPTS; attempt += 1) {
      const running = await this.runningMonitor(serverId);
      if (running === undefined) {
        try {
          await this.startMonitor(serverId);
          return { started: true };
        } catch (error) {
          if (failureType(error) === ErrorType.MonitorAlreadyRunning) continue;
          throw error;
        }
      }
      if (running.state.phase === 'monitoring') return { started: false };
      // Taking over recording: it ends failed over, of this life (the server is then broken) or an earlier one.
      if (running.state.phase === 'failing-over') throw monitorNotReplacedYet(serverId, 'is failing over');
      await this.stopEarlierMonitor(serverId, running.runId);
    }
    throw monitorNotReplacedYet(serverId, 'kept changing while it was replaced');
  }

  /** The running monitor of a server, by run, with its state; undefined when none runs. */
  private async runningMonitor(
    serverId: string,
  ): Promise<{ runId: string; state: MonitorState } | undefined> {
    try {
      const { runId, status } = await this.monitorHandle(serverId).describe();
      if (status.name !== 'RUNNING') return undefined;
      // A query waits for a worker to answer it, without end unless bounded: a retry asks again.
      const state = await this.deps.client
        .withDeadline(Date.now() + MONITOR_QUERY_DEADLINE_MS, () =>
          this.monitorRun(serverId, runId).query(monitorStateQuery),
        )
        .catch((error: unknown) => {
          if (error instanceof WorkflowNotFoundError) throw error;
          throw monitorNotReplacedYet(serverId, `did not answer its state query (${String(error)})`);
        });
      return { runId, state };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return undefined;
      throw error;
    }
  }

  /**
   * Stops a monitor of the server's earlier life (as its restore would have) and waits until it has ended:
   * it takes the server out of the liveness roster as it ends, which must come before the next one enters it.
   */
  private async stopEarlierMonitor(serverId: string, runId: string): Promise<void> {
    const run = this.monitorRun(serverId, runId);
    try {
      await run.signal(stopMonitorSignal, { reason: 'restored' });
    } catch (error) {
      // That run has ended already (stopped by another caller, or continued as new): look again.
      if (error instanceof WorkflowNotFoundError) return;
      throw error;
    }
    const giveUpAt = Date.now() + MONITOR_END_WAIT_MS;
    while ((await run.describe()).status.name === 'RUNNING') {
      if (Date.now() > giveUpAt) throw monitorNotReplacedYet(serverId, 'has not ended yet');
      await new Promise((resolve) => setTimeout(resolve, MONITOR_END_POLL_MS));
    }
  }

  private monitorRun(serverId: string, runId: string): WorkflowHandle<typeof slaveMonitorWorkflow> {
    return this.deps.client.workflow.getHandle<typeof slaveMonitorWorkflow>(
      monitorWorkflowId(this.deps.site, serverId),
      runId,
    );
  }

  async stopMonitor(serverId: string): Promise<void> {
    checked(() => checkServerId(serverId));
    await this.ifMonitored(serverId, (handle) => handle.signal(stopMonitorSignal, { reason: 'operator' }));
  }

  async monitorState(serverId: string): Promise<MonitorState | undefined> {
    try {
      return await this.monitorHandle(serverId).query(monitorStateQuery);
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return undefined;
      throw error;
    }
  }

  /**
   * The monitor as Temporal records it, from one describe (no worker needed): whether it runs, the folder it
   * last put its Slave in (Servers while it monitors, Broken recorders once it fails over) and the attempt of
   * its pending workflow task (above 1: its earlier attempts failed).
   */
  async monitorRecord(serverId: string): Promise<MonitorRecord> {
    try {
      const description = await this.monitorHandle(serverId).describe();
      if (description.status.name !== 'RUNNING') return { running: false };
      const folder = description.typedSearchAttributes.get(VmsFolder);
      return {
        running: true,
        folder: isFolder(folder) ? folder : undefined,
        taskAttempt: description.raw.pendingWorkflowTask?.attempt ?? undefined,
      };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return { running: false };
      throw error;
    }
  }

  async isMonitorRunning(serverId: string): Promise<boolean> {
    try {
      const description = await this.monitorHandle(serverId).describe();
      return description.status.name === 'RUNNING';
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return false;
      throw error;
    }
  }

  /**
   * Changes the failover settings of a Slave: through its monitor when one runs (so the new timeout takes
   * effect at once), in PostgreSQL otherwise; protecting a Slave starts its monitor.
   */
  async updateSettings(serverId: string, settings: FailoverSettings): Promise<{ monitorStarted: boolean }> {
    checked(() => checkServerId(serverId));
    const valid = checked(() => checkSettings(settings));
    return this.throughMonitor(
      serverId,
      async (monitor) => {
        await monitor.executeUpdate(updateSettingsUpdate, { args: [valid] });
        return { monitorStarted: false };
      },
      async () => {
        // An operator's command, run once: its own request.
        await saveSettings(this.deps.db, serverId, valid, randomUUID());
        return this.ensureMonitoring(serverId).then(({ started }) => ({ monitorStarted: started }));
      },
    );
  }

  /** A planned maintenance window (a reboot): no failover of the Slave until it ends. */
  async startMaintenance(serverId: string, durationMs: number): Promise<{ untilMs: number | null }> {
    checked(() => checkServerId(serverId));
    const duration = checked(() => checkMaintenanceMs(durationMs));
    return this.throughMonitor(
      serverId,
      async (monitor) => {
        const state = await monitor.executeUpdate(maintenanceUpdate, { args: [{ durationMs: duration }] });
        return { untilMs: state.maintenanceUntilMs };
      },
      async () => {
        const server = await getServer(this.deps.db, serverId);
        if (server.role === 'master') {
          throw new DomainError(
            ErrorType.MasterCannotBeProtected,
            `"${serverId}" is the Master: it is never failed over`,
          );
        }
        const untilMs = duration === 0 ? null : Date.now() + duration;
        await saveMaintenance(this.deps.db, serverId, untilMs, randomUUID());
        return { untilMs };
      },
    );
  }

  /** A repaired server in Broken recorders becomes a new standby failover server. */
  async restore(serverId: string, driveLetters?: string[]): Promise<RestoreWorkflowResult> {
    checked(() => checkServerId(serverId));
    const letters = driveLetters === undefined ? undefined : checked(() => checkDriveLetters(driveLetters));
    checkRestorable(await getServer(this.deps.db, serverId));
    return this.unwrapped(() =>
      this.deps.client.workflow.execute<typeof restoreServerWorkflow>('restoreServerWorkflow', {
        workflowId: restoreWorkflowId(this.deps.site, serverId),
        taskQueue: this.deps.taskQueue,
        args: [{ site: this.deps.site, serverId, ...(letters !== undefined && { driveLetters: letters }) }],
        staticSummary: `Restore ${serverId} as a standby failover server`,
        typedSearchAttributes: [
          { key: VmsServerId, value: serverId },
          { key: VmsRole, value: 'failover' },
          { key: VmsFolder, value: 'FailoverServers' },
        ],
      }),
    );
  }

  /**
   * Puts a standby that failed a failover back in service (repaired, or found fine); the failovers waiting
   * for a matched standby look again. Returns whether it was out of service, and who was told.
   */
  async putStandbyInService(
    serverId: string,
    by: string,
  ): Promise<{ wasOutOfService: boolean; notifiedFailoverIds: string[] }> {
    checked(() => checkServerId(serverId));
    const wasOutOfService = await putInService(this.deps.db, serverId, by);
    return {
      wasOutOfService,
      notifiedFailoverIds: wasOutOfService ? await this.notifyStandbyAvailable() : [],
    };
  }

  /** Tells the failovers waiting for a matched standby to look again (after servers were added). */
  async notifyStandbyAvailable(): Promise<string[]> {
    const notified: string[] = [];
    for (const failoverId of await waitingFailoverIds(this.deps.db)) {
      try {
        await this.deps.client.workflow.getHandle(failoverId).signal(standbyAvailableSignal);
        notified.push(failoverId);
      } catch (error) {
        if (!(error instanceof WorkflowNotFoundError)) throw error;
      }
    }
    return notified;
  }

  private async ifMonitored(
    serverId: string,
    send: (handle: WorkflowHandle<typeof slaveMonitorWorkflow>) => Promise<void>,
  ): Promise<void> {
    try {
      await send(this.monitorHandle(serverId));
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notMonitored(serverId);
      throw error;
    }
  }

  /**
   * A change through the running monitor (`update`), or without one (`otherwise`) when none runs. An update the
   * server aborted with its workflow task (isUpdateAbortedWithItsTask) is asked again, the monitor looked at
   * anew: the change is idempotent, and its steps that ran already change nothing the second time.
   */
  private async throughMonitor<T>(
    serverId: string,
    update: (monitor: WorkflowHandle<typeof slaveMonitorWorkflow>) => Promise<T>,
    otherwise: () => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      if (!(await this.isMonitorRunning(serverId))) return otherwise();
      try {
        return await this.unwrapped(() => update(this.monitorHandle(serverId)));
      } catch (error) {
        if (attempt >= MONITOR_UPDATE_ATTEMPTS || !isUpdateAbortedWithItsTask(error)) throw error;
      }
    }
  }

  private async unwrapped<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw rootFailure(error);
    }
  }
}

/** The fleet of a deployment: its site, task queue and failover tuning, over its Temporal client and pool. */
export const createFleet = (deps: {
  config: Pick<AppConfig, 'site' | 'temporal' | 'failover' | 'monitor' | 'liveness'>;
  client: Client;
  db: Pool;
  taskQueue?: string;
}): Fleet =>
  new Fleet({
    site: deps.config.site,
    client: deps.client,
    db: deps.db,
    taskQueue: deps.taskQueue ?? deps.config.temporal.taskQueue,
    tuning: deps.config.failover,
    checkpointPeriodMs: deps.config.liveness.checkpointPeriodMs,
    signalsPerRun: deps.config.monitor.signalsPerRun,
  });

/**
 * The monitor as it ran before the liveness layer: it waited on heartbeat signals from the agents with the
 * Slave's user-defined timer. Kept so that monitors started then replay unchanged; at their first new
 * workflow task they continue as new into the monitor of the liveness layer (./monitor.ts), which takes over
 * their state. Changes here would break those monitors: only the upgrade and the stop signal's payload check
 * (a handler that threw on a malformed signal) were added.
 */
import {
  ActivityFailure,
  ParentClosePolicy,
  defineQuery,
  defineUpdate,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { ApplicationFailure } from '@temporalio/workflow';
import type { FailoverTuning, MonitoredSlave, TakeOver } from '../domain/contracts';
import { ErrorType } from '../domain/errors';
import { failoverWorkflowId } from '../domain/names';
import { VmsFailoverTarget, VmsFolder, VmsServerId } from '../domain/search-attributes';
import type { MonitorState } from '../domain/monitor';
import type { BrokenReason, FailoverSettings } from '../domain/site';
import { checkHeartbeat, checkMaintenanceMs, checkSettings } from '../domain/validation';
import { localStep, takeOverStep } from './activity-options';
import type { MonitorInput, StopReason } from './definitions';
import { heartbeatSignal, stopMonitorSignal } from './definitions';
import { failoverWorkflow } from './failover';

/** The state of a monitor started before the liveness layer (what its `state` query answered). */
export interface MonitorStateBeforeLiveness {
  serverId: string;
  phase: 'monitoring' | 'failing-over' | 'failed-over';
  settings: FailoverSettings;
  sinceMs: number;
  deadlineMs: number;
  lastHeartbeatAtMs: number | null;
  maintenanceUntilMs: number | null;
  materialDriveLetters: string[];
  brokenDisks: string[];
  heartbeatsReceived: number;
  malformedHeartbeats: number;
  lateHeartbeats: number;
  broken: { reason: BrokenReason; atMs: number; failoverWorkflowId: string } | null;
  runs: number;
}

export interface MonitorInputBeforeLiveness {
  site: string;
  serverId: string;
  slave: MonitoredSlave;
  tuning: FailoverTuning;
  heartbeatsPerRun?: number;
  carried?: MonitorStateBeforeLiveness;
}

type MonitorResultBeforeLiveness =
  | { outcome: 'stopped'; reason: StopReason; state: MonitorStateBeforeLiveness }
  | { outcome: 'unprotected'; state: MonitorStateBeforeLiveness };

// The same names as the liveness monitor's (./definitions.ts), typed with this monitor's state.
const monitorStateQuery = defineQuery<MonitorStateBeforeLiveness>('state');
const updateSettingsUpdate = defineUpdate<MonitorStateBeforeLiveness, [FailoverSettings]>('updateSettings');
const maintenanceUpdate = defineUpdate<MonitorStateBeforeLiveness, [{ durationMs: number }]>('maintenance');

export const UPGRADE_TO_LIVENESS_PATCH = 'monitor-upgraded-to-liveness-layer';
const STOP_REASONS: StopReason[] = ['operator', 'restored', 'unprotected'];

/** The liveness monitor's first run, from this monitor's state: its Slave is entered in the roster again. */
const upgradedInput = (
  input: MonitorInputBeforeLiveness,
  state: MonitorStateBeforeLiveness,
  nowMs: number,
): MonitorInput => {
  const carried: MonitorState = {
    serverId: state.serverId,
    phase: state.phase,
    settings: state.settings,
    materialDriveLetters: state.materialDriveLetters,
    maintenanceUntilMs: state.maintenanceUntilMs,
    sinceMs: state.sinceMs,
    term: 0,
    lastHeartbeatAtMs: state.lastHeartbeatAtMs,
    lastReportAtMs: nowMs,
    brokenDisks: state.brokenDisks,
    heldBy: null,
    reportsReceived: 0,
    ignoredSignals: state.malformedHeartbeats,
    refutedFailovers: 0,
    lateHeartbeats: state.lateHeartbeats,
    broken: state.broken && {
      reason: state.broken.reason,
      atMs: state.broken.atMs,
      failoverId: state.broken.failoverWorkflowId,
    },
    runs: state.runs,
  };
  return {
    site: input.site,
    serverId: input.serverId,
    slave: {
      settings: state.settings,
      materialDriveLetters: state.materialDriveLetters,
      maintenanceUntilMs: state.maintenanceUntilMs,
    },
    tuning: input.tuning,
    carried,
  };
};

/** The server refuses more than 10,000 signals in one run; continue-as-new well before. */
export const DEFAULT_HEARTBEATS_PER_RUN = 5_000;
const HISTORY_EVENTS_PER_RUN = 10_000;

const invalidInput = (check: () => void): void => {
  try {
    check();
  } catch (error) {
    throw ApplicationFailure.create({
      type: ErrorType.InvalidInput,
      message: error instanceof Error ? error.message : String(error),
      nonRetryable: true,
    });
  }
};

const describe = (state: MonitorStateBeforeLiveness): string => {
  const iso = (ms: number | null) => (ms === null ? 'never' : new Date(ms).toISOString());
  switch (state.phase) {
    case 'monitoring':
      return [
        `**Monitoring ${state.serverId}** (timeout ${state.settings.timeoutMs} ms)`,
        `Last heartbeat: ${iso(state.lastHeartbeatAtMs)}; deemed broken at ${iso(state.deadlineMs)} without one.`,
        state.brokenDisks.length > 0
          ? `Broken disks: ${state.brokenDisks.join(', ')}.`
          : 'All disks healthy.',
        state.maintenanceUntilMs !== null ? `Maintenance until ${iso(state.maintenanceUntilMs)}.` : '',
      ].join('\n');
    case 'failing-over':
      return `**${state.serverId} is broken** (${state.broken?.reason}): failover ${state.broken?.failoverWorkflowId} running.`;
    case 'failed-over':
      return `**${state.serverId} is in Broken recorders**: failed over by ${state.broken?.failoverWorkflowId}. Waiting for restore. Late heartbeats ignored: ${state.lateHeartbeats}.`;
  }
};

export async function monitorBeforeLiveness(
  input: MonitorInputBeforeLiveness,
): Promise<MonitorResultBeforeLiveness> {
  const heartbeatsPerRun = input.heartbeatsPerRun ?? DEFAULT_HEARTBEATS_PER_RUN;
  // State exists before the first await, so queries and signals are answered from the first task on.
  const state: MonitorStateBeforeLiveness = input.carried
    ? { ...input.carried, runs: input.carried.runs + 1 }
    : initialState(input.serverId, input.slave, Date.now());
  let heartbeatsThisRun = 0;
  let wake = false;
  let stopReason: StopReason | undefined;
  let diskHealthToRecord = false;
  let lateHeartbeatToRecord: number | undefined;
  let pendingDisks = state.brokenDisks.map((letter) => ({ letter, healthy: false }));
  let slaveLoaded = input.carried !== undefined;

  /**
   * An update that arrives with the start must not save its settings before the first load reads them:
   * the load would then refuse a Slave just unprotected, or overwrite a new timeout with the one it read.
   */
  const afterSlaveLoaded = async (): Promise<void> => {
    if (patched('updates-after-slave-loaded')) await condition(() => slaveLoaded);
  };

  const allMaterialDisksBroken = (): boolean =>
    state.materialDriveLetters.length > 0 &&
    state.materialDriveLetters.every((letter) => state.brokenDisks.includes(letter));

  setHandler(monitorStateQuery, () => state);

  setHandler(heartbeatSignal, (payload) => {
    heartbeatsThisRun += 1;
    let heartbeat;
    try {
      heartbeat = checkHeartbeat(payload);
      if (heartbeat.serverId !== state.serverId) throw new Error(`heartbeat is for "${heartbeat.serverId}"`);
    } catch (error) {
      state.malformedHeartbeats += 1;
      wake ||= heartbeatsThisRun >= heartbeatsPerRun;
      log.warn('Malformed heartbeat ignored', { serverId: state.serverId, error: (error as Error).message });
      return;
    }
    if (state.phase !== 'monitoring') {
      // No split brain: the promoted server keeps the cameras whatever the broken one says.
      state.lateHeartbeats += 1;
      wake ||= heartbeatsThisRun >= heartbeatsPerRun;
      log.warn('Heartbeat from a failed-over Slave ignored', {
        serverId: state.serverId,
        phase: state.phase,
      });
      if (state.lateHeartbeats === 1) {
        lateHeartbeatToRecord = heartbeat.sentAtMs;
        wake = true;
      }
      return;
    }
    const now = Date.now();
    state.heartbeatsReceived += 1;
    state.lastHeartbeatAtMs = now;
    state.deadlineMs = now + state.settings.timeoutMs;
    const brokenDisks = heartbeat.disks.filter((disk) => !disk.healthy).map((disk) => disk.letter);
    if (brokenDisks.join() !== state.brokenDisks.join()) {
      state.brokenDisks = brokenDisks;
      diskHealthToRecord = true;
      wake = true;
      pendingDisks = heartbeat.disks;
    }
    wake ||= heartbeatsThisRun >= heartbeatsPerRun;
  });

  setHandler(stopMonitorSignal, (payload: unknown) => {
    // Anybody can signal; a payload without a reason once threw here, on every replay.
    const reason = (payload as { reason?: unknown } | null | undefined)?.reason as StopReason;
    if (!STOP_REASONS.includes(reason)) {
      state.malformedHeartbeats += 1;
      return;
    }
    stopReason = reason;
  });

  setHandler(
    updateSettingsUpdate,
    async (settings) => {
      await afterSlaveLoaded();
      await localStep('Save the new failover settings').saveSettings({ serverId: state.serverId, settings });
      state.settings = settings;
      state.deadlineMs = (state.lastHeartbeatAtMs ?? state.sinceMs) + settings.timeoutMs;
      if (!settings.protected) stopReason = 'unprotected';
      wake = true;
      return state;
    },
    {
      validator: (settings) => {
        invalidInput(() => checkSettings(settings));
        if (state.phase !== 'monitoring') {
          throw ApplicationFailure.create({
            type: ErrorType.ServerNotActive,
            message: `"${state.serverId}" is ${state.phase}: its settings cannot change now`,
            nonRetryable: true,
          });
        }
      },
    },
  );

  setHandler(
    maintenanceUpdate,
    async ({ durationMs }) => {
      await afterSlaveLoaded();
      const untilMs = durationMs === 0 ? null : Date.now() + durationMs;
      await localStep('Save the maintenance window').saveMaintenance({ serverId: state.serverId, untilMs });
      state.maintenanceUntilMs = untilMs;
      wake = true;
      return state;
    },
    {
      // Payloads come from outside: the declared type is not a guarantee.
      validator: (request: { durationMs: number } | null) => {
        invalidInput(() => checkMaintenanceMs(request?.durationMs));
        if (state.phase !== 'monitoring') {
          throw ApplicationFailure.create({
            type: ErrorType.ServerNotActive,
            message: `"${state.serverId}" is ${state.phase}: no maintenance window can start`,
            nonRetryable: true,
          });
        }
      },
    },
  );

  const shouldContinueAsNew = (): boolean =>
    heartbeatsThisRun >= heartbeatsPerRun ||
    workflowInfo().continueAsNewSuggested ||
    workflowInfo().historyLength >= HISTORY_EVENTS_PER_RUN;

  /**
   * Restores recording from this workflow, without waiting for the failover workflow to be created and
   * dispatched. When it fails, the failover workflow takes every step itself, as before this existed.
   */
  const takeOverRecording = async (
    failoverId: string,
    reason: BrokenReason,
    deadlineMs: number,
  ): Promise<TakeOver | undefined> => {
    if (!patched('take-over-in-monitor')) return undefined;
    try {
      return await takeOverStep(`Take over the recording of ${state.serverId}`).takeOverRecording({
        failoverId,
        slaveId: state.serverId,
        reason,
        deadlineMs,
      });
    } catch (error) {
      log.warn('Take-over failed: the failover workflow takes the steps', {
        serverId: state.serverId,
        failoverId,
        error: error instanceof ActivityFailure && error.cause ? error.cause.message : String(error),
      });
      return undefined;
    }
  };

  const failOver = async (reason: BrokenReason, deadlineMs: number): Promise<void> => {
    const failoverId = failoverWorkflowId(input.site, state.serverId, deadlineMs);
    state.phase = 'failing-over';
    state.broken = { reason, atMs: deadlineMs, failoverWorkflowId: failoverId };
    upsertSearchAttributes([{ key: VmsFolder, value: 'BrokenRecorders' }]);
    setCurrentDetails(describe(state));
    log.warn('Slave deemed broken: failing over', {
      serverId: state.serverId,
      reason,
      failoverId,
    });
    const takeOver = await takeOverRecording(failoverId, reason, deadlineMs);
    const failover = await startChild(failoverWorkflow, {
      workflowId: failoverId,
      args: [
        {
          site: input.site,
          slaveId: state.serverId,
          reason,
          deadlineMs,
          tuning: input.tuning,
          ...(takeOver !== undefined && { takeOver }),
        },
      ],
      // The failover must finish even if this monitor is stopped or terminated.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      staticSummary: `Failover of ${state.serverId} (${reason})`,
      staticDetails: [
        `Slave **${state.serverId}** was deemed broken (${reason}) at ${new Date(deadlineMs).toISOString()}.`,
        'Steps: move it to Broken recorders, claim a standby with the same drive letters, promote it,',
        'rebind the IP cameras (analog cameras stay), protect the promoted server, reinstall the plugins.',
      ].join('\n'),
      typedSearchAttributes: [
        { key: VmsServerId, value: state.serverId },
        { key: VmsFolder, value: 'BrokenRecorders' },
        { key: VmsFailoverTarget, value: 'pending' },
      ],
    });
    // Recording is restored once the cameras are rebound; plugin reinstalls may go on for a while and the
    // server may be restored in between, which ends this monitor.
    const finished = await Promise.race([
      failover.result().then(() => true),
      condition(() => stopReason !== undefined).then(() => false),
    ]);
    if (finished || stopReason === undefined) state.phase = 'failed-over';
  };

  if (!input.carried) {
    // PostgreSQL is the system of record: confirm the Slave may be monitored and take its current settings.
    const slave = await localStep('Check the Slave may be monitored').loadMonitoredSlave(state.serverId);
    state.settings = slave.settings;
    state.materialDriveLetters = slave.materialDriveLetters;
    state.maintenanceUntilMs = slave.maintenanceUntilMs;
    state.deadlineMs = (state.lastHeartbeatAtMs ?? state.sinceMs) + slave.settings.timeoutMs;
    slaveLoaded = true;
  }

  for (;;) {
    setCurrentDetails(describe(state));
    if (stopReason !== undefined) {
      await condition(allHandlersFinished);
      log.info('Monitor stopped', { serverId: state.serverId, reason: stopReason });
      return stopReason === 'unprotected'
        ? { outcome: 'unprotected', state }
        : { outcome: 'stopped', reason: stopReason, state };
    }
    if (state.phase !== 'failing-over' && patched(UPGRADE_TO_LIVENESS_PATCH)) {
      await condition(allHandlersFinished);
      log.info('Monitor upgraded to the liveness layer', { serverId: state.serverId });
      return continueAsNew<(input: MonitorInput) => Promise<unknown>>(
        upgradedInput(input, state, Date.now()),
      );
    }
    if (diskHealthToRecord) {
      diskHealthToRecord = false;
      await localStep('Record disk health').recordDiskHealth({
        serverId: state.serverId,
        disks: pendingDisks,
      });
      continue;
    }
    if (lateHeartbeatToRecord !== undefined && state.broken !== null) {
      const sentAtMs = lateHeartbeatToRecord;
      lateHeartbeatToRecord = undefined;
      await localStep('Record a late heartbeat (ignored)').recordLateHeartbeat({
        serverId: state.serverId,
        failoverWorkflowId: state.broken.failoverWorkflowId,
        sentAtMs,
      });
      continue;
    }
    let waitMs: number | undefined;
    if (state.phase === 'monitoring') {
      const now = Date.now();
      const inMaintenance = state.maintenanceUntilMs !== null && now < state.maintenanceUntilMs;
      if (!inMaintenance && allMaterialDisksBroken()) {
        await failOver('all-disks-broken', now);
        continue;
      }
      const dueAtMs = inMaintenance
        ? Math.max(state.deadlineMs, state.maintenanceUntilMs ?? 0)
        : state.deadlineMs;
      if (now >= dueAtMs) {
        await failOver('heartbeat-timeout', dueAtMs);
        continue;
      }
      waitMs = dueAtMs - now;
    }
    if (shouldContinueAsNew()) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof monitorBeforeLiveness>({ ...input, carried: state });
    }
    wake = false;
    const woken = () => wake || stopReason !== undefined;
    await (waitMs === undefined ? condition(woken) : condition(woken, waitMs));
  }
}

function initialState(serverId: string, slave: MonitoredSlave, now: number): MonitorStateBeforeLiveness {
  return {
    serverId,
    phase: 'monitoring',
    settings: slave.settings,
    sinceMs: now,
    deadlineMs: now + slave.settings.timeoutMs,
    lastHeartbeatAtMs: null,
    maintenanceUntilMs: slave.maintenanceUntilMs,
    materialDriveLetters: slave.materialDriveLetters,
    brokenDisks: [],
    heartbeatsReceived: 0,
    malformedHeartbeats: 0,
    lateHeartbeats: 0,
    broken: null,
    runs: 1,
  };
}

/**
 * One monitor per protected Slave, on the liveness layer: the detector reports what the gateways hear
 * (rare checkpoints, disk health changes at once, a passed deadline at once) and the monitor acts on it. A
 * durable backstop timer asks PostgreSQL itself when no report came for a checkpoint period and a timeout.
 *
 * The loop reads as: wait for a report (or the backstop), decide (domain/monitor.ts), act. Handlers only
 * validate and queue; settings and maintenance updates take the same turn as the loop's actions, so an
 * update is applied before a deadline is acted on, or refused, never reported applied when it was not.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  patched,
  setCurrentDetails,
  setDefaultSignalHandler,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { TakeOver } from '../domain/contracts';
import { ErrorType } from '../domain/errors';
import type { LivenessReport, SilenceClaim } from '../domain/liveness';
import { brokenLetters, checkLivenessReport } from '../domain/liveness';
import type { MonitorState } from '../domain/monitor';
import { backstopDueMs, decideOnReport, inMaintenance } from '../domain/monitor';
import { failoverWorkflowShown } from '../domain/failover-shown';
import { failoverWorkflowId } from '../domain/names';
import { VmsFolder } from '../domain/search-attributes';
import type { BrokenReason } from '../domain/site';
import { checkMaintenanceMs, checkSettings } from '../domain/validation';
import { localStep, takeOverStep } from './activity-options';
import type { MonitorInput, MonitorResult, StopReason } from './definitions';
import {
  heartbeatSignal,
  livenessSignal,
  maintenanceUpdate,
  monitorStateQuery,
  stopMonitorSignal,
  updateSettingsUpdate,
} from './definitions';
import { failoverWorkflow } from './failover';
import type { MonitorInputBeforeLiveness } from './monitor-before-liveness';
import { monitorBeforeLiveness } from './monitor-before-liveness';

/** Marks the runs of the liveness layer's monitor; runs started before it replay the earlier monitor. */
export const LIVENESS_MONITOR_PATCH = 'monitor-of-the-liveness-layer';

/**
 * A run also wakes to continue as new when its signals are in, not only on a report: signals that are no
 * report (ignored, malformed) wake nothing, and a failed-over monitor hears no checkpoints, so its history grew
 * without bound. Runs started before go on waiting for a report.
 */
export const CONTINUE_AS_NEW_ON_ANY_SIGNAL_PATCH = 'monitor-continue-as-new-on-any-signal';

/**
 * The run's patches are asked before its registration (a local activity), in its first workflow task. Asked
 * after it, a patch could be recorded in the second task when the registration's result came back after the
 * first task had completed, and a replay, which resolves the registration within the first task, then failed
 * on that patch's marker and left the monitor stuck (docs/guarantees.md). Runs started before ask as they did.
 */
const PATCHES_BEFORE_REGISTRATION_PATCH = 'monitor-patches-before-registration';

/**
 * Nothing the run decides depends on the workflow task it runs in, only on what it was sent and when that
 * arrived. The result of a local activity can come back in a later workflow task than the one a replay
 * resolves it in (under load, docs/guarantees.md), so code that runs after one must not read the task's clock,
 * history length or patches: reports carry the time their signal arrived, the backstop the time its timer
 * fired, a maintenance window the time its update arrived; the run continues as new after a count of what it
 * took in; its timer is settled before new input is looked at; every patch is asked in its first task. Runs
 * started before decide as they did.
 */
const DECIDES_AT_ARRIVAL_PATCH = 'monitor-decides-at-arrival-times';

/**
 * Reports that arrived are acted on before a stop: the detector opens a Slave's failover once its deadline
 * report is delivered, so a monitor stopped (or unprotected) in the same moment must still take that failover
 * over before it ends. Runs started before stop first.
 */
const REPORTS_BEFORE_STOP_PATCH = 'monitor-acts-on-reports-before-stop';

/**
 * A broken Slave heard again is fenced at every such report while its fence is pending, not only at the first:
 * heard late by its agent while the VMS could not reach it, it is fenced once the VMS reaches it (the
 * detector's next report). Runs started before fence at the first report only.
 */
export const FENCE_ON_EVERY_LATE_REPORT_PATCH = 'fence-on-every-late-report';

/** Signals a run takes before continue-as-new keeps its history short (cheap to replay when evicted). */
export const DEFAULT_SIGNALS_PER_RUN = 500;
const HISTORY_EVENTS_PER_RUN = 4_000;
export const DEFAULT_CHECKPOINT_PERIOD_MS = 10 * 60_000;
const STOP_REASONS: StopReason[] = ['operator', 'restored', 'unprotected'];

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

const notMonitoring = (state: MonitorState, what: string): ApplicationFailure =>
  ApplicationFailure.create({
    type: ErrorType.ServerNotActive,
    message: `"${state.serverId}" is ${state.phase}: ${what}`,
    nonRetryable: true,
  });

const failureType = (error: unknown): string | undefined =>
  error instanceof ActivityFailure && error.cause instanceof ApplicationFailure
    ? (error.cause.type ?? undefined)
    : undefined;

const iso = (ms: number | null): string => (ms === null ? 'never' : new Date(ms).toISOString());

const describe = (state: MonitorState): string => {
  switch (state.phase) {
    case 'monitoring':
      return [
        `**Monitoring ${state.serverId}** (timeout ${state.settings.timeoutMs} ms, detector term ${state.term || 'not yet heard'})`,
        `Last heartbeat: ${iso(state.lastHeartbeatAtMs)}; last report from the detector: ${iso(state.lastReportAtMs)}.`,
        state.brokenDisks.length > 0
          ? `Broken disks: ${state.brokenDisks.join(', ')}.`
          : 'All disks healthy.',
        state.maintenanceUntilMs !== null ? `Maintenance until ${iso(state.maintenanceUntilMs)}.` : '',
        state.heldBy !== null
          ? `FAILOVER HELD by ${state.heldBy}: many Slaves went silent at once; release or dismiss it (vms hold).`
          : '',
      ]
        .filter((line) => line !== '')
        .join('\n');
    case 'failing-over':
      return `**${state.serverId} is broken** (${state.broken?.reason}): taking over its recording (${state.broken?.failoverId}).`;
    case 'failed-over':
      return `**${state.serverId} is in Broken recorders**: failed over by ${state.broken?.failoverId}. Waiting for restore. Late heartbeats: ${state.lateHeartbeats}.`;
  }
};

const initialState = (input: MonitorInput, nowMs: number): MonitorState => ({
  serverId: input.serverId,
  phase: 'monitoring',
  settings: input.slave.settings,
  materialDriveLetters: input.slave.materialDriveLetters,
  maintenanceUntilMs: input.slave.maintenanceUntilMs,
  sinceMs: nowMs,
  term: 0,
  lastHeartbeatAtMs: null,
  lastReportAtMs: nowMs,
  brokenDisks: [],
  heldBy: null,
  reportsReceived: 0,
  ignoredSignals: 0,
  refutedFailovers: 0,
  lateHeartbeats: 0,
  broken: null,
  runs: 1,
});

/** One durable timer at a time, kept across reports: a checkpoint moves the due time, not the timer. */
class Backstop {
  private scope: CancellationScope | undefined;
  private armedForMs: number | undefined;
  fired = false;
  /** The workflow time of the task its timer fired in. */
  firedAtMs = 0;

  arm(dueMs: number): void {
    if (this.armedForMs !== undefined && this.armedForMs <= dueMs) return;
    this.scope?.cancel();
    const scope = new CancellationScope();
    this.scope = scope;
    this.armedForMs = dueMs;
    this.fired = false;
    scope
      .run(() => sleep(Math.max(1, dueMs - Date.now())))
      .then(
        () => {
          if (this.scope !== scope) return;
          this.fired = true;
          this.firedAtMs = Date.now();
        },
        () => undefined,
      );
  }

  /** The timer fired: the next `arm` sets a new one. */
  consume(): void {
    this.scope = undefined;
    this.armedForMs = undefined;
    this.fired = false;
  }

  disarm(): void {
    this.scope?.cancel();
    this.consume();
  }
}

export async function slaveMonitorWorkflow(
  input: MonitorInput | MonitorInputBeforeLiveness,
): Promise<MonitorResult | Awaited<ReturnType<typeof monitorBeforeLiveness>>> {
  if (!patched(LIVENESS_MONITOR_PATCH)) return monitorBeforeLiveness(input as MonitorInputBeforeLiveness);
  return livenessMonitor(input as MonitorInput);
}

async function livenessMonitor(input: MonitorInput): Promise<MonitorResult> {
  const { serverId } = input;
  const signalsPerRun = input.signalsPerRun ?? DEFAULT_SIGNALS_PER_RUN;
  const checkpointPeriodMs = input.checkpointPeriodMs ?? DEFAULT_CHECKPOINT_PERIOD_MS;
  // State exists before the first await, so queries and signals are answered from the first task on.
  const state: MonitorState = input.carried
    ? { ...input.carried, runs: input.carried.runs + 1 }
    : initialState(input, Date.now());
  // Every patch is asked here, in the first workflow task, before the first local activity can resolve.
  const atArrival = patched(DECIDES_AT_ARRIVAL_PATCH);
  const reportsBeforeStop = patched(REPORTS_BEFORE_STOP_PATCH);
  let wakesToContinueAsNew =
    atArrival ||
    (patched(PATCHES_BEFORE_REGISTRATION_PATCH) ? patched(CONTINUE_AS_NEW_ON_ANY_SIGNAL_PATCH) : undefined);
  /** Each report with the workflow time its signal arrived. */
  const reports: { report: LivenessReport; receivedAtMs: number }[] = [];
  const backstop = new Backstop();
  let stopReason: StopReason | undefined;
  let signalsThisRun = 0;
  // Registration runs first, then the loop's actions and the updates take turns: never two at once.
  let busy = input.registered !== true;
  const exclusive = async <T>(work: () => Promise<T>): Promise<T> => {
    while (busy) await condition(() => !busy);
    busy = true;
    try {
      return await work();
    } finally {
      busy = false;
    }
  };

  setHandler(monitorStateQuery, () => state);

  // Anybody with access to the namespace can signal: every payload is checked, a bad one counted and ignored.
  setHandler(livenessSignal, (payload: unknown) => {
    signalsThisRun += 1;
    try {
      reports.push({ report: checkLivenessReport(payload), receivedAtMs: Date.now() });
    } catch (error) {
      state.ignoredSignals += 1;
      log.warn('Malformed liveness report ignored', { serverId, error: (error as Error).message });
    }
  });
  setHandler(heartbeatSignal, () => {
    signalsThisRun += 1;
    state.ignoredSignals += 1;
    log.warn('Heartbeat signal ignored: agents report to the heartbeat gateway', { serverId });
  });
  setHandler(stopMonitorSignal, (payload: unknown) => {
    signalsThisRun += 1;
    const reason = (payload as { reason?: unknown } | null | undefined)?.reason as StopReason;
    if (!STOP_REASONS.includes(reason)) {
      state.ignoredSignals += 1;
      log.warn('Stop signal with no valid reason ignored', { serverId });
      return;
    }
    stopReason ??= reason;
  });

  setHandler(
    updateSettingsUpdate,
    (settings) => {
      if (atArrival) signalsThisRun += 1;
      return exclusive(async () => {
        if (state.phase !== 'monitoring') throw notMonitoring(state, 'its settings cannot change now');
        await localStep('Save the new failover settings').saveSettings({ serverId, settings });
        state.settings = settings;
        if (!settings.protected) stopReason ??= 'unprotected';
        return state;
      });
    },
    {
      validator: (settings: unknown) => {
        invalidInput(() => checkSettings(settings));
        if (state.phase !== 'monitoring') throw notMonitoring(state, 'its settings cannot change now');
      },
    },
  );

  setHandler(
    maintenanceUpdate,
    (request) => {
      if (atArrival) signalsThisRun += 1;
      const receivedAtMs = Date.now();
      return exclusive(async () => {
        if (state.phase !== 'monitoring') throw notMonitoring(state, 'no maintenance window can start');
        const startsAtMs = atArrival ? receivedAtMs : Date.now();
        const untilMs = request.durationMs === 0 ? null : startsAtMs + request.durationMs;
        await localStep('Save the maintenance window').saveMaintenance({ serverId, untilMs });
        state.maintenanceUntilMs = untilMs;
        return state;
      });
    },
    {
      validator: (request: { durationMs: number } | null) => {
        invalidInput(() => checkMaintenanceMs(request?.durationMs));
        if (state.phase !== 'monitoring') throw notMonitoring(state, 'no maintenance window can start');
      },
    },
  );

  // A signal of no known name would otherwise wait in the buffer, uncounted, until the run ends. Set after
  // every named handler: buffered signals go to the handlers there are when it is set, and a stop sent as the
  // monitor starts must reach its own.
  setDefaultSignalHandler((signalName: string) => {
    signalsThisRun += 1;
    state.ignoredSignals += 1;
    log.warn('Unknown signal ignored', { serverId, signalName });
  });

  const failOver = async (reason: BrokenReason, claim: SilenceClaim): Promise<void> => {
    const failoverId = failoverWorkflowId(input.site, serverId, claim.deadlineMs);
    state.phase = 'failing-over';
    state.broken = { reason, atMs: claim.deadlineMs, failoverId };
    state.heldBy = null;
    upsertSearchAttributes([{ key: VmsFolder, value: 'BrokenRecorders' }]);
    setCurrentDetails(describe(state));
    log.warn('Slave deemed broken: failing over', { serverId, reason, failoverId });
    let takeOver: TakeOver | undefined;
    try {
      takeOver = await takeOverStep(`Take over the recording of ${serverId}`).takeOverRecording({
        failoverId,
        slaveId: serverId,
        reason,
        deadlineMs: claim.deadlineMs,
        claim,
      });
    } catch (error) {
      if (failureType(error) === ErrorType.FailoverNotConfirmed) {
        // The detector's view was not the last word (another gateway heard it, a newer term, a new window).
        log.info('Failover not confirmed: the Slave stays in service', {
          serverId,
          failoverId,
          why: error instanceof ActivityFailure ? error.cause?.message : String(error),
        });
        state.phase = 'monitoring';
        state.broken = null;
        state.refutedFailovers += 1;
        upsertSearchAttributes([{ key: VmsFolder, value: 'Servers' }]);
        return;
      }
      log.warn('Take-over failed: the failover workflow takes the steps', {
        serverId,
        failoverId,
        error: error instanceof ActivityFailure && error.cause ? error.cause.message : String(error),
      });
    }
    await startChild(failoverWorkflow, {
      workflowId: failoverId,
      args: [
        {
          site: input.site,
          slaveId: serverId,
          reason,
          deadlineMs: claim.deadlineMs,
          tuning: input.tuning,
          claim,
          ...(takeOver !== undefined && { takeOver }),
        },
      ],
      // The failover must finish even if this monitor is stopped, continued as new or terminated.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      ...failoverWorkflowShown(serverId, reason, claim.deadlineMs),
    });
    // The failover workflow owns the rest (a standby to wait for, plugins); this monitor waits for restore.
    state.phase = 'failed-over';
  };

  const onReport = async ({ report, receivedAtMs }: (typeof reports)[number]): Promise<void> => {
    state.reportsReceived += 1;
    const nowMs = atArrival ? receivedAtMs : Date.now();
    const decision = decideOnReport(state, report, nowMs);
    state.term = report.term;
    state.lastReportAtMs = nowMs;
    if (report.kind !== 'held' && report.lastSeenMs !== null && state.phase === 'monitoring') {
      state.lastHeartbeatAtMs = report.lastSeenMs;
    }
    if (report.kind === 'checkpoint' || report.kind === 'disks') state.heldBy = null;
    switch (decision.action) {
      case 'ignore':
      case 'note':
        return;
      case 'hold':
        state.heldBy = decision.holdId;
        log.warn('Failover held: many Slaves silent at once', { serverId, holdId: decision.holdId });
        return;
      case 'record-disks':
        state.brokenDisks = brokenLetters(decision.disks);
        await localStep('Record disk health').recordDiskHealth({ serverId, disks: decision.disks });
        if (decision.failOver)
          await failOver('all-disks-broken', { term: report.term, lastSeenMs: null, deadlineMs: nowMs });
        return;
      case 'fail-over':
        await failOver(decision.reason, decision.claim);
        return;
      case 'late-heartbeat':
        state.lateHeartbeats += 1;
        if (state.broken === null) return;
        if (state.lateHeartbeats === 1) {
          await localStep('Record a late heartbeat (ignored)').recordLateHeartbeat({
            serverId,
            failoverWorkflowId: state.broken.failoverId,
            sentAtMs: decision.lastSeenMs,
          });
        } else if (atArrival || patched(FENCE_ON_EVERY_LATE_REPORT_PATCH)) {
          await localStep('Heard again: fence it if the VMS could not before').fenceIfPending(serverId);
        }
        return;
    }
  };

  /** No report for too long: the detector may be gone, or may have lost this Slave. Ask PostgreSQL. */
  const onBackstop = async (): Promise<void> => {
    const dueMs = backstopDueMs(state, checkpointPeriodMs);
    const firedAtMs = atArrival ? backstop.firedAtMs : Date.now();
    backstop.consume();
    if (atArrival) signalsThisRun += 1;
    if (firedAtMs < dueMs || state.phase !== 'monitoring') return;
    const verdict = await localStep('No report lately: check whether the Slave is heard').checkSilence(
      serverId,
    );
    state.lastReportAtMs = atArrival ? firedAtMs : Date.now();
    if (verdict.verdict === 'heard') {
      state.lastHeartbeatAtMs = verdict.lastSeenMs;
      return;
    }
    if (verdict.verdict === 'unobserved') {
      log.warn('No liveness detector is running: nobody hears heartbeats', { serverId });
      return;
    }
    if (inMaintenance(state, verdict.claim.deadlineMs)) return;
    log.warn('The backstop found the Slave silent: failing over without the detector', { serverId });
    await failOver('heartbeat-timeout', verdict.claim);
  };

  const stop = async (reason: StopReason): Promise<MonitorResult> => {
    await condition(allHandlersFinished);
    await localStep('Remove the Slave from the liveness roster').endMonitoring(serverId);
    log.info('Monitor stopped', { serverId, reason });
    return reason === 'unprotected'
      ? { outcome: 'unprotected', state }
      : { outcome: 'stopped', reason, state };
  };

  const shouldContinueAsNew = (): boolean =>
    signalsThisRun >= signalsPerRun ||
    (!atArrival &&
      (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= HISTORY_EVENTS_PER_RUN));
  const settleBackstop = (): void => {
    if (state.phase === 'monitoring') backstop.arm(backstopDueMs(state, checkpointPeriodMs));
    else backstop.disarm();
  };
  if (input.registered !== true) {
    // PostgreSQL is the system of record: confirm the Slave may be monitored, take its current settings, and
    // enter it in the detector's roster (its silence counts from now).
    const slave = await localStep('Enter the Slave in the liveness roster').startMonitoring({
      serverId,
      failedOver: state.phase !== 'monitoring',
    });
    if (slave !== null) {
      state.settings = slave.settings;
      state.materialDriveLetters = slave.materialDriveLetters;
      state.maintenanceUntilMs = slave.maintenanceUntilMs;
    }
    busy = false;
  }

  wakesToContinueAsNew ??= patched(CONTINUE_AS_NEW_ON_ANY_SIGNAL_PATCH);
  for (;;) {
    // What the last action started is finished before new input is looked at: a replay that resolved that
    // action a workflow task earlier, before the input had arrived, then makes the same commands in order.
    if (atArrival) {
      settleBackstop();
      if (!allHandlersFinished()) {
        await condition(allHandlersFinished);
        continue;
      }
    }
    setCurrentDetails(describe(state));
    if (!reportsBeforeStop && stopReason !== undefined) return stop(stopReason);
    const report = reports.shift();
    if (report !== undefined) {
      await exclusive(() => onReport(report));
      continue;
    }
    if (stopReason !== undefined) return stop(stopReason);
    if (backstop.fired) {
      await exclusive(onBackstop);
      continue;
    }
    if (shouldContinueAsNew()) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof livenessMonitor>({ ...input, registered: true, carried: state });
    }
    if (!atArrival) settleBackstop();
    await condition(
      () =>
        reports.length > 0 ||
        stopReason !== undefined ||
        backstop.fired ||
        (wakesToContinueAsNew && shouldContinueAsNew()),
    );
  }
}

/**
 * The monitor of a protected Slave: its state (what the `state` query answers) and the decisions its loop
 * takes, as pure functions with their own specs. Workflow-safe.
 */
import type { LivenessReport } from './liveness';
import { allMaterialDisksBroken, brokenLetters } from './liveness';
import type { BrokenReason, DiskHealth, FailoverSettings } from './site';

export type MonitorPhase = 'monitoring' | 'failing-over' | 'failed-over';

export interface MonitorState {
  serverId: string;
  phase: MonitorPhase;
  settings: FailoverSettings;
  materialDriveLetters: string[];
  maintenanceUntilMs: number | null;
  /** When this monitor began (its first run). */
  sinceMs: number;
  /** The detector term of the last report (shown; a failover confirms its own term against PostgreSQL). */
  term: number;
  /** The last heartbeat heard, as the detector reported it. */
  lastHeartbeatAtMs: number | null;
  /** When the last report arrived (workflow clock): the durable backstop counts from here. */
  lastReportAtMs: number;
  brokenDisks: string[];
  /** The mass-failure hold this Slave's failover waits in, while it does. */
  heldBy: string | null;
  reportsReceived: number;
  /** Signals that were malformed, of an unknown kind, or meant for the agent path: counted, ignored. */
  ignoredSignals: number;
  /** Failovers the detector decided that PostgreSQL did not confirm: the Slave stayed in service. */
  refutedFailovers: number;
  lateHeartbeats: number;
  /** Set once the Slave is deemed broken. */
  broken: { reason: BrokenReason; atMs: number; failoverId: string } | null;
  runs: number;
}

export type ReportDecision =
  | { action: 'ignore'; why: 'not-monitoring' | 'in-maintenance' }
  /** All is well as of `lastSeenMs`. */
  | { action: 'note' }
  | { action: 'record-disks'; disks: DiskHealth[]; failOver: boolean }
  | {
      action: 'fail-over';
      reason: 'heartbeat-timeout';
      claim: { term: number; lastSeenMs: number | null; deadlineMs: number };
    }
  | { action: 'hold'; holdId: string }
  /** A Slave already failed over was heard again. */
  | { action: 'late-heartbeat'; lastSeenMs: number };

export const inMaintenance = (state: Pick<MonitorState, 'maintenanceUntilMs'>, atMs: number): boolean =>
  state.maintenanceUntilMs !== null && atMs < state.maintenanceUntilMs;

/**
 * What a report from the detector means for the monitor, given its state at `nowMs`. A report is not trusted
 * for its term (anybody can signal): a failover it leads to is confirmed against PostgreSQL first.
 */
export const decideOnReport = (
  state: MonitorState,
  report: LivenessReport,
  nowMs: number,
): ReportDecision => {
  if (state.phase !== 'monitoring') {
    // Late: heard after the Slave was deemed broken, and after the heartbeat that was last heard then (which
    // may be the one that reported its disks broken, received a moment after the workflow's clock read).
    const heardAfterBreaking =
      state.phase === 'failed-over' &&
      report.kind !== 'deadline' &&
      report.kind !== 'held' &&
      report.lastSeenMs !== null &&
      report.lastSeenMs > Math.max(state.broken?.atMs ?? Infinity, state.lastHeartbeatAtMs ?? -Infinity);
    return heardAfterBreaking
      ? { action: 'late-heartbeat', lastSeenMs: report.lastSeenMs as number }
      : { action: 'ignore', why: 'not-monitoring' };
  }
  switch (report.kind) {
    case 'checkpoint':
    case 'disks': {
      if (brokenLetters(report.disks).join() === state.brokenDisks.join()) return { action: 'note' };
      const failOver =
        allMaterialDisksBroken(state.materialDriveLetters, report.disks) && !inMaintenance(state, nowMs);
      return { action: 'record-disks', disks: report.disks, failOver };
    }
    case 'deadline':
      if (inMaintenance(state, report.deadlineMs)) return { action: 'ignore', why: 'in-maintenance' };
      return {
        action: 'fail-over',
        reason: 'heartbeat-timeout',
        claim: { term: report.term, lastSeenMs: report.lastSeenMs, deadlineMs: report.deadlineMs },
      };
    case 'held':
      return { action: 'hold', holdId: report.holdId };
  }
};

/**
 * The durable backstop: with no report for a checkpoint period and a timeout (and a margin for a checkpoint
 * running late), the monitor asks PostgreSQL itself whether its Slave is silent.
 */
export const backstopDueMs = (
  state: Pick<MonitorState, 'lastReportAtMs' | 'settings'>,
  checkpointPeriodMs: number,
): number =>
  state.lastReportAtMs + checkpointPeriodMs + state.settings.timeoutMs + backstopMarginMs(checkpointPeriodMs);

export const backstopMarginMs = (checkpointPeriodMs: number): number =>
  Math.max(5_000, Math.round(checkpointPeriodMs / 10));

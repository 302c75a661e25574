/**
 * Signals, queries and updates of the workflows, defined once and imported by clients, with the workflows'
 * inputs, results and state. The payloads they share with activities are in domain/contracts.ts.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { FailoverTuning, MonitoredSlave, TakeOver } from '../domain/contracts';
import type { LivenessReport, SilenceClaim } from '../domain/liveness';
import type { MonitorState } from '../domain/monitor';
import type { BrokenReason, FailoverSettings } from '../domain/site';
import type { Heartbeat } from '../domain/validation';

export type { MonitorPhase, MonitorState } from '../domain/monitor';

export type StopReason = 'operator' | 'restored' | 'unprotected';

/** Sent by the heartbeat agent on each Slave (monitors started before the liveness layer). */
export const heartbeatSignal = defineSignal<[Heartbeat]>('heartbeat');
/** Sent by the liveness detector: checkpoints, disk health changes, deadlines, holds. */
export const livenessSignal = defineSignal<[LivenessReport]>('liveness');
/** Ends a monitor: stopped by an operator, or its server restored as a standby. */
export const stopMonitorSignal = defineSignal<[{ reason: StopReason }]>('stopMonitor');
export const monitorStateQuery = defineQuery<MonitorState>('state');
/** Changes the failover settings of a monitored Slave; bad values are rejected and change nothing. */
export const updateSettingsUpdate = defineUpdate<MonitorState, [FailoverSettings]>('updateSettings');
/** Planned maintenance (a reboot): no failover until the window ends. 0 ends a window early. */
export const maintenanceUpdate = defineUpdate<MonitorState, [{ durationMs: number }]>('maintenance');

export type FailoverStep =
  | 'moving to Broken recorders'
  | 'claiming a matched standby'
  | 'waiting for a matched standby'
  | 'promoting the standby'
  | 'rebinding IP cameras'
  | 'reinstalling plugins'
  | 'completed';

export interface FailoverState {
  failoverId: string;
  slaveId: string;
  step: FailoverStep;
  failoverServerId: string | null;
  standbyChecks: number;
}

/** Tells a failover waiting for a matched standby that one may have appeared. */
export const standbyAvailableSignal = defineSignal('standbyAvailable');
export const failoverStateQuery = defineQuery<FailoverState>('state');

export interface FailoverInput {
  site: string;
  slaveId: string;
  reason: BrokenReason;
  /** When the Slave was due to be deemed broken. */
  deadlineMs: number;
  tuning: FailoverTuning;
  /** The detector's decision, confirmed when the failover begins (absent in failovers started before it). */
  claim?: SilenceClaim;
  /** The steps the monitor already took to restore recording; the failover workflow goes on from there. */
  takeOver?: TakeOver;
}

export interface MonitorInput {
  site: string;
  serverId: string;
  slave: MonitoredSlave;
  tuning: FailoverTuning;
  /** How often the detector sends a checkpoint: the durable backstop waits this long and a timeout. */
  checkpointPeriodMs?: number;
  /** Signals a run takes before continue-as-new keeps its history short (default 500). */
  signalsPerRun?: number;
  /** The Slave is in the detector's roster already: a run continued from this monitor's own. */
  registered?: boolean;
  /** State carried over by continue-as-new; absent on the first run. */
  carried?: MonitorState;
}

export type MonitorResult =
  | { outcome: 'stopped'; reason: StopReason; state: MonitorState }
  | { outcome: 'unprotected'; state: MonitorState };

export interface RestoreInput {
  site: string;
  serverId: string;
  driveLetters?: string[];
}

export interface RestoreWorkflowResult {
  serverId: string;
  driveLetters: string[];
  analogCameraIds: string[];
  notifiedFailoverIds: string[];
}

export interface AlertDeliveryInput {
  alertId: string;
  /** The webhooks by name (origin and path): their full URLs, which may hold credentials, stay in the config. */
  webhooks: string[];
}

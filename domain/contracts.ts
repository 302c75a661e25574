/**
 * The payloads the workflows, the activities and the clients exchange, defined once. Workflow-safe: types only.
 * They are recorded in workflow histories: a field renamed here breaks running workflows and the replay tests.
 */
import type { SilenceClaim } from './liveness';
import type { BrokenReason, FailoverSettings } from './site';

/** Retries and waits of a failover, from the configuration (infra/config.ts) to the workflows' inputs. */
export interface FailoverTuning {
  /** How often a Slave waiting for a matched standby looks again, besides being told when one appears. */
  standbyRecheckMs: number;
  pluginRetryInitialMs: number;
  pluginRetryMaxIntervalMs: number;
  pluginRetryMaxAttempts: number;
  /** How long the promoted server may take to come up before the plugin reinstall starts retrying. */
  serverUpTimeoutMs: number;
  /**
   * How long the VMS may keep answering that a claimed standby cannot be reached (its promotion or the
   * rebind to it) before the standby is released, taken out of service, and the next one claimed.
   */
  standbyBudgetMs: number;
  /**
   * Checks for a standby one run of a waiting failover makes before it continues as new (its history stays
   * short). Absent in the inputs of failovers started before it: 500.
   */
  standbyChecksPerRun?: number;
}

/** The monitored Slave as PostgreSQL described it when the monitor was started. */
export interface MonitoredSlave {
  settings: FailoverSettings;
  materialDriveLetters: string[];
  maintenanceUntilMs: number | null;
}

/** A Slave deemed broken: the failover that opens for it. */
export interface FailoverStart {
  failoverId: string;
  slaveId: string;
  reason: BrokenReason;
  /** When the Slave was due to be deemed broken. */
  deadlineMs: number;
  /** The detector's decision, confirmed against PostgreSQL before anything moves. */
  claim?: SilenceClaim;
}

/** What a failover has to restore, read when the Slave is moved to Broken recorders. */
export interface FailoverPlan {
  failoverId: string;
  slaveId: string;
  driveLetters: string[];
  plugins: string[];
}

/** A matched standby claimed for the failover (`serverId`), or none free yet. */
export type ClaimResult = { claimed: true; serverId: string } | { claimed: false; firstWait: boolean };

export interface CameraMove {
  ipCameraIds: string[];
  /** Analog cameras are wired to the broken server: they cannot move. */
  analogCameraIds: string[];
}

/**
 * What the monitor's take-over did, up to the IP cameras committed to the promoted server. `cameras` is null
 * when no matched standby was free: the failover workflow then waits for one and finishes the steps.
 */
export interface TakeOver {
  plan: FailoverPlan;
  claim: ClaimResult;
  cameras: CameraMove | null;
}

/**
 * How a plugin reinstall of a failover ended for it: installed on its promoted server, or handed over to the
 * failover of that server, which broke in turn before the plugin was installed there and reinstalls it on
 * its own promoted server.
 */
export type PluginOutcome =
  | { plugin: string; status: 'installed' }
  | { plugin: string; status: 'needs-manual-action'; error: string }
  | { plugin: string; status: 'handed-over'; toFailoverId: string };

/** A reinstall step that ended without failing: installed, or found handed over to a later failover. */
export type PluginReinstallEnd = { status: 'installed' } | { status: 'handed-over'; toFailoverId: string };

/** A plugin of a failover that a later failover took over. */
export interface HandedOverPlugin {
  plugin: string;
  toFailoverId: string;
}

export interface FailoverResult {
  failoverId: string;
  slaveId: string;
  failoverServerId: string;
  ipCameraIds: string[];
  /** Analog cameras are wired to the broken server: they cannot move. */
  analogCameraIds: string[];
  plugins: PluginOutcome[];
}

/** A repaired server back as a standby failover server. */
export interface StandbyRestore {
  serverId: string;
  driveLetters: string[];
  analogCameraIds: string[];
  /** Failovers waiting for a matched standby, oldest first: the restored server may serve one of them. */
  waitingFailoverIds: string[];
}

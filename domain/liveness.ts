/**
 * When a protected Slave counts as silent, and what the liveness detector tells its monitor. Pure rules,
 * workflow-safe: the detector applies them to what it holds in memory, the monitor's backstop to what
 * PostgreSQL holds, so both decide alike.
 *
 * One clock judges silence: the observer's (the gateway that received a heartbeat, the detector that
 * started a term). The agent's own timestamp is kept for the record only.
 */
import type { BrokenReason, DiskHealth } from './site';
import { InvalidInput, checkDisks } from './validation';

export interface SilenceClock {
  /** When a heartbeat of this server was last received; null when never. */
  lastSeenMs: number | null;
  /** Heartbeats received before this moment do not count (the monitor started, or the server was promoted). */
  monitoredSinceMs: number;
  /**
   * With no heartbeat since `monitoredSinceMs`, silence counts from here: monitoring start for a Slave,
   * server-up (or promotion + the server-up timeout) for a promoted failover server.
   */
  silenceFromMs: number;
  /**
   * When the current detector term began to hear heartbeats. Nobody could hear them before (the orchestrator
   * was starting, or out): every Slave gets a full timeout from here.
   */
  observingSinceMs: number;
  timeoutMs: number;
  maintenanceUntilMs: number | null;
  /** A server heard only through the VMS: when its status began to be heard (null: not now). */
  vmsOnly?: { observingSinceMs: number | null };
}

/**
 * The moment the server is deemed broken unless it is heard before. Infinity while nobody can hear it: a
 * server heard only through the VMS while the VMS's status is not heard.
 */
export const silenceDeadline = (clock: SilenceClock): number => {
  const heard = clock.lastSeenMs !== null && clock.lastSeenMs >= clock.monitoredSinceMs;
  const base = heard ? (clock.lastSeenMs as number) : clock.silenceFromMs;
  const vmsObservingSince = clock.vmsOnly === undefined ? -Infinity : clock.vmsOnly.observingSinceMs;
  if (vmsObservingSince === null) return Infinity;
  const deadline = Math.max(base, clock.observingSinceMs, vmsObservingSince) + clock.timeoutMs;
  return clock.maintenanceUntilMs === null ? deadline : Math.max(deadline, clock.maintenanceUntilMs);
};

/** Every material (recording) disk reported broken: the Slave has failed whatever its heartbeats say. */
export const allMaterialDisksBroken = (materialLetters: readonly string[], disks: readonly DiskHealth[]) =>
  materialLetters.length > 0 &&
  materialLetters.every((letter) => disks.some((disk) => disk.letter === letter && !disk.healthy));

/** The letters of broken disks, sorted: two reports with the same letters describe the same health. */
export const brokenLetters = (disks: readonly DiskHealth[]): string[] =>
  disks
    .filter((disk) => !disk.healthy)
    .map((disk) => disk.letter)
    .sort();

export const sameDiskHealth = (a: readonly DiskHealth[], b: readonly DiskHealth[]): boolean =>
  brokenLetters(a).join() === brokenLetters(b).join();

export interface MassFailurePolicy {
  /** More than this share of the protected Slaves silent at once holds their failovers (0 to 1). */
  share: number;
  /** ... and at least this many: one Slave dying is never held. */
  minimum: number;
}

export const DEFAULT_MASS_FAILURE_POLICY: MassFailurePolicy = { share: 0.5, minimum: 3 };

/**
 * Many Slaves silent at once is more likely the network between them and the Master than the Slaves
 * themselves (Kubernetes stops evicting in a zone that looks mostly unhealthy): their failovers wait for
 * an operator.
 */
export const isMassFailure = (silent: number, protectedSlaves: number, policy: MassFailurePolicy): boolean =>
  silent >= policy.minimum && silent > policy.share * protectedSlaves;

/**
 * A Slave counts as silent for the mass-failure rule when it has missed two of its usual heartbeats: at the
 * first deadline of a partition, the others cut off with it have been silent nearly as long.
 */
export const missedTwoHeartbeats = (silentForMs: number, usualIntervalMs: number | null): boolean =>
  usualIntervalMs !== null && silentForMs > 2 * usualIntervalMs;

/**
 * What the detector tells a monitor. Every report carries the detector's term: a report of an older term
 * than one already seen comes from a detector that has lost its leadership, and is ignored.
 */
export type LivenessReport =
  /** All is well as of `lastSeenMs`; sent rarely, so that the monitor's durable backstop stays quiet. */
  | { kind: 'checkpoint'; term: number; lastSeenMs: number | null; disks: DiskHealth[] }
  /** The disk health changed: sent at once. */
  | { kind: 'disks'; term: number; lastSeenMs: number; disks: DiskHealth[] }
  /** The server was not heard before its deadline: sent at once. */
  | { kind: 'deadline'; term: number; lastSeenMs: number | null; deadlineMs: number }
  /** The deadline passed during a mass failure: the failover waits for an operator's decision. */
  | { kind: 'held'; term: number; holdId: string; deadlineMs: number };

export type LivenessReportKind = LivenessReport['kind'];

const REPORT_KINDS: LivenessReportKind[] = ['checkpoint', 'disks', 'deadline', 'held'];
const MAX_HOLD_ID_LENGTH = 64;

const timestamp = (value: unknown, name: string): number => {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 8_640_000_000_000_000) {
    throw new InvalidInput(`${name} must be a timestamp in milliseconds since 1970`);
  }
  return value;
};

const optionalTimestamp = (value: unknown, name: string): number | null =>
  value === null ? null : timestamp(value, name);

/** Checks a report that arrived as a signal: anybody with access to the namespace can send one. */
export const checkLivenessReport = (payload: unknown): LivenessReport => {
  if (typeof payload !== 'object' || payload === null) throw new InvalidInput('report must be an object');
  const raw = payload as Record<string, unknown>;
  const kind = raw.kind as LivenessReportKind;
  if (!REPORT_KINDS.includes(kind))
    throw new InvalidInput(`report kind must be one of ${REPORT_KINDS.join(', ')}`);
  const { term } = raw;
  if (typeof term !== 'number' || !Number.isSafeInteger(term) || term < 1) {
    throw new InvalidInput('report term must be a whole number of at least 1');
  }
  switch (kind) {
    case 'checkpoint':
      return {
        kind,
        term,
        lastSeenMs: optionalTimestamp(raw.lastSeenMs, 'lastSeenMs'),
        disks: checkDisks(raw.disks),
      };
    case 'disks':
      return {
        kind,
        term,
        lastSeenMs: timestamp(raw.lastSeenMs, 'lastSeenMs'),
        disks: checkDisks(raw.disks),
      };
    case 'deadline':
      return {
        kind,
        term,
        lastSeenMs: optionalTimestamp(raw.lastSeenMs, 'lastSeenMs'),
        deadlineMs: timestamp(raw.deadlineMs, 'deadlineMs'),
      };
    case 'held': {
      const { holdId } = raw;
      if (typeof holdId !== 'string' || holdId === '' || holdId.length > MAX_HOLD_ID_LENGTH) {
        throw new InvalidInput('holdId must be a non-empty text');
      }
      return { kind, term, holdId, deadlineMs: timestamp(raw.deadlineMs, 'deadlineMs') };
    }
  }
};

/** What the detector decided, as a failover carries it to the take-over, which confirms it first. */
export interface SilenceClaim {
  term: number;
  lastSeenMs: number | null;
  deadlineMs: number;
}

/** What PostgreSQL holds when the take-over confirms a claim. */
export interface SilenceRecord {
  /** Unprotected since the decision: no failover, whatever it saw. */
  protected: boolean;
  currentTerm: number | null;
  /** The lease as written by the gateways (at most one write interval behind the detector). */
  leaseLastSeenMs: number | null;
  /** The disk health in the lease: a change of it is written at once, before the monitor hears of it. */
  leaseDisks: DiskHealth[];
  materialDriveLetters: string[];
  timeoutMs: number;
  maintenanceUntilMs: number | null;
  /** With no heartbeat since the monitor started, silence counts from here (null: not monitored). */
  silenceFromMs: number | null;
  /** When the current term began to hear heartbeats (null: no term). */
  observingSinceMs: number | null;
}

/** Clock rounding and skew between the hosts of two gateways that a confirmation tolerates. */
export const CONFIRM_TOLERANCE_MS = 250;

/**
 * Why a claimed silence must not fail the Slave over, or undefined when it stands: a claim of an older term
 * (a detector that lost its lead), a heartbeat before the deadline that the decision did not see (another
 * gateway heard it), or a deadline that moved since (a maintenance window, a longer timeout). A heartbeat
 * after the deadline does not undo it: the Slave was silent for longer than its timeout. All disks broken
 * stands when the Slave's last heartbeat says so, in any term.
 */
export const refuteSilence = (
  record: SilenceRecord,
  claim: SilenceClaim,
  reason: BrokenReason,
): string | undefined => {
  if (!record.protected) return 'it is not protected any more';
  // The lease is the evidence of broken disks, whichever term heard it: a take-over retried after its worker
  // was lost (a new term began meanwhile) still stands while the Slave's last heartbeat says so.
  if (reason === 'all-disks-broken') {
    return allMaterialDisksBroken(record.materialDriveLetters, record.leaseDisks)
      ? undefined
      : 'its last heartbeat does not report every material disk broken';
  }
  if (record.currentTerm !== claim.term) {
    return `decided in detector term ${claim.term}, but term ${record.currentTerm ?? 'none'} is current`;
  }
  const heard = record.leaseLastSeenMs;
  if (
    heard !== null &&
    heard < claim.deadlineMs &&
    heard > (claim.lastSeenMs ?? -Infinity) + CONFIRM_TOLERANCE_MS
  ) {
    return `heard at ${new Date(heard).toISOString()}, before its deadline`;
  }
  if (record.maintenanceUntilMs !== null && record.maintenanceUntilMs > claim.deadlineMs) {
    return `in maintenance until ${new Date(record.maintenanceUntilMs).toISOString()}`;
  }
  // The deadline the timeout saved now gives from the same silence: the last heartbeat the decision saw or,
  // never heard, the monitor's start; a term starts every silence afresh. A Slave heard through the VMS only
  // may have a later deadline still, never an earlier one.
  const silentSinceMs = Math.max(
    claim.lastSeenMs ?? record.silenceFromMs ?? -Infinity,
    record.observingSinceMs ?? -Infinity,
  );
  if (silentSinceMs + record.timeoutMs > claim.deadlineMs + CONFIRM_TOLERANCE_MS) {
    return `its timeout is now ${record.timeoutMs} ms: the deadline has moved`;
  }
  return undefined;
};

/** What the monitor's backstop finds when no report came for too long. */
export type SilenceVerdict =
  | { verdict: 'heard'; lastSeenMs: number | null; deadlineMs: number }
  | { verdict: 'silent'; claim: SilenceClaim }
  /** No detector term is alive: nobody can hear heartbeats, so silence proves nothing. */
  | { verdict: 'unobserved' };

/** A term not renewed for this long has no leader: its observations stopped. */
export const TERM_STALE_AFTER_MS = 5_000;

export const judgeSilence = (
  record: {
    term: {
      term: number;
      observingSinceMs: number;
      renewedAtMs: number;
      vmsObservingSinceMs: number | null;
    } | null;
    /** Heard only through the VMS. */
    vmsOnly: boolean;
    lease: { lastSeenMs: number } | null;
    monitoredSinceMs: number;
    silenceFromMs: number;
    timeoutMs: number;
    maintenanceUntilMs: number | null;
  },
  nowMs: number,
): SilenceVerdict => {
  const { term } = record;
  if (term === null || nowMs - term.renewedAtMs > TERM_STALE_AFTER_MS) return { verdict: 'unobserved' };
  const lastSeenMs = record.lease?.lastSeenMs ?? null;
  const deadlineMs = silenceDeadline({
    lastSeenMs,
    monitoredSinceMs: record.monitoredSinceMs,
    silenceFromMs: record.silenceFromMs,
    observingSinceMs: term.observingSinceMs,
    timeoutMs: record.timeoutMs,
    maintenanceUntilMs: record.maintenanceUntilMs,
    ...(record.vmsOnly && { vmsOnly: { observingSinceMs: term.vmsObservingSinceMs } }),
  });
  if (deadlineMs === Infinity) return { verdict: 'unobserved' };
  return deadlineMs <= nowMs
    ? { verdict: 'silent', claim: { term: term.term, lastSeenMs, deadlineMs } }
    : { verdict: 'heard', lastSeenMs, deadlineMs };
};

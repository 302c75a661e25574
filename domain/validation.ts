/**
 * Input rules shared by clients (fast, friendly errors) and workflows (update validators, signal guards),
 * so both sides reject exactly the same things. Workflow-safe.
 */
import { canonicalDriveLetters } from './site';
import type { DiskHealth, FailoverSettings } from './site';

/** Shortest failover timeout accepted: below it, ordinary network jitter would trigger failovers. */
export const MIN_TIMEOUT_MS = 1_000;
/** Longest failover timeout accepted: a Slave silent for a day is not being protected. */
export const MAX_TIMEOUT_MS = 24 * 3_600_000;
export const MAX_DISKS_PER_HEARTBEAT = 26;
export const MAX_SERVER_ID_LENGTH = 64;
export const MAX_MAINTENANCE_MS = 7 * 24 * 3_600_000;
/** The latest instant a JavaScript Date can hold: a later timestamp cannot even be printed. */
export const MAX_TIMESTAMP_MS = 8_640_000_000_000_000;

const SERVER_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const DRIVE_LETTER_PATTERN = /^[A-Z]$/;

export class InvalidInput extends Error {
  override readonly name = 'InvalidInput';
}

export const checkServerId = (serverId: unknown): string => {
  if (typeof serverId !== 'string' || serverId.length === 0) {
    throw new InvalidInput('server id must be a non-empty string');
  }
  if (serverId.length > MAX_SERVER_ID_LENGTH || !SERVER_ID_PATTERN.test(serverId)) {
    throw new InvalidInput(
      `server id "${serverId.slice(0, MAX_SERVER_ID_LENGTH)}" is invalid: use up to ${MAX_SERVER_ID_LENGTH} letters, digits, ".", "_" or "-"`,
    );
  }
  return serverId;
};

export const checkTimeoutMs = (timeoutMs: unknown): number => {
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs)) {
    throw new InvalidInput('failover timeout must be a whole number of milliseconds');
  }
  if (timeoutMs < MIN_TIMEOUT_MS || timeoutMs > MAX_TIMEOUT_MS) {
    throw new InvalidInput(
      `failover timeout ${timeoutMs}ms is out of range: it must be between ${MIN_TIMEOUT_MS}ms and ${MAX_TIMEOUT_MS}ms (24h)`,
    );
  }
  return timeoutMs;
};

export const checkSettings = (settings: unknown): FailoverSettings => {
  if (typeof settings !== 'object' || settings === null) throw new InvalidInput('settings must be an object');
  const { protected: isProtected, timeoutMs } = settings as Record<string, unknown>;
  if (typeof isProtected !== 'boolean') throw new InvalidInput('settings.protected must be true or false');
  return { protected: isProtected, timeoutMs: checkTimeoutMs(timeoutMs) };
};

export const checkDriveLetters = (letters: unknown): string[] => {
  if (!Array.isArray(letters) || letters.length === 0 || letters.length > MAX_DISKS_PER_HEARTBEAT) {
    throw new InvalidInput(`drive letters must be a list of 1 to ${MAX_DISKS_PER_HEARTBEAT} letters`);
  }
  if (!letters.every((letter): letter is string => typeof letter === 'string')) {
    throw new InvalidInput('drive letters must be strings such as "C" or "D:"');
  }
  const canonical = canonicalDriveLetters(letters);
  const bad = canonical.find((letter) => !DRIVE_LETTER_PATTERN.test(letter));
  if (bad !== undefined) throw new InvalidInput(`"${bad}" is not a drive letter (A to Z)`);
  return canonical;
};

export interface Heartbeat {
  serverId: string;
  /** Sender's clock, for the record only: deadlines use the workflow's own clock. */
  sentAtMs: number;
  /** Health of the material (recording) disks; empty when the sender cannot tell. */
  disks: DiskHealth[];
}

export const checkHeartbeat = (payload: unknown): Heartbeat => {
  if (typeof payload !== 'object' || payload === null) throw new InvalidInput('heartbeat must be an object');
  const { serverId, sentAtMs, disks } = payload as Record<string, unknown>;
  checkServerId(serverId);
  if (
    typeof sentAtMs !== 'number' ||
    !Number.isFinite(sentAtMs) ||
    sentAtMs < 0 ||
    sentAtMs > MAX_TIMESTAMP_MS
  ) {
    throw new InvalidInput('heartbeat.sentAtMs must be a timestamp in milliseconds since 1970');
  }
  return { serverId: serverId as string, sentAtMs, disks: checkDisks(disks) };
};

/** Disk health as a heartbeat reports it: at most one entry per drive letter. */
export const checkDisks = (disks: unknown): DiskHealth[] => {
  if (!Array.isArray(disks) || disks.length > MAX_DISKS_PER_HEARTBEAT) {
    throw new InvalidInput(`heartbeat.disks must be a list of at most ${MAX_DISKS_PER_HEARTBEAT} disks`);
  }
  const checked = disks.map((disk: unknown) => {
    if (typeof disk !== 'object' || disk === null) throw new InvalidInput('each disk must be an object');
    const { letter, healthy } = disk as Record<string, unknown>;
    if (typeof healthy !== 'boolean') throw new InvalidInput('disk.healthy must be true or false');
    const [canonical] = checkDriveLetters([letter]);
    return { letter: canonical as string, healthy };
  });
  if (new Set(checked.map((disk) => disk.letter)).size !== checked.length) {
    throw new InvalidInput('heartbeat.disks lists a drive letter twice');
  }
  return checked;
};

export const checkMaintenanceMs = (durationMs: unknown): number => {
  if (
    typeof durationMs !== 'number' ||
    !Number.isInteger(durationMs) ||
    durationMs < 0 ||
    durationMs > MAX_MAINTENANCE_MS
  ) {
    throw new InvalidInput('maintenance window must be between 0 and 7 days');
  }
  return durationMs;
};

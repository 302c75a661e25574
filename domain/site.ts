/** The VMS site model shared by every runtime. Workflow-safe: types and pure functions only. */

export type ServerRole = 'master' | 'slave' | 'failover';
export type ServerStatus = 'active' | 'broken' | 'standby';
/** Folders of the VMS server list. */
export const FOLDERS = ['Servers', 'FailoverServers', 'BrokenRecorders'] as const;
export type Folder = (typeof FOLDERS)[number];
export const isFolder = (value: unknown): value is Folder => (FOLDERS as readonly unknown[]).includes(value);
export type CameraKind = 'ip' | 'analog';

export interface DiskHealth {
  /** Drive letter, upper case, without colon: "D". */
  letter: string;
  healthy: boolean;
}

export type BrokenReason = 'heartbeat-timeout' | 'all-disks-broken';

/** How a server is heard: its agent's heartbeats, the VMS's report that it answers (no agent), or both. */
export type LivenessSource = 'agent' | 'vms' | 'both';
export const LIVENESS_SOURCES: LivenessSource[] = ['agent', 'vms', 'both'];

export interface FailoverSettings {
  protected: boolean;
  timeoutMs: number;
}

export const folderOf = (role: ServerRole, status: ServerStatus): Folder => {
  if (status === 'broken') return 'BrokenRecorders';
  if (role === 'failover') return 'FailoverServers';
  return 'Servers';
};

/** Canonical form of a file system: sorted, upper case, unique drive letters. */
export const canonicalDriveLetters = (letters: readonly string[]): string[] =>
  [...new Set(letters.map((letter) => letter.trim().replace(/:$/, '').toUpperCase()))].sort();

export const sameDriveLetters = (a: readonly string[], b: readonly string[]): boolean => {
  const left = canonicalDriveLetters(a);
  const right = canonicalDriveLetters(b);
  return left.length === right.length && left.every((letter, index) => letter === right[index]);
};

/**
 * What this process last heard of each server, in memory: a heartbeat only updates an entry here (Nomad and
 * etcd keep their heartbeat timers in memory the same way). The lease writer saves changed entries to
 * PostgreSQL in batches, so that any worker can read them and a restart loses at most one batch.
 */
import type { DiskHealth } from '../domain/site';

export interface Lease {
  serverId: string;
  /** When a heartbeat was last heard, on this process's clock. */
  lastSeenMs: number;
  /** The agent's own clock, for the record only. */
  sentAtMs: number | null;
  disks: DiskHealth[];
  /** The usual time between two heartbeats (smoothed), null until two were heard. */
  intervalMs: number | null;
  /** The gateway instance that heard it. */
  heardBy: string;
  /** For a lease another gateway heard: its own `lastSeenMs`, on its clock, to tell newer rows apart. */
  remoteSeenMs: number | null;
}

export interface Observation {
  atMs: number;
  sentAtMs: number | null;
  disks: DiskHealth[];
}

export type HeardListener = (lease: Lease, previous: Lease | undefined) => void;

/** Weight of the latest gap in the smoothed interval: steady, yet it follows an agent whose interval changed. */
const INTERVAL_SMOOTHING = 0.2;

export class LeaseTable {
  private readonly leases = new Map<string, Lease>();
  private dirty = new Set<string>();
  private readonly listeners: HeardListener[] = [];

  constructor(readonly instance: string) {}

  onHeard(listener: HeardListener): void {
    this.listeners.push(listener);
  }

  get(serverId: string): Lease | undefined {
    return this.leases.get(serverId);
  }

  get size(): number {
    return this.leases.size;
  }

  /** A heartbeat heard by this process's gateway. */
  record(serverId: string, observation: Observation): Lease {
    const previous = this.leases.get(serverId);
    const lease: Lease = {
      serverId,
      lastSeenMs: observation.atMs,
      sentAtMs: observation.sentAtMs,
      disks: observation.disks,
      intervalMs: smoothedInterval(previous, observation.atMs),
      heardBy: this.instance,
      remoteSeenMs: null,
    };
    this.leases.set(serverId, lease);
    this.dirty.add(serverId);
    for (const listener of this.listeners) listener(lease, previous);
    return lease;
  }

  /**
   * A lease another gateway wrote to PostgreSQL. It counts as heard when this process learns of it: never
   * earlier than the truth, and on this process's clock only.
   */
  mergeRemote(remote: Omit<Lease, 'remoteSeenMs'>, learnedAtMs: number): boolean {
    const previous = this.leases.get(remote.serverId);
    if (previous !== undefined && (previous.remoteSeenMs ?? -Infinity) >= remote.lastSeenMs) return false;
    if (
      previous !== undefined &&
      previous.heardBy === this.instance &&
      previous.lastSeenMs >= remote.lastSeenMs
    )
      return false;
    const lease: Lease = { ...remote, lastSeenMs: learnedAtMs, remoteSeenMs: remote.lastSeenMs };
    this.leases.set(remote.serverId, lease);
    for (const listener of this.listeners) listener(lease, previous);
    return true;
  }

  /** Loads what PostgreSQL holds (a new detector term), keeping anything this process heard later. */
  seed(stored: Omit<Lease, 'remoteSeenMs'>[]): void {
    for (const lease of stored) {
      const current = this.leases.get(lease.serverId);
      if (current === undefined || current.lastSeenMs < lease.lastSeenMs) {
        this.leases.set(lease.serverId, { ...lease, remoteSeenMs: null });
      }
    }
  }

  /** The leases heard since the last call, to be written; `putBack` returns them after a failed write. */
  takeDirty(): Lease[] {
    const taken = [...this.dirty].flatMap((serverId) => this.leases.get(serverId) ?? []);
    this.dirty = new Set();
    return taken;
  }

  putBack(leases: Lease[]): void {
    for (const lease of leases) this.dirty.add(lease.serverId);
  }
}

const smoothedInterval = (previous: Lease | undefined, atMs: number): number | null => {
  if (previous === undefined) return null;
  const gap = Math.max(1, atMs - previous.lastSeenMs);
  if (previous.intervalMs === null) return gap;
  return Math.max(1, Math.round(previous.intervalMs + INTERVAL_SMOOTHING * (gap - previous.intervalMs)));
};

/**
 * The take-over locks the detector holds on its session (store/take-over-lock.ts), asked in batches: a sweep
 * that decides a hundred deadlines at once takes their locks in one statement, not in a hundred round trips
 * queued on one connection ahead of the reports. Unlocks wait for the next batch; the session ending frees
 * them all anyway.
 */
import type { Client } from 'pg';
import { tryLockTakeOvers, unlockTakeOvers } from '../store/take-over-lock';

type OnSession = <T>(work: (session: Client) => Promise<T>) => Promise<T>;

export class TakeOverLocks {
  private readonly toLock = new Map<string, (locked: boolean) => void>();
  private readonly toUnlock = new Set<string>();
  private flushing = false;

  constructor(private readonly onSession: OnSession) {}

  /** True once this session holds the failover's lock; false when another run holds it, or on an error. */
  lock(failoverId: string): Promise<boolean> {
    if (this.toLock.has(failoverId)) return Promise.resolve(false);
    const locked = new Promise<boolean>((resolve) => this.toLock.set(failoverId, resolve));
    this.schedule();
    return locked;
  }

  unlock(failoverId: string): void {
    this.toUnlock.add(failoverId);
    this.schedule();
  }

  private schedule(): void {
    if (this.flushing) return;
    this.flushing = true;
    // Everything asked in this turn of the event loop goes in one batch.
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    while (this.toLock.size > 0 || this.toUnlock.size > 0) {
      const unlocks = [...this.toUnlock];
      this.toUnlock.clear();
      const locks = new Map(this.toLock);
      this.toLock.clear();
      if (unlocks.length > 0)
        await this.onSession((session) => unlockTakeOvers(session, unlocks)).catch(() => undefined);
      if (locks.size === 0) continue;
      const taken = await this.onSession((session) => tryLockTakeOvers(session, [...locks.keys()])).catch(
        () => new Set<string>(),
      );
      for (const [failoverId, resolve] of locks) resolve(taken.has(failoverId));
    }
    this.flushing = false;
  }
}

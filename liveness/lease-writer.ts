/**
 * Writes the leases heard since the last write to PostgreSQL in one statement, every interval. A failed
 * write (PostgreSQL out) keeps them for the next one: the table in memory stays the truth meanwhile.
 */
import type { Pool } from 'pg';
import type { Logger } from '../infra/logger';
import { writeLeases } from '../store/leases';
import type { LeaseTable } from './lease-table';

export class LeaseWriter {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private failing = false;
  writes = 0;
  leasesWritten = 0;

  constructor(
    private readonly db: Pool,
    private readonly leases: LeaseTable,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.writing = this.writing.then(async () => {
        await this.writeOnce();
      });
    }, this.intervalMs);
  }

  /** Stops the timer and writes what is left (a clean shutdown loses nothing). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.writing;
    await this.writeOnce();
  }

  /** Writes what was heard since the last write; false when PostgreSQL refused (kept for the next write). */
  async writeOnce(): Promise<boolean> {
    const batch = this.leases.takeDirty();
    if (batch.length === 0) return true;
    try {
      await writeLeases(this.db, batch);
      this.writes += 1;
      this.leasesWritten += batch.length;
      if (this.failing) this.logger.info({ leases: batch.length }, 'Lease writes resumed');
      this.failing = false;
      return true;
    } catch (error) {
      this.leases.putBack(batch);
      if (!this.failing) {
        this.logger.warn(
          { err: (error as Error).message, leases: batch.length },
          'Lease write failed: kept for the next one',
        );
      }
      this.failing = true;
      return false;
    }
  }

  /** Writes until PostgreSQL takes it: what must be there before anybody reads it. */
  async writeNow(): Promise<void> {
    while (!(await this.writeOnce())) await new Promise((resolve) => setTimeout(resolve, this.intervalMs));
  }
}

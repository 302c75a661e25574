/**
 * The failovers a detector opens at their deadlines, opened in batches: a sweep that decides a hundred
 * deadlines at once opens them in one transaction (store/failovers.ts `openFailovers`), not in a hundred
 * transactions queued for the pool's connections behind the take-overs already under way. Openings asked
 * while a batch is in flight go in the next one.
 */
import type { FailoverStart } from '../domain/contracts';
import type { FailoverOpening } from '../store/failovers';

type OpenBatch = (inputs: FailoverStart[]) => Promise<FailoverOpening[]>;

interface Asked {
  input: FailoverStart;
  resolve: (opening: FailoverOpening) => void;
  reject: (error: unknown) => void;
}

export class FailoverOpenings {
  private asked: Asked[] = [];
  private flushing = false;

  constructor(private readonly openBatch: OpenBatch) {}

  /** Opens the failover with the others asked in this turn of the event loop; a refusal is answered, not thrown. */
  open(input: FailoverStart): Promise<FailoverOpening> {
    const opening = new Promise<FailoverOpening>((resolve, reject) =>
      this.asked.push({ input, resolve, reject }),
    );
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => void this.flush());
    }
    return opening;
  }

  private async flush(): Promise<void> {
    while (this.asked.length > 0) {
      const batch = this.asked;
      this.asked = [];
      try {
        const openings = await this.openBatch(batch.map((asked) => asked.input));
        batch.forEach((asked, index) => {
          const opening = openings[index];
          if (opening === undefined)
            asked.reject(new Error(`failover ${asked.input.failoverId} not answered`));
          else asked.resolve(opening);
        });
      } catch (error) {
        // Not reached, or the transaction failed: every failover of the batch is left to its monitor.
        for (const asked of batch) asked.reject(error);
      }
    }
    this.flushing = false;
  }
}

/**
 * Calls made one by one, run in batches: those asked in one turn of the event loop go in one batch, and those
 * asked while a batch is in flight go in the next. A burst of failovers (a hundred Slaves past their deadline
 * at once) then costs one statement per step for all of them instead of one each, queued for the pool's
 * connections and the machine's cores; a lone call waits one turn of the event loop.
 */

/**
 * Runs a batch: one answer per input, in order. An answer that is an Error rejects its own caller only; a
 * batch that throws rejects every caller of that batch, and the next batch goes on.
 */
export type RunBatch<I, O> = (inputs: I[]) => Promise<(O | Error)[]>;

interface Asked<I, O> {
  input: I;
  resolve: (output: O) => void;
  reject: (error: unknown) => void;
}

export class Batches<I, O> {
  private asked: Asked<I, O>[] = [];
  private flushing = false;

  constructor(private readonly runBatch: RunBatch<I, O>) {}

  run(input: I): Promise<O> {
    const answer = new Promise<O>((resolve, reject) => this.asked.push({ input, resolve, reject }));
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => void this.flush());
    }
    return answer;
  }

  private async flush(): Promise<void> {
    while (this.asked.length > 0) {
      const batch = this.asked;
      this.asked = [];
      try {
        const answers = await this.runBatch(batch.map((asked) => asked.input));
        batch.forEach((asked, index) => {
          if (index >= answers.length) {
            asked.reject(new Error(`batch call ${index} of ${batch.length} not answered`));
            return;
          }
          const answer = answers[index] as O | Error;
          if (answer instanceof Error) asked.reject(answer);
          else asked.resolve(answer);
        });
      } catch (error) {
        for (const asked of batch) asked.reject(error);
      }
    }
    this.flushing = false;
  }
}

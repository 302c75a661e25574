/** Bounded concurrency for calls made in bulk (signals to many monitors, the bench's calls to the server). */

/** At most `limit` calls at once; the others wait their turn in order. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active += 1;
    try {
      return await work();
    } finally {
      this.active -= 1;
      this.waiting.shift()?.();
    }
  }
}

export const mapLimited = <T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> => {
  const semaphore = new Semaphore(limit);
  return Promise.all(items.map((item) => semaphore.run(() => work(item))));
};

/** Counts work under way, so that work of lower priority can wait until none is. */
export class UnderWay {
  private count = 0;
  private waiting: (() => void)[] = [];

  /** Counts one more piece of work; the function returned ends it, once however often it is called. */
  begin(): () => void {
    this.count += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.end();
    };
  }

  private end(): void {
    this.count -= 1;
    if (this.count > 0) return;
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  /** Resolves once no work is under way, or after `maxWaitMs` whatever is. */
  idle(maxWaitMs: number): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => {
      // A wait holds no process open: a worker stopping with take-overs under way exits at once.
      const timer = setTimeout(resolve, maxWaitMs).unref();
      this.waiting.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

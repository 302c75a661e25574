/**
 * Many deadlines on one timer: a binary heap ordered by due time, with one Node timer armed for the earliest.
 * Rescheduling a key leaves its old entry in the heap; the entry is skipped when it comes up (lazy removal),
 * so a heartbeat costs one push. Due keys are handed over in due order, all those due in one go.
 */

const MAX_TIMER_MS = 2 ** 31 - 1;

interface Entry<K> {
  atMs: number;
  key: K;
  generation: number;
}

export class TimerQueue<K> {
  private heap: Entry<K>[] = [];
  private readonly current = new Map<K, { atMs: number; generation: number }>();
  private generation = 0;
  private timer: NodeJS.Timeout | undefined;
  private armedForMs: number | undefined;

  constructor(
    private readonly onDue: (keys: { key: K; atMs: number }[]) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.current.size;
  }

  dueAt(key: K): number | undefined {
    return this.current.get(key)?.atMs;
  }

  schedule(key: K, atMs: number): void {
    const existing = this.current.get(key);
    if (existing?.atMs === atMs) return;
    this.generation += 1;
    this.current.set(key, { atMs, generation: this.generation });
    this.push({ atMs, key, generation: this.generation });
    if (this.heap.length > 4 * this.current.size + 1_024) this.compact();
    this.arm();
  }

  cancel(key: K): void {
    this.current.delete(key);
  }

  clear(): void {
    this.current.clear();
    this.heap = [];
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedForMs = undefined;
  }

  private arm(): void {
    const first = this.peekLive();
    if (first === undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.armedForMs = undefined;
      return;
    }
    if (this.armedForMs !== undefined && this.armedForMs <= first.atMs && this.timer !== undefined) return;
    clearTimeout(this.timer);
    this.armedForMs = first.atMs;
    // Node fires at once beyond about 24.8 days: such a timer wakes early, finds nothing due and re-arms.
    this.timer = setTimeout(() => this.fire(), Math.min(MAX_TIMER_MS, Math.max(0, first.atMs - this.now())));
  }

  private fire(): void {
    this.timer = undefined;
    this.armedForMs = undefined;
    const nowMs = this.now();
    const due: { key: K; atMs: number }[] = [];
    for (;;) {
      const first = this.peekLive();
      if (first === undefined || first.atMs > nowMs) break;
      this.pop();
      this.current.delete(first.key);
      due.push({ key: first.key, atMs: first.atMs });
    }
    if (due.length > 0) this.onDue(due);
    this.arm();
  }

  /** The earliest entry that is still current, dropping stale ones on the way. */
  private peekLive(): Entry<K> | undefined {
    for (;;) {
      const first = this.heap[0];
      if (first === undefined) return undefined;
      if (this.current.get(first.key)?.generation === first.generation) return first;
      this.pop();
    }
  }

  private compact(): void {
    this.heap = [...this.current].map(([key, { atMs, generation }]) => ({ key, atMs, generation }));
    this.heap.sort((a, b) => a.atMs - b.atMs);
  }

  private push(entry: Entry<K>): void {
    const heap = this.heap;
    heap.push(entry);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if ((heap[parent] as Entry<K>).atMs <= entry.atMs) break;
      heap[index] = heap[parent] as Entry<K>;
      index = parent;
    }
    heap[index] = entry;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child =
        right < heap.length && (heap[right] as Entry<K>).atMs < (heap[left] as Entry<K>).atMs ? right : left;
      if ((heap[child] as Entry<K>).atMs >= last.atMs) break;
      heap[index] = heap[child] as Entry<K>;
      index = child;
    }
    heap[index] = last;
  }
}

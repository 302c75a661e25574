/**
 * Limits that keep a misbehaving peer from costing the gateway more than a refusal: a token bucket per
 * credential (an agent sending too often), and a penalty per remote address that keeps failing to
 * authenticate (its new connections are closed before any HTTP is parsed).
 */

export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {}

  /** Takes one token for `key`; false when its bucket is empty. */
  take(key: string, nowMs: number): boolean {
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, atMs: nowMs };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((nowMs - bucket.atMs) / 1_000) * this.perSecond);
    bucket.atMs = nowMs;
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    this.buckets.set(key, bucket);
    return allowed;
  }
}

export class FailurePenalties {
  private readonly failures = new Map<string, { count: number; windowStartMs: number }>();
  private readonly penalizedUntil = new Map<string, number>();

  constructor(
    /** Failures a second an address may have before it is penalized. */
    private readonly perSecond: number,
    private readonly penaltyMs: number,
  ) {}

  isPenalized(address: string, nowMs: number): boolean {
    const until = this.penalizedUntil.get(address);
    if (until === undefined) return false;
    if (until > nowMs) return true;
    this.penalizedUntil.delete(address);
    return false;
  }

  /** Counts a failure; true when the address has just crossed the limit. */
  fail(address: string, nowMs: number): boolean {
    const current = this.failures.get(address);
    const window =
      current === undefined || nowMs - current.windowStartMs >= 1_000
        ? { count: 0, windowStartMs: nowMs }
        : current;
    window.count += 1;
    this.failures.set(address, window);
    if (window.count <= this.perSecond) return false;
    this.penalizedUntil.set(address, nowMs + this.penaltyMs);
    this.failures.delete(address);
    return true;
  }

  /** Forgets windows and penalties that have ended, so that the maps never grow without bound. */
  sweep(nowMs: number): void {
    for (const [address, window] of this.failures) {
      if (nowMs - window.windowStartMs >= 1_000) this.failures.delete(address);
    }
    for (const [address, until] of this.penalizedUntil)
      if (until <= nowMs) this.penalizedUntil.delete(address);
  }
}

// Token bucket: `rate` tokens per second, at most `burst` saved up. Pure; time is passed in.

/**
 * The tokens a bucket holds at `now`, refilled from `tokens` at `last` (ms). Pure: the bucket's
 * state may live in a class (TokenBucket) or inline in an owner's record (a session's frame rate:
 * one object less per connection, issue 14).
 */
export function refilled(tokens: number, last: number, now: number, rate: number, burst: number): number {
  const elapsed = Math.max(0, now - last) / 1000;
  return Math.min(burst, tokens + elapsed * rate);
}

export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(private readonly rate: number, private readonly burst: number, now: number) {
    this.tokens = burst;
    this.last = now;
  }
  /** Takes `n` tokens if available. */
  take(now: number, n = 1): boolean {
    if (this.rate <= 0) return true; // unlimited
    this.tokens = refilled(this.tokens, this.last, now, this.rate, this.burst);
    this.last = now;
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}

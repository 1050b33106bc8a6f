// Token bucket: `rate` tokens per second, at most `burst` saved up. Pure; time is passed in.

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
    const elapsed = Math.max(0, now - this.last) / 1000;
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.rate);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}

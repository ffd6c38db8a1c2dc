/**
 * A token bucket, pure (time is passed in): `ratePerMs` tokens a millisecond on average, at most
 * `burst` saved up. Renewal takes one token per node it asks, so an expiry wave a year after a
 * mass rollout is spread over days instead of restarting the fleet in a minute. Twenty lines
 * here rather than a rate-limiting package: those schedule work on their own timers, and the
 * renewal loop needs to ask "how many now, and when is the next" from its own timer.
 */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly ratePerMs: number,
    private readonly burst: number,
    now: number,
  ) {
    if (!(ratePerMs > 0) || !Number.isFinite(ratePerMs)) throw new RangeError(`rate must be a positive number per ms, got ${ratePerMs}`);
    if (!Number.isInteger(burst) || burst < 1) throw new RangeError(`burst must be an integer >= 1, got ${burst}`);
    this.tokens = burst;
    this.at = now;
  }

  private refill(now: number): void {
    // a clock that went back gives no tokens, and takes none
    if (now > this.at) this.tokens = Math.min(this.burst, this.tokens + (now - this.at) * this.ratePerMs);
    this.at = Math.max(this.at, now);
  }

  /** whole tokens available now */
  available(now: number): number {
    this.refill(now);
    return Math.floor(this.tokens);
  }

  /** takes one token if there is one */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** ms until the next whole token (0 when one is there) */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) / this.ratePerMs);
  }
}

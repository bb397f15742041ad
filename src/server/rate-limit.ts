/**
 * The web config's rate_limit: a token bucket holding up to `burst` requests, refilled with one
 * every `intervalMs` (exporter-toolkit's semantics: it starts full). Requests beyond it get 429.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly intervalMs: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Take a token if there is one. */
  allow(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (t - this.last) / this.intervalMs);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

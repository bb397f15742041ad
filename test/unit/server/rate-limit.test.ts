import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../src/server/rate-limit.js';

describe('the rate limiter', () => {
  it('allows a full burst at once, then one request per interval, never saving up more than the burst', () => {
    let now = 0;
    const limiter = new RateLimiter(100, 3, () => now);
    expect([limiter.allow(), limiter.allow(), limiter.allow(), limiter.allow()]).toEqual([true, true, true, false]);
    now += 50;
    expect(limiter.allow()).toBe(false);
    now += 50;
    expect([limiter.allow(), limiter.allow()]).toEqual([true, false]);
    now += 10_000;
    expect([limiter.allow(), limiter.allow(), limiter.allow(), limiter.allow()]).toEqual([true, true, true, false]);
  });
});

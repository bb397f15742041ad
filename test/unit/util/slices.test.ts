/**
 * nextSlice: work in slices goes on at once when no response is being written, waits for the
 * responses in progress to be done, and never waits longer than DEFER_MS for a stuck one.
 */
import { expect, it } from 'vitest';
import { DEFER_MS, nextSlice, responding, responseBegun } from '../../../src/util/slices.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

it('waits for the responses being written, for a bounded time', async () => {
  expect(responding()).toBe(false);
  await nextSlice();

  const done = responseBegun();
  expect(responding()).toBe(true);
  let sliced = false;
  const slice = nextSlice().then(() => (sliced = true));
  await sleep(2);
  expect(sliced).toBe(false);
  done();
  done(); // a second call does nothing
  expect(responding()).toBe(false);
  await slice;

  // A response that never ends (a client that stopped reading) delays each slice by DEFER_MS at most.
  const stuck = responseBegun();
  const t = performance.now();
  await nextSlice();
  const waited = performance.now() - t;
  expect(waited).toBeGreaterThanOrEqual(DEFER_MS - 1);
  expect(waited).toBeLessThan(DEFER_MS + 200);
  stuck();
});

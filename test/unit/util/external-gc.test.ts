/**
 * startExternalGc: a forced full collection once buffers outside the heap have grown past the
 * threshold since the last one, none below it, none above the heap limit, none while busy (within a
 * bound), and none after stop.
 * Forced collections are told apart by the flag node's GC performance entries carry.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { afterEach, expect, it } from 'vitest';
import { startExternalGc } from '../../../src/util/external-gc.js';

const MB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let stop: (() => void) | undefined;
let observer: PerformanceObserver | undefined;
afterEach(() => {
  stop?.();
  observer?.disconnect();
});

/** Forced major collections seen while `fn` runs (and shortly after). */
async function forcedDuring(fn: () => Promise<void>): Promise<number> {
  let forced = 0;
  observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const d = (e as unknown as { detail: { kind: number; flags: number } }).detail;
      if (d.kind === constants.NODE_PERFORMANCE_GC_MAJOR && (d.flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0) forced++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  await fn();
  await sleep(50); // entries are delivered asynchronously
  observer.disconnect();
  return forced;
}

let keep: Buffer[] = [];

/** `mb` (64 by default) of buffers allocated and dropped: garbage outside the heap. */
function dropBuffers(mb = 64): void {
  for (let i = 0; i < mb / 4; i++) keep.push(Buffer.alloc(4 * MB));
  keep = [];
}

it('collects once dead buffers outside the heap pass the threshold, and not before', async () => {
  stop = startExternalGc({ thresholdBytes: 32 * MB, everyMs: 10 });
  // 8 MB live: under the threshold, nothing to do.
  expect(await forcedDuring(async () => {
    keep = [Buffer.alloc(8 * MB)];
    await sleep(100);
  })).toBe(0);
  // 64 MB allocated and dropped: at least one collection.
  expect(await forcedDuring(async () => {
    dropBuffers();
    await sleep(200);
  })).toBeGreaterThan(0);
  stop();
  stop = undefined;
  expect(await forcedDuring(async () => {
    dropBuffers();
    await sleep(100);
  })).toBe(0);
});

it('leaves a heap above its limit to V8 (a full collection there pauses for long)', async () => {
  stop = startExternalGc({ thresholdBytes: 1 * MB, everyMs: 10, maxHeapBytes: 1 });
  expect(await forcedDuring(async () => {
    dropBuffers();
    await sleep(100);
  })).toBe(0);
});

it('waits while busy (a response being written), and no longer than its bound', async () => {
  let busy = true;
  stop = startExternalGc({ thresholdBytes: 1 * MB, everyMs: 10, busy: () => busy, maxWaitMs: 60_000 });
  // 8 MB, well under the 64 MB at which V8 collects by itself: a collection of its own during the
  // wait would leave nothing to force after it (the test failed so under load).
  expect(await forcedDuring(async () => {
    dropBuffers(8);
    await sleep(150);
  })).toBe(0);
  expect(await forcedDuring(async () => {
    busy = false;
    await sleep(100);
  })).toBeGreaterThan(0);
  stop();
  // Busy for ever: collected all the same once the wait is over.
  stop = startExternalGc({ thresholdBytes: 1 * MB, everyMs: 10, busy: () => true, maxWaitMs: 100 });
  expect(await forcedDuring(async () => {
    dropBuffers(8);
    await sleep(400);
  })).toBeGreaterThan(0);
});

import { afterEach, describe, expect, it } from 'vitest';
import { startExternalGc } from '../../../src/util/external-gc.js';

const g = globalThis as { gc?: () => void };
const saved = g.gc;
afterEach(() => {
  g.gc = saved;
});

describe('startExternalGc', () => {
  it('collects once memory outside the heap has grown past the threshold since the last collection, not before', async () => {
    let calls = 0;
    g.gc = () => calls++;
    const stop = startExternalGc({ thresholdBytes: 8 * 1024 * 1024, everyMs: 5 });
    const held: Buffer[] = [Buffer.alloc(1024 * 1024)];
    await new Promise((r) => setTimeout(r, 40));
    expect(calls).toBe(0);
    for (let i = 0; i < 12; i++) held.push(Buffer.alloc(1024 * 1024));
    await new Promise((r) => setTimeout(r, 40));
    stop();
    // Held buffers are not garbage: the baseline moves up to them, so there is one collection, not one per tick.
    expect(calls).toBe(1);
    expect(held.length).toBe(13);
  });

  it('does nothing without node --expose-gc', () => {
    g.gc = undefined;
    expect(() => startExternalGc()()).not.toThrow();
  });
});

describe('startExternalGc above its heap bound', () => {
  it('leaves a large heap to V8: a forced collection of it would pause for long', async () => {
    let calls = 0;
    g.gc = () => calls++;
    const stop = startExternalGc({ thresholdBytes: 1024 * 1024, everyMs: 5, maxHeapBytes: 1 });
    const held = Array.from({ length: 4 }, () => Buffer.alloc(1024 * 1024));
    await new Promise((r) => setTimeout(r, 40));
    stop();
    expect(calls).toBe(0);
    expect(held.length).toBe(4);
  });
});

/**
 * Faults the kernel cannot be made to give on demand (EINTR, EBUSY, EFAULT, an old kernel's EINVAL,
 * a batch call that makes no progress), scripted through a fake libbpf. Everything else about
 * batch iteration is tested against real maps in test/kernel/bpf/.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';

type Ptr = Buffer | Uint32Array | null;
interface Step { ret: number; count?: number }

const fake = vi.hoisted(() => ({
  script: [] as { ret: number; count?: number }[],
  calls: [] as { inBatch: 'null' | 'cursor'; count: number }[],
  nextKey: 0,
  keys: 0,
  maxEntries: 16,
}));

vi.mock('../../../src/bpf/libbpf.js', () => {
  const batch = (_fd: number, inBatch: Ptr, _out: Ptr, keys: Ptr, values: Ptr, count: Uint32Array): number => {
    fake.calls.push({ inBatch: inBatch === null ? 'null' : 'cursor', count: count[0] });
    const step = fake.script.shift();
    if (step === undefined) throw new Error('script exhausted');
    if (step.count !== undefined) {
      for (let i = 0; i < step.count; i++) {
        (keys as Buffer).writeUInt32LE(fake.nextKey, i * 4);
        (values as Buffer).writeBigUInt64LE(BigInt(fake.nextKey) * 10n, i * 8);
        fake.nextKey++;
      }
      count[0] = step.count;
    }
    return step.ret;
  };
  return {
    native: {
      objGetInfoByFd: (_fd: number, info: Buffer) => {
        info.writeUInt32LE(1, 0); // hash
        info.writeUInt32LE(7, 4);
        info.writeUInt32LE(4, 8);
        info.writeUInt32LE(8, 12);
        info.writeUInt32LE(fake.maxEntries, 16);
        return 0;
      },
      lookupBatch: batch,
      lookupAndDeleteBatch: batch,
      // Per-key walk over `fake.keys` keys 0..n-1.
      getNextKey: (_fd: number, key: Buffer | null, next: Buffer) => {
        const k = key === null ? 0 : key.readUInt32LE(0) + 1;
        if (k >= fake.keys) return -2;
        next.writeUInt32LE(k, 0);
        return 0;
      },
      lookupElemFlags: (_fd: number, key: Buffer, value: Buffer) => {
        value.writeBigUInt64LE(BigInt(key.readUInt32LE(0)) * 10n, 0);
        return 0;
      },
    },
  };
});

const { BpfMap } = await import('../../../src/bpf/map.js');
const { BatchReader } = await import('../../../src/bpf/batch.js');
const { BpfError } = await import('../../../src/bpf/errors.js');

const EINTR = -4, EFAULT = -14, EBUSY = -16, EINVAL = -22, ENOSPC = -28, ENOENT = -2, ENOTSUPP = -524;

function run(steps: Step[], opts: { batchSize?: number; method?: 'auto' | 'batch' | 'per-key' } = {}, mode: 'read' | 'drain' = 'read') {
  fake.script = steps;
  const reader = new BatchReader(BpfMap.fromFd(99, { owned: false, label: 'fake' }), { batchSize: 4, ...opts });
  const keys: number[] = [];
  let error: unknown;
  try {
    for (const b of reader.batches(mode)) {
      for (let i = 0; i < b.count; i++) {
        keys.push(b.keys.readUInt32LE(i * 4));
        expect(b.values.readBigUInt64LE(i * 8)).toBe(BigInt(b.keys.readUInt32LE(i * 4)) * 10n);
      }
    }
  } catch (e) {
    error = e;
  }
  return { keys, stats: reader.stats, error: error as InstanceType<typeof BpfError> | undefined };
}

describe('batch iteration under faults', () => {
  beforeEach(() => {
    fake.calls = [];
    fake.nextKey = 0;
    fake.keys = 0;
    fake.maxEntries = 16;
  });

  it('starts from NULL, then resumes from the cursor; short batches are not the end', () => {
    const r = run([{ ret: 0, count: 1 }, { ret: 0, count: 4 }, { ret: ENOENT, count: 2 }]);
    expect(r.error).toBeUndefined();
    expect(r.keys).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(fake.calls.map((c) => c.inBatch)).toEqual(['null', 'cursor', 'cursor']);
  });

  it('consumes what comes with EINTR and EBUSY and resumes', () => {
    const r = run([{ ret: EINTR, count: 2 }, { ret: EBUSY, count: 0 }, { ret: EBUSY, count: 0 }, { ret: 0, count: 3 }, { ret: ENOENT, count: 0 }]);
    expect(r.error).toBeUndefined();
    expect(r.keys).toEqual([0, 1, 2, 3, 4]);
    expect(r.stats.resumed).toBe(3);
  });

  it('retries from NULL when EBUSY comes before any cursor was written', () => {
    const r = run([{ ret: EBUSY, count: 0 }, { ret: ENOENT, count: 1 }]);
    expect(r.keys).toEqual([0]);
    expect(fake.calls.map((c) => c.inBatch)).toEqual(['null', 'null']);
  });

  it('gives up on EBUSY that never makes progress', () => {
    fake.maxEntries = 1000;
    const r = run(Array.from({ length: 100 }, () => ({ ret: EBUSY, count: 0 })));
    expect(r.error?.message).toBe('map fake: lookup batch failed: EBUSY (no progress after 65 retries)');
  });

  it('gives up on a batch call that returns nothing forever', () => {
    fake.maxEntries = 1000;
    const r = run(Array.from({ length: 100 }, () => ({ ret: 0, count: 0 })));
    expect(r.error?.message).toBe('map fake: lookup batch failed: EINVAL (65 calls in a row returned nothing and no end)');
  });

  it('gives up on an iteration that never ends, after more calls than the map has buckets', () => {
    const r = run(Array.from({ length: 100 }, () => ({ ret: 0, count: 1 })));
    expect(r.keys.length).toBe(49);
    expect(r.error?.message).toBe('map fake: lookup batch failed: EINVAL (no end of iteration after 49 calls)');
  });

  it('grows on ENOSPC and retries from the cursor the kernel set', () => {
    const r = run([{ ret: 0, count: 4 }, { ret: ENOSPC, count: 0 }, { ret: ENOSPC, count: 0 }, { ret: ENOENT, count: 9 }], { batchSize: 4 });
    expect(r.keys.length).toBe(13);
    expect(fake.calls.map((c) => c.count)).toEqual([4, 4, 8, 16]);
    expect(r.stats).toMatchObject({ grown: 2, batchSize: 16 });
  });

  it('refuses to grow past max_entries', () => {
    const r = run([{ ret: ENOSPC, count: 0 }, { ret: ENOSPC, count: 0 }], { batchSize: 8 });
    expect(r.error?.errnoName).toBe('ENOSPC');
    expect(r.error?.message).toMatch(/does not fit in 16 entries/);
  });

  it('reports EFAULT during a drain as possible loss, after handing over what came before', () => {
    const r = run([{ ret: 0, count: 4 }, { ret: EFAULT, count: 3 }], {}, 'drain');
    expect(r.keys).toEqual([0, 1, 2, 3]);
    expect(r.error).toBeInstanceOf(BpfError);
    expect(r.error?.errnoName).toBe('EFAULT');
    expect(r.error?.possibleLoss).toBe(4);
    expect(r.error?.message).toMatch(/entries of a drain may have been lost/);
  });

  it('does not count EFAULT on a read as loss', () => {
    const r = run([{ ret: EFAULT }]);
    expect(r.error?.possibleLoss).toBe(0);
  });

  for (const [errno, name] of [[EINVAL, 'EINVAL'], [ENOTSUPP, 'ENOTSUPP']] as const) {
    it(`falls back to per-key iteration on ${name} before anything was read, and says so`, () => {
      fake.keys = 6;
      const r = run([{ ret: errno }]);
      expect(r.error).toBeUndefined();
      expect(r.keys).toEqual([0, 1, 2, 3, 4, 5]);
      expect(r.stats).toMatchObject({ method: 'per-key', fallback: name, entries: 6 });
    });
  }

  it('does not fall back when the method is batch, or after data was read', () => {
    expect(run([{ ret: EINVAL }], { method: 'batch' }).error?.errnoName).toBe('EINVAL');
    const r = run([{ ret: 0, count: 2 }, { ret: ENOTSUPP }]);
    expect(r.keys).toEqual([0, 1]);
    expect(r.error?.errnoName).toBe('ENOTSUPP');
  });

  it('keeps a fallback for the reader\'s later sweeps', () => {
    fake.keys = 2;
    fake.script = [{ ret: EINVAL }];
    const reader = new BatchReader(BpfMap.fromFd(99, { owned: false }), {});
    expect(reader.forEach('read', () => {}).method).toBe('per-key');
    expect(reader.forEach('read', () => {})).toMatchObject({ method: 'per-key', fallback: 'EINVAL', entries: 2 });
    expect(fake.calls.length).toBe(1);
  });
});

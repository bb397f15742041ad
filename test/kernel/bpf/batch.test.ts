import { afterAll, beforeAll, expect, it } from 'vitest';
import { rmSync, unlinkSync } from 'node:fs';
import { BpfMap, BPF_F_NO_PREALLOC } from '../../../src/bpf/map.js';
import { BatchReader, type IterationStats, type ReadMode, type ReaderOptions } from '../../../src/bpf/batch.js';
import { MapType, perCpuSlotSize } from '../../../src/bpf/map-types.js';
import { possibleCpus } from '../../../src/bpf/cpus.js';
import { BpfError } from '../../../src/bpf/errors.js';
import { kernelDescribe, pinDir } from '../support.js';

const N = 10;
const BPF_F_ZERO_SEED = 64;

interface Fixture {
  map: BpfMap;
  /** Expected contents: key hex -> value hex (whole per-CPU value, padding included as written). */
  expected: Map<string, string>;
  close(): void;
}

const hex = (b: Buffer, off: number, len: number): string => b.toString('hex', off, off + len);

/** Key i (1..N for hashes, 0..N-1 for arrays) with per-CPU slot c holding i * 100 + c + 1. */
function valueFor(map: BpfMap, i: number): Buffer {
  const v = map.allocValues(1);
  const slot = map.perCpu ? perCpuSlotSize(map.info.valueSize) : map.info.valueSize;
  for (let c = 0; c < map.cpus; c++) v.writeUInt32LE(i * 100 + c + 1, c * slot);
  return v;
}

function fill(map: BpfMap, keys: Buffer[]): Map<string, string> {
  const expected = new Map<string, string>();
  keys.forEach((k, n) => {
    const v = valueFor(map, n + 1);
    map.update(k, v);
    expected.set(k.toString('hex'), v.toString('hex'));
  });
  return expected;
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

function simple(type: number, opts: { flags?: number; valueSize?: number } = {}): Fixture {
  const array = type === MapType.array || type === MapType.percpu_array;
  const map = BpfMap.create({ type, keySize: 4, valueSize: opts.valueSize ?? 8, maxEntries: array ? N : 64, flags: opts.flags });
  const keys = Array.from({ length: N }, (_, i) => u32(array ? i : i + 1));
  return { map, expected: fill(map, keys), close: () => map.close() };
}

function lpm(): Fixture {
  const map = BpfMap.create({ type: MapType.lpm_trie, keySize: 8, valueSize: 4, maxEntries: 64, flags: BPF_F_NO_PREALLOC });
  const keys = Array.from({ length: N }, (_, i) => Buffer.from([32, 0, 0, 0, 192, 168, 1, i + 1]));
  return { map, expected: fill(map, keys), close: () => map.close() };
}

function hashOfMaps(): Fixture {
  const template = BpfMap.create({ type: MapType.array, keySize: 4, valueSize: 4, maxEntries: 1 });
  const map = BpfMap.create({ type: MapType.hash_of_maps, keySize: 4, valueSize: 4, maxEntries: 64, innerMap: template });
  const inner: BpfMap[] = [];
  const expected = new Map<string, string>();
  for (let i = 1; i <= N; i++) {
    const m = BpfMap.create({ type: MapType.array, keySize: 4, valueSize: 4, maxEntries: 1 });
    inner.push(m);
    map.update(u32(i), u32(m.fd));
    // Written as fds, read back as the inner maps' ids.
    expected.set(u32(i).toString('hex'), u32(m.info.id).toString('hex'));
  }
  return { map, expected, close: () => [map, template, ...inner].forEach((m) => m.close()) };
}

/** Every entry of a sweep, failing on any key seen twice. */
function sweep(map: BpfMap, opts: ReaderOptions, mode: ReadMode = 'read'): { entries: Map<string, string>; stats: IterationStats } {
  const reader = new BatchReader(map, opts);
  const entries = new Map<string, string>();
  for (const b of reader.batches(mode)) {
    expect(b.count).toBeGreaterThan(0);
    for (let i = 0; i < b.count; i++) {
      const k = hex(b.keys, i * b.keySize, b.keySize);
      expect(entries.has(k), `key ${k} returned twice`).toBe(false);
      entries.set(k, hex(b.values, i * b.valueStride, b.valueStride));
    }
  }
  return { entries, stats: { ...reader.stats } };
}

const FIXTURES: [string, () => Fixture][] = [
  ['hash', () => simple(MapType.hash)],
  ['percpu_hash', () => simple(MapType.percpu_hash)],
  ['lru_hash', () => simple(MapType.lru_hash)],
  ['lru_percpu_hash', () => simple(MapType.lru_percpu_hash)],
  ['array', () => simple(MapType.array)],
  ['percpu_array', () => simple(MapType.percpu_array)],
  ['lpm_trie', lpm],
  ['hash_of_maps', hashOfMaps],
];

for (const [name, make] of FIXTURES) {
  const drainable = name !== 'array' && name !== 'percpu_array';
  kernelDescribe(`batch iteration of ${name}`, () => {
    let f: Fixture;
    beforeAll(() => {
      f = make();
    });
    afterAll(() => f.close());

    it('returns every entry exactly once for every batch size from 1 to N + 1', () => {
      for (let bs = 1; bs <= N + 1; bs++) {
        const { entries, stats } = sweep(f.map, { batchSize: bs, method: 'batch' });
        expect(entries, `batch size ${bs}`).toEqual(f.expected);
        expect(stats.method).toBe('batch');
        expect(stats.entries).toBe(N);
      }
    });

    it('gives the same entries through per-key iteration', () => {
      for (const bs of [1, 3, N]) {
        const { entries, stats } = sweep(f.map, { batchSize: bs, method: 'per-key' });
        expect(entries).toEqual(f.expected);
        expect(stats).toMatchObject({ method: 'per-key', entries: N, truncated: false, restarts: 0 });
      }
    });

    it(drainable ? 'drains every entry once and leaves the map empty' : 'refuses a drain clearly', () => {
      const g = make();
      try {
        if (!drainable) {
          expect(() => sweep(g.map, { batchSize: 3 }, 'drain')).toThrow(/drain failed: ENOTSUPP \(\w+ maps cannot delete entries/);
          return;
        }
        const { entries, stats } = sweep(g.map, { batchSize: 3 }, 'drain');
        expect(entries).toEqual(g.expected);
        // LPM tries have no lookup-and-delete batch: the reader falls back and says so.
        expect(stats.method).toBe(name === 'lpm_trie' ? 'per-key' : 'batch');
        if (name === 'lpm_trie') expect(stats.fallback).toMatch(/^E/);
        expect(sweep(g.map, {}).entries.size).toBe(0);
      } finally {
        g.close();
      }
    });
  });
}

kernelDescribe('batch iteration edge cases', () => {
  it('recovers from ENOSPC when a bucket holds more entries than the batch', () => {
    // 1000 keys in 1024 buckets always collide somewhere; a zero seed makes the layout repeatable.
    const map = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 1000, flags: BPF_F_ZERO_SEED });
    try {
      const keys = Buffer.alloc(4000);
      const values = Buffer.alloc(8000);
      for (let i = 0; i < 1000; i++) {
        keys.writeUInt32LE(i * 7919, i * 4);
        values.writeBigUInt64LE(BigInt(i) << 33n, i * 8);
      }
      expect(map.updateBatch(keys, values, 1000)).toBe(1000);
      const { entries, stats } = sweep(map, { batchSize: 1, method: 'batch' });
      expect(stats.grown).toBeGreaterThan(0);
      expect(stats.batchSize).toBeGreaterThan(1);
      expect(entries.size).toBe(1000);
      for (let i = 0; i < 1000; i++) expect(entries.get(hex(keys, i * 4, 4))).toBe(hex(values, i * 8, 8));
    } finally {
      map.close();
    }
  });

  it('reads an empty map as no batches, in both methods and modes', () => {
    const map = BpfMap.create({ type: MapType.percpu_hash, keySize: 4, valueSize: 8, maxEntries: 16 });
    try {
      for (const method of ['batch', 'per-key'] as const) {
        for (const mode of ['read', 'drain'] as const) {
          const { entries, stats } = sweep(map, { method }, mode);
          expect(entries.size).toBe(0);
          expect(stats.entries).toBe(0);
        }
      }
    } finally {
      map.close();
    }
  });

  it('makes a per-key walk restarted by deletions visible, without returning a key twice', () => {
    const f = simple(MapType.hash);
    try {
      const reader = new BatchReader(f.map, { batchSize: 1, method: 'per-key' });
      const seen = new Set<string>();
      let n = 0;
      for (const b of reader.batches()) {
        const k = hex(b.keys, 0, 4);
        expect(seen.has(k)).toBe(false);
        seen.add(k);
        // Deleting the key the walk stands on sends get_next_key back to the first bucket.
        if (++n % 3 === 0) expect(f.map.delete(b.keys.subarray(0, 4))).toBe(true);
      }
      expect(seen.size).toBe(N);
      expect(reader.stats.restarts).toBeGreaterThan(0);
      expect(reader.stats.duplicatesSkipped).toBeGreaterThan(0);
      expect(reader.stats.truncated).toBe(false);
    } finally {
      f.close();
    }
  });

  it('stops a per-key walk that never ends at max_entries + 1 steps and says so', () => {
    const map = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 4 });
    try {
      for (let i = 0; i < 4; i++) map.update(u32(i), Buffer.alloc(8));
      let next = 100;
      const reader = new BatchReader(map, { batchSize: 1, method: 'per-key' });
      // Every key read is replaced by a new one: the walk would never end.
      for (const b of reader.batches()) {
        map.delete(b.keys.subarray(0, 4));
        map.update(u32(next++), Buffer.alloc(8));
      }
      expect(reader.stats.truncated).toBe(true);
      expect(reader.stats.calls).toBeLessThanOrEqual(2 * 5);
    } finally {
      map.close();
    }
  });

  it('pads a 12-byte per-CPU value to 16 bytes per possible CPU', () => {
    const f = simple(MapType.percpu_hash, { valueSize: 12 });
    try {
      expect(f.map.valueStride).toBe(16 * possibleCpus().length);
      const { entries } = sweep(f.map, { batchSize: 4 });
      expect(entries).toEqual(f.expected);
      const v = Buffer.from(entries.get(u32(3).toString('hex'))!, 'hex');
      for (let c = 0; c < f.map.cpus; c++) expect(v.readUInt32LE(c * 16)).toBe(300 + c + 1);
    } finally {
      f.close();
    }
  });

  it('refuses to drain through a read-only fd with a clear EPERM', () => {
    const dir = pinDir('rodrain');
    const f = simple(MapType.hash);
    try {
      f.map.pin(`${dir}/m`);
      const ro = BpfMap.openPinned(`${dir}/m`);
      expect(ro.readOnly).toBe(true);
      expect(sweep(ro, {}).entries).toEqual(f.expected);
      let err: unknown;
      try {
        sweep(ro, {}, 'drain');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BpfError);
      expect((err as BpfError).errnoName).toBe('EPERM');
      expect((err as BpfError).message).toBe(
        `map ${dir}/m: lookup-and-delete batch failed: EPERM (a drain deletes entries and needs a writable fd; the map was opened read-only)`,
      );
      // Nothing was taken.
      expect(sweep(f.map, {}).entries.size).toBe(N);
      ro.close();
      const rw = BpfMap.openPinned(`${dir}/m`, { write: true });
      expect(sweep(rw, {}, 'drain').entries.size).toBe(N);
      rw.close();
    } finally {
      f.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps reading a map unpinned mid-use, and fails clearly on a map closed mid-use', () => {
    const dir = pinDir('midway');
    const f = simple(MapType.hash);
    try {
      f.map.pin(`${dir}/m`);
      const m = BpfMap.openPinned(`${dir}/m`);
      unlinkSync(`${dir}/m`);
      expect(sweep(m, { batchSize: 2 }).entries).toEqual(f.expected);
      expect(() => BpfMap.openPinned(`${dir}/m`)).toThrow(`map ${dir}/m: open pinned map failed: ENOENT (no such map or pin)`);

      const it = new BatchReader(m, { batchSize: 2 }).batches();
      expect(it.next().done).toBe(false);
      m.close();
      expect(m.closed).toBe(true);
      expect(() => it.next()).toThrow(`map ${dir}/m: use map failed: EBADF (the map was closed)`);
      expect(() => new BatchReader(m).batches().next()).toThrow(/EBADF/);
      m.close(); // closing twice is harmless
    } finally {
      f.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

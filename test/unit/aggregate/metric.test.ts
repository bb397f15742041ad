import { describe, expect, it } from 'vitest';
import { LABEL_RETRIES, MetricAggregator } from '../../../src/aggregate/metric.js';
import { KeyTable } from '../../../src/aggregate/key-table.js';
import { bucketIndex } from '../../../src/aggregate/buckets.js';
import { SUM_SLOT, type MapShape, type MetricPlan } from '../../../src/aggregate/types.js';
import { numberReader } from '../../../src/layout/read.js';
import { intType } from '../../../src/layout/field-type.js';
import type { LabelDecoder } from '../../../src/decode/types.js';
import { type HistogramSeries, type ScalarSeries } from '../../../src/metric/series.js';

const u32 = numberReader(intType('u32'));
const u64 = numberReader(intType('u64'));
const uintDecoder: LabelDecoder = { name: 'uint', decode: (b, o) => String(u32(b, o)) };
const parity: LabelDecoder = { name: 'parity', decode: (b, o) => (u32(b, o) % 2 === 0 ? 'even' : 'odd') };
const onlySmall: LabelDecoder = { name: 'regexp', decode: (b, o) => (u32(b, o) < 5 ? String(u32(b, o)) : undefined) };

/** Rows of a map with key {u32 a; u32 b} and a per-CPU u64 value. */
function batch(rows: [number, number, number[]][], cpus: number): { keys: Buffer; values: Buffer; shape: MapShape } {
  const keys = Buffer.alloc(rows.length * 8);
  const values = Buffer.alloc(rows.length * 8 * cpus);
  rows.forEach(([a, b, v], i) => {
    keys.writeUInt32LE(a, i * 8);
    keys.writeUInt32LE(b, i * 8 + 4);
    v.forEach((x, c) => values.writeBigUInt64LE(BigInt(x), (i * cpus + c) * 8));
  });
  return { keys, values, shape: { keySize: 8, valueStride: 8 * cpus, slotSize: 8, cpus, cpuIds: Array.from({ length: cpus }, (_, c) => c * 2) } };
}

function plan(p: Partial<MetricPlan>): MetricPlan {
  return {
    name: 'm', type: 'counter', help: 'h', value: { offset: 0, fromKey: false, read: u64 }, cpu: 'sum', scale: 1,
    labels: [{ name: 'a', kind: 'field', fromKey: true, offset: 0, size: 4, decoder: uintDecoder }], maxSeries: 1000, ...p,
  };
}

function run(p: MetricPlan, rows: [number, number, number[]][], cpus = 2, opts: { accumulate?: boolean } = {}) {
  const b = batch(rows, cpus);
  const agg = new MetricAggregator(p, b.shape, opts);
  agg.begin();
  agg.add(b.keys, b.values, rows.length);
  return { agg, ...agg.finish() };
}

const sorted = (s: (ScalarSeries | HistogramSeries)[]) => [...s].sort((x, y) => JSON.stringify(x.labels).localeCompare(JSON.stringify(y.labels)));

describe('MetricAggregator', () => {
  const rows: [number, number, number[]][] = [[1, 10, [1, 2]], [2, 20, [3, 4]], [3, 10, [5, 6]], [1, 30, [7, 8]]];

  it('sums per-CPU slots and groups rows whose labels decode alike', () => {
    expect(sorted(run(plan({}), rows).family.series)).toEqual([
      { labels: { a: '1' }, value: 1 + 2 + 7 + 8 },
      { labels: { a: '2' }, value: 7 },
      { labels: { a: '3' }, value: 11 },
    ]);
    const byParity = run(plan({ labels: [{ name: 'p', kind: 'field', fromKey: true, offset: 4, size: 4, decoder: parity }] }), rows);
    expect(byParity.family.series).toEqual([{ labels: { p: 'even' }, value: 36 }]);
  });

  it('a stream of events (keys where they lie, at offsets) sums as a map\'s rows do, and keeps nothing per event', () => {
    const events = Array.from({ length: 5000 }, (_, i): [number, number, number[]] => [i % 3, 0, [1]]);
    const b = batch(events, 1);
    // The same keys, each 24 bytes apart in a larger buffer (as a ring buffer's records lie).
    const spread = Buffer.alloc(events.length * 24);
    const offsets = new Uint32Array(events.length);
    events.forEach((_, i) => {
      offsets[i] = i * 24 + 8;
      b.keys.copy(spread, offsets[i], i * 8, i * 8 + 8);
    });
    const stream = new MetricAggregator(plan({}), b.shape, { accumulate: true, stream: true });
    stream.begin();
    stream.add(spread, b.values, events.length, offsets);
    const walked = run(plan({}), events, 1, { accumulate: true });
    expect(sorted(stream.finish().family.series)).toEqual(sorted(walked.family.series));
    expect(sorted(walked.family.series).map((x) => (x as ScalarSeries).value)).toEqual([1667, 1667, 1666]);
    // A map's walk keeps the key met at each position (5000 here); a stream of events, none.
    expect((walked.agg as unknown as { byPosition: Int32Array }).byPosition.length).toBeGreaterThanOrEqual(5000);
    expect((stream as unknown as { byPosition: Int32Array }).byPosition.length).toBe(0);
  });

  it('reduces CPUs by max and min, or labels each CPU by its id', () => {
    expect(sorted(run(plan({ cpu: 'max', type: 'gauge' }), rows).family.series).map((s) => (s as ScalarSeries).value)).toEqual([2 + 8, 4, 6]);
    expect(sorted(run(plan({ cpu: 'min', type: 'gauge' }), rows).family.series).map((s) => (s as ScalarSeries).value)).toEqual([1 + 7, 3, 5]);
    const perCpu = run(plan({ cpu: 'label', labels: [{ name: 'a', kind: 'field', fromKey: true, offset: 0, size: 4, decoder: uintDecoder }, { name: 'cpu', kind: 'cpu' }] }), rows);
    expect(sorted(perCpu.family.series)).toEqual([
      { labels: { a: '1', cpu: '0' }, value: 8 },
      { labels: { a: '1', cpu: '2' }, value: 10 },
      { labels: { a: '2', cpu: '0' }, value: 3 },
      { labels: { a: '2', cpu: '2' }, value: 4 },
      { labels: { a: '3', cpu: '0' }, value: 5 },
      { labels: { a: '3', cpu: '2' }, value: 6 },
    ]);
  });

  it('applies scale and static labels', () => {
    const r = run(plan({ scale: 0.5, labels: [{ name: 'src', kind: 'static', value: 'x' }] }), rows);
    expect(r.family.series).toEqual([{ labels: { src: 'x' }, value: 36 * 0.5 }]);
  });

  it('drops rows a regexp label refuses, and counts them', () => {
    const r = run(plan({ labels: [{ name: 'b', kind: 'field', fromKey: true, offset: 4, size: 4, decoder: onlySmall }] }), [[1, 1, [1, 0]], [2, 9, [5, 0]], [3, 9, [5, 0]]]);
    expect(r.family.series).toEqual([{ labels: { b: '1' }, value: 1 }]);
    expect(r.stats.rowsDropped).toBe(2);
  });

  it('caps series at max_series and counts the excess, every cycle', () => {
    const many: [number, number, number[]][] = Array.from({ length: 10 }, (_, i) => [i, 0, [1, 1]]);
    const r = run(plan({ maxSeries: 4 }), many);
    expect(r.family.series.length).toBe(4);
    expect(r.stats).toEqual({ series: 4, seriesDropped: 6, rowsDropped: 0 });
    // The same keys next cycle: the same verdicts, counted again.
    const b = batch(many, 2);
    r.agg.begin();
    r.agg.add(b.keys, b.values, many.length);
    expect(r.agg.finish().stats).toEqual({ series: 4, seriesDropped: 6, rowsDropped: 0 });
  });

  it('forgets departed keys in read jobs and keeps totals in drain jobs', () => {
    const p = plan({});
    for (const accumulate of [false, true]) {
      const first = batch([[1, 0, [1, 1]], [2, 0, [1, 1]]], 2);
      const agg = new MetricAggregator(p, first.shape, { accumulate });
      agg.begin();
      agg.add(first.keys, first.values, 2);
      agg.finish();
      const second = batch([[2, 0, [5, 0]]], 2);
      agg.begin();
      agg.add(second.keys, second.values, 1);
      expect(sorted(agg.finish().family.series)).toEqual(
        accumulate ? [{ labels: { a: '1' }, value: 2 }, { labels: { a: '2' }, value: 7 }] : [{ labels: { a: '2' }, value: 5 }],
      );
    }
  });

  it('builds cumulative histograms with the sum kept at bucket max + 1', () => {
    const { bounds, index } = bucketIndex({ kind: 'exp2', min: 0, max: 3, multiplier: 1e-6 }, false);
    const h = plan({
      type: 'histogram',
      labels: [{ name: 'a', kind: 'field', fromKey: true, offset: 0, size: 4, decoder: uintDecoder }],
      histogram: { bucket: { offset: 4, fromKey: true, read: u32 }, bounds, index, sumScale: 1e-6 },
    });
    // key b is the bucket: 0..3 counts, 4 the sum, 9 beyond max (+Inf only).
    const r = run(h, [[1, 0, [1, 1]], [1, 2, [3, 0]], [1, 3, [0, 1]], [1, 4, [500, 0]], [1, 9, [1, 0]], [2, 1, [1, 0]]]);
    expect(sorted(r.family.series)).toEqual([
      { labels: { a: '1' }, buckets: [{ le: 1e-6, count: 2 }, { le: 2e-6, count: 2 }, { le: 4e-6, count: 5 }, { le: 8e-6, count: 6 }, { le: Infinity, count: 7 }], count: 7, sum: 500e-6 },
      { labels: { a: '2' }, buckets: [{ le: 1e-6, count: 0 }, { le: 2e-6, count: 1 }, { le: 4e-6, count: 1 }, { le: 8e-6, count: 1 }, { le: Infinity, count: 1 }], count: 1, sum: 0 },
    ]);
  });
});

describe('provisional labels', () => {
  /** A decoder whose table learns names as the test says (a cgroup created after the last walk). */
  function learning() {
    const names = new Map<number, string>();
    const calls = new Map<number, number>();
    const decoder: LabelDecoder = {
      name: 'learning',
      decode: (b, o) => {
        const id = u32(b, o);
        calls.set(id, (calls.get(id) ?? 0) + 1);
        return names.get(id) ?? `unknown_id:${id}`;
      },
      provisional: (label) => label.startsWith('unknown_id:'),
    };
    return { names, calls, decoder };
  }

  function cycles(decoder: LabelDecoder, rows: [number, number, number[]][], n: number, opts: { accumulate?: boolean } = {}, between: (cycle: number) => void = () => {}) {
    const b = batch(rows, 1);
    const agg = new MetricAggregator(plan({ labels: [{ name: 'a', kind: 'field', fromKey: true, offset: 0, size: 4, decoder }] }), b.shape, opts);
    const out: (ScalarSeries | HistogramSeries)[][] = [];
    for (let c = 0; c < n; c++) {
      between(c);
      agg.begin();
      agg.add(b.keys, b.values, rows.length);
      out.push(sorted(agg.finish().family.series));
    }
    return out;
  }

  it('decodes a key again in later cycles until its name is known, then keeps the name', () => {
    const t = learning();
    t.names.set(1, 'one');
    const out = cycles(t.decoder, [[1, 0, [5]], [7, 0, [3]]], 4, {}, (c) => c === 2 && t.names.set(7, 'seven'));
    expect(out[0]).toEqual([{ labels: { a: 'one' }, value: 5 }, { labels: { a: 'unknown_id:7' }, value: 3 }]);
    expect(out[2]).toEqual([{ labels: { a: 'one' }, value: 5 }, { labels: { a: 'seven' }, value: 3 }]);
    expect(out[3]).toEqual(out[2]);
    // A known name is decoded once; the unknown one until it resolved (cycles 0, 1, 2), then no more.
    expect(t.calls.get(1)).toBe(1);
    expect(t.calls.get(7)).toBe(3);
  });

  it(`stops after ${LABEL_RETRIES} more cycles for a name that never comes`, () => {
    const t = learning();
    const out = cycles(t.decoder, [[9, 0, [2]]], LABEL_RETRIES + 4);
    expect(t.calls.get(9)).toBe(1 + LABEL_RETRIES);
    expect(out.at(-1)).toEqual([{ labels: { a: 'unknown_id:9' }, value: 2 }]);
  });

  it('keeps a drain job\'s total under the stand-in and counts on under the name', () => {
    const t = learning();
    const out = cycles(t.decoder, [[7, 0, [3]]], 3, { accumulate: true }, (c) => c === 1 && t.names.set(7, 'seven'));
    expect(out[2]).toEqual([{ labels: { a: 'seven' }, value: 6 }, { labels: { a: 'unknown_id:7' }, value: 3 }]);
  });
});

describe('bucketIndex', () => {
  it('computes bounds for every kind', () => {
    expect(bucketIndex({ kind: 'exp2', min: 2, max: 4, multiplier: 1 }, false).bounds).toEqual([4, 8, 16]);
    expect(bucketIndex({ kind: 'exp2zero', min: 0, max: 3, multiplier: 2 }, false).bounds).toEqual([0, 2, 4, 8]);
    expect(bucketIndex({ kind: 'linear', min: 1, max: 3, multiplier: 10 }, false).bounds).toEqual([10, 20, 30]);
    expect(bucketIndex({ kind: 'fixed', min: 0, max: 0, multiplier: 1, values: [50, 10, 100] }, false).bounds).toEqual([10, 50, 100]);
  });

  it('sends keys below min to the first bucket, above max to +Inf, max + 1 to the sum without a sum field', () => {
    const r = bucketIndex({ kind: 'linear', min: 2, max: 4, multiplier: 1 }, false);
    expect([0, 2, 3, 4, 5, 6].map(r.index)).toEqual([0, 0, 1, 2, SUM_SLOT, 3]);
    const withSum = bucketIndex({ kind: 'linear', min: 2, max: 4, multiplier: 1 }, true);
    expect(withSum.index(5)).toBe(3);
    const fixed = bucketIndex({ kind: 'fixed', min: 0, max: 0, multiplier: 1, values: [10, 50] }, false);
    expect([0, 10, 11, 50, 51, 52].map(fixed.index)).toEqual([0, 0, 1, 1, SUM_SLOT, 2]);
    expect(bucketIndex({ kind: 'fixed', min: 0, max: 0, multiplier: 1, values: [10, 50] }, true).index(51)).toBe(2);
  });

  it('keeps a fixed histogram\'s sum key (the largest key + 1) out of its counts, as ebpf_exporter does', () => {
    const h = bucketIndex({ kind: 'fixed', min: 0, max: 0, multiplier: 1, values: [1, 2, 5] }, false);
    const counts = [0, 0, 0, 0];
    let sum = 0;
    for (const [key, n] of [[1, 5], [2, 3], [5, 2], [6, 1000]]) {
      const b = h.index(key);
      if (b === SUM_SLOT) sum += n;
      else counts[b] += n;
    }
    expect({ count: counts.reduce((a, b) => a + b, 0), sum }).toEqual({ count: 10, sum: 1000 });
  });
});

describe('KeyTable', () => {
  it('gives dense ids, finds them again across growth, and clears', () => {
    const t = new KeyTable(3, 2);
    const put = (a: number, b: number, c: number) => t.scratch.set([a, b, c]);
    for (let i = 0; i < 5000; i++) {
      put(i & 255, (i >> 8) & 255, 7);
      expect(t.find()).toBe(-1);
      expect(t.insert()).toBe(i);
    }
    for (let i = 0; i < 5000; i++) {
      put(i & 255, (i >> 8) & 255, 7);
      expect(t.find()).toBe(i);
      expect([...t.key(i)]).toEqual([i & 255, (i >> 8) & 255, 7]);
    }
    t.clear();
    put(0, 0, 7);
    expect(t.find()).toBe(-1);
    expect(t.size).toBe(0);
  });
});

describe('drain totals across a checkpoint', () => {
  it('exports totals and imports them into a fresh aggregator, histograms included', () => {
    const { bounds, index } = bucketIndex({ kind: 'linear', min: 0, max: 2, multiplier: 1 }, false);
    const h = plan({ type: 'histogram', histogram: { bucket: { offset: 4, fromKey: true, read: u32 }, bounds, index, sumScale: 1 } });
    const rows: [number, number, number[]][] = [[1, 0, [2, 0]], [1, 3, [9, 0]], [2, 1, [1, 1]]];
    const first = run(h, rows, 2, { accumulate: true });
    const saved = first.agg.exportState();
    expect(saved).toEqual([
      { labels: { a: '1' }, value: 0, sum: 9, counts: [2, 0, 0, 0] },
      { labels: { a: '2' }, value: 0, sum: 0, counts: [0, 2, 0, 0] },
    ]);
    const b = batch([[1, 2, [5, 0]]], 2);
    const next = new MetricAggregator(h, b.shape, { accumulate: true });
    expect(next.importState(JSON.parse(JSON.stringify(saved)))).toBe(0);
    next.begin();
    next.add(b.keys, b.values, 1);
    expect(sorted(next.finish().family.series)).toEqual([
      { labels: { a: '1' }, buckets: [{ le: 0, count: 2 }, { le: 1, count: 2 }, { le: 2, count: 7 }, { le: Infinity, count: 7 }], count: 7, sum: 9 },
      { labels: { a: '2' }, buckets: [{ le: 0, count: 0 }, { le: 1, count: 2 }, { le: 2, count: 2 }, { le: Infinity, count: 2 }], count: 2, sum: 0 },
    ]);
    // A saved series whose labels no longer fit the metric is skipped and counted.
    expect(next.importState([{ labels: { other: 'x' }, value: 1, sum: 0, counts: [0, 0, 0, 0] }])).toBe(1);
  });
});

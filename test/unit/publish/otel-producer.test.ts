import { describe, expect, it } from 'vitest';
import type { HrTime } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType, type DataPoint, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import type { Family, HistogramSeries } from '../../../src/metric/series.js';
import { SCOPE_NAME, SnapshotProducer, toHistogram } from '../../../src/publish/otel-producer.js';
import { exporterVersion } from '../../../src/publish/otel-resource.js';

const T0 = 1_700_000_000_000; // ms: the job's start
const hr = (ms: number): HrTime => [Math.trunc(ms / 1000), (ms % 1000) * 1e6];

const counter = (name: string, series: [Record<string, string>, number][]): Family => ({
  name,
  type: 'counter',
  help: `${name} help`,
  series: series.map(([labels, value]) => ({ labels, value })),
});
const gauge = (name: string, series: [Record<string, string>, number][]): Family => ({ ...counter(name, series), type: 'gauge' });
const hseries = (labels: Record<string, string>, cum: [number, number][], sum: number): HistogramSeries => ({
  labels,
  buckets: cum.map(([le, count]) => ({ le, count })),
  count: cum[cum.length - 1][1],
  sum,
});
const histogram = (name: string, series: HistogramSeries[]): Family => ({ name, type: 'histogram', help: `${name} help`, series });

async function metrics(p: { collect(): Promise<{ resourceMetrics: { scopeMetrics: { scope: { name: string; version?: string }; metrics: MetricData[] }[] }; errors: unknown[] }> }) {
  const r = await p.collect();
  expect(r.errors).toEqual([]);
  expect(r.resourceMetrics.scopeMetrics.length).toBeLessThanOrEqual(1);
  return r.resourceMetrics.scopeMetrics[0]?.metrics ?? [];
}
function byName(ms: MetricData[], name: string): MetricData {
  const m = ms.find((x) => x.descriptor.name === name);
  if (m === undefined) throw new Error(`no metric ${name} in ${ms.map((x) => x.descriptor.name).join(', ')}`);
  return m;
}
function points<T>(m: MetricData): DataPoint<T>[] {
  return m.dataPoints as DataPoint<T>[];
}

describe('SnapshotProducer: conversion', () => {
  it('turns counters, gauges and histograms into SUM, GAUGE and HISTOGRAM under the exporter scope', async () => {
    const p = new SnapshotProducer();
    p.set(
      'syscalls',
      [
        counter('syscalls_total', [[{ syscall: 'read' }, 10], [{ syscall: 'write' }, 2.5]]),
        gauge('queue_depth', [[{ q: '0' }, 7]]),
        histogram('io_latency_seconds', [hseries({ op: 'read' }, [[0.001, 1], [0.01, 4], [0.1, 4], [Infinity, 6]], 0.25)]),
      ],
      { startTime: T0, time: T0 + 15_000 },
    );
    const r = await p.collect();
    expect(r.errors).toEqual([]);
    expect(r.resourceMetrics.scopeMetrics).toHaveLength(1);
    expect(r.resourceMetrics.scopeMetrics[0].scope).toEqual({ name: SCOPE_NAME, version: exporterVersion() });
    expect(exporterVersion()).toMatch(/^\d+\.\d+\.\d+/);
    const ms = r.resourceMetrics.scopeMetrics[0].metrics;

    const c = byName(ms, 'syscalls_total');
    expect(c).toMatchObject({
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      descriptor: { name: 'syscalls_total', description: 'syscalls_total help', unit: '' },
    });
    expect(points<number>(c)).toEqual([
      { startTime: hr(T0), endTime: hr(T0 + 15_000), attributes: { syscall: 'read' }, value: 10 },
      { startTime: hr(T0), endTime: hr(T0 + 15_000), attributes: { syscall: 'write' }, value: 2.5 },
    ]);

    const g = byName(ms, 'queue_depth');
    expect(g.dataPointType).toBe(DataPointType.GAUGE);
    expect(points<number>(g)).toEqual([{ startTime: hr(T0), endTime: hr(T0 + 15_000), attributes: { q: '0' }, value: 7 }]);

    const h = byName(ms, 'io_latency_seconds');
    expect(h.dataPointType).toBe(DataPointType.HISTOGRAM);
    expect(h.aggregationTemporality).toBe(AggregationTemporality.CUMULATIVE);
    expect(points<Histogram>(h)).toEqual([
      {
        startTime: hr(T0),
        endTime: hr(T0 + 15_000),
        attributes: { op: 'read' },
        // Per bucket, not cumulative; one more count than bounds: the last is the +Inf overflow.
        value: { buckets: { boundaries: [0.001, 0.01, 0.1], counts: [1, 3, 0, 2] }, count: 6, sum: 0.25 },
      },
    ]);
  });

  it('accepts an HrTime start and keeps sub-millisecond precision', async () => {
    const p = new SnapshotProducer();
    p.set('j', [counter('c_total', [[{}, 1]])], { startTime: [1_700_000_000, 123_456_789], time: T0 + 1 });
    expect(points<number>(byName(await metrics(p), 'c_total'))[0].startTime).toEqual([1_700_000_000, 123_456_789]);
  });

  it('derives the overflow bucket from count when the +Inf bucket is missing', () => {
    const s: HistogramSeries = { labels: {}, buckets: [{ le: 1, count: 2 }, { le: 2, count: 5 }], count: 9, sum: 3 };
    expect(toHistogram(s)).toEqual({ buckets: { boundaries: [1, 2], counts: [2, 3, 4] }, count: 9, sum: 3 });
  });

  it('exports every series of a snapshot, far past the SDK default limit of 2000', async () => {
    const p = new SnapshotProducer();
    const series: [Record<string, string>, number][] = Array.from({ length: 5000 }, (_, i) => [{ pid: String(i) }, i * 2]);
    p.set('pids', [counter('pid_calls_total', series)], { startTime: T0, time: T0 + 1000 });
    const pts = points<number>(byName(await metrics(p), 'pid_calls_total'));
    expect(pts).toHaveLength(5000);
    expect(pts.every((pt, i) => pt.attributes.pid === String(i) && pt.value === i * 2)).toBe(true);
    expect(pts.some((pt) => 'otel.metric.overflow' in pt.attributes)).toBe(false);
  });

  it('returns no scope at all when there is nothing to export, and forgets removed jobs', async () => {
    const p = new SnapshotProducer();
    expect((await p.collect()).resourceMetrics.scopeMetrics).toEqual([]);
    p.set('a', [counter('a_total', [[{}, 1]])], { startTime: T0, time: T0 + 1 });
    p.set('b', [counter('b_total', [[{}, 1]])], { startTime: T0, time: T0 + 1 });
    p.remove('a');
    expect((await metrics(p)).map((m) => m.descriptor.name)).toEqual(['b_total']);
    p.set('e', [counter('empty_total', [])], { startTime: T0, time: T0 + 1 });
    expect((await metrics(p)).map((m) => m.descriptor.name)).toEqual(['b_total']);
  });

  it('merges a family two jobs publish into one metric', async () => {
    const p = new SnapshotProducer();
    p.set('eth0', [counter('xdp_packets_total', [[{ dev: 'eth0' }, 1]])], { startTime: T0, time: T0 + 1 });
    p.set('eth1', [counter('xdp_packets_total', [[{ dev: 'eth1' }, 2]])], { startTime: T0, time: T0 + 2 });
    const ms = await metrics(p);
    expect(ms).toHaveLength(1);
    expect(points<number>(ms[0]).map((pt) => [pt.attributes.dev, pt.value])).toEqual([['eth0', 1], ['eth1', 2]]);
    // The cached per-job metrics were not mutated by the merge.
    expect(points<number>((await metrics(p))[0])).toHaveLength(2);
  });

  it('shares one built snapshot between cumulative collections (no rebuild without a new set)', async () => {
    const p = new SnapshotProducer();
    p.set('j', [counter('c_total', [[{}, 1]])], { startTime: T0, time: T0 + 1 });
    const a = await metrics(p);
    const b = await metrics(p.view('cumulative'));
    expect(b[0]).toBe(a[0]);
  });
});

describe('SnapshotProducer: start times and resets (cumulative)', () => {
  it('keeps the job start while a counter grows, moves it to the previous snapshot when it goes down', async () => {
    const p = new SnapshotProducer();
    const at = (s: number) => ({ startTime: T0, time: T0 + s * 1000 });
    p.set('j', [counter('c_total', [[{ k: 'a' }, 5], [{ k: 'b' }, 5]])], at(10));
    p.set('j', [counter('c_total', [[{ k: 'a' }, 8], [{ k: 'b' }, 2]])], at(20));
    let pts = points<number>(byName(await metrics(p), 'c_total'));
    expect(pts.map((pt) => [pt.attributes.k, pt.value, pt.startTime])).toEqual([
      ['a', 8, hr(T0)],
      ['b', 2, hr(T0 + 10_000)], // reset between 10s and 20s
    ]);
    p.set('j', [counter('c_total', [[{ k: 'a' }, 9], [{ k: 'b' }, 4], [{ k: 'c' }, 1]])], at(30));
    pts = points<number>(byName(await metrics(p), 'c_total'));
    expect(pts.map((pt) => [pt.attributes.k, pt.startTime])).toEqual([
      ['a', hr(T0)],
      ['b', hr(T0 + 10_000)], // stays moved
      ['c', hr(T0)], // a new series starts with its job
    ]);
  });

  it('restarts every series when the job start changes', async () => {
    const p = new SnapshotProducer();
    p.set('j', [counter('c_total', [[{}, 5]])], { startTime: T0, time: T0 + 10_000 });
    p.set('j', [counter('c_total', [[{}, 50]])], { startTime: T0 + 15_000, time: T0 + 20_000 });
    expect(points<number>(byName(await metrics(p), 'c_total'))[0].startTime).toEqual(hr(T0 + 15_000));
  });

  it('treats a histogram whose count or a bucket went down as reset', async () => {
    const p = new SnapshotProducer();
    const at = (s: number) => ({ startTime: T0, time: T0 + s * 1000 });
    p.set('j', [histogram('h', [hseries({}, [[1, 2], [Infinity, 4]], 4)])], at(10));
    p.set('j', [histogram('h', [hseries({}, [[1, 1], [Infinity, 5]], 5)])], at(20));
    expect(points<Histogram>(byName(await metrics(p), 'h'))[0].startTime).toEqual(hr(T0 + 10_000));
  });
});

describe('SnapshotProducer: delta temporality', () => {
  it('reports differences between collections, over back-to-back intervals', async () => {
    const p = new SnapshotProducer({ temporality: 'delta' });
    const at = (s: number) => ({ startTime: T0, time: T0 + s * 1000 });
    p.set('j', [counter('c_total', [[{ k: 'a' }, 5]]), gauge('g', [[{}, 3]])], at(10));
    let ms = await metrics(p);
    expect(byName(ms, 'c_total').aggregationTemporality).toBe(AggregationTemporality.DELTA);
    expect(points<number>(byName(ms, 'c_total'))).toEqual([{ startTime: hr(T0), endTime: hr(T0 + 10_000), attributes: { k: 'a' }, value: 5 }]);

    p.set('j', [counter('c_total', [[{ k: 'a' }, 12]]), gauge('g', [[{}, 1]])], at(20));
    ms = await metrics(p);
    expect(points<number>(byName(ms, 'c_total'))).toEqual([{ startTime: hr(T0 + 10_000), endTime: hr(T0 + 20_000), attributes: { k: 'a' }, value: 7 }]);
    expect(points<number>(byName(ms, 'g'))[0].value).toBe(1); // gauges are not differenced

    // No new snapshot: nothing happened, nothing to report.
    expect(await metrics(p)).toEqual([]);
  });

  it('differences over skipped snapshots, and reports a reset as the new value with a moved start', async () => {
    const p = new SnapshotProducer({ temporality: 'delta' });
    const at = (s: number) => ({ startTime: T0, time: T0 + s * 1000 });
    p.set('j', [counter('c_total', [[{}, 10]])], at(10));
    await metrics(p);
    p.set('j', [counter('c_total', [[{}, 11]])], at(20));
    p.set('j', [counter('c_total', [[{}, 15]])], at(30)); // 20s never collected
    expect(points<number>((await metrics(p))[0])[0]).toMatchObject({ startTime: hr(T0 + 10_000), endTime: hr(T0 + 30_000), value: 5 });

    p.set('j', [counter('c_total', [[{}, 4]])], at(40)); // went down: reset after 30s
    expect(points<number>((await metrics(p))[0])[0]).toMatchObject({ startTime: hr(T0 + 30_000), endTime: hr(T0 + 40_000), value: 4 });
    p.set('j', [counter('c_total', [[{}, 6]])], at(50));
    expect(points<number>((await metrics(p))[0])[0]).toMatchObject({ startTime: hr(T0 + 40_000), endTime: hr(T0 + 50_000), value: 2 });
  });

  it('sees a reset that happened between its collections even when the value has grown past the old one', async () => {
    const p = new SnapshotProducer({ temporality: 'delta' });
    const at = (s: number) => ({ startTime: T0, time: T0 + s * 1000 });
    p.set('j', [counter('c_total', [[{}, 10]])], at(10));
    await metrics(p);
    p.set('j', [counter('c_total', [[{}, 3]])], at(20)); // reset, not collected
    p.set('j', [counter('c_total', [[{}, 12]])], at(30));
    // 12 since the reset (after 10s), not 12 - 10.
    expect(points<number>((await metrics(p))[0])[0]).toMatchObject({ startTime: hr(T0 + 10_000), endTime: hr(T0 + 30_000), value: 12 });
  });

  it('differences histograms bucket by bucket', async () => {
    const p = new SnapshotProducer({ temporality: 'delta' });
    const at = (s: number) => ({ startTime: T0, time: T0 + s * 1000 });
    p.set('j', [histogram('h', [hseries({ op: 'r' }, [[1, 2], [2, 3], [Infinity, 3]], 2.5)])], at(10));
    await metrics(p);
    p.set('j', [histogram('h', [hseries({ op: 'r' }, [[1, 4], [2, 8], [Infinity, 9]], 10)])], at(20));
    const h = (await metrics(p))[0];
    expect(h.aggregationTemporality).toBe(AggregationTemporality.DELTA);
    expect(points<Histogram>(h)[0]).toEqual({
      startTime: hr(T0 + 10_000),
      endTime: hr(T0 + 20_000),
      attributes: { op: 'r' },
      value: { buckets: { boundaries: [1, 2], counts: [2, 3, 1] }, count: 6, sum: 7.5 },
    });
  });

  it('keeps delta memory per view: two readers each get the full difference', async () => {
    const p = new SnapshotProducer();
    const a = p.view('delta');
    const b = p.view('delta');
    const at = (s: number) => ({ startTime: T0, time: T0 + s * 1000 });
    p.set('j', [counter('c_total', [[{}, 10]])], at(10));
    await metrics(a);
    await metrics(b);
    p.set('j', [counter('c_total', [[{}, 13]])], at(20));
    expect(points<number>((await metrics(a))[0])[0].value).toBe(3);
    expect(points<number>((await metrics(b))[0])[0].value).toBe(3);
    // And the producer's own cumulative collect is untouched by both.
    expect(points<number>((await metrics(p))[0])[0].value).toBe(13);
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HrTime } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import { AggregationTemporality, DataPointType, type CollectionResult, type DataPoint, type Histogram as OtelHistogram, type MetricData } from '@opentelemetry/sdk-metrics';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { REGISTRY_SCOPE_NAME, RegistryProducer } from '../../../src/publish/otel-registry.js';
import { SCOPE_NAME } from '../../../src/publish/otel-producer.js';
import { exporterVersion } from '../../../src/publish/otel-resource.js';
import { registerProcessMetrics, SelfMetrics } from '../../../src/publish/self-metrics.js';

const T0 = 1_700_000_000_000; // ms: the process start the producer is given
const hr = (ms: number): HrTime => [Math.trunc(ms / 1000), (ms % 1000) * 1e6];

async function metrics(p: { collect(): Promise<CollectionResult> }): Promise<MetricData[]> {
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
function point(m: MetricData, map: string): DataPoint<number> {
  const p = points<number>(m).find((x) => x.attributes.map === map);
  if (p === undefined) throw new Error(`no point with map=${map}`);
  return p;
}

/** A registry like the exporter's, in small: a labelled counter, a gauge, a labelled histogram. */
function sample(): { registry: Registry; reads: Counter; up: Gauge; lat: Histogram } {
  const registry = new Registry();
  const reads = new Counter({ name: 'x_reads_total', help: 'Reads per map', labelNames: ['map'], registers: [registry] });
  const up = new Gauge({ name: 'x_up', help: 'Up', labelNames: ['map'], registers: [registry] });
  const lat = new Histogram({ name: 'x_render_seconds', help: 'Render time', labelNames: ['format'], buckets: [0.001, 0.1, 1], registers: [registry] });
  return { registry, reads, up, lat };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(T0 + 10_000);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('RegistryProducer: conversion', () => {
  it('turns counters, gauges and histograms into monotonic cumulative SUMs, GAUGEs and explicit-bucket HISTOGRAMs', async () => {
    const { registry, reads, up, lat } = sample();
    reads.inc({ map: 'a' }, 3);
    reads.inc({ map: 'b' });
    up.set({ map: 'a' }, 1);
    lat.observe({ format: 'text' }, 0.0005);
    lat.observe({ format: 'text' }, 0.05);
    lat.observe({ format: 'text' }, 0.07);
    lat.observe({ format: 'text' }, 5);
    const p = new RegistryProducer(registry, { startTime: T0 });
    const r = await p.collect();
    expect(r.errors).toEqual([]);
    expect(r.resourceMetrics.scopeMetrics).toHaveLength(1);
    expect(r.resourceMetrics.scopeMetrics[0].scope).toEqual({ name: REGISTRY_SCOPE_NAME, version: exporterVersion() });
    expect(REGISTRY_SCOPE_NAME).not.toBe(SCOPE_NAME);
    const ms = r.resourceMetrics.scopeMetrics[0].metrics;
    expect(ms.map((m) => m.descriptor.name)).toEqual(['x_reads_total', 'x_up', 'x_render_seconds']);

    const c = byName(ms, 'x_reads_total');
    expect(c).toMatchObject({ dataPointType: DataPointType.SUM, isMonotonic: true, aggregationTemporality: AggregationTemporality.CUMULATIVE });
    expect(c.descriptor).toMatchObject({ name: 'x_reads_total', description: 'Reads per map', unit: '' });
    expect(points<number>(c)).toEqual([
      { startTime: hr(T0), endTime: hr(T0 + 10_000), attributes: { map: 'a' }, value: 3 },
      { startTime: hr(T0), endTime: hr(T0 + 10_000), attributes: { map: 'b' }, value: 1 },
    ]);

    const g = byName(ms, 'x_up');
    expect(g.dataPointType).toBe(DataPointType.GAUGE);
    expect(points<number>(g)).toEqual([{ startTime: hr(T0), endTime: hr(T0 + 10_000), attributes: { map: 'a' }, value: 1 }]);

    const h = byName(ms, 'x_render_seconds');
    expect(h).toMatchObject({ dataPointType: DataPointType.HISTOGRAM, aggregationTemporality: AggregationTemporality.CUMULATIVE });
    const [hp] = points<OtelHistogram>(h);
    expect(hp.attributes).toEqual({ format: 'text' });
    expect(hp.startTime).toEqual(hr(T0));
    // One count per bucket (not cumulative), the last being (1, +Inf).
    expect(hp.value).toEqual({ buckets: { boundaries: [0.001, 0.1, 1], counts: [1, 2, 0, 1] }, count: 4, sum: 5.1205 });
  });

  it('turns numeric label values into string attributes, and leaves out metrics without series and summaries', async () => {
    const registry = new Registry();
    new Gauge({ name: 'x_version_info', help: 'Version', labelNames: ['major', 'version'], registers: [registry] }).set({ major: 20, version: 'v20.1.0' }, 1);
    new Counter({ name: 'x_never_total', help: 'Never counted', labelNames: ['map'], registers: [registry] });
    new Summary({ name: 'x_latency_seconds', help: 'Latency', percentiles: [0.5], registers: [registry] }).observe(1);
    const ms = await metrics(new RegistryProducer(registry, { startTime: T0 }));
    expect(ms.map((m) => m.descriptor.name)).toEqual(['x_version_info']);
    expect(points<number>(ms[0])[0].attributes).toEqual({ major: '20', version: 'v20.1.0' });
  });

  it('an empty registry gives no scope at all (the reader then exports nothing)', async () => {
    const r = await new RegistryProducer(new Registry()).collect();
    expect(r).toMatchObject({ errors: [], resourceMetrics: { scopeMetrics: [] } });
  });

  it('starts with the process by default', async () => {
    const { registry, reads } = sample();
    reads.inc({ map: 'a' });
    const [pt] = points<number>(byName(await metrics(new RegistryProducer(registry)), 'x_reads_total'));
    expect(pt.startTime).toEqual(millisToHrTime(performance.timeOrigin));
  });

  it('a series that appears later starts at the previous collection; one that goes down restarts there', async () => {
    const { registry, reads } = sample();
    reads.inc({ map: 'a' }, 5);
    const p = new RegistryProducer(registry, { startTime: T0 });
    await metrics(p);
    vi.setSystemTime(T0 + 20_000);
    reads.inc({ map: 'a' }, 2);
    reads.inc({ map: 'late' }, 4);
    expect(points<number>(byName(await metrics(p), 'x_reads_total'))).toEqual([
      { startTime: hr(T0), endTime: hr(T0 + 20_000), attributes: { map: 'a' }, value: 7 },
      { startTime: hr(T0 + 10_000), endTime: hr(T0 + 20_000), attributes: { map: 'late' }, value: 4 },
    ]);
    vi.setSystemTime(T0 + 30_000);
    reads.remove({ map: 'a' });
    reads.inc({ map: 'a' }, 1);
    expect(point(byName(await metrics(p), 'x_reads_total'), 'a')).toEqual({ startTime: hr(T0 + 20_000), endTime: hr(T0 + 30_000), attributes: { map: 'a' }, value: 1 });
    // The new run keeps its start afterwards.
    vi.setSystemTime(T0 + 40_000);
    reads.inc({ map: 'a' }, 1);
    expect(point(byName(await metrics(p), 'x_reads_total'), 'a')).toMatchObject({ startTime: hr(T0 + 20_000), value: 2 });
  });

  it('reports a failing collect callback as an error, and the next collection goes on', async () => {
    const registry = new Registry();
    let fail = true;
    new Gauge({
      name: 'x_flaky',
      help: 'Fails once',
      registers: [registry],
      collect() {
        if (fail) throw new Error('collect failed');
        this.set(1);
      },
    });
    const p = new RegistryProducer(registry, { startTime: T0 });
    const r = await p.collect();
    expect(r.errors.map(String)).toEqual(['Error: collect failed']);
    expect(r.resourceMetrics.scopeMetrics).toEqual([]);
    fail = false;
    expect((await metrics(p)).map((m) => m.descriptor.name)).toEqual(['x_flaky']);
  });
});

describe('RegistryProducer: delta views', () => {
  it('reports each series whole at first, then the change since its previous collection', async () => {
    const { registry, reads, up, lat } = sample();
    reads.inc({ map: 'a' }, 3);
    up.set({ map: 'a' }, 1);
    lat.observe({ format: 'text' }, 0.05);
    const p = new RegistryProducer(registry, { startTime: T0 });
    const delta = p.view('delta');
    const cumulative = p.view('cumulative');

    let ms = await metrics(delta);
    expect(byName(ms, 'x_reads_total')).toMatchObject({ aggregationTemporality: AggregationTemporality.DELTA, isMonotonic: true });
    expect(points<number>(byName(ms, 'x_reads_total'))).toEqual([{ startTime: hr(T0), endTime: hr(T0 + 10_000), attributes: { map: 'a' }, value: 3 }]);
    expect(points<OtelHistogram>(byName(ms, 'x_render_seconds'))[0].value).toMatchObject({ count: 1, buckets: { counts: [0, 1, 0, 0] } });

    vi.setSystemTime(T0 + 20_000);
    reads.inc({ map: 'a' }, 2);
    reads.inc({ map: 'b' }, 5);
    lat.observe({ format: 'text' }, 0.5);
    lat.observe({ format: 'text' }, 0.0001);
    ms = await metrics(delta);
    expect(points<number>(byName(ms, 'x_reads_total'))).toEqual([
      { startTime: hr(T0 + 10_000), endTime: hr(T0 + 20_000), attributes: { map: 'a' }, value: 2 },
      { startTime: hr(T0 + 10_000), endTime: hr(T0 + 20_000), attributes: { map: 'b' }, value: 5 },
    ]);
    const [hp] = points<OtelHistogram>(byName(ms, 'x_render_seconds'));
    expect(hp.startTime).toEqual(hr(T0 + 10_000));
    expect(hp.value.count).toBe(2);
    expect(hp.value.buckets.counts).toEqual([1, 0, 1, 0]);
    expect(hp.value.sum).toBeCloseTo(0.5001, 12);
    // Gauges stay gauges.
    expect(points<number>(byName(ms, 'x_up'))[0].value).toBe(1);

    // Nothing new: zero changes. A reset (5 went down to 1): the whole new value, from the previous collection.
    vi.setSystemTime(T0 + 30_000);
    reads.remove({ map: 'b' });
    reads.inc({ map: 'b' }, 1);
    ms = await metrics(delta);
    const c = byName(ms, 'x_reads_total');
    expect(point(c, 'a')).toMatchObject({ value: 0, startTime: hr(T0 + 20_000) });
    expect(point(c, 'b')).toMatchObject({ value: 1, startTime: hr(T0 + 20_000) });

    // A cumulative view over the same registry is not disturbed by the delta view's memory.
    const cum = byName(await metrics(cumulative), 'x_reads_total');
    expect([point(cum, 'a').value, point(cum, 'b').value]).toEqual([5, 1]);
  });

  it('two delta views keep their own memory', async () => {
    const { registry, reads } = sample();
    const p = new RegistryProducer(registry, { startTime: T0 });
    const one = p.view('delta');
    const two = p.view('delta');
    reads.inc({ map: 'a' }, 3);
    await metrics(one);
    reads.inc({ map: 'a' }, 4);
    expect(points<number>(byName(await metrics(one), 'x_reads_total'))[0].value).toBe(4);
    expect(points<number>(byName(await metrics(two), 'x_reads_total'))[0].value).toBe(7);
  });
});

describe('RegistryProducer over the exporter registry', () => {
  it('carries the self-metrics, the inventory and the process metrics', async () => {
    vi.useRealTimers();
    const registry = new Registry();
    registerProcessMetrics(registry);
    const self = new SelfMetrics(registry, { version: '9.9.9', inventory: true });
    self.read('syscalls', { entries: 3, maxEntries: 8, seconds: 0.01, method: 'batch', truncated: false, stats: new Map() });
    self.inventory([{ id: 42, name: 'counts', type: 'hash', keySize: 4, valueSize: 8, maxEntries: 8, flags: 0, entries: 3, method: 'batch', memlockBytes: 4096 }]);
    (registry.getSingleMetric('nodejs_gc_duration_seconds') as Histogram).observe({ kind: 'minor' }, 0.002);
    const ms = await metrics(new RegistryProducer(registry));

    expect(points<number>(byName(ms, 'bpf_map_exporter_build_info'))[0].attributes).toEqual({ version: '9.9.9', nodejs: process.versions.node });
    expect(byName(ms, 'bpf_map_exporter_map_reads_total')).toMatchObject({ dataPointType: DataPointType.SUM, isMonotonic: true });
    expect(points<number>(byName(ms, 'bpf_map_exporter_map_reads_total'))).toMatchObject([{ attributes: { map: 'syscalls' }, value: 1 }]);
    expect(points<number>(byName(ms, 'bpf_map_info'))).toMatchObject([
      { attributes: { id: '42', name: 'counts', type: 'hash', key_size: '4', value_size: '8', flags: '0x0' }, value: 1 },
    ]);
    expect(points<number>(byName(ms, 'bpf_map_fill_ratio'))[0].value).toBe(3 / 8);

    const cpu = byName(ms, 'process_cpu_seconds_total');
    expect(cpu).toMatchObject({ dataPointType: DataPointType.SUM, isMonotonic: true, aggregationTemporality: AggregationTemporality.CUMULATIVE });
    expect(points<number>(cpu)[0].startTime).toEqual(millisToHrTime(performance.timeOrigin));
    expect(points<number>(byName(ms, 'process_resident_memory_bytes'))[0].value).toBeGreaterThan(0);
    expect(points<number>(byName(ms, 'process_max_fds'))[0].value).toBeGreaterThan(0);
    const gc = byName(ms, 'nodejs_gc_duration_seconds');
    expect(gc.dataPointType).toBe(DataPointType.HISTOGRAM);
    const minor = points<OtelHistogram>(gc).find((x) => x.attributes.kind === 'minor')!;
    expect(minor.value.buckets.boundaries).toEqual([0.001, 0.01, 0.1, 1, 2, 5]);
    expect(minor.value.count).toBeGreaterThanOrEqual(1);
    expect(minor.value.buckets.counts).toHaveLength(7);
  });
});

/**
 * The OpenTelemetry side of "one read feeds every publisher": map jobs hand their latest snapshot to a
 * SnapshotProducer, and the SDK's metric readers pull it through the MetricProducer interface
 * (`metricProducers` of a MetricReader). Nothing here reads a map, and a collection costs no map read.
 *
 * Why a MetricProducer rather than observable instruments: observable callbacks run once per reader
 * collection and are cut at the SDK's cardinality limit (2000 series per instrument by default, the rest
 * folded into otel.metric.overflow), and the API has no asynchronous histogram. Points a producer returns
 * go to the exporter as they are: every series of a snapshot is exported, and histograms keep the map's
 * own buckets.
 */
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type MetricData,
  type MetricDescriptor,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import type { Family, HistogramSeries, ScalarSeries } from '../aggregate/types.js';
import { exporterVersion } from './otel-resource.js';

/** The instrumentation scope every point of the exporter is published under. */
export const SCOPE_NAME = 'bpf-map-exporter';

/**
 * How counters and histograms are reported.
 * - cumulative: the value since the series started (OTLP CUMULATIVE); what the map holds.
 * - delta: the change since the previous collection of the same reader (OTLP DELTA).
 * Gauges are gauges either way.
 */
export type Temporality = 'cumulative' | 'delta';

/** When a snapshot was taken, and since when its cumulative values count. */
export interface SnapshotTimes {
  /**
   * When the job started, or when its totals were last reset (a restart, a re-opened map): the start
   * time of every cumulative series of the job. An HrTime, or milliseconds since the epoch.
   * A different value from one `set` to the next restarts every series of the job.
   */
  startTime: HrTime | number;
  /** When the snapshot was taken, in milliseconds since the epoch: the time of every point. */
  time: number;
}

export interface SnapshotProducerOptions {
  /** Temporality of `collect()` on the producer itself (each `view` has its own). Default cumulative. */
  temporality?: Temporality;
  /** The scope's version. Default: the exporter's package version. */
  version?: string;
}

type Series = ScalarSeries | HistogramSeries;

/** One job's latest snapshot, with the per-series facts every view needs to turn it into points. */
interface JobEntry {
  /** Bumped by every `set`: lets delta views tell a new snapshot from one they already reported. */
  readonly seq: number;
  readonly families: readonly Family[];
  readonly jobStart: HrTime;
  readonly time: HrTime;
  /** Per family (same index): per series, when its cumulative run started. Undefined for gauges. */
  readonly starts: readonly (readonly HrTime[] | undefined)[];
  /** Per family: per series, its identity (see seriesKey). Undefined for gauges. */
  readonly keys: readonly (readonly string[] | undefined)[];
  /** Family identity -> series identity -> start and last value: how the next `set` spots resets. */
  readonly tracked: ReadonlyMap<string, ReadonlyMap<string, Tracked>>;
  /** The cumulative points of this snapshot, built on first use and shared by every cumulative view. */
  cumulative?: MetricData[];
}

interface Tracked {
  readonly start: HrTime;
  readonly last: Series;
}

/** What a delta view reported last for one series. */
interface Reported {
  /** The series' start when it was reported: a different start now means the series was reset since. */
  readonly start: HrTime;
  /** The end of the reported interval: the start of the next delta. */
  readonly time: HrTime;
  readonly last: Series;
}

interface ReportedJob {
  readonly seq: number;
  readonly families: ReadonlyMap<string, ReadonlyMap<string, Reported>>;
}

/**
 * Holds the latest snapshot of every map job and serves it to OpenTelemetry metric readers.
 *
 * Counters become monotonic SUMs, gauges GAUGEs and histograms explicit-bucket HISTOGRAMs (boundaries:
 * the finite `le` values; per-bucket counts derived from the cumulative ones; the last bucket is the
 * +Inf overflow). Labels become attributes. Families of the same name and type from different jobs are
 * merged into one metric.
 *
 * Start times: a counter or histogram series starts when its job started (`SnapshotTimes.startTime`),
 * and when its value goes down between two snapshots (the map was re-created, a key deleted and
 * re-added) it is taken as reset and its start moves to the previous snapshot's time, so a backend
 * never sees a cumulative value decrease within one start time.
 *
 * Delta temporality: each view keeps the last cumulative value it reported per series and reports the
 * difference, over the interval from the previous report to this snapshot. The first report of a
 * series, and the first after a reset, is the whole cumulative value since the series' start. A job
 * with no new snapshot since the view's previous collection contributes nothing (a delta of nothing).
 * Delta memory is per view, so each reader needs its own view (`view()`); `startOtel` does that. A
 * delta whose export fails is not sent again (as with the SDK's own delta instruments): the view has
 * moved on when the reader collected.
 */
export class SnapshotProducer implements MetricProducer {
  readonly temporality: Temporality;
  private readonly jobs = new Map<string, JobEntry>();
  private readonly scope: { name: string; version: string };
  private readonly own: SnapshotView;
  private seq = 0;

  constructor(opts: SnapshotProducerOptions = {}) {
    this.temporality = opts.temporality ?? 'cumulative';
    this.scope = { name: SCOPE_NAME, version: opts.version ?? exporterVersion() };
    this.own = this.view(this.temporality);
  }

  /** Replace a job's snapshot. `families` is kept by reference and must not change afterwards. */
  set(job: string, families: readonly Family[], at: SnapshotTimes): void {
    const jobStart = typeof at.startTime === 'number' ? millisToHrTime(at.startTime) : at.startTime;
    const time = millisToHrTime(at.time);
    const prev = this.jobs.get(job);
    // A new start time is a restart: nothing from before it carries over.
    const carry = prev !== undefined && sameTime(prev.jobStart, jobStart) ? prev : undefined;
    const starts: (HrTime[] | undefined)[] = [];
    const keys: (string[] | undefined)[] = [];
    const tracked = new Map<string, Map<string, Tracked>>();
    for (const f of families) {
      if (f.type === 'gauge') {
        starts.push(undefined);
        keys.push(undefined);
        continue;
      }
      const fk = familyKey(f);
      const before = carry?.tracked.get(fk);
      const now = new Map<string, Tracked>();
      const fStarts = new Array<HrTime>(f.series.length);
      const fKeys = new Array<string>(f.series.length);
      for (let i = 0; i < f.series.length; i++) {
        const s = f.series[i];
        const key = seriesKey(s.labels);
        const old = before?.get(key);
        // Went down: reset somewhere after the previous snapshot, which is therefore a safe start.
        const start = old === undefined || carry === undefined ? jobStart : wentDown(old.last, s) ? carry.time : old.start;
        now.set(key, { start, last: s });
        fStarts[i] = start;
        fKeys[i] = key;
      }
      tracked.set(fk, now);
      starts.push(fStarts);
      keys.push(fKeys);
    }
    this.jobs.set(job, { seq: ++this.seq, families, jobStart, time, starts, keys, tracked });
  }

  /** Forget a job: its series are no longer exported. */
  remove(job: string): void {
    this.jobs.delete(job);
  }

  /** The latest snapshot of every job, in this producer's temporality. */
  collect(): Promise<CollectionResult> {
    return this.own.collect();
  }

  /**
   * Another MetricProducer over the same snapshots, with its own temporality and its own delta memory:
   * one per reader, so that two delta readers do not take each other's differences.
   */
  view(temporality: Temporality): SnapshotView {
    return new SnapshotView(this.jobs, this.scope, temporality);
  }
}

/** A reader's window on a SnapshotProducer. */
export class SnapshotView implements MetricProducer {
  private readonly reported = new Map<string, ReportedJob>();

  /** @internal built by SnapshotProducer.view */
  constructor(
    private readonly jobs: ReadonlyMap<string, JobEntry>,
    private readonly scope: { name: string; version: string },
    readonly temporality: Temporality,
  ) {}

  async collect(): Promise<CollectionResult> {
    const errors: unknown[] = [];
    const metrics: MetricData[] = [];
    for (const [job, entry] of this.jobs) {
      // One bad snapshot must not cost the others their export: report it and go on.
      try {
        metrics.push(...(this.temporality === 'delta' ? this.delta(job, entry) : cumulative(entry)));
      } catch (e) {
        errors.push(e);
      }
    }
    for (const job of this.reported.keys()) if (!this.jobs.has(job)) this.reported.delete(job);
    const merged = mergeSameName(metrics);
    return {
      // A reader keeps its MeterProvider's resource and ignores this one.
      resourceMetrics: { resource: emptyResource(), scopeMetrics: merged.length === 0 ? [] : [{ scope: this.scope, metrics: merged }] },
      errors,
    };
  }

  private delta(job: string, entry: JobEntry): MetricData[] {
    const before = this.reported.get(job);
    if (before?.seq === entry.seq) return [];
    const out: MetricData[] = [];
    const families = new Map<string, Map<string, Reported>>();
    entry.families.forEach((f, fi) => {
      if (f.type === 'gauge') {
        out.push(gaugeMetric(f, entry.jobStart, entry.time, AggregationTemporality.DELTA));
        return;
      }
      const fk = familyKey(f);
      const starts = entry.starts[fi]!;
      const keys = entry.keys[fi]!;
      const old = before?.families.get(fk);
      const now = new Map<string, Reported>();
      const scalar: DataPoint<number>[] = [];
      const hist: DataPoint<Histogram>[] = [];
      for (let i = 0; i < f.series.length; i++) {
        const s = f.series[i];
        const start = starts[i];
        const prev = old?.get(keys[i]);
        now.set(keys[i], { start, time: entry.time, last: s });
        const attributes: Attributes = s.labels;
        // The whole value since `start` when never reported or reset since (the store moved the start);
        // the whole value since our last report when it went down while out of sight (it restarted
        // after that report); else the difference since our last report.
        const fresh = prev === undefined || !sameTime(prev.start, start);
        const whole = fresh || wentDown(prev.last, s);
        const startTime = fresh ? start : prev.time;
        if (f.type === 'counter' && !isHistogram(s)) {
          const value = whole ? s.value : s.value - (prev.last as ScalarSeries).value;
          scalar.push({ startTime, endTime: entry.time, attributes, value });
        } else if (f.type === 'histogram' && isHistogram(s)) {
          const value = whole ? toHistogram(s) : subtract(toHistogram(s), toHistogram(prev.last as HistogramSeries));
          hist.push({ startTime, endTime: entry.time, attributes, value });
        }
      }
      families.set(fk, now);
      out.push(f.type === 'counter' ? sumMetric(f, scalar, AggregationTemporality.DELTA) : histogramMetric(f, hist, AggregationTemporality.DELTA));
    });
    this.reported.set(job, { seq: entry.seq, families });
    return out;
  }
}

/** The cumulative points of a snapshot: built once, then shared by every cumulative view. */
function cumulative(entry: JobEntry): MetricData[] {
  if (entry.cumulative !== undefined) return entry.cumulative;
  const out: MetricData[] = [];
  entry.families.forEach((f, fi) => {
    if (f.type === 'gauge') {
      out.push(gaugeMetric(f, entry.jobStart, entry.time, AggregationTemporality.CUMULATIVE));
      return;
    }
    const starts = entry.starts[fi]!;
    if (f.type === 'counter') {
      const points: DataPoint<number>[] = [];
      f.series.forEach((s, i) => {
        if (!isHistogram(s)) points.push({ startTime: starts[i], endTime: entry.time, attributes: s.labels, value: s.value });
      });
      out.push(sumMetric(f, points, AggregationTemporality.CUMULATIVE));
    } else {
      const points: DataPoint<Histogram>[] = [];
      f.series.forEach((s, i) => {
        if (isHistogram(s)) points.push({ startTime: starts[i], endTime: entry.time, attributes: s.labels, value: toHistogram(s) });
      });
      out.push(histogramMetric(f, points, AggregationTemporality.CUMULATIVE));
    }
  });
  entry.cumulative = out;
  return out;
}

function descriptor(f: Family): MetricDescriptor {
  // Values are doubles: they may be scaled (scale: 1e-9) and u64 counters are read into doubles.
  return { name: f.name, description: f.help, unit: '', valueType: ValueType.DOUBLE };
}

function sumMetric(f: Family, dataPoints: DataPoint<number>[], aggregationTemporality: AggregationTemporality): MetricData {
  return { descriptor: descriptor(f), aggregationTemporality, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints };
}

function histogramMetric(f: Family, dataPoints: DataPoint<Histogram>[], aggregationTemporality: AggregationTemporality): MetricData {
  return { descriptor: descriptor(f), aggregationTemporality, dataPointType: DataPointType.HISTOGRAM, dataPoints };
}

function gaugeMetric(f: Family, startTime: HrTime, endTime: HrTime, aggregationTemporality: AggregationTemporality): MetricData {
  const dataPoints: DataPoint<number>[] = [];
  for (const s of f.series) if (!isHistogram(s)) dataPoints.push({ startTime, endTime, attributes: s.labels, value: s.value });
  return { descriptor: descriptor(f), aggregationTemporality, dataPointType: DataPointType.GAUGE, dataPoints };
}

/**
 * An explicit-bucket histogram from Prometheus-style cumulative buckets. OTLP wants one count per
 * bucket and one more bucket than boundaries (the last is (last bound, +Inf)).
 */
export function toHistogram(s: HistogramSeries): Histogram {
  const boundaries: number[] = [];
  const counts: number[] = [];
  let below = 0;
  let overflow = false;
  for (const b of s.buckets) {
    // Cumulative counts never go down; the clamp keeps a torn read from encoding as a huge uint64.
    counts.push(Math.max(0, b.count - below));
    below = b.count;
    if (b.le === Infinity) overflow = true;
    else boundaries.push(b.le);
  }
  if (!overflow) counts.push(Math.max(0, s.count - below));
  return { buckets: { boundaries, counts }, count: s.count, sum: s.sum };
}

function subtract(now: Histogram, before: Histogram): Histogram {
  return {
    buckets: { boundaries: now.buckets.boundaries, counts: now.buckets.counts.map((c, i) => c - before.buckets.counts[i]) },
    count: now.count - before.count,
    sum: (now.sum ?? 0) - (before.sum ?? 0),
  };
}

/** A value that went down: the series was reset (for histograms: also when its buckets changed). */
function wentDown(before: Series, now: Series): boolean {
  if (!isHistogram(before) || !isHistogram(now)) {
    if (isHistogram(before) || isHistogram(now)) return true;
    return now.value < before.value;
  }
  if (now.count < before.count || now.buckets.length !== before.buckets.length) return true;
  for (let i = 0; i < now.buckets.length; i++) {
    if (now.buckets[i].le !== before.buckets[i].le || now.buckets[i].count < before.buckets[i].count) return true;
  }
  return false;
}

/** One metric per name and type: jobs that publish the same family share one metric stream. */
function mergeSameName(metrics: MetricData[]): MetricData[] {
  const byName = new Map<string, MetricData>();
  const out: MetricData[] = [];
  for (const m of metrics) {
    if (m.dataPoints.length === 0) continue;
    const k = `${m.dataPointType}\u0000${m.descriptor.name}`;
    const first = byName.get(k);
    if (first === undefined) {
      byName.set(k, m);
      out.push(m);
      continue;
    }
    // Same name, another job: a new object, since cumulative metrics are cached and shared.
    const merged = { ...first, dataPoints: [...first.dataPoints, ...m.dataPoints] } as MetricData;
    byName.set(k, merged);
    out[out.indexOf(first)] = merged;
  }
  return out;
}

function isHistogram(s: Series): s is HistogramSeries {
  return 'buckets' in s;
}

function familyKey(f: Family): string {
  return `${f.type}\u0000${f.name}`;
}

/**
 * A series' identity across snapshots. Label order is the plan's, the same every cycle, so the JSON of
 * the labels is a stable, unambiguous key.
 */
function seriesKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(labels);
}

function sameTime(a: HrTime, b: HrTime): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

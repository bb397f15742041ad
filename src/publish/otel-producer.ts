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
import { ValueType, type HrTime } from '@opentelemetry/api';
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
import { columnsOf } from '../aggregate/columns.js';
import type { Family, HistogramSeries, LabelTable, SeriesColumns } from '../metric/series.js';
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

/**
 * One family of one snapshot, with when each of its series started: what a collection turns into
 * points, and what the next snapshot (and each delta view) compares itself with.
 */
interface FamilySnap {
  readonly family: Family;
  readonly cols: SeriesColumns;
  /** Per series (position in cols.ids): an index into `starts`. */
  readonly startOf: Int32Array;
  /** Start times, shared along a job's snapshots while its start time holds (indices stay valid). */
  readonly starts: HrTime[];
  readonly time: HrTime;
  /** Position by series id (cols.table), built when first needed. */
  byId?: Int32Array;
}

/** One job's latest snapshot. */
interface JobEntry {
  /** Bumped by every `set`: lets delta views tell a new snapshot from one they already reported. */
  readonly seq: number;
  readonly jobStart: HrTime;
  readonly time: HrTime;
  readonly snaps: readonly FamilySnap[];
  /** The cumulative points of this snapshot, built on first use and shared by every cumulative view. */
  cumulative?: ColumnMetric[];
}

/**
 * Holds the latest snapshot of every map job and serves it to OpenTelemetry metric readers.
 *
 * Counters become monotonic SUMs, gauges GAUGEs and histograms explicit-bucket HISTOGRAMs (boundaries:
 * the finite `le` values; per-bucket counts; the last bucket is the +Inf overflow). Labels become
 * attributes. Families of the same name and type from different jobs are merged into one metric.
 * Points are not objects: each metric carries the snapshot's columns (see ColumnPoints), which our
 * OTLP serializer encodes directly; `dataPoints` is built only when something else asks for it.
 *
 * Start times: a counter or histogram series starts when its job started (`SnapshotTimes.startTime`),
 * and when its value goes down between two snapshots (the map was re-created, a key deleted and
 * re-added) it is taken as reset and its start moves to the previous snapshot's time, so a backend
 * never sees a cumulative value decrease within one start time.
 *
 * Delta temporality: each view keeps the last snapshot it reported per job and reports the
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
  /**
   * Called with each family of each snapshot as it arrives (histograms: with their bounds): run.ts
   * sets encodePointsAhead (otlp-encode.ts) for the protobuf protocols, so that new series are
   * encoded before the export comes.
   */
  onFamily: ((cols: SeriesColumns, bounds: readonly number[] | undefined) => void) | undefined;

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
    const before = new Map(carry?.snaps.map((f) => [familyKey(f.family), f]));
    const snaps = families.map((family): FamilySnap => {
      const cols = columnsOf(family);
      this.onFamily?.(cols, family.type === 'histogram' ? (cols.bounds ?? []) : undefined);
      const n = cols.ids.length;
      const startOf = new Int32Array(n);
      const old = family.type === 'gauge' ? undefined : before.get(familyKey(family));
      if (old === undefined || !sameBounds(old.cols, cols)) return { family, cols, startOf, starts: [jobStart], time };
      // Went down: reset somewhere after the previous snapshot, which is therefore a safe start.
      const starts = old.starts;
      let resetStart = -1;
      const was = positionsIn(old, cols);
      for (let i = 0; i < n; i++) {
        const j = was[i];
        if (j < 0) startOf[i] = 0;
        else if (!wentDown(old.cols, j, cols, i)) startOf[i] = old.startOf[j];
        else {
          if (resetStart < 0) resetStart = starts.push(old.time) - 1;
          startOf[i] = resetStart;
        }
      }
      return { family, cols, startOf, starts, time };
    });
    this.jobs.set(job, { seq: ++this.seq, jobStart, time, snaps });
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
  /** Per job: the snapshot last reported (delta views). */
  private readonly reported = new Map<string, JobEntry>();

  /** @internal built by SnapshotProducer.view */
  constructor(
    private readonly jobs: ReadonlyMap<string, JobEntry>,
    private readonly scope: { name: string; version: string },
    readonly temporality: Temporality,
  ) {}

  async collect(): Promise<CollectionResult> {
    const errors: unknown[] = [];
    const metrics: ColumnMetric[] = [];
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

  private delta(job: string, entry: JobEntry): ColumnMetric[] {
    const before = this.reported.get(job);
    if (before?.seq === entry.seq) return [];
    const old = new Map(before?.snaps.map((f) => [familyKey(f.family), f]));
    const out = entry.snaps.map((snap) => {
      const prev = snap.family.type === 'gauge' ? undefined : old.get(familyKey(snap.family));
      return columnMetric(snap.family, AggregationTemporality.DELTA, [prev === undefined ? points(snap) : deltaPoints(prev, snap)]);
    });
    this.reported.set(job, entry);
    return out;
  }
}

/**
 * A family's points as columns: what ColumnMetric carries and the OTLP serializer encodes without
 * an object per point. `values` is the value of counters and gauges and the count of histograms;
 * `buckets` holds per-bucket counts (not cumulative).
 */
export interface ColumnPoints {
  readonly table: LabelTable;
  readonly ids: Int32Array;
  readonly values: Float64Array;
  readonly bounds?: readonly number[];
  readonly buckets?: Float64Array;
  readonly sums?: Float64Array;
  /** Per point: an index into `starts`. */
  readonly startOf: Int32Array;
  readonly starts: readonly HrTime[];
  readonly time: HrTime;
}

/** Where a ColumnMetric keeps its points. */
export const COLUMN_POINTS: unique symbol = Symbol('bpf-map-exporter.columnPoints');

export type ColumnMetric = MetricData & { readonly [COLUMN_POINTS]: readonly ColumnPoints[] };

export function isColumnMetric(m: MetricData): m is ColumnMetric {
  return COLUMN_POINTS in m;
}

/** The number of points of a metric, without building them. */
export function pointCount(m: MetricData): number {
  return isColumnMetric(m) ? m[COLUMN_POINTS].reduce((n, p) => n + p.ids.length, 0) : m.dataPoints.length;
}

function points(snap: FamilySnap): ColumnPoints {
  const { table, ids, values, bounds, buckets, sums } = snap.cols;
  return { table, ids, values, bounds, buckets, sums, startOf: snap.startOf, starts: snap.starts, time: snap.time };
}

/**
 * The difference between the snapshot a view reported last and this one: the whole value since the
 * series' start when never reported or reset since (the store moved the start); the whole value since
 * the last report when it went down while out of sight (it restarted after that report); else the
 * difference since the last report.
 */
function deltaPoints(prev: FamilySnap, snap: FamilySnap): ColumnPoints {
  const c = snap.cols;
  const n = c.ids.length;
  const width = c.bounds === undefined ? 0 : c.bounds.length + 1;
  const values = new Float64Array(n);
  const buckets = c.buckets === undefined ? undefined : new Float64Array(n * width);
  const sums = c.sums === undefined ? undefined : new Float64Array(n);
  const startOf = new Int32Array(n);
  const starts = [...snap.starts, prev.time];
  const sinceReport = starts.length - 1;
  const comparable = sameBounds(prev.cols, c);
  const was = comparable ? positionsIn(prev, c) : new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const j = was[i];
    const fresh = j < 0 || !sameTime(prev.starts[prev.startOf[j]], snap.starts[snap.startOf[i]]);
    const whole = fresh || wentDown(prev.cols, j, c, i);
    startOf[i] = fresh ? snap.startOf[i] : sinceReport;
    values[i] = whole ? c.values[i] : c.values[i] - prev.cols.values[j];
    if (sums !== undefined && c.sums !== undefined) sums[i] = whole ? c.sums[i] : c.sums[i] - (prev.cols.sums?.[j] ?? 0);
    if (buckets !== undefined && c.buckets !== undefined) {
      for (let b = 0; b < width; b++) buckets[i * width + b] = whole ? c.buckets[i * width + b] : c.buckets[i * width + b] - (prev.cols.buckets?.[j * width + b] ?? 0);
    }
  }
  return { table: c.table, ids: c.ids, values, bounds: c.bounds, buckets, sums, startOf, starts, time: snap.time };
}

/** The cumulative points of a snapshot: built once, then shared by every cumulative view. */
function cumulative(entry: JobEntry): ColumnMetric[] {
  return (entry.cumulative ??= entry.snaps.map((snap) => columnMetric(snap.family, AggregationTemporality.CUMULATIVE, [points(snap)])));
}

function descriptor(f: Family): MetricDescriptor {
  // Values are doubles: they may be scaled (scale: 1e-9) and u64 counters are read into doubles.
  return { name: f.name, description: f.help, unit: '', valueType: ValueType.DOUBLE };
}

const DATA_POINT_TYPE = { counter: DataPointType.SUM, gauge: DataPointType.GAUGE, histogram: DataPointType.HISTOGRAM } as const;

function columnMetric(f: Family, aggregationTemporality: AggregationTemporality, parts: readonly ColumnPoints[]): ColumnMetric {
  const dataPointType = DATA_POINT_TYPE[f.type];
  return metricOver({ descriptor: descriptor(f), aggregationTemporality, dataPointType, ...(f.type === 'counter' ? { isMonotonic: true } : {}) }, parts);
}

/** A metric over column parts; `dataPoints` (objects) is built on first access and kept. */
function metricOver(meta: Omit<MetricData, 'dataPoints'>, parts: readonly ColumnPoints[]): ColumnMetric {
  let built: DataPoint<number | Histogram>[] | undefined;
  const m = { ...meta, [COLUMN_POINTS]: parts };
  Object.defineProperty(m, 'dataPoints', { enumerable: true, get: () => (built ??= parts.flatMap(dataPointsOf)) });
  return m as unknown as ColumnMetric;
}

function dataPointsOf(p: ColumnPoints): DataPoint<number | Histogram>[] {
  const out: DataPoint<number | Histogram>[] = [];
  const width = p.bounds === undefined ? 0 : p.bounds.length + 1;
  for (let i = 0; i < p.ids.length; i++) {
    const common = { startTime: p.starts[p.startOf[i]], endTime: p.time, attributes: p.table.labels[p.ids[i]] };
    if (p.bounds === undefined || p.buckets === undefined) {
      out.push({ ...common, value: p.values[i] });
      continue;
    }
    const counts = Array.from(p.buckets.subarray(i * width, (i + 1) * width), (x) => Math.max(0, x));
    out.push({ ...common, value: { buckets: { boundaries: [...p.bounds], counts }, count: p.values[i], sum: p.sums?.[i] ?? 0 } });
  }
  return out;
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

/** For each series of `cols`: its position in `snap`, or -1. By id when both share a table, else by labels. */
function positionsIn(snap: FamilySnap, cols: SeriesColumns): Int32Array {
  const out = new Int32Array(cols.ids.length);
  const ids = cols.ids;
  if (snap.cols.table === cols.table) {
    const byId = (snap.byId ??= indexById(snap.cols));
    for (let i = 0; i < ids.length; i++) out[i] = ids[i] < byId.length ? byId[ids[i]] : -1;
    return out;
  }
  // Another table (an aggregator compacted or was re-created, or families written as literals).
  const byKey = new Map<string, number>();
  snap.cols.ids.forEach((id, j) => byKey.set(seriesKey(snap.cols.table.labels[id]), j));
  cols.ids.forEach((id, i) => (out[i] = byKey.get(seriesKey(cols.table.labels[id])) ?? -1));
  return out;
}

function indexById(c: SeriesColumns): Int32Array {
  const byId = new Int32Array(c.table.labels.length).fill(-1);
  for (let j = 0; j < c.ids.length; j++) byId[c.ids[j]] = j;
  return byId;
}

function sameBounds(a: SeriesColumns, b: SeriesColumns): boolean {
  if (a.bounds === undefined || b.bounds === undefined) return a.bounds === b.bounds;
  return a.bounds.length === b.bounds.length && a.bounds.every((x, i) => x === b.bounds?.[i]);
}

/** A value that went down: the series was reset (for histograms: its count or any cumulative bucket). */
function wentDown(before: SeriesColumns, j: number, now: SeriesColumns, i: number): boolean {
  if (now.values[i] < before.values[j]) return true;
  if (now.buckets === undefined || before.buckets === undefined || now.bounds === undefined) return false;
  const width = now.bounds.length + 1;
  let a = 0;
  let b = 0;
  for (let k = 0; k < width; k++) {
    a += before.buckets[j * width + k];
    b += now.buckets[i * width + k];
    if (b < a) return true;
  }
  return false;
}

/** One metric per name and type: jobs that publish the same family share one metric stream. */
function mergeSameName(metrics: ColumnMetric[]): MetricData[] {
  const byName = new Map<string, ColumnMetric>();
  const out: ColumnMetric[] = [];
  for (const m of metrics) {
    if (pointCount(m) === 0) continue;
    const k = `${m.dataPointType}\u0000${m.descriptor.name}`;
    const first = byName.get(k);
    if (first === undefined) {
      byName.set(k, m);
      out.push(m);
      continue;
    }
    // Same name, another job: a new metric, since cumulative metrics are cached and shared.
    const meta = { descriptor: first.descriptor, aggregationTemporality: first.aggregationTemporality, dataPointType: first.dataPointType, ...('isMonotonic' in first ? { isMonotonic: first.isMonotonic } : {}) };
    const merged = metricOver(meta as Omit<MetricData, 'dataPoints'>, [...first[COLUMN_POINTS], ...m[COLUMN_POINTS]]);
    byName.set(k, merged);
    out[out.indexOf(first)] = merged;
  }
  return out;
}

function familyKey(f: Family): string {
  return `${f.type}\u0000${f.name}`;
}

/**
 * A series' identity across label tables. Label order is the plan's, the same every cycle, so the
 * JSON of the labels is a stable, unambiguous key.
 */
function seriesKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(labels);
}

function sameTime(a: HrTime, b: HrTime): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

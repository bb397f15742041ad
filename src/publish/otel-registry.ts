/**
 * OTLP for what /metrics shows besides the map jobs: the exporter's prom-client registry (self-metrics,
 * the inventory of every map, process metrics), read through the MetricProducer interface like the
 * jobs' SnapshotProducer, so that an OTLP-only deployment receives everything a scrape would.
 *
 * Each collection reads the registry (`getMetricsAsJSON()`, which runs prom-client's collect
 * callbacks, as a /metrics render does) and turns it into points at that moment: nothing is cached.
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
import type { Registry } from 'prom-client';
import type { Family, HistogramSeries, ScalarSeries } from '../metric/series.js';
import { logger } from '../log.js';
import { toHistogram, type Temporality } from './otel-producer.js';
import { exporterVersion } from './otel-resource.js';
import { registryFamily, typeName } from './prometheus-registry.js';

/**
 * The instrumentation scope of the registry's points. The map jobs' series are under SCOPE_NAME
 * ("bpf-map-exporter"); this one holds the exporter's own metrics (bpf_map_exporter_*), the
 * inventory (bpf_map_info, ...) and the process metrics (process_*, nodejs_*).
 */
export const REGISTRY_SCOPE_NAME = 'bpf-map-exporter/registry';

export interface RegistryProducerOptions {
  /** Temporality of `collect()` on the producer itself (each `view` has its own). Default cumulative. */
  temporality?: Temporality;
  /** The scope's version. Default: the exporter's package version. */
  version?: string;
  /**
   * When the registry's counters started counting, in milliseconds since the epoch: the start time of
   * every counter and histogram series already there at a view's first collection, and of every gauge
   * point. Default: when this process started (performance.timeOrigin).
   */
  startTime?: number;
}

/**
 * Serves a prom-client Registry to OpenTelemetry metric readers.
 *
 * Counters become monotonic SUMs, gauges GAUGEs, histograms explicit-bucket HISTOGRAMs (boundaries:
 * the finite `le` values, one count per bucket, the last bucket the +Inf overflow); labels become
 * attributes (string values); names and HELP are kept as they are, as the SnapshotProducer keeps the
 * jobs' (a counter keeps its _total). Summaries are not exported: the SDK's MetricData has no summary
 * type (prom-client's default metrics and the self-metrics have none); one is logged once and skipped.
 *
 * Start times, per view: a counter or histogram series already there at the view's first collection
 * started with the process (`startTime`); one that appears later started at the view's previous
 * collection, when it did not exist yet (it counts from 0). A series whose value goes down (removed and
 * created again) restarts at the previous collection. So a backend never sees a cumulative value
 * decrease within one start time.
 *
 * Delta temporality: each view remembers the last value it reported per series and reports the
 * difference, from its previous collection to this one (a series seen for the first time, or after a
 * reset, reports its whole value since its start). Series that did not change report 0. Each reader needs
 * its own view (`view()`), as `startOtel` gives it; a delta whose export fails is not sent again.
 */
export class RegistryProducer implements MetricProducer {
  readonly temporality: Temporality;
  private readonly own: RegistryView;
  private readonly scope: { name: string; version: string };
  private readonly startTime: HrTime;

  constructor(
    readonly registry: Registry,
    opts: RegistryProducerOptions = {},
  ) {
    this.temporality = opts.temporality ?? 'cumulative';
    this.scope = { name: REGISTRY_SCOPE_NAME, version: opts.version ?? exporterVersion() };
    this.startTime = millisToHrTime(opts.startTime ?? performance.timeOrigin);
    this.own = this.view(this.temporality);
  }

  /** The registry now, in this producer's temporality. */
  collect(): Promise<CollectionResult> {
    return this.own.collect();
  }

  /** Another MetricProducer over the same registry, with its own temporality and memory: one per reader. */
  view(temporality: Temporality): RegistryView {
    return new RegistryView(this.registry, this.scope, this.startTime, temporality);
  }
}

type Series = ScalarSeries | HistogramSeries;

/** What a view saw of one counter or histogram series at its previous collection. */
interface Seen {
  readonly start: HrTime;
  readonly last: Series;
}

/** Summaries already reported as skipped (process-wide: once is enough). */
const skippedLogged = new Set<string>();

/** A reader's window on a RegistryProducer. */
export class RegistryView implements MetricProducer {
  /** Family identity -> series identity -> what this view saw last. Only series of the last collection. */
  private seen = new Map<string, Map<string, Seen>>();
  /** When this view last collected; undefined before its first collection. */
  private previous: HrTime | undefined;

  /** @internal built by RegistryProducer.view */
  constructor(
    private readonly registry: Registry,
    private readonly scope: { name: string; version: string },
    private readonly startTime: HrTime,
    readonly temporality: Temporality,
  ) {}

  async collect(): Promise<CollectionResult> {
    let json: Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
    try {
      json = await this.registry.getMetricsAsJSON();
    } catch (e) {
      // A collect callback failed: nothing of the registry this time, and the memory stays as it was.
      return { resourceMetrics: { resource: emptyResource(), scopeMetrics: [] }, errors: [e] };
    }
    const time = millisToHrTime(Date.now());
    const temporality = this.temporality === 'delta' ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE;
    const seen = new Map<string, Map<string, Seen>>();
    const metrics: MetricData[] = [];
    for (const m of json) {
      const f = registryFamily(m);
      if (f === undefined) {
        if (!skippedLogged.has(m.name)) {
          skippedLogged.add(m.name);
          logger.warn({ source: 'opentelemetry', metric: m.name, type: typeName(m) }, 'a registry metric of this type is not exported over OTLP');
        }
        continue;
      }
      if (f.series.length === 0) continue;
      if (f.type === 'gauge') {
        const dataPoints: DataPoint<number>[] = [];
        for (const s of f.series) if (!isHistogram(s)) dataPoints.push({ startTime: this.startTime, endTime: time, attributes: s.labels, value: s.value });
        metrics.push({ descriptor: descriptor(f), aggregationTemporality: temporality, dataPointType: DataPointType.GAUGE, dataPoints });
        continue;
      }
      const fk = `${f.type}\u0000${f.name}`;
      const before = this.seen.get(fk);
      const now = new Map<string, Seen>();
      const scalar: DataPoint<number>[] = [];
      const hist: DataPoint<Histogram>[] = [];
      for (const s of f.series) {
        const key = seriesKey(s.labels);
        const old = before?.get(key);
        // New: counted from 0 since it was last known absent (the previous collection), or since the
        // process started. Went down: reset after the previous collection. Else: the same run.
        const reset = old !== undefined && wentDown(old.last, s);
        const start = old === undefined ? (this.previous ?? this.startTime) : reset ? this.previous! : old.start;
        now.set(key, { start, last: s });
        // Delta: the change since the previous collection, unless the whole value is new since then.
        const last = old === undefined || reset || this.temporality === 'cumulative' ? undefined : old.last;
        const startTime = last === undefined ? start : this.previous!;
        if (f.type === 'counter' && !isHistogram(s)) {
          const value = last === undefined ? s.value : s.value - (last as ScalarSeries).value;
          scalar.push({ startTime, endTime: time, attributes: s.labels, value });
        } else if (f.type === 'histogram' && isHistogram(s)) {
          const value = last === undefined ? toHistogram(s) : subtract(toHistogram(s), toHistogram(last as HistogramSeries));
          hist.push({ startTime, endTime: time, attributes: s.labels, value });
        }
      }
      seen.set(fk, now);
      if (f.type === 'counter') {
        metrics.push({ descriptor: descriptor(f), aggregationTemporality: temporality, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: scalar });
      } else {
        metrics.push({ descriptor: descriptor(f), aggregationTemporality: temporality, dataPointType: DataPointType.HISTOGRAM, dataPoints: hist });
      }
    }
    this.seen = seen;
    this.previous = time;
    return {
      // A reader keeps its MeterProvider's resource and ignores this one.
      resourceMetrics: { resource: emptyResource(), scopeMetrics: metrics.length === 0 ? [] : [{ scope: this.scope, metrics }] },
      errors: [],
    };
  }
}

function descriptor(f: Family): MetricDescriptor {
  return { name: f.name, description: f.help, unit: '', valueType: ValueType.DOUBLE };
}

function isHistogram(s: Series): s is HistogramSeries {
  return 'buckets' in s;
}

/** A series' identity: its labels with names sorted (prom-client's label order may vary). */
function seriesKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
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

function subtract(now: Histogram, before: Histogram): Histogram {
  return {
    buckets: { boundaries: now.buckets.boundaries, counts: now.buckets.counts.map((c, i) => c - before.buckets.counts[i]) },
    count: now.count - before.count,
    sum: (now.sum ?? 0) - (before.sum ?? 0),
  };
}

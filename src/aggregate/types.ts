import type { LabelDecoder } from '../decode/types.js';
import type { NumberReader } from '../layout/read.js';

/** Where a label's value comes from, resolved to bytes. */
export type LabelPlan =
  | { name: string; kind: 'field'; fromKey: boolean; offset: number; size: number; decoder: LabelDecoder }
  | { name: string; kind: 'static'; value: string }
  | { name: string; kind: 'cpu' };

export interface ValuePlan {
  /** Offset inside the key (fromKey) or inside one per-CPU slot of the value. */
  offset: number;
  fromKey: boolean;
  read: NumberReader;
}

export interface HistogramPlan {
  /** The key field holding the bucket index. */
  bucket: ValuePlan;
  /** Upper bounds (le) of the finite buckets, ascending. */
  bounds: readonly number[];
  /** Bucket index of a key's bucket value: 0..bounds.length-1, bounds.length for +Inf only, or SUM_SLOT. */
  index(bucketKey: number): number;
  /** A value field summed into _sum, when the map keeps one per entry. */
  sum?: ValuePlan;
  /** Multiplies what is read into _sum. */
  sumScale: number;
}

export const SUM_SLOT = -1;

export interface MetricPlan {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
  value: ValuePlan;
  cpu: 'sum' | 'max' | 'min' | 'label';
  scale: number;
  labels: readonly LabelPlan[];
  histogram?: HistogramPlan;
  maxSeries: number;
}

/** The byte geometry of a map's batches. */
export interface MapShape {
  keySize: number;
  /** Bytes per element in value buffers. */
  valueStride: number;
  /** Bytes per CPU slot (per-CPU maps), else the value size. */
  slotSize: number;
  /** Slots per element: possible CPUs for per-CPU maps, else 1. */
  cpus: number;
  /** The CPU id of each slot (cpu labels). */
  cpuIds: readonly number[];
}

export interface MetricStats {
  /** Series in the last cycle's output. */
  series: number;
  /** Distinct keys whose new series did not fit under max_series in the last cycle. */
  seriesDropped: number;
  /** Rows a regexp label dropped in the last cycle. */
  rowsDropped: number;
}

/** A series' totals as a drain job keeps them: what a checkpoint stores. */
export interface SeriesState {
  labels: Record<string, string>;
  value: number;
  sum: number;
  /** Histogram counts per bucket (not cumulative), +Inf last; empty for counters and gauges. */
  counts: number[];
}

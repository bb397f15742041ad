/**
 * The series a snapshot hands to its publishers (/metrics, OTLP, dump): families of scalar or
 * histogram series, as objects or as columns. Shared by the aggregators that make them and the
 * publishers that read them; nothing here reads a map or writes a format.
 */
export interface ScalarSeries {
  labels: Readonly<Record<string, string>>;
  value: number;
}

export interface HistogramSeries {
  labels: Readonly<Record<string, string>>;
  /** Cumulative counts; the last bucket is +Inf. */
  buckets: { le: number; count: number }[];
  count: number;
  sum: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
  /**
   * The series as objects. A family from an aggregator builds them on first use only (tests,
   * `dump`); publishers read `columns`, which cost no object per series.
   */
  readonly series: (ScalarSeries | HistogramSeries)[];
  /** The same series as columns (families from an aggregator always have them). */
  readonly columns?: SeriesColumns;
}

/**
 * The label sets of one metric's series, by dense id. Append-only: an id keeps its labels for the
 * life of the table (an aggregator that compacts starts a new table), so publishers can cache what
 * they build from a label set (its exposition text, its OTLP attributes) by table and id.
 */
export class LabelTable {
  readonly labels: Readonly<Record<string, string>>[] = [];

  add(labels: Readonly<Record<string, string>>): number {
    this.labels.push(labels);
    return this.labels.length - 1;
  }
}

/**
 * One snapshot of a family as columns: the ids of its series in a stable order (the aggregator's
 * order of first appearance) and their values. Immutable once handed out.
 */
export interface SeriesColumns {
  table: LabelTable;
  ids: Int32Array;
  /** Counter and gauge: the value. Histogram: the count. */
  values: Float64Array;
  /** Histograms: the finite upper bounds (le), ascending, shared by every series. */
  bounds?: readonly number[];
  /** Histograms: per series, bounds.length + 1 counts (not cumulative; the last is the +Inf overflow). */
  buckets?: Float64Array;
  /** Histograms: per series, the sum. */
  sums?: Float64Array;
}

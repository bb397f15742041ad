import { type Family, type HistogramSeries, LabelTable, type ScalarSeries, type SeriesColumns } from '../metric/series.js';

type Series = ScalarSeries | HistogramSeries;

/** A family over columns: `series` is built from them on first use and kept. */
class ColumnFamily implements Family {
  private built: Series[] | undefined;

  constructor(
    readonly name: string,
    readonly type: Family['type'],
    readonly help: string,
    readonly columns: SeriesColumns,
  ) {}

  get series(): Series[] {
    return (this.built ??= seriesOf(this.columns));
  }
}

export function columnFamily(meta: Pick<Family, 'name' | 'type' | 'help'>, columns: SeriesColumns): Family {
  return new ColumnFamily(meta.name, meta.type, meta.help, columns);
}

/** The series of columns as objects (cumulative buckets, +Inf last, as Prometheus writes them). */
export function seriesOf(c: SeriesColumns): Series[] {
  const out: Series[] = [];
  const { bounds, buckets, sums } = c;
  const width = bounds === undefined ? 0 : bounds.length + 1;
  for (let i = 0; i < c.ids.length; i++) {
    const labels = c.table.labels[c.ids[i]];
    if (bounds === undefined || buckets === undefined || sums === undefined) {
      out.push({ labels, value: c.values[i] });
      continue;
    }
    let cum = 0;
    const bs: HistogramSeries['buckets'] = [];
    for (let b = 0; b < width; b++) {
      cum += buckets[i * width + b];
      bs.push({ le: b < bounds.length ? bounds[b] : Infinity, count: cum });
    }
    out.push({ labels, buckets: bs, count: c.values[i], sum: sums[i] });
  }
  return out;
}

const built = new WeakMap<Family, SeriesColumns>();

/**
 * A family's columns: its own, or built once from its series (families written as literals: the
 * self-metrics, tests). Histogram bounds are the first series' finite `le` values; a series without
 * a +Inf bucket gets its overflow from its count.
 */
export function columnsOf(f: Family): SeriesColumns {
  if (f.columns !== undefined) return f.columns;
  let c = built.get(f);
  if (c !== undefined) return c;
  const table = new LabelTable();
  const series = f.series; // read once: it may be a getter
  const n = series.length;
  const ids = new Int32Array(n);
  const values = new Float64Array(n);
  const first = series.find((s): s is HistogramSeries => 'buckets' in s);
  if (f.type !== 'histogram' || first === undefined) {
    series.forEach((s, i) => {
      ids[i] = table.add(s.labels);
      values[i] = 'buckets' in s ? s.count : s.value;
    });
    c = { table, ids, values };
  } else {
    const bounds = first.buckets.filter((b) => b.le !== Infinity).map((b) => b.le);
    const width = bounds.length + 1;
    const buckets = new Float64Array(n * width);
    const sums = new Float64Array(n);
    series.forEach((s, i) => {
      ids[i] = table.add(s.labels);
      if (!('buckets' in s)) return;
      values[i] = s.count;
      sums[i] = s.sum;
      let below = 0;
      let b = 0;
      for (const x of s.buckets) {
        if (x.le === Infinity || b >= bounds.length) break;
        buckets[i * width + b++] = x.count - below;
        below = x.count;
      }
      buckets[i * width + bounds.length] = s.count - below;
    });
    c = { table, ids, values, bounds, buckets, sums };
  }
  built.set(f, c);
  return c;
}

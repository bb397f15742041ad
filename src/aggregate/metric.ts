import { KeyTable } from './key-table.js';
import { columnFamily } from './columns.js';
import { SeriesIndex } from './series-index.js';
import { SUM_SLOT, type SeriesState, type MapShape, type MetricPlan, type MetricStats } from './types.js';
import { type Family, LabelTable } from '../metric/series.js';

const UNDECIDED = -1;
const DROPPED = -2; // a regexp label did not match: the row is not exported
const OVER = -3; // no room under max_series this cycle
/** Cycles in which a key whose labels are provisional (see LabelDecoder.provisional) is decoded again. */
export const LABEL_RETRIES = 3;

interface Segment { fromKey: boolean; offset: number; size: number }

/**
 * Turns the rows of one map into the series of one metric. A row's series is found by the raw bytes
 * of its label fields (KeyTable, no allocation); labels are decoded only when those bytes are new.
 * Rows whose labels decode alike land in one series and are summed.
 */
export interface AggregatorOptions {
  /** Totals carry over from cycle to cycle (drain and events jobs). */
  accumulate?: boolean;
  /** Rows are a stream of events (perf_event_array, ring buffer), not a map walked in its order. */
  stream?: boolean;
}

export class MetricAggregator {
  readonly plan: MetricPlan;
  private readonly shape: MapShape;
  /** Drain jobs keep totals across cycles; read jobs start every cycle from zero. */
  private readonly accumulate: boolean;
  private readonly segments: Segment[];
  private readonly cpuLabel: boolean;
  private readonly raw: KeyTable;
  /** Per raw key: a series index, or UNDECIDED / DROPPED / OVER. */
  private rawState: Int32Array;
  /** Per raw key: the cycle it was last decided in (OVER and provisional keys are decided again in a later one). */
  private rawCycle: Int32Array;
  /** Per raw key: how many more cycles its provisional labels are decoded again (0: settled). */
  private rawRetries: Uint8Array;
  /** Series by their label values. */
  private readonly index: SeriesIndex;
  /** Label sets by series index; a compaction starts a new table (snapshots keep theirs). */
  private table = new LabelTable();
  private seen: number[] = [];
  private overSeen: number[] = [];
  private values: number[] = [];
  private sums: number[] = [];
  /** Histogram counts, `width` per series. */
  private counts: number[] = [];
  private readonly width: number;
  private cycle = 0;
  private seenCount = 0;
  /**
   * The raw key id met at each position of the last sweep. An unchanged hash map is walked in the
   * same order every cycle, so comparing a row's bytes with the key last seen at its position skips
   * the hash probe (and its cache misses) for nearly every row.
   */
  private byPosition = new Int32Array(0);
  private position = 0;
  /** Rows are events, not a map's entries: no position memo (it held an entry per event of a cycle). */
  private readonly stream: boolean;
  private stats: MetricStats = { series: 0, seriesDropped: 0, rowsDropped: 0 };

  constructor(plan: MetricPlan, shape: MapShape, opts: AggregatorOptions = {}) {
    this.plan = plan;
    this.shape = shape;
    this.accumulate = opts.accumulate === true;
    this.stream = opts.stream === true;
    this.cpuLabel = plan.cpu === 'label';
    this.segments = plan.labels.flatMap((l) => (l.kind === 'field' ? [{ fromKey: l.fromKey, offset: l.offset, size: l.size }] : []));
    const keyWidth = this.segments.reduce((n, s) => n + s.size, 0) + (this.cpuLabel ? 2 : 0);
    this.raw = new KeyTable(keyWidth);
    this.rawState = new Int32Array(1024);
    this.rawCycle = new Int32Array(1024);
    this.rawRetries = new Uint8Array(1024);
    this.width = plan.histogram === undefined ? 0 : plan.histogram.bounds.length + 1;
    this.index = new SeriesIndex(plan.labels.map((l) => l.name), this.table);
  }

  /** Start a cycle: read jobs forget last cycle's values; tables are trimmed when they outgrow their use. */
  begin(): void {
    const lastSeen = this.seenCount;
    this.cycle++;
    this.seenCount = 0;
    this.position = 0;
    this.stats = { series: 0, seriesDropped: 0, rowsDropped: 0 };
    if (!this.accumulate && this.table.labels.length > 2 * lastSeen + 64) this.compact();
    if (this.raw.size > 4 * this.plan.maxSeries + 65536) this.resetRaw();
    if (!this.accumulate) {
      this.values.fill(0);
      this.sums.fill(0);
      this.counts.fill(0);
    }
  }

  /**
   * Add every row of a batch: row i's key at `keys[i * keySize]`, or at `keys[keyOffsets[i]]` (the
   * records of a ring buffer, read where they lie).
   */
  add(keys: Uint8Array, values: Uint8Array, count: number, keyOffsets?: Uint32Array): void {
    const { keySize, valueStride, slotSize, cpus } = this.shape;
    for (let i = 0; i < count; i++) {
      const k = keyOffsets === undefined ? i * keySize : keyOffsets[i];
      const v = i * valueStride;
      if (this.cpuLabel) {
        for (let c = 0; c < cpus; c++) this.row(keys, k, values, v + c * slotSize, c);
      } else {
        this.row(keys, k, values, v, -1);
      }
    }
  }

  private row(keys: Uint8Array, k: number, values: Uint8Array, v: number, cpu: number): void {
    const raw = this.raw;
    const s = raw.scratch;
    let p = 0;
    for (const seg of this.segments) {
      const src = seg.fromKey ? keys : values;
      const base = (seg.fromKey ? k : v) + seg.offset;
      for (let j = 0; j < seg.size; j++) s[p++] = src[base + j];
    }
    if (cpu >= 0) {
      s[p++] = cpu & 0xff;
      s[p] = cpu >> 8;
    }
    let id: number;
    if (this.stream) {
      id = raw.find();
      if (id < 0) id = this.newRaw();
    } else {
      const pos = this.position++;
      if (pos >= this.byPosition.length) {
        const grown = new Int32Array(Math.max(1024, this.byPosition.length * 2)).fill(-1);
        grown.set(this.byPosition);
        this.byPosition = grown;
      }
      id = this.byPosition[pos];
      if (!raw.matches(id)) {
        id = raw.find();
        if (id < 0) id = this.newRaw();
        this.byPosition[pos] = id;
      }
    }
    let si = this.rawState[id];
    if (si === UNDECIDED || ((si === OVER || this.rawRetries[id] > 0) && this.rawCycle[id] !== this.cycle)) si = this.decide(id, keys, k, values, v, cpu);
    if (si < 0) {
      if (si === DROPPED) this.stats.rowsDropped++;
      return;
    }
    if (this.seen[si] !== this.cycle && !this.touch(si)) return;

    const x = this.reduce(this.plan.value.read, values, v + this.plan.value.offset, cpu);
    const h = this.plan.histogram;
    if (h === undefined) {
      this.values[si] += x;
      return;
    }
    const bucket = h.index(h.bucket.read(keys, k + h.bucket.offset));
    if (bucket === SUM_SLOT) {
      this.sums[si] += x * h.sumScale;
      return;
    }
    this.counts[si * this.width + bucket] += x;
    if (h.sum !== undefined) this.sums[si] += this.reduce(h.sum.read, values, v + h.sum.offset, cpu) * h.sumScale;
  }

  /** One value of a row: its own CPU's slot, or all slots reduced by the metric's cpu rule. */
  private reduce(read: (b: Uint8Array, o: number) => number, values: Uint8Array, off: number, cpu: number): number {
    if (cpu >= 0 || this.shape.cpus === 1) return read(values, off);
    let x = read(values, off);
    const { slotSize, cpus } = this.shape;
    const mode = this.plan.cpu;
    for (let c = 1; c < cpus; c++) {
      const y = read(values, off + c * slotSize);
      x = mode === 'sum' ? x + y : mode === 'max' ? Math.max(x, y) : Math.min(x, y);
    }
    return x;
  }

  private newRaw(): number {
    const id = this.raw.insert();
    if (id >= this.rawState.length) {
      const grow = (a: Int32Array): Int32Array => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.rawState = grow(this.rawState);
      this.rawCycle = grow(this.rawCycle);
      const retries = new Uint8Array(this.rawRetries.length * 2);
      retries.set(this.rawRetries);
      this.rawRetries = retries;
    }
    this.rawState[id] = UNDECIDED;
    this.rawRetries[id] = 0;
    return id;
  }

  /**
   * Decode a raw key's labels and find or create its series. A key with a provisional label (a
   * name the system did not show yet) is decoded again in the next LABEL_RETRIES cycles, so a
   * cgroup or interface created just after a walk gets its name instead of its number for good.
   */
  private decide(id: number, keys: Uint8Array, k: number, values: Uint8Array, v: number, cpu: number): number {
    const labels: Record<string, string> = {};
    const parts: string[] = [];
    let provisional = false;
    for (const l of this.plan.labels) {
      let text: string | undefined;
      if (l.kind === 'static') text = l.value;
      else if (l.kind === 'cpu') text = String(this.shape.cpuIds[cpu] ?? cpu);
      else {
        text = l.decoder.decode(l.fromKey ? keys : values, (l.fromKey ? k : v) + l.offset);
        if (text !== undefined && l.decoder.provisional?.(text) === true) provisional = true;
      }
      if (text === undefined) return (this.rawState[id] = DROPPED);
      labels[l.name] = text;
      parts.push(text);
    }
    const retrying = this.rawRetries[id] > 0;
    this.rawRetries[id] = !provisional ? 0 : retrying ? this.rawRetries[id] - 1 : LABEL_RETRIES;
    this.rawCycle[id] = this.cycle;
    let si = this.index.find(parts);
    if (si < 0) {
      if (this.seenCount >= this.plan.maxSeries) {
        this.stats.seriesDropped++;
        return (this.rawState[id] = OVER);
      }
      si = this.table.add(labels);
      this.index.add(si);
      this.seen.push(0);
      this.overSeen.push(0);
      this.values.push(0);
      this.sums.push(0);
      for (let b = 0; b < this.width; b++) this.counts.push(0);
    }
    return (this.rawState[id] = si);
  }

  /** First row of a series this cycle: it counts against max_series. */
  private touch(si: number): boolean {
    if (this.seenCount >= this.plan.maxSeries) {
      if (this.overSeen[si] !== this.cycle) {
        this.overSeen[si] = this.cycle;
        this.stats.seriesDropped++;
      }
      return false;
    }
    this.seen[si] = this.cycle;
    this.seenCount++;
    return true;
  }

  /** Keep only the series seen last cycle (read jobs), so departed keys do not pile up. */
  private compact(): void {
    const keep: number[] = [];
    for (let si = 0; si < this.table.labels.length; si++) if (this.seen[si] === this.cycle - 1) keep.push(si);
    const pick = <T>(a: T[]): T[] => keep.map((si) => a[si]);
    const old = this.table.labels;
    this.table = new LabelTable();
    for (const si of keep) this.table.add(old[si]);
    this.seen = pick(this.seen);
    this.overSeen = keep.map(() => 0);
    this.values = pick(this.values);
    this.sums = pick(this.sums);
    this.counts = keep.flatMap((si) => this.counts.slice(si * this.width, (si + 1) * this.width));
    this.index.reset(this.table);
    this.resetRaw();
  }

  private resetRaw(): void {
    this.raw.clear();
  }

  /** Totals of every series (drain jobs), to checkpoint or to carry across a reload. */
  exportState(): SeriesState[] {
    const out: SeriesState[] = [];
    for (let si = 0; si < this.table.labels.length; si++) {
      if (this.seen[si] === 0) continue;
      out.push({
        labels: { ...this.table.labels[si] },
        value: this.values[si],
        sum: this.sums[si],
        counts: this.counts.slice(si * this.width, (si + 1) * this.width),
      });
    }
    return out;
  }

  /** Start from saved totals. Series whose histogram shape changed are skipped (their count is returned). */
  importState(state: readonly SeriesState[]): number {
    let skipped = 0;
    for (const s of state) {
      const names = this.plan.labels.map((l) => l.name);
      if (s.counts.length !== this.width || names.some((n) => s.labels[n] === undefined) || Object.keys(s.labels).length !== names.length) {
        skipped++;
        continue;
      }
      let si = this.index.find(names.map((n) => s.labels[n]));
      if (si < 0) {
        si = this.table.add({ ...s.labels });
        this.index.add(si);
        this.seen.push(0);
        this.overSeen.push(0);
        this.values.push(0);
        this.sums.push(0);
        for (let b = 0; b < this.width; b++) this.counts.push(0);
      }
      // Imported totals are visible from the next finish() on, even before a row arrives (-1: kept,
      // not yet seen in a cycle, so its first row still counts against max_series).
      if (this.seen[si] === 0) this.seen[si] = -1;
      this.values[si] += s.value;
      this.sums[si] += s.sum;
      for (let b = 0; b < this.width; b++) this.counts[si * this.width + b] += s.counts[b];
    }
    return skipped;
  }

  /** The series of this cycle (read jobs) or all totals (drain jobs), as columns (no object per series). */
  finish(): { family: Family; stats: MetricStats } {
    const { name, type, help, scale, histogram } = this.plan;
    const total = this.table.labels.length;
    let n = 0;
    for (let si = 0; si < total; si++) if (this.present(si)) n++;
    const ids = new Int32Array(n);
    const values = new Float64Array(n);
    const width = this.width;
    const buckets = histogram === undefined ? undefined : new Float64Array(n * width);
    const sums = histogram === undefined ? undefined : new Float64Array(n);
    let i = 0;
    for (let si = 0; si < total; si++) {
      if (!this.present(si)) continue;
      ids[i] = si;
      if (buckets === undefined || sums === undefined) {
        values[i] = this.values[si] * scale;
      } else {
        let count = 0;
        for (let b = 0; b < width; b++) {
          const x = this.counts[si * width + b];
          buckets[i * width + b] = x;
          count += x;
        }
        values[i] = count;
        sums[i] = this.sums[si];
      }
      i++;
    }
    this.stats.series = n;
    const columns = { table: this.table, ids, values, bounds: histogram?.bounds, buckets, sums };
    return { family: columnFamily({ name, type, help }, columns), stats: this.stats };
  }

  private present(si: number): boolean {
    return this.accumulate ? this.seen[si] !== 0 : this.seen[si] === this.cycle;
  }
}

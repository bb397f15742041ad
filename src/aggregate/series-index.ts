import type { LabelTable } from '../metric/series.js';

/**
 * A metric's series ids by their label values, without a key per series: an open-addressing table
 * of ids (Int32Array) hashed over the values in the plan's order, compared with the label sets the
 * LabelTable already holds. A Map keyed by the joined values held a second copy of every label set
 * as one string: ~8 MB of heap at 100,000 flow series (BENCHMARKS.md, "Memory").
 */
export class SeriesIndex {
  /** id + 1 per slot; 0 is empty. */
  private slots = new Int32Array(1024);
  private mask = this.slots.length - 1;
  private count = 0;
  /** Each indexed id's hash, so that growing the table does not hash every label set again. */
  private hashes = new Int32Array(1024);

  constructor(
    private readonly names: readonly string[],
    private table: LabelTable,
  ) {}

  /** The id of the series whose values (in `names` order) are `values`, or -1. */
  find(values: readonly string[]): number {
    for (let i = this.hash(values) & this.mask; ; i = (i + 1) & this.mask) {
      const v = this.slots[i];
      if (v === 0) return -1;
      if (this.equals(v - 1, values)) return v - 1;
    }
  }

  /** Index series `id` of the table (its values must not be indexed yet). */
  add(id: number): void {
    if ((this.count + 1) * 2 > this.slots.length) this.grow();
    if (id >= this.hashes.length) {
      const grown = new Int32Array(Math.max(id + 1, this.hashes.length * 2));
      grown.set(this.hashes);
      this.hashes = grown;
    }
    this.hashes[id] = this.hash(this.valuesOf(id));
    this.place(id);
    this.count++;
  }

  /** Forget every series and index `table` instead (after a compaction). */
  reset(table: LabelTable): void {
    this.table = table;
    this.slots = new Int32Array(1024);
    this.mask = this.slots.length - 1;
    this.count = 0;
    for (let id = 0; id < table.labels.length; id++) this.add(id);
  }

  private valuesOf(id: number): string[] {
    const labels = this.table.labels[id];
    return this.names.map((n) => labels[n]);
  }

  private equals(id: number, values: readonly string[]): boolean {
    const labels = this.table.labels[id];
    for (let j = 0; j < this.names.length; j++) if (labels[this.names[j]] !== values[j]) return false;
    return true;
  }

  private hash(values: readonly string[]): number {
    // FNV-1a over the UTF-16 code units, a separator between values, then a final mix.
    let h = 0x811c9dc5;
    for (const s of values) {
      for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
      h = Math.imul(h ^ 0xffff, 0x01000193);
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    return h ^ (h >>> 13);
  }

  private place(id: number): void {
    let i = this.hashes[id] & this.mask;
    while (this.slots[i] !== 0) i = (i + 1) & this.mask;
    this.slots[i] = id + 1;
  }

  private grow(): void {
    const ids: number[] = [];
    for (const v of this.slots) if (v !== 0) ids.push(v - 1);
    this.slots = new Int32Array(this.slots.length * 2);
    this.mask = this.slots.length - 1;
    for (const id of ids) this.place(id);
  }
}

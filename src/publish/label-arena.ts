import type { LabelTable } from '../aggregate/types.js';

/**
 * What a publisher builds from each label set of a LabelTable (its exposition text, its OTLP
 * attributes), encoded once per series in its life and kept as bytes in one growing buffer: no
 * object per series, and nothing to rebuild when only values change.
 */
export class LabelArena {
  private bytes = Buffer.allocUnsafeSlow(0);
  /** Byte offset where id's encoding starts; id's encoding ends where id + 1's starts. */
  private starts = new Int32Array(257);
  private count = 0;

  constructor(private readonly encode: (labels: Readonly<Record<string, string>>) => string | Uint8Array) {}

  /** Encode the label sets of `table` that are not encoded yet, up to id `upTo` (ids only grow). */
  fill(table: LabelTable, upTo = table.labels.length): void {
    const labels = table.labels;
    const end = Math.min(upTo, labels.length);
    if (end <= this.count) return;
    const encoded = labels.slice(this.count, end).map((l) => {
      const e = this.encode(l);
      return typeof e === 'string' ? Buffer.from(e, 'utf8') : e;
    });
    // Room for what came, and for the table's other new label sets at the same average size (so a
    // first cycle of 100,000 series, filled in slices, allocates once, without slack); later growth
    // by a quarter.
    const used = this.starts[this.count];
    const size = encoded.reduce((n, e) => n + e.length, used);
    if (size > this.bytes.length) {
      const expected = Math.ceil((size / end) * labels.length);
      this.resize(this.count === 0 ? expected : Math.max(expected, Math.ceil(this.bytes.length * 1.25)));
    }
    if (labels.length + 1 > this.starts.length) {
      const grown = new Int32Array(Math.max(labels.length + 1, Math.ceil(this.starts.length * 1.25)));
      grown.set(this.starts.subarray(0, this.count + 1));
      this.starts = grown;
    }
    let at = used;
    for (const e of encoded) {
      this.bytes.set(e, at);
      at += e.length;
      this.starts[++this.count] = at;
    }
  }

  length(id: number): number {
    return this.starts[id + 1] - this.starts[id];
  }

  /** Copy id's bytes into `dst` at `offset`; returns their length. */
  copy(id: number, dst: Buffer, offset: number): number {
    return this.bytes.copy(dst, offset, this.starts[id], this.starts[id + 1]);
  }

  /** Copy the bytes of ids from..to-1 (consecutive, so one copy) into `dst` at `offset`; returns their length. */
  copyRange(from: number, to: number, dst: Buffer, offset: number): number {
    return this.bytes.copy(dst, offset, this.starts[from], this.starts[to]);
  }

  text(id: number): string {
    return this.bytes.toString('utf8', this.starts[id], this.starts[id + 1]);
  }

  private resize(size: number): void {
    const grown = Buffer.allocUnsafeSlow(size);
    this.bytes.copy(grown, 0, 0, this.starts[this.count]);
    this.bytes = grown;
  }
}

/** One arena per table and per kind of encoding; dropped with the table. */
export function arenaFor(cache: WeakMap<LabelTable, LabelArena>, table: LabelTable, encode: (labels: Readonly<Record<string, string>>) => string | Uint8Array): LabelArena {
  let a = cache.get(table);
  if (a === undefined) cache.set(table, (a = new LabelArena(encode)));
  a.fill(table);
  return a;
}

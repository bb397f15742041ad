import type { LabelTable } from '../aggregate/types.js';

/**
 * What a publisher builds from each label set of a LabelTable (its exposition text, its OTLP
 * attributes), encoded once per series in its life and kept as bytes in one growing buffer: no
 * object per series, and nothing to rebuild when only values change.
 */
export class LabelArena {
  private bytes = Buffer.allocUnsafe(4096);
  /** Byte offset where id's encoding starts; id's encoding ends where id + 1's starts. */
  private starts = new Int32Array(257);
  private count = 0;

  constructor(private readonly encode: (labels: Readonly<Record<string, string>>) => string | Uint8Array) {}

  /** Encode the label sets of `table` that are not encoded yet (ids only grow). */
  fill(table: LabelTable): void {
    const labels = table.labels;
    for (let id = this.count; id < labels.length; id++) {
      const e = this.encode(labels[id]);
      const at = this.starts[id];
      const len = typeof e === 'string' ? Buffer.byteLength(e) : e.length;
      this.reserve(at + len);
      if (typeof e === 'string') this.bytes.write(e, at, 'utf8');
      else this.bytes.set(e, at);
      if (id + 2 > this.starts.length) {
        const grown = new Int32Array(this.starts.length * 2);
        grown.set(this.starts);
        this.starts = grown;
      }
      this.starts[id + 1] = at + len;
      this.count = id + 1;
    }
  }

  length(id: number): number {
    return this.starts[id + 1] - this.starts[id];
  }

  /** Copy id's bytes into `dst` at `offset`; returns their length. */
  copy(id: number, dst: Buffer, offset: number): number {
    return this.bytes.copy(dst, offset, this.starts[id], this.starts[id + 1]);
  }

  text(id: number): string {
    return this.bytes.toString('utf8', this.starts[id], this.starts[id + 1]);
  }

  private reserve(size: number): void {
    if (size <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(size, this.bytes.length * 2));
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

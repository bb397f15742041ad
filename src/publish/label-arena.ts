import type { LabelTable } from '../metric/series.js';
import type { ByteWriter } from './byte-writer.js';

/**
 * What a publisher builds from each label set of a LabelTable (its exposition text, its OTLP
 * attributes), encoded once per series in its life and kept as bytes in one growing buffer: no
 * object per series, and nothing to rebuild when only values change.
 */
export class LabelArena<W extends ByteWriter = ByteWriter> {
  private bytes = Buffer.allocUnsafeSlow(0);
  /** Byte offset where id's encoding starts; id's encoding ends where id + 1's starts. */
  private starts = new Int32Array(257);
  private count = 0;

  /**
   * `encode` writes one label set's bytes into `scratch` (shared by the arenas of one kind: it is
   * emptied before each label set), from where they are copied into the arena: no object per series.
   */
  constructor(
    private readonly encode: (labels: Readonly<Record<string, string>>, w: W) => void,
    private readonly scratch: W,
  ) {}

  /** Encode the label sets of `table` that are not encoded yet, up to id `upTo` (ids only grow). */
  fill(table: LabelTable, upTo = table.labels.length): void {
    const labels = table.labels;
    const end = Math.min(upTo, labels.length);
    if (end <= this.count) return;
    if (labels.length + 1 > this.starts.length) {
      const grown = new Int32Array(Math.max(labels.length + 1, Math.ceil(this.starts.length * 1.25)));
      grown.set(this.starts.subarray(0, this.count + 1));
      this.starts = grown;
    }
    const w = this.scratch;
    let at = this.starts[this.count];
    for (let id = this.count; id < end; id++) {
      w.pos = 0;
      this.encode(labels[id], w);
      if (at + w.pos > this.bytes.length) {
        // Room for the table's other label sets at the average size so far (a first cycle of
        // 100,000 series, filled in slices, allocates about once and without slack); at least a
        // quarter more, so that growth stays rare.
        const projected = Math.ceil(((at + w.pos) / (id + 1)) * labels.length * 1.02);
        this.resize(Math.max(at + w.pos, projected, Math.ceil(this.bytes.length * 1.25)));
      }
      at += w.buf.copy(this.bytes, at, 0, w.pos);
      this.starts[++this.count] = at;
    }
  }

  /** How many label sets are encoded (ids 0..size-1). */
  get size(): number {
    return this.count;
  }

  /** The mean length of the encodings so far (0 when none). */
  meanLength(): number {
    return this.count === 0 ? 0 : this.starts[this.count] / this.count;
  }

  length(id: number): number {
    return this.starts[id + 1] - this.starts[id];
  }

  /** The length of ids from..to-1 together. */
  rangeLength(from: number, to: number): number {
    return this.starts[to] - this.starts[from];
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

/** One arena per table and per kind of encoding, filled up to id `upTo` (all by default); dropped with the table. */
export function arenaFor<W extends ByteWriter>(
  cache: WeakMap<LabelTable, LabelArena<W>>,
  table: LabelTable,
  encode: (labels: Readonly<Record<string, string>>, w: W) => void,
  scratch: W,
  upTo = table.labels.length,
): LabelArena<W> {
  let a = cache.get(table);
  if (a === undefined) cache.set(table, (a = new LabelArena(encode, scratch)));
  a.fill(table, upTo);
  return a;
}

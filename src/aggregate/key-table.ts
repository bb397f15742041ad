/**
 * Fixed-width byte keys to dense ids (0, 1, 2, ...), found without allocating: the caller writes the
 * key's bytes into `scratch` and asks for its id. Open addressing over a power-of-two slot array;
 * keys live in one growing pool.
 */
export class KeyTable {
  readonly width: number;
  /** Write a key here, then call find() or insert(). */
  readonly scratch: Uint8Array;
  private pool: Uint8Array;
  private slots: Int32Array;
  private mask: number;
  private count = 0;

  constructor(width: number, capacity = 1024) {
    this.width = width;
    this.scratch = new Uint8Array(Math.max(width, 1));
    let n = 16;
    while (n < capacity * 2) n *= 2;
    this.slots = new Int32Array(n);
    this.mask = n - 1;
    this.pool = new Uint8Array(Math.max(width, 1) * (n / 2));
  }

  get size(): number {
    return this.count;
  }

  private hash(s: Uint8Array, base: number): number {
    // FNV-1a, then a final mix so that keys differing only in high bytes spread over the low bits.
    let h = 0x811c9dc5;
    for (let i = base; i < base + this.width; i++) h = Math.imul(h ^ s[i], 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    return (h ^ (h >>> 13)) >>> 0;
  }

  /** Whether key `id` equals the key in `scratch` (a check cheaper than find() when `id` is a good guess). */
  matches(id: number): boolean {
    return id >= 0 && id < this.count && this.equals(id);
  }

  private equals(id: number): boolean {
    const s = this.scratch;
    const p = this.pool;
    const base = id * this.width;
    for (let i = 0; i < this.width; i++) if (p[base + i] !== s[i]) return false;
    return true;
  }

  /** The id of the key in `scratch`, or -1. */
  find(): number {
    let i = this.hash(this.scratch, 0) & this.mask;
    for (;;) {
      const v = this.slots[i];
      if (v === 0) return -1;
      if (this.equals(v - 1)) return v - 1;
      i = (i + 1) & this.mask;
    }
  }

  /** Add the key in `scratch` (known to be absent) and return its new id. */
  insert(): number {
    if ((this.count + 1) * 2 > this.slots.length) this.grow();
    const id = this.count++;
    if ((id + 1) * this.width > this.pool.length) {
      const p = new Uint8Array(this.pool.length * 2);
      p.set(this.pool);
      this.pool = p;
    }
    this.pool.set(this.scratch.subarray(0, this.width), id * this.width);
    this.place(id);
    return id;
  }

  /** The bytes of key `id` (a view into the pool, valid until the next insert). */
  key(id: number): Uint8Array {
    return this.pool.subarray(id * this.width, (id + 1) * this.width);
  }

  clear(): void {
    this.slots.fill(0);
    this.count = 0;
  }

  private place(id: number): void {
    let i = this.hash(this.pool, id * this.width) & this.mask;
    while (this.slots[i] !== 0) i = (i + 1) & this.mask;
    this.slots[i] = id + 1;
  }

  private grow(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    this.mask = this.slots.length - 1;
    for (let id = 0; id < this.count; id++) this.place(id);
  }
}

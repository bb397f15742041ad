import { native } from './libbpf.js';
import { BpfError, Errno } from './errors.js';
import { BPF_F_LOCK, batchOpts, type BpfMap } from './map.js';
import { isArrayLike } from './map-types.js';

export type ReadMode = 'read' | 'drain';
/** batch: BPF_MAP_*_BATCH. per-key: get_next_key + lookup (or lookup-and-delete), as on kernels before 5.6. */
export type IterationMethod = 'batch' | 'per-key' | 'events';

export interface ReaderOptions {
  /** Entries per batch call (default 4096). ENOSPC grows it, up to max_entries, for the reader's life. */
  batchSize?: number;
  /** auto (default): batch, falling back to per-key when the kernel refuses batch operations. */
  method?: 'auto' | IterationMethod;
  /** Copy values under their bpf_spin_lock (BPF_F_LOCK). */
  lock?: boolean;
}

/** One batch of entries. Its buffers are the reader's and are overwritten by the next batch. */
export interface Batch {
  readonly keys: Buffer;
  readonly values: Buffer;
  readonly count: number;
  readonly keySize: number;
  /** Bytes per element in `values` (per-CPU maps: one 8-byte-padded slot per possible CPU). */
  readonly valueStride: number;
}

export interface IterationStats {
  method: IterationMethod;
  /** Why per-key iteration ran instead of batch (the errno name), when it was a fallback. */
  fallback: string | undefined;
  entries: number;
  /** Map syscalls made in this sweep. */
  calls: number;
  /** Times ENOSPC made the batch buffer grow. */
  grown: number;
  /** EINTR/EBUSY answers that were consumed and resumed. */
  resumed: number;
  /** Per-key walks that restarted from the first bucket because the current key was deleted. */
  restarts: number;
  /** Keys the per-key walk met twice after a restart and skipped. */
  duplicatesSkipped: number;
  /** True when the per-key walk hit its cap of max_entries + 1 steps: entries may be missing. */
  truncated: boolean;
  batchSize: number;
}

const MAX_STALLED_RETRIES = 64;

/**
 * Iterates a map in batches over buffers allocated once and reused for every sweep.
 * Follows the kernel's rules (shared/reference/batch-semantics.md): entries that come with ENOENT,
 * short batches that are not the end, ENOSPC grown and retried from the same cursor, EINTR/EBUSY
 * resumed, EFAULT reported as possible loss.
 */
export class BatchReader {
  readonly map: BpfMap;
  private batchSize: number;
  private method: 'auto' | IterationMethod;
  private fallbackReason: string | undefined;
  private readonly elemFlags: number;
  private readonly opts: Buffer;
  private keys: Buffer;
  private values: Buffer;
  private readonly cursor: Buffer;
  private readonly count = new Uint32Array(1);
  private current: IterationStats;
  private lookupAndDelete = true;

  constructor(map: BpfMap, opts: ReaderOptions = {}) {
    this.map = map;
    const requested = opts.batchSize ?? 4096;
    if (!Number.isInteger(requested) || requested < 1) throw new RangeError(`batchSize must be a positive integer, got ${requested}`);
    this.batchSize = Math.min(requested, Math.max(1, map.info.maxEntries));
    this.method = opts.method ?? 'auto';
    this.elemFlags = opts.lock === true ? BPF_F_LOCK : 0;
    this.opts = batchOpts(this.elemFlags);
    this.keys = Buffer.alloc(this.batchSize * map.info.keySize);
    this.values = Buffer.alloc(this.batchSize * map.valueStride);
    // Hash maps write a 4-byte bucket index even for 1-byte keys; generic maps write a whole key.
    this.cursor = Buffer.alloc((map.cursorSize + 7) & ~7);
    this.current = this.freshStats('batch');
  }

  /** Statistics of the running or last sweep. */
  get stats(): Readonly<IterationStats> {
    return this.current;
  }

  /** Iterate every entry once (read) or take every entry out of the map (drain). */
  *batches(mode: ReadMode = 'read'): Generator<Batch, IterationStats> {
    if (mode === 'drain' && isArrayLike(this.map.info.type)) {
      throw new BpfError('drain', Errno.ENOTSUPP, {
        map: this.map.label,
        detail: `${this.map.info.typeName} maps cannot delete entries: every index always exists; read them instead`,
      });
    }
    if (this.method !== 'per-key') {
      const fellBack = yield* this.batchSweep(mode);
      if (!fellBack) return this.current;
    }
    yield* this.perKeySweep(mode);
    return this.current;
  }

  /** Convenience: run a whole sweep and call `fn` per batch. */
  forEach(mode: ReadMode, fn: (b: Batch) => void): IterationStats {
    for (const b of this.batches(mode)) fn(b);
    return this.current;
  }

  private freshStats(method: IterationMethod): IterationStats {
    return {
      method, fallback: this.fallbackReason, entries: 0, calls: 0, grown: 0, resumed: 0,
      restarts: 0, duplicatesSkipped: 0, truncated: false, batchSize: this.batchSize,
    };
  }

  private batch(count: number): Batch {
    this.current.entries += count;
    return { keys: this.keys, values: this.values, count, keySize: this.map.info.keySize, valueStride: this.map.valueStride };
  }

  /** Returns true when the kernel refused batch operations before anything was read (fall back). */
  private *batchSweep(mode: ReadMode): Generator<Batch, boolean> {
    const map = this.map;
    const op = mode === 'drain' ? 'lookup-and-delete batch' : 'lookup batch';
    const call = mode === 'drain' ? native.lookupAndDeleteBatch : native.lookupBatch;
    const stats = (this.current = this.freshStats('batch'));
    const count = this.count;
    let started = false;
    let stalled = 0;
    // Each successful call advances at least one bucket or key; bounding the calls by the bucket
    // count (a power of two >= max_entries) plus slack turns any kernel surprise into an error, not a hang.
    const maxCalls = 2 * map.info.maxEntries + 16;

    for (;;) {
      if (stats.calls > maxCalls) {
        throw new BpfError(op, Errno.EINVAL, { map: map.label, detail: `no end of iteration after ${stats.calls} calls` });
      }
      count[0] = this.batchSize;
      stats.calls++;
      const ret = call(map.fd, started ? this.cursor : null, this.cursor, this.keys, this.values, count, this.opts);
      const n = count[0];

      if (ret === 0 || ret === -Errno.ENOENT) {
        // A short batch is not the end for hash maps (buckets vary); only ENOENT is.
        if (n > 0) {
          started = true;
          stalled = 0;
          yield this.batch(n);
        } else if (ret === 0) {
          stalled++;
        }
        if (ret === -Errno.ENOENT) return false;
        if (stalled > MAX_STALLED_RETRIES) {
          throw new BpfError(op, Errno.EINVAL, { map: map.label, detail: `${stalled} calls in a row returned nothing and no end` });
        }
        continue;
      }

      if (ret === -Errno.ENOSPC) {
        // The next bucket holds more entries than the buffer: grow and retry from the same cursor,
        // which the kernel has set to that bucket.
        started = true;
        if (this.batchSize >= map.info.maxEntries) {
          throw new BpfError(op, Errno.ENOSPC, { map: map.label, detail: `a bucket does not fit in ${this.batchSize} entries (max_entries)` });
        }
        this.grow(Math.min(this.batchSize * 2, map.info.maxEntries));
        stats.grown++;
        stats.batchSize = this.batchSize;
        continue;
      }

      if (ret === -Errno.EINTR || ret === -Errno.EBUSY) {
        // count and out_batch are valid: consume what came and resume from the cursor.
        stats.resumed++;
        if (n > 0) {
          started = true;
          stalled = 0;
          yield this.batch(n);
        } else if (++stalled > MAX_STALLED_RETRIES) {
          throw new BpfError(op, -ret, { map: map.label, detail: `no progress after ${stalled} retries` });
        }
        continue;
      }

      if (ret === -Errno.EFAULT) {
        // count cannot be trusted; a drain may have deleted entries it never returned.
        throw new BpfError(op, Errno.EFAULT, { map: map.label, possibleLoss: mode === 'drain' ? this.batchSize : 0 });
      }

      if ((ret === -Errno.EINVAL || ret === -Errno.ENOTSUPP || ret === -Errno.EOPNOTSUPP) && this.method === 'auto' && stats.entries === 0) {
        // Unsupported command for this map type, or a kernel without batch operations:
        // nothing was read, so per-key iteration can take over.
        this.fallbackReason = ret === -Errno.EINVAL ? 'EINVAL' : ret === -Errno.ENOTSUPP ? 'ENOTSUPP' : 'EOPNOTSUPP';
        this.method = 'per-key';
        return true;
      }

      throw new BpfError(op, -ret, { map: map.label, detail: mode === 'drain' ? drainDetail(map, ret) : undefined });
    }
  }

  private grow(size: number): void {
    this.batchSize = size;
    this.keys = Buffer.alloc(size * this.map.info.keySize);
    this.values = Buffer.alloc(size * this.map.valueStride);
  }

  /** Look up and delete one element; kernels before 5.14 cannot do both at once for hashes. */
  private take(key: Buffer, value: Buffer): number {
    const fd = this.map.fd;
    if (this.lookupAndDelete) {
      const r = native.lookupAndDeleteElem(fd, key, value);
      if (r !== -Errno.EINVAL && r !== -Errno.ENOTSUPP && r !== -Errno.EOPNOTSUPP) return r;
      this.lookupAndDelete = false;
    }
    const r = native.lookupElemFlags(fd, key, value, 0);
    if (r < 0) return r;
    this.current.calls++;
    const d = native.deleteElem(fd, key);
    return d === -Errno.ENOENT ? 0 : d;
  }

  private *perKeySweep(mode: ReadMode): Generator<Batch, void> {
    const map = this.map;
    const { keySize } = map.info;
    const stride = map.valueStride;
    const stats = (this.current = this.freshStats('per-key'));
    const prev = Buffer.alloc(this.cursor.length);
    const next = Buffer.alloc(this.cursor.length);
    const value = Buffer.alloc(stride);
    // Deleting the key a hash walk stands on restarts it at bucket 0, so a read remembers the keys it
    // has returned and skips them the second time round. Keys of up to 6 bytes are remembered as
    // numbers, which costs far less than a string per key.
    const seen = mode === 'read' ? new Set<number | string>() : undefined;
    const small = keySize <= 6;
    let n = 0;
    let lastWasDuplicate = false;
    let first = true;
    const cap = map.info.maxEntries + 1;

    for (let step = 0; ; step++) {
      if (step >= cap) {
        stats.truncated = true;
        break;
      }
      // A drain always asks for the first key: the previous one is gone.
      stats.calls++;
      const ret = native.getNextKey(map.fd, first || mode === 'drain' ? null : prev, next);
      if (ret === -Errno.ENOENT) break;
      if (ret < 0) throw new BpfError('get next key', -ret, { map: map.label });
      first = false;
      next.copy(prev, 0, 0, keySize);

      if (seen !== undefined) {
        const id = small ? next.readUIntLE(0, keySize) : next.toString('latin1', 0, keySize);
        if (seen.has(id)) {
          if (!lastWasDuplicate) stats.restarts++;
          lastWasDuplicate = true;
          stats.duplicatesSkipped++;
          continue;
        }
        lastWasDuplicate = false;
        seen.add(id);
      }

      stats.calls++;
      const r = mode === 'read' ? native.lookupElemFlags(map.fd, next, value, this.elemFlags) : this.take(next, value);
      if (r === -Errno.ENOENT) continue; // deleted between the two calls
      if (r < 0) throw new BpfError(mode === 'read' ? 'lookup' : 'lookup-and-delete', -r, { map: map.label, detail: drainDetail(map, r) });

      next.copy(this.keys, n * keySize, 0, keySize);
      value.copy(this.values, n * stride, 0, stride);
      if (++n === this.batchSize) {
        yield this.batch(n);
        n = 0;
      }
    }
    if (n > 0) yield this.batch(n);
  }
}

function drainDetail(map: BpfMap, ret: number): string | undefined {
  return ret === -Errno.EPERM && map.readOnly ? 'a drain deletes entries and needs a writable fd; the map was opened read-only' : undefined;
}

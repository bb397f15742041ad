/**
 * Records a BPF program submits to a BPF_MAP_TYPE_RINGBUF (bpf_ringbuf_reserve/submit, or
 * bpf_ringbuf_output), read from the ring's pages mapped into this process.
 *
 * The protocol is the kernel's (Documentation/bpf/ringbuf.rst) and the one libbpf's ring_buffer
 * follows: a consumer page we write (consumer_pos), a producer page the kernel writes
 * (producer_pos), then the data area mapped twice in a row, so a record that wraps round the end
 * is contiguous. Each record starts with an 8-byte header: a u32 length whose top two bits are BUSY
 * (still being written) and DISCARD (bpf_ringbuf_discard), then the record, padded to 8 bytes.
 *
 * Why not libbpf's ring_buffer__consume: it calls a C callback per record, and a koffi callback
 * (into JS and back) costs 10-15x what this reader takes per record, 70x with a koffi.view copy
 * (BENCHMARKS.md, "Ring buffers"). libbpf's own C loop takes 0.6-1x the time this one does.
 * Each position and header is one aligned load, and the consumer position one aligned 8-byte
 * store, published once the records are copied out.
 *
 * The kernel counts no loss for a ring buffer: a program's bpf_ringbuf_reserve (or _output) fails
 * when the ring is full, and only the program can count that. What a reader can see is a full ring
 * (`available()` near `size`).
 */
import { BpfError, Errno } from './errors.js';
import { mapShared, pageSize, PROT_READ, PROT_WRITE, unmap } from './libbpf.js';
import { MapType } from './map-types.js';
import type { BpfMap } from './map.js';

const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const HEADER = 8;

/**
 * What one consume() took: `count` records, record k at `data[offsets[k]]`, each readable for
 * `width` bytes (zero past its own end when it is shorter). The records lie in `data` as they lay
 * in the ring, headers between them: one copy of the ring's bytes, not one per record. `data`,
 * `offsets` and `sizes` are the reader's own buffers, valid until its next consume: read them, or
 * copy them, before that.
 */
export interface RingRecords {
  data: Uint8Array;
  offsets: Uint32Array;
  count: number;
  /** Each record's own length (before it was cut or filled to `width`). */
  sizes: Uint32Array;
  /** Records the programs discarded (bpf_ringbuf_discard), passed over. */
  discarded: number;
  /** Bytes still in the ring after this consume (the budget ended first): more is waiting. */
  pending: number;
}

export class RingBufferReader {
  /** The ring's data size (max_entries: a power of two, a multiple of the page size). */
  readonly size: number;
  private readonly mask: number;
  private consumerMap: { ptr: unknown; bytes: ArrayBuffer } | undefined;
  private producerMap: { ptr: unknown; bytes: ArrayBuffer } | undefined;
  private consumerPos: BigUint64Array;
  private producerPos: BigUint64Array;
  private headers: Uint32Array;
  private data: Uint8Array;
  /** The ring bytes the last record took (header and padding included): what sizes a consume's rows. */
  private slot = 64;
  /** Where consume() copies the records, and their offsets and sizes: overwritten by the next consume. */
  private scratch = new Uint8Array(0);
  private offsets: Uint32Array = new Uint32Array(64);
  private sizes: Uint32Array = new Uint32Array(64);
  private readonly label: string;

  /**
   * The ring buffer of `map`, which must be a ringbuf opened read-write (the consumer position is
   * ours to write). Records already in the ring are read too.
   */
  constructor(map: BpfMap) {
    this.label = map.label;
    if (map.info.type !== MapType.ringbuf) throw new BpfError('open a ring buffer', Errno.EINVAL, { map: map.label, detail: `the map is a ${map.info.typeName}, not a ringbuf` });
    this.size = map.info.maxEntries;
    this.mask = this.size - 1;
    const consumer = mapShared(map.fd, pageSize, 0, PROT_READ | PROT_WRITE);
    if (typeof consumer === 'number') throw new BpfError('map a ring buffer', -consumer, { map: map.label, detail: -consumer === Errno.EPERM || -consumer === Errno.EACCES ? 'the ring buffer must be opened read-write to be consumed' : undefined });
    // The producer page and the data, twice: read-only (the kernel refuses a writable mapping of them).
    const producer = mapShared(map.fd, pageSize + 2 * this.size, pageSize, PROT_READ);
    if (typeof producer === 'number') {
      unmap(consumer.ptr, pageSize);
      throw new BpfError('map a ring buffer', -producer, { map: map.label });
    }
    this.consumerMap = consumer;
    this.producerMap = producer;
    this.consumerPos = new BigUint64Array(consumer.bytes, 0, 1);
    this.producerPos = new BigUint64Array(producer.bytes, 0, 1);
    this.headers = new Uint32Array(producer.bytes, pageSize);
    this.data = new Uint8Array(producer.bytes, pageSize);
  }

  /** Bytes written and not yet consumed. */
  available(): number {
    return this.producerMap === undefined ? 0 : Number(this.producerPos[0]) - Number(this.consumerPos[0]);
  }

  /**
   * Take up to `max` records (each readable for `width` bytes); never waits. Each record taken is
   * consumed: its room in the ring is the producers' again.
   *
   * Two passes: the headers alone, to find the records, then one copy of the ring's bytes from the
   * first to past the last (the data area is mapped twice in a row, so it is contiguous even across
   * the wrap). A copy per record (a word loop, or set() of a subarray) cost 3-7x more.
   */
  consume(width: number, max = Number.MAX_SAFE_INTEGER): RingRecords {
    if (this.producerMap === undefined) throw new BpfError('consume a ring buffer', Errno.EBADF, { map: this.label, detail: 'the ring buffer was closed' });
    const { headers, mask } = this;
    // From the ring's consumer position, as libbpf does, not one kept here: another consumer of the
    // ring (another process, another reader) may have moved it. A Number: exact up to 2^53 bytes
    // consumed, years at any rate a ring can take.
    const first = Number(this.consumerPos[0]);
    const start = first & mask;
    // Bytes past `first` (what the loop counts in: small integers, where positions are past 2^32).
    let span = 0;
    let ready = Number(this.producerPos[0]) - first;
    // The reader's own arrays, kept from one consume to the next, grown as records come: two new
    // typed arrays a consume cost 30 ns a record (off-heap allocations, and the collections they set off).
    let { offsets, sizes } = this;
    let count = 0;
    let discarded = 0;
    let short = 0;
    let slot = this.slot;
    while (count < max) {
      if (span >= ready) {
        // Caught up: records committed since we looked are taken in the same consume. (The
        // producers never get more than the ring's size ahead of the position we published: what
        // lies between `first` and the producer is at most one ring, one contiguous run of the mapping.)
        ready = Number(this.producerPos[0]) - first;
        if (span >= ready) break;
      }
      const header = headers[((start + span) & mask) >>> 2];
      if ((header & BUSY) !== 0) break; // the record at the head is still being written
      const len = header & ~(BUSY | DISCARD);
      slot = (len + HEADER + 7) & ~7;
      if ((header & DISCARD) !== 0) discarded++;
      else {
        if (count === offsets.length) {
          [offsets, sizes] = grow(offsets, sizes);
          this.offsets = offsets;
          this.sizes = sizes;
        }
        offsets[count] = span + HEADER;
        sizes[count++] = len;
        if (len < width) short++;
      }
      span += slot;
    }
    this.slot = slot;
    const pos = first + span;
    // A record shorter than `width` gets a zero-filled row of its own past the copy: read in place,
    // its row would run into the records after it.
    const row = (width + 7) & ~7;
    const data = this.buffer(span + short * row);
    if (span > 0) {
      data.set(this.data.subarray(start, start + span));
      this.consumerPos[0] = BigInt(pos);
    }
    if (short > 0) {
      data.fill(0, span);
      let side = span;
      for (let k = 0; k < count; k++) {
        if (sizes[k] >= width) continue;
        data.copyWithin(side, offsets[k], offsets[k] + sizes[k]);
        offsets[k] = side;
        side += row;
      }
    }
    return { data, offsets: offsets.subarray(0, count), count, sizes: sizes.subarray(0, count), discarded, pending: Math.max(0, Number(this.producerPos[0]) - pos) };
  }

  /**
   * `n` bytes of the reader's own buffer, kept from one consume to the next: a fresh buffer per
   * consume cost more than the copy into it (~27 ns a 64-byte record: the page faults on first
   * touch of new memory, and the collections off-heap allocations set off). Not zero-filled (the
   * copy writes every byte).
   */
  private buffer(n: number): Uint8Array {
    if (this.scratch.length < n) this.scratch = new Uint8Array(Math.max(n, 2 * this.scratch.length));
    return this.scratch.subarray(0, n);
  }

  close(): void {
    if (this.producerMap === undefined || this.consumerMap === undefined) return;
    // The views go first: nothing may read the pages once they are unmapped.
    this.headers = new Uint32Array(0);
    this.data = new Uint8Array(0);
    this.consumerPos = new BigUint64Array(1);
    this.producerPos = new BigUint64Array(1);
    unmap(this.producerMap.ptr, pageSize + 2 * this.size);
    unmap(this.consumerMap.ptr, pageSize);
    this.producerMap = undefined;
    this.consumerMap = undefined;
  }
}

/** Twice the room: records came in while the batch was being read. */
function grow(offsets: Uint32Array, sizes: Uint32Array): [Uint32Array, Uint32Array] {
  const n = Math.max(16, offsets.length * 2);
  const o = new Uint32Array(n);
  o.set(offsets);
  const s = new Uint32Array(n);
  s.set(sizes);
  return [o, s];
}

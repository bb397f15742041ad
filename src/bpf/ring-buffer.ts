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
 * (into JS and back, with a copy of the record) costs 4-6x what reading the header and copying the
 * bytes costs here, 25x with a koffi.view copy (BENCHMARKS.md, "Ring buffers"). C's own loop is
 * still 7-10x faster per record than this one. The loads are ordered as the protocol needs on x86-64 and
 * arm64 alike: each position and header is one aligned load, and the consumer position one aligned
 * 8-byte store.
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
/** How often, in records, the consumer position is published while a batch is read (it frees the ring for the producers). */
const PUBLISH_EVERY = 64;

/** What one consume() took: `count` records of `width` bytes each (cut, or zero-filled past their end), back to back. */
export interface RingRecords {
  data: Uint8Array;
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
  /** Our position, a Number: exact up to 2^53 bytes consumed (years at any rate a ring can take). */
  private pos: number;
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
    this.pos = Number(this.consumerPos[0]);
  }

  /** Bytes written and not yet consumed. */
  available(): number {
    return this.producerMap === undefined ? 0 : Number(this.producerPos[0]) - this.pos;
  }

  /**
   * Take up to `max` records (each cut or zero-filled to `width` bytes); never waits. Each record
   * taken is consumed: its room in the ring is the producers' again.
   */
  consume(width: number, max = Number.MAX_SAFE_INTEGER): RingRecords {
    if (this.producerMap === undefined) throw new BpfError('consume a ring buffer', Errno.EBADF, { map: this.label, detail: 'the ring buffer was closed' });
    const { headers, data, mask } = this;
    let pos = this.pos;
    let prod = Number(this.producerPos[0]);
    // Sized for what is there now, at the size the last records had (grown if they are smaller):
    // sizing for the smallest possible record (8 bytes) allocated and zeroed 9x too much for 64-byte
    // records, which was most of a consume's time.
    const room = Math.min(max, Math.ceil((prod - pos) / this.slot) + 1);
    let out: Uint8Array = new Uint8Array(room * width);
    let sizes: Uint32Array = new Uint32Array(room);
    // Rows whose width is a whole number of words are copied as words.
    const words = width % 4 === 0 ? width >>> 2 : 0;
    let outWords = new Uint32Array(out.buffer, 0, out.length >>> 2);
    let count = 0;
    let discarded = 0;
    let unpublished = 0;
    while (count < max) {
      if (pos >= prod) {
        // Caught up: records committed since we looked are taken in the same consume.
        prod = Number(this.producerPos[0]);
        if (pos >= prod) break;
      }
      const at = pos & mask;
      const header = headers[at >>> 2];
      if ((header & BUSY) !== 0) break; // the record at the head is still being written
      const len = header & ~(BUSY | DISCARD);
      const slot = (len + HEADER + 7) & ~7;
      pos += slot;
      this.slot = slot;
      if ((header & DISCARD) !== 0) discarded++;
      else {
        if (count === sizes.length) {
          [out, sizes] = grow(out, sizes, width);
          outWords = new Uint32Array(out.buffer, 0, out.length >>> 2);
        }
        const n = Math.min(len, width);
        const to = count * width;
        if (n === width && words > 0) {
          // The common case, a record at least as long as the row: a word at a time. Both sides are
          // 4-byte aligned (a record's data starts 8 bytes after its 8-aligned header). Faster than
          // set(subarray()), whose view object per record was 70% of the time.
          const src = (at + HEADER) >>> 2;
          const dst = to >>> 2;
          for (let w = 0; w < words; w++) outWords[dst + w] = headers[src + w];
        } else {
          out.set(data.subarray(at + HEADER, at + HEADER + n), to);
        }
        sizes[count++] = len;
      }
      if (++unpublished === PUBLISH_EVERY) {
        this.consumerPos[0] = BigInt(pos);
        unpublished = 0;
      }
    }
    if (unpublished > 0) this.consumerPos[0] = BigInt(pos);
    this.pos = pos;
    return { data: out.subarray(0, count * width), count, sizes: sizes.subarray(0, count), discarded, pending: Math.max(0, Number(this.producerPos[0]) - pos) };
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
function grow(out: Uint8Array, sizes: Uint32Array, width: number): [Uint8Array, Uint32Array] {
  const n = Math.max(16, sizes.length * 2);
  const o = new Uint8Array(n * width);
  o.set(out);
  const s = new Uint32Array(n);
  s.set(sizes);
  return [o, s];
}

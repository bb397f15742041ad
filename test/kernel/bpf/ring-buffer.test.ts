/**
 * RingBufferReader on a real ring buffer: a clang-compiled producer (test/fixtures/bpf/ringbuf.bpf.c)
 * run through BPF_PROG_TEST_RUN sends numbered records; the reader must give back every one, in
 * order, byte for byte, pass over discarded ones, and free the ring so a full one takes records again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BpfObject } from '../../../src/bpf/object.js';
import { RingBufferReader, type RingRecords } from '../../../src/bpf/ring-buffer.js';
import { BpfMap } from '../../../src/bpf/map.js';
import { MapType } from '../../../src/bpf/map-types.js';
import { compileBpf, kernelDescribe } from '../support.js';

/** The producer's control entry: { count, size, discard_every, pad, seq, failed, discarded }. */
class Producer {
  constructor(private readonly obj: BpfObject) {}
  private get ctl(): BpfMap {
    return this.obj.map('ctl');
  }
  send(count: number, size: number, discardEvery = 0): void {
    const v = this.state();
    v.writeUInt32LE(count, 0);
    v.writeUInt32LE(size, 4);
    v.writeUInt32LE(discardEvery, 8);
    this.ctl.update(Buffer.alloc(4), v);
    this.obj.testRun('produce');
  }
  state(): Buffer {
    return this.ctl.lookup(Buffer.alloc(4))!;
  }
  get failed(): number {
    return Number(this.state().readBigUInt64LE(24));
  }
  get discarded(): number {
    return Number(this.state().readBigUInt64LE(32));
  }
}

/** Every record of `r` (width `width`) is record `first + k` of `size` bytes as the producer writes it. */
function expectSequence(r: RingRecords, width: number, first: number, size: number): void {
  for (let k = 0; k < r.count; k++) {
    const rec = Buffer.from(r.data.buffer, r.data.byteOffset + r.offsets[k], width);
    const seq = first + k;
    expect(rec.readBigUInt64LE(0)).toBe(BigInt(seq));
    expect(r.sizes[k]).toBe(size);
    for (let i = 0; i < Math.min(width, size) - 8; i++) if (rec[8 + i] !== ((seq + i) & 0xff)) throw new Error(`record ${seq} byte ${8 + i}: ${rec[8 + i]}`);
    for (let i = size; i < width; i++) expect(rec[i]).toBe(0);
  }
}

kernelDescribe('ring buffer reader', () => {
  let dir: string;
  let obj: BpfObject;
  let reader: RingBufferReader;
  let producer: Producer;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-ring-'));
    compileBpf(new URL('../../fixtures/bpf/ringbuf.bpf.c', import.meta.url).pathname, join(dir, 'ringbuf.bpf.o'));
    obj = BpfObject.load(join(dir, 'ringbuf.bpf.o'));
    reader = new RingBufferReader(obj.map('events'));
    producer = new Producer(obj);
  });
  afterAll(() => {
    reader?.close();
    obj?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives back every record in order, byte for byte, cut or zero-filled to the width', () => {
    producer.send(100, 40);
    expect(reader.available()).toBe(100 * 48); // 8-byte header, 40 bytes: already 8-aligned
    const wide = reader.consume(64, 30);
    expect(wide.count).toBe(30);
    expectSequence(wide, 64, 0, 40);
    expect(wide.pending).toBe(70 * 48);
    const narrow = reader.consume(16);
    expect(narrow.count).toBe(70);
    expectSequence(narrow, 16, 30, 40);
    expect(reader.consume(16).count).toBe(0);
    expect(reader.available()).toBe(0);
  });

  it('pads odd sizes to 8 bytes and passes over discarded records', () => {
    producer.send(50, 13, 5); // every 5th reserved and discarded
    const r = reader.consume(13);
    expect(r.count).toBe(40);
    expect(r.discarded).toBe(10);
    expect(producer.discarded).toBe(10);
    // The records kept are seq 100.. without every fifth.
    const seqs = Array.from({ length: r.count }, (_, k) => Number(Buffer.from(r.data.buffer, r.data.byteOffset + r.offsets[k], 8).readBigUInt64LE(0)));
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i).filter((s) => s % 5 !== 4));
  });

  it('records shorter than the width among longer ones: each its own bytes, zero-filled, none running into the next', () => {
    const first = Number(producer.state().readBigUInt64LE(16));
    const sizes = [16, 64, 8, 24, 64, 13];
    for (const size of sizes) producer.send(3, size);
    const r = reader.consume(40);
    expect(r.count).toBe(3 * sizes.length);
    sizes.forEach((size, j) => {
      const part = { ...r, count: 3, offsets: r.offsets.subarray(3 * j, 3 * j + 3), sizes: r.sizes.subarray(3 * j, 3 * j + 3) };
      expectSequence(part, 40, first + 3 * j, size);
    });
    // Rows readable for the width never overlap one another.
    const rows = [...r.offsets].sort((a, b) => a - b);
    for (let k = 1; k < rows.length; k++) expect(rows[k] - rows[k - 1]).toBeGreaterThanOrEqual(40);
  });

  it('a burst larger than the ring: the ring keeps what fits, the rest is refused; consumed, it takes records again', () => {
    const before = producer.failed;
    const first = Number(producer.state().readBigUInt64LE(16));
    producer.send(10_000, 64); // 72 bytes each with the header: 910 fit in 64 KiB
    const fit = Math.floor(reader.size / 72);
    expect(producer.failed - before).toBe(10_000 - fit);
    const r = reader.consume(64);
    expect(r.count).toBe(fit);
    expectSequence(r, 64, first, 64);
    // The room is the producer's again, across the end of the ring.
    producer.send(fit, 64);
    expect(producer.failed - before).toBe(10_000 - fit);
    const again = reader.consume(64);
    expect(again.count).toBe(fit);
    expectSequence(again, 64, first + 10_000, 64);
  });

  it('starts where the ring\'s consumer position is, as another consumer of the ring left it', () => {
    const first = Number(producer.state().readBigUInt64LE(16));
    const other = new RingBufferReader(obj.map('events'));
    try {
      producer.send(20, 16);
      // Another consumer (another reader, or a process) takes the first 12.
      expectSequence(other.consume(16, 12), 16, first, 16);
      expect(reader.available()).toBe(8 * 24);
      const rest = reader.consume(16);
      expect(rest.count).toBe(8);
      expectSequence(rest, 16, first + 12, 16);
      expect(other.available()).toBe(0);
    } finally {
      other.close();
    }
  });

  it('is refused for a map that is not a ring buffer', () => {
    const m = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 4, maxEntries: 4 });
    try {
      expect(() => new RingBufferReader(m)).toThrow(/is a hash, not a ringbuf/);
    } finally {
      m.close();
    }
  });
});

/**
 * Events a BPF program sends through a BPF_MAP_TYPE_PERF_EVENT_ARRAY (bpf_perf_event_output), read
 * with libbpf's perf buffer: one ring per CPU, emptied by perf_buffer__consume, which never blocks
 * (it reads what the rings hold now and returns). The callbacks run inside that call, synchronously,
 * so one pair registered for the process serves every buffer: the consumer of the moment is known.
 */
import { BpfError, Errno } from './errors.js';
import { copyNative, lastErrno, native, PerfBufferLostFn, PerfBufferSampleFn, registerCallback } from './libbpf.js';
import type { BpfMap } from './map.js';

/** Pages per CPU ring (a power of two): 64 pages is 256 KiB a CPU, room for thousands of small events. */
export const PERF_BUFFER_PAGES = 64;

/** What one consume() found: `count` events, each cut (or zero-padded) to the width asked for, back to back; and events the kernel lost. */
export interface PerfEvents {
  data: Uint8Array;
  count: number;
  lost: number;
}

/** The consume() running now: where its callbacks go. */
let current: { sample(data: unknown, size: number): void; lost(n: number): void } | undefined;

const onSample = registerCallback((_ctx: unknown, _cpu: number, data: unknown, size: number) => {
  try {
    current?.sample(data, size);
  } catch {
    // A throw must never cross back into C; a reader that fails to copy drops the event.
  }
}, PerfBufferSampleFn);

const onLost = registerCallback((_ctx: unknown, _cpu: number, cnt: number | bigint) => {
  current?.lost(Number(cnt));
}, PerfBufferLostFn);

export class PerfEventReader {
  private pb: unknown;
  private readonly width: number;
  private chunks: Uint8Array[] = [];
  /** Events the kernel dropped (ring full) since the last consume, as libbpf reports them. */
  lostEvents = 0;

  /**
   * A perf buffer on `map` (which must be a perf_event_array): libbpf opens a BPF output event on
   * every CPU and puts it in the map, so the programs' events reach us from then on. `width`: the
   * bytes of each event kept (the labels' bytes; the kernel pads a sample to 8 bytes).
   */
  constructor(map: BpfMap, width: number) {
    this.width = width;
    const pb = native.perfBufferNew(map.fd, PERF_BUFFER_PAGES, onSample, onLost, null, null);
    if (pb === null) throw new BpfError('open a perf buffer', lastErrno() || Errno.EINVAL, { map: map.label, detail: 'reading events of a perf_event_array needs CAP_PERFMON (or CAP_SYS_ADMIN) for its BPF output events, one per CPU' });
    this.pb = pb;
  }

  /** Called by the sample callback: keep the event's first `width` bytes. */
  take(data: unknown, size: number): void {
    const kept = new Uint8Array(this.width);
    if (size > 0) kept.set(copyNative(data, Math.min(size, this.width)));
    this.chunks.push(kept);
  }

  /** Every event the rings hold now, and the count of those lost; never blocks. */
  consume(label: string): PerfEvents {
    if (this.pb === undefined) throw new BpfError('consume perf events', Errno.EBADF, { map: label, detail: 'the perf buffer was closed' });
    current = { sample: (data, size) => this.take(data, size), lost: (n) => (this.lostEvents += n) };
    let ret: number;
    try {
      ret = native.perfBufferConsume(this.pb);
    } finally {
      current = undefined;
    }
    const chunks = this.chunks;
    const lost = this.lostEvents;
    this.chunks = [];
    this.lostEvents = 0;
    if (ret < 0) throw new BpfError('consume perf events', -ret, { map: label });
    const data = new Uint8Array(chunks.length * this.width);
    chunks.forEach((c, i) => data.set(c, i * this.width));
    return { data, count: chunks.length, lost };
  }

  close(): void {
    if (this.pb === undefined) return;
    native.perfBufferFree(this.pb);
    this.pb = undefined;
  }
}

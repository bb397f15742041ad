/**
 * Records a second consumed from one BPF ring buffer (BPF_MAP_TYPE_RINGBUF) by our reader,
 * `RingBufferReader` (src/bpf/ring-buffer.ts: the ring's pages mapped, records parsed in JS), against
 * libbpf's own consumer in C, on the same ring, in the same run, in interleaved rounds.
 *
 *   node --import tsx bench/ringbuf.ts
 *   BENCH_RINGBUF_SECONDS=3 BENCH_RINGBUF_ROUNDS=5 BENCH_RINGBUF_SIZE=1048576 BENCH_RINGBUF_FILLS=100 node --import tsx bench/ringbuf.ts
 *
 * Needs root (or CAP_BPF + CAP_SYS_ADMIN), a bpffs at /sys/fs/bpf, clang, cc and libbpf-dev; builds
 * its C and BPF programs into bench/out/ itself.
 *
 * The producer: bench/c/ringbuf-produce.bpf.c (64-byte span-like records, u64 sequence number
 * first, bpf_ringbuf_output; a send refused because the ring is full is counted in its control map
 * and leaves a gap in the sequence), loaded here, its ring, control map and program pinned under
 * /sys/fs/bpf/bpf-map-exporter-bench-ringbuf/, and run by bench/out/ringbuf-produce (the pinned
 * program through BPF_PROG_TEST_RUN in a tight loop, 1024 records a run) on the last CPU. The
 * consumers run on CPU 0 (this process is pinned there, all its threads; BENCH_RINGBUF_AFFINITY=0
 * leaves scheduling to the kernel).
 *
 * 1. Live: the producer runs flat out; the contestants, interleaved in this order every round, each
 *    consume for BENCH_RINGBUF_SECONDS (default 3) after taking, untimed, the backlog left while
 *    nobody consumed:
 *   c-poll   bench/out/ringbuf-consume <pin> <ctl> <s> poll: libbpf ring_buffer__new + ring_buffer__poll,
 *            a C callback copying each record into a local array and checking its sequence number
 *   c-busy   the same with ring_buffer__consume in a loop (never sleeps, as the JS loops do not)
 *   js       RingBufferReader.consume(64, 4096) in a loop, setImmediate between calls (as the daemon's
 *            loop would run it), checking the sequence numbers
 *   js-sync  the same without yielding to the event loop
 *   koffi    libbpf's ring_buffer__new + ring_buffer__consume called from JS through koffi, a JS
 *            callback per record copying it out (libc memcpy through koffi into a preallocated slot,
 *            the cheapest copy found) and checking its sequence number; at most 4096 records a call,
 *            setImmediate between calls
 *   none     nobody consumes: the producer's rate when every send is refused (the ring is full)
 * 2. Drain: the producer driver stopped; each contestant empties a full ring (one run of the program
 *    here, on the consumer's CPU) BENCH_RINGBUF_FILLS times (default 100); only the drains are timed.
 *    The consumer's cost a record without a producer writing beside it: c-drain (ringbuf-consume
 *    ... drain), js-drain, koffi-drain (memcpy), koffi-view-drain (a copy through koffi.view, as
 *    PerfEventReader does), koffi-seq-drain (the callback reads the sequence number only: the
 *    crossing into JS and back, not a consumer).
 * Every consumer checks that sequence numbers only increase; a gap of n is n sends refused.
 *
 * Reported per contestant, the median over BENCH_RINGBUF_ROUNDS rounds (default 5; one warm-up round
 * first, excluded): records consumed a second; live, also records refused a second (the producer's
 * control map), the loss (refused / sent), the consumer's CPU seconds in its window and its CPU
 * nanoseconds a record; and the ratios of consumed records a second. Every sample goes to
 * bench/out/ringbuf-results.json; BENCH_RINGBUF_VERBOSE=1 prints each as it comes.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// The project's rule "only src/bpf/libbpf.ts imports koffi" is for src/: this bench declares the
// libbpf ring_buffer functions itself, to measure the consumer the reader was written instead of.
import koffi from 'koffi';
import { BpfMap } from '../src/bpf/map.js';
import { BpfObject } from '../src/bpf/object.js';
import { native } from '../src/bpf/libbpf.js';
import { RingBufferReader, type RingRecords } from '../src/bpf/ring-buffer.js';
import { checkBpffs, cleanupOnExit, removePins } from './fill.js';
import { machine, median, table } from './support.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'bench/out');
const CONSUME_BIN = path.join(OUT, 'ringbuf-consume');
const PRODUCE_BIN = path.join(OUT, 'ringbuf-produce');
const BPF_OBJ = path.join(OUT, 'ringbuf-produce.bpf.o');
const RESULTS = path.join(OUT, 'ringbuf-results.json');
const PIN_DIR = '/sys/fs/bpf/bpf-map-exporter-bench-ringbuf';
const EVENTS_PIN = `${PIN_DIR}/events`;
const CTL_PIN = `${PIN_DIR}/ctl`;
const PROG_PIN = `${PIN_DIR}/produce`;

/** Bytes of a record (struct span of ringbuf-produce.bpf.c), and of its room in the ring with the 8-byte header. */
const WIDTH = 64;
const SLOT = WIDTH + 8;
/** Records a consume call takes at most (RingBufferReader.consume's max; the koffi callback's budget). */
const BATCH = 4096;
/** Records the producer sends per BPF_PROG_TEST_RUN. */
const PER_RUN = 1024;
/** -ECANCELED: what the koffi callback returns to make ring_buffer__consume stop (its budget is spent). */
const STOP = -125;

function envNum(name: string, fallback: number, integer: boolean): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!(n > 0) || (integer && !Number.isInteger(n))) throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(raw)}`);
  return n;
}

const SECONDS = envNum('BENCH_RINGBUF_SECONDS', 3, false);
const ROUNDS = envNum('BENCH_RINGBUF_ROUNDS', 5, true);
const RING_SIZE = envNum('BENCH_RINGBUF_SIZE', 1 << 20, true);
const FILLS = envNum('BENCH_RINGBUF_FILLS', 100, true);
const AFFINITY = process.env.BENCH_RINGBUF_AFFINITY !== '0';
/** BENCH_RINGBUF_VERBOSE=1: every sample as it comes. */
const VERBOSE = process.env.BENCH_RINGBUF_VERBOSE === '1';
if ((RING_SIZE & (RING_SIZE - 1)) !== 0 || RING_SIZE < 4096) throw new Error(`BENCH_RINGBUF_SIZE must be a power of two of at least a page, got ${RING_SIZE}`);
/** Records the ring holds when full. */
const CAPACITY = Math.floor(RING_SIZE / SLOT);

type LiveName = 'c-poll' | 'c-busy' | 'js' | 'js-sync' | 'koffi' | 'none';
type DrainName = 'c-drain' | 'js-drain' | 'koffi-drain' | 'koffi-view-drain' | 'koffi-seq-drain';
type Name = LiveName | DrainName;
const CONTESTANTS: readonly LiveName[] = ['c-poll', 'c-busy', 'js', 'js-sync', 'koffi', 'none'];
const DRAINERS: readonly DrainName[] = ['c-drain', 'js-drain', 'koffi-drain', 'koffi-view-drain', 'koffi-seq-drain'];
const DESCRIPTION: Record<Name, string> = {
  'c-poll': 'C, libbpf ring_buffer__poll',
  'c-busy': 'C, libbpf ring_buffer__consume loop',
  js: 'RingBufferReader, setImmediate',
  'js-sync': 'RingBufferReader, no yield',
  koffi: 'libbpf ring_buffer__consume via koffi, JS callback, memcpy',
  none: 'nobody consumes',
  'c-drain': 'C, libbpf ring_buffer__consume',
  'js-drain': 'RingBufferReader.consume',
  'koffi-drain': 'the same via koffi, JS callback, memcpy',
  'koffi-view-drain': 'the same via koffi, JS callback, koffi.view copy',
  'koffi-seq-drain': 'the same via koffi, JS callback reading the seq only',
};

/** One window of one contestant. */
interface Sample {
  /** Records the consumer took in the window. */
  records: number;
  /** Gaps in the sequence numbers it saw: sends refused between its records. */
  gaps: number;
  seconds: number;
  /** The consumer process's CPU time (user + system) in the window. */
  cpu: number;
  /** The change of the producer's ctl.seq (sends) and ctl.failed (refused sends) over the window. */
  produced: number;
  failed: number;
}

// --- pins and children -----------------------------------------------------------------------------

let pinsOwned = false;
const children = new Set<ChildProcess>();

function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  children.clear();
  if (!pinsOwned) return;
  pinsOwned = false;
  removePins(PIN_DIR);
}

cleanupOnExit(cleanup);

/** Spawn `cmd`, tracked for clean-up; resolves with its stdout once it exits 0. */
function runChild(cmd: string, args: string[]): { child: ChildProcess; done: Promise<string> } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  let out = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => (out += d));
  const done = new Promise<string>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code ?? signal}`));
    });
  });
  return { child, done };
}

function onCpu(cpu: number, cmd: string, args: string[]): [string, string[]] {
  return AFFINITY ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];
}

// --- build ------------------------------------------------------------------------------------------

function build(): void {
  mkdirSync(OUT, { recursive: true });
  for (const name of ['ringbuf-consume', 'ringbuf-produce']) {
    execFileSync('cc', ['-O2', '-Wall', '-o', path.join(OUT, name), path.join(ROOT, `bench/c/${name}.c`), '-lbpf'], { stdio: 'inherit' });
  }
  // <linux/types.h> includes <asm/types.h>, which Debian keeps under the multiarch folder.
  const multiarch = execFileSync('gcc', ['-dumpmachine'], { encoding: 'utf8' }).trim();
  execFileSync('clang', ['-g', '-O2', '-target', 'bpf', `-I/usr/include/${multiarch}`, `-DRING_SIZE=${RING_SIZE}`,
    '-c', path.join(ROOT, 'bench/c/ringbuf-produce.bpf.c'), '-o', BPF_OBJ], { stdio: 'inherit' });
}

// --- the producer's control map ----------------------------------------------------------------------

interface Ctl {
  seq: number;
  failed: number;
  runs: number;
}

function readCtl(ctl: BpfMap): Ctl {
  const v = ctl.lookup(Buffer.alloc(4));
  if (v === undefined) throw new Error('the producer control map has no entry 0');
  return { seq: Number(v.readBigUInt64LE(8)), failed: Number(v.readBigUInt64LE(16)), runs: Number(v.readBigUInt64LE(24)) };
}

// --- the sequence check -------------------------------------------------------------------------------

/** The sequence numbers seen: they must only increase; a gap of n is n records refused. */
class Sequence {
  last = -1;
  gaps = 0;
  records = 0;

  /** Take one record's sequence number (the low and high halves of its first u64). */
  take(lo: number, hi: number): void {
    this.takeNumber(lo + hi * 4294967296);
  }

  takeNumber(seq: number): void {
    if (this.last >= 0) {
      if (seq <= this.last) throw new Error(`sequence number ${seq} after ${this.last}: a record was read twice or out of order`);
      this.gaps += seq - this.last - 1;
    }
    this.last = seq;
    this.records++;
  }

  /** The records of a RingBufferReader.consume (width WIDTH). */
  takeAll(r: RingRecords): void {
    if (r.count === 0) return;
    // Records are 8-aligned in r.data: the sequence number is two words at offset / 4.
    const w = new Uint32Array(r.data.buffer, r.data.byteOffset, r.data.length >>> 2);
    for (let k = 0; k < r.count; k++) {
      const o = r.offsets[k] >>> 2;
      this.take(w[o], w[o + 1]);
    }
  }

  /**
   * Counting starts afresh (the backlog was taken). The last number seen is kept, so that the next
   * gap counts, unless `forget` (the drain phase: the producer driver's last sends were refused).
   */
  restart(forget = false): void {
    this.gaps = 0;
    this.records = 0;
    if (forget) this.last = -1;
  }
}

// --- contestants ---------------------------------------------------------------------------------------

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function runC(mode: 'poll' | 'busy'): Promise<Sample> {
  const [cmd, args] = onCpu(0, CONSUME_BIN, [EVENTS_PIN, CTL_PIN, String(SECONDS), mode]);
  const out = await runChild(cmd, args).done;
  const j = JSON.parse(out.trim()) as Record<string, number>;
  return { records: j.records, gaps: j.gaps, seconds: j.seconds, cpu: j.cpu, produced: j.produced, failed: j.failed };
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** A window of RingBufferReader: a fresh reader on the pin (another consumer moved the consumer position since). */
async function runJs(ctl: BpfMap, yieldEach: boolean): Promise<Sample> {
  const map = BpfMap.openPinned(EVENTS_PIN, { write: true });
  const reader = new RingBufferReader(map);
  try {
    const seq = new Sequence();
    // The backlog, untimed: what is there now (the producer may outrun us, so not "until empty").
    for (let backlog = reader.available(); backlog > 0;) {
      const r = reader.consume(WIDTH, BATCH);
      seq.takeAll(r);
      if (r.count === 0) break;
      backlog -= r.count * SLOT + r.discarded * SLOT;
    }
    seq.restart();
    const c0 = readCtl(ctl);
    const cpu0 = cpuSeconds();
    const t0 = performance.now();
    const end = t0 + SECONDS * 1000;
    if (yieldEach) {
      while (performance.now() < end) {
        seq.takeAll(reader.consume(WIDTH, BATCH));
        await nextTurn();
      }
    } else {
      while (performance.now() < end) seq.takeAll(reader.consume(WIDTH, BATCH));
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds() - cpu0;
    const c1 = readCtl(ctl);
    return { records: seq.records, gaps: seq.gaps, seconds, cpu, produced: c1.seq - c0.seq, failed: c1.failed - c0.failed };
  } finally {
    reader.close();
    map.close();
  }
}

// libbpf's ring_buffer, declared here (see the koffi import).
const libbpf = koffi.load('libbpf.so.1');
const SampleFn = koffi.proto('int bench_ring_buffer_sample_fn(void *ctx, void *data, size_t size)');
const ringBufferNew = libbpf.func('void *ring_buffer__new(int map_fd, bench_ring_buffer_sample_fn *sample_cb, void *ctx, void *opts)') as
  (fd: number, cb: unknown, ctx: null, opts: null) => unknown;
const ringBufferConsume = libbpf.func('int ring_buffer__consume(void *rb)') as (rb: unknown) => number;
const ringBufferFree = libbpf.func('void ring_buffer__free(void *rb)') as (rb: unknown) => void;

/**
 * How the koffi callback takes a record. memcpy: libc's memcpy (through koffi) into a preallocated
 * slot, the cheapest copy found; view: a Uint8Array over koffi.view(data), set into the slot, as
 * PerfEventReader does (copyNative); seq: no copy, only the sequence number read with koffi.decode
 * (the cost of the crossing itself, not a consumer).
 */
type CopyMode = 'memcpy' | 'view' | 'seq';

/** What the koffi callback does now: the record goes to `copy` (slot by slot), its number to `seq`. */
const kState = {
  mode: 'memcpy' as CopyMode,
  seq: new Sequence(),
  copy: new Uint8Array(BATCH * WIDTH),
  words: new Uint32Array(0),
  /** copy's slots, made once: memcpy's destinations. */
  slots: [] as Uint8Array[],
  slot: 0,
  /** Records this ring_buffer__consume call may still take. */
  budget: 0,
  error: undefined as unknown,
};
kState.words = new Uint32Array(kState.copy.buffer);
kState.slots = Array.from({ length: BATCH }, (_, i) => kState.copy.subarray(i * WIDTH, (i + 1) * WIDTH));

const libc = koffi.load('libc.so.6');
const memcpy = libc.func('void *memcpy(void *dst, void *src, size_t n)') as (dst: Uint8Array, src: unknown, n: number) => unknown;

const onRecord = koffi.register((_ctx: unknown, data: unknown, size: number) => {
  try {
    const n = Math.min(Number(size), WIDTH);
    if (kState.mode === 'seq') {
      kState.seq.takeNumber(Number(koffi.decode(data as never, 'uint64_t') as number | bigint));
    } else {
      const at = kState.slot * WIDTH;
      if (kState.mode === 'memcpy') memcpy(kState.slots[kState.slot], data, n);
      else kState.copy.set(new Uint8Array(koffi.view(data as never, n)), at);
      if (n < WIDTH) kState.copy.fill(0, at + n, at + WIDTH);
      kState.seq.take(kState.words[at >>> 2], kState.words[(at >>> 2) + 1]);
      kState.slot = (kState.slot + 1) % BATCH;
    }
  } catch (e) {
    kState.error = e; // never throw into C
    return STOP;
  }
  return --kState.budget > 0 ? 0 : STOP;
}, koffi.pointer(SampleFn));

/** One ring_buffer__consume of at most `budget` records (the callback stops it when spent). */
function koffiConsume(rb: unknown, budget: number): void {
  kState.budget = budget;
  const ret = ringBufferConsume(rb);
  if (kState.error !== undefined) throw kState.error;
  if (ret < 0 && ret !== STOP) throw new Error(`ring_buffer__consume: errno ${-ret}`);
}

async function runKoffi(ctl: BpfMap): Promise<Sample> {
  kState.mode = 'memcpy';
  const map = BpfMap.openPinned(EVENTS_PIN, { write: true });
  const rb = ringBufferNew(map.fd, onRecord, null, null);
  if (rb === null) throw new Error(`ring_buffer__new: errno ${koffi.errno()}`);
  try {
    kState.seq = new Sequence();
    kState.error = undefined;
    // The backlog, untimed: at most what the ring holds.
    koffiConsume(rb, CAPACITY + 1);
    kState.seq.restart();
    const c0 = readCtl(ctl);
    const cpu0 = cpuSeconds();
    const t0 = performance.now();
    const end = t0 + SECONDS * 1000;
    while (performance.now() < end) {
      koffiConsume(rb, BATCH);
      await nextTurn();
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds() - cpu0;
    const c1 = readCtl(ctl);
    return { records: kState.seq.records, gaps: kState.seq.gaps, seconds, cpu, produced: c1.seq - c0.seq, failed: c1.failed - c0.failed };
  } finally {
    ringBufferFree(rb);
    map.close();
  }
}

async function runNone(ctl: BpfMap): Promise<Sample> {
  const c0 = readCtl(ctl);
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  const seconds = (performance.now() - t0) / 1000;
  const c1 = readCtl(ctl);
  return { records: 0, gaps: 0, seconds, cpu: 0, produced: c1.seq - c0.seq, failed: c1.failed - c0.failed };
}

// --- the drain phase: a full ring emptied, the producer driver stopped ------------------------------

/** ctl.count: the records one run of the program sends. */
function writeCount(ctl: BpfMap, count: number): void {
  const v = ctl.lookup(Buffer.alloc(4));
  if (v === undefined) throw new Error('the producer control map has no entry 0');
  v.writeUInt32LE(count, 0);
  ctl.update(Buffer.alloc(4), v);
}

/**
 * FILLS times: fill the empty ring (one run of the program, on this CPU: CAPACITY records), then
 * time `drain` taking all of it. Only the drains are timed (wall and this process's CPU).
 */
function drainRounds(obj: BpfObject, ctl: BpfMap, drain: () => void): Pick<Sample, 'seconds' | 'cpu' | 'produced' | 'failed'> {
  writeCount(ctl, CAPACITY);
  const c0 = readCtl(ctl);
  let seconds = 0;
  let cpu = 0;
  for (let i = 0; i < FILLS; i++) {
    obj.testRun('produce');
    const cpu0 = cpuSeconds();
    const t0 = performance.now();
    drain();
    seconds += (performance.now() - t0) / 1000;
    cpu += cpuSeconds() - cpu0;
  }
  const c1 = readCtl(ctl);
  return { seconds, cpu, produced: c1.seq - c0.seq, failed: c1.failed - c0.failed };
}

async function drainC(): Promise<Sample> {
  const [cmd, args] = onCpu(0, CONSUME_BIN, [EVENTS_PIN, CTL_PIN, String(FILLS), 'drain', PROG_PIN]);
  const j = JSON.parse((await runChild(cmd, args).done).trim()) as Record<string, number>;
  return { records: j.records, gaps: j.gaps, seconds: j.seconds, cpu: j.cpu, produced: j.produced, failed: j.failed };
}

function drainJs(obj: BpfObject, ctl: BpfMap): Sample {
  const map = BpfMap.openPinned(EVENTS_PIN, { write: true });
  const reader = new RingBufferReader(map);
  try {
    const seq = new Sequence();
    for (let r = reader.consume(WIDTH, BATCH); r.count > 0; r = reader.consume(WIDTH, BATCH)) seq.takeAll(r);
    seq.restart(true);
    const t = drainRounds(obj, ctl, () => {
      for (let r = reader.consume(WIDTH, BATCH); r.count > 0; r = reader.consume(WIDTH, BATCH)) seq.takeAll(r);
    });
    return { records: seq.records, gaps: seq.gaps, ...t };
  } finally {
    reader.close();
    map.close();
  }
}

function drainKoffi(obj: BpfObject, ctl: BpfMap, mode: CopyMode): Sample {
  kState.mode = mode;
  const map = BpfMap.openPinned(EVENTS_PIN, { write: true });
  const rb = ringBufferNew(map.fd, onRecord, null, null);
  if (rb === null) throw new Error(`ring_buffer__new: errno ${koffi.errno()}`);
  try {
    kState.seq = new Sequence();
    kState.error = undefined;
    koffiConsume(rb, CAPACITY + 1);
    kState.seq.restart(true);
    // A call takes up to BATCH records, as the others' calls do; the ring is empty once a call takes fewer.
    const t = drainRounds(obj, ctl, () => {
      for (;;) {
        const before = kState.seq.records;
        koffiConsume(rb, BATCH);
        if (kState.seq.records - before < BATCH) break;
      }
    });
    return { records: kState.seq.records, gaps: kState.seq.gaps, ...t };
  } finally {
    ringBufferFree(rb);
    map.close();
  }
}

/**
 * Each window's accounts must add up: the sends that were not refused were consumed, or are in the
 * ring at one of the window's ends (it starts and ends with up to a ring's worth in it). The gaps a
 * consumer sees are not held to ctl.failed: a consumer descheduled between its last backlog record
 * and its first read of ctl counts the refusals of that moment as a gap of its window.
 */
function check(name: Name, s: Sample): void {
  if ((DRAINERS as readonly Name[]).includes(name)) {
    // A fill goes into an empty ring: nothing refused, every record taken.
    if (s.failed !== 0 || s.gaps !== 0 || s.records !== s.produced || s.records !== FILLS * CAPACITY) {
      throw new Error(`${name}: ${FILLS} fills of ${CAPACITY} records: ${s.produced} sent, ${s.failed} refused, ${s.records} taken, ${s.gaps} missing`);
    }
    return;
  }
  const slack = 2 * CAPACITY + PER_RUN;
  if (Math.abs(s.produced - s.failed - s.records) > slack && name !== 'none') {
    throw new Error(`${name}: the producer sent ${s.produced - s.failed} records (${s.failed} more refused) in the window, the consumer took ${s.records}: more than ${slack} apart`);
  }
}

// --- output ------------------------------------------------------------------------------------------

function fmtRate(perSec: number): string {
  return perSec >= 1e6 ? `${(perSec / 1e6).toFixed(2)} M/s` : `${(perSec / 1e3).toFixed(0)} k/s`;
}

interface Summary {
  description: string;
  samples: Sample[];
  consumedPerSec: number;
  refusedPerSec: number;
  producedPerSec: number;
  cpuSeconds: number;
  cpuNsPerRecord: number;
  lossFraction: number;
}

function summarize(name: Name, ss: readonly Sample[]): Summary {
  const m = (f: (s: Sample) => number): number => median(ss.map(f));
  const consumed = m((s) => s.records / s.seconds);
  return {
    description: DESCRIPTION[name],
    samples: [...ss],
    consumedPerSec: consumed,
    refusedPerSec: m((s) => s.failed / s.seconds),
    producedPerSec: m((s) => s.produced / s.seconds),
    cpuSeconds: m((s) => s.cpu),
    cpuNsPerRecord: name === 'none' ? NaN : m((s) => (s.cpu / s.records) * 1e9),
    lossFraction: m((s) => (s.produced === 0 ? 0 : s.failed / s.produced)),
  };
}

// --- main --------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  checkBpffs(path.dirname(PIN_DIR));
  build();
  removePins(PIN_DIR); // stale pins of an interrupted run
  pinsOwned = true;
  mkdirSync(PIN_DIR);
  // Before this process is pinned to one CPU (availableParallelism counts the CPUs it may use).
  const info = machine();
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').trim();
  const cpus = os.availableParallelism();
  if (AFFINITY && cpus < 2) throw new Error('the producer and the consumer need a CPU each: run with BENCH_RINGBUF_AFFINITY=0 on one CPU');
  const producerCpu = cpus - 1;
  if (AFFINITY) execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });

  process.stdout.write(
    `bpf-map-exporter ring buffer benchmark: ${WIDTH}-byte records, ring ${RING_SIZE} bytes (${CAPACITY} records), ` +
    `consume batch ${BATCH}, producer ${PER_RUN} records per BPF_PROG_TEST_RUN\n` +
    `machine: nproc ${info.nproc}, possible CPUs ${info.possibleCpus}, ${info.cpuModel}, kernel ${info.kernel}, node ${info.node}, libbpf ${info.libbpf}\n` +
    `rounds: 1 warm-up (excluded) + ${ROUNDS} measured, ${SECONDS} s a contestant (BENCH_RINGBUF_ROUNDS, BENCH_RINGBUF_SECONDS); ` +
    (AFFINITY ? `producer on CPU ${producerCpu}, consumers on CPU 0\n\n` : 'no CPU affinity\n\n'),
  );

  const obj = BpfObject.load(BPF_OBJ);
  try {
    obj.map('events').pin(EVENTS_PIN);
    obj.map('ctl').pin(CTL_PIN);
    const ret = native.objPin(obj.programFd('produce'), PROG_PIN);
    if (ret < 0) throw new Error(`pin the producer program to ${PROG_PIN}: errno ${-ret}`);
    const ctl = obj.map('ctl');

    const [pcmd, pargs] = onCpu(producerCpu, PRODUCE_BIN, [PROG_PIN, CTL_PIN, String(PER_RUN), String((ROUNDS + 1) * CONTESTANTS.length * (SECONDS + 5) + 60)]);
    const producer = runChild(pcmd, pargs);
    let producerDone = false;
    const producerOut = producer.done.finally(() => (producerDone = true));
    producerOut.catch(() => undefined); // reported where it is awaited
    // Wait for it to run.
    for (let i = 0; readCtl(ctl).runs === 0; i++) {
      if (producerDone || i > 200) throw new Error(`the producer did not start: ${await producerOut.then(() => 'it exited', (e: Error) => e.message)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }

    const samples = new Map<Name, Sample[]>(CONTESTANTS.map((c) => [c, []]));
    const started = performance.now();
    for (let round = 0; round <= ROUNDS; round++) {
      for (const c of CONTESTANTS) {
        let s: Sample;
        switch (c) {
          case 'c-poll': s = await runC('poll'); break;
          case 'c-busy': s = await runC('busy'); break;
          case 'js': s = await runJs(ctl, true); break;
          case 'js-sync': s = await runJs(ctl, false); break;
          case 'koffi': s = await runKoffi(ctl); break;
          case 'none': s = await runNone(ctl); break;
        }
        if (producerDone) throw new Error(`the producer stopped during the run: ${await producerOut.then((o) => o.trim(), (e: Error) => e.message)}`);
        if (VERBOSE) process.stdout.write(`  ${c}: ${JSON.stringify(s)}\n`);
        check(c, s);
        if (round > 0) samples.get(c)?.push(s);
      }
      process.stdout.write(`${round === 0 ? 'warm-up round' : `round ${round}/${ROUNDS}`} done (${((performance.now() - started) / 1000).toFixed(1)} s elapsed)\n`);
    }
    producer.child.kill('SIGTERM');
    const produced = JSON.parse((await producerOut).trim()) as { runs: number; seconds: number; cpu: number };

    // The drain phase: the producer driver is gone; each contestant empties a full ring FILLS times.
    const drained = new Map<DrainName, Sample[]>(DRAINERS.map((c) => [c, []]));
    for (let round = 0; round <= ROUNDS; round++) {
      for (const c of DRAINERS) {
        let s: Sample;
        switch (c) {
          case 'c-drain': s = await drainC(); break;
          case 'js-drain': s = drainJs(obj, ctl); break;
          case 'koffi-drain': s = drainKoffi(obj, ctl, 'memcpy'); break;
          case 'koffi-view-drain': s = drainKoffi(obj, ctl, 'view'); break;
          case 'koffi-seq-drain': s = drainKoffi(obj, ctl, 'seq'); break;
        }
        if (VERBOSE) process.stdout.write(`  ${c}: ${JSON.stringify(s)}\n`);
        check(c, s);
        if (round > 0) drained.get(c)?.push(s);
      }
      process.stdout.write(`drain ${round === 0 ? 'warm-up round' : `round ${round}/${ROUNDS}`} done (${((performance.now() - started) / 1000).toFixed(1)} s elapsed)\n`);
    }
    const loadAfter = readFileSync('/proc/loadavg', 'utf8').trim();

    const summaries = Object.fromEntries(CONTESTANTS.map((c) => [c, summarize(c, samples.get(c) ?? [])])) as Record<LiveName, Summary>;
    const rows = CONTESTANTS.map((c) => {
      const s = summaries[c];
      return [c, s.description, String(s.samples.length), c === 'none' ? '-' : fmtRate(s.consumedPerSec), fmtRate(s.refusedPerSec),
        `${(s.lossFraction * 100).toFixed(1)}%`, fmtRate(s.producedPerSec), c === 'none' ? '-' : s.cpuSeconds.toFixed(2),
        c === 'none' ? '-' : s.cpuNsPerRecord.toFixed(0)];
    });
    process.stdout.write(`\nlive: the producer on its CPU, each consumer for ${SECONDS} s (medians)\n`);
    process.stdout.write(`${table(['contestant', 'what', 'rounds', 'consumed', 'refused', 'loss', 'sent (producer)', 'cpu s', 'cpu ns/record'], rows, 2)}\n`);
    const drains = Object.fromEntries(DRAINERS.map((c) => [c, summarize(c, drained.get(c) ?? [])])) as Record<DrainName, Summary>;
    const drainRows = DRAINERS.map((c) => {
      const s = drains[c];
      return [c, s.description, String(s.samples.length), fmtRate(s.consumedPerSec), (1e9 / s.consumedPerSec).toFixed(1), s.cpuNsPerRecord.toFixed(1)];
    });
    process.stdout.write(`drain: a full ring (${CAPACITY} records) emptied, ${FILLS} times a sample, nothing else running (medians)\n`);
    process.stdout.write(`${table(['contestant', 'what', 'rounds', 'consumed', 'ns/record', 'cpu ns/record'], drainRows, 2)}\n`);

    const ratio = (a: Summary, b: Summary): number => a.consumedPerSec / b.consumedPerSec;
    const ratios = {
      jsVsCPoll: ratio(summaries.js, summaries['c-poll']),
      jsVsCBusy: ratio(summaries.js, summaries['c-busy']),
      jsSyncVsCBusy: ratio(summaries['js-sync'], summaries['c-busy']),
      koffiVsCPoll: ratio(summaries.koffi, summaries['c-poll']),
      koffiVsCBusy: ratio(summaries.koffi, summaries['c-busy']),
      jsVsKoffi: ratio(summaries.js, summaries.koffi),
      drainJsVsC: ratio(drains['js-drain'], drains['c-drain']),
      drainKoffiVsC: ratio(drains['koffi-drain'], drains['c-drain']),
      drainJsVsKoffi: ratio(drains['js-drain'], drains['koffi-drain']),
      drainKoffiViewVsC: ratio(drains['koffi-view-drain'], drains['c-drain']),
      drainKoffiSeqVsC: ratio(drains['koffi-seq-drain'], drains['c-drain']),
    };
    process.stdout.write(
      `live, records consumed a second: js / c-poll = ${ratios.jsVsCPoll.toFixed(2)}x, js / c-busy = ${ratios.jsVsCBusy.toFixed(2)}x, ` +
      `js-sync / c-busy = ${ratios.jsSyncVsCBusy.toFixed(2)}x, koffi / c-poll = ${ratios.koffiVsCPoll.toFixed(2)}x, ` +
      `koffi / c-busy = ${ratios.koffiVsCBusy.toFixed(2)}x, js / koffi = ${ratios.jsVsKoffi.toFixed(2)}x\n` +
      `drain, records consumed a second: js / c = ${ratios.drainJsVsC.toFixed(2)}x, koffi / c = ${ratios.drainKoffiVsC.toFixed(2)}x, ` +
      `js / koffi = ${ratios.drainJsVsKoffi.toFixed(2)}x, koffi-view / c = ${ratios.drainKoffiViewVsC.toFixed(3)}x, koffi-seq / c = ${ratios.drainKoffiSeqVsC.toFixed(2)}x\n` +
      `producer driver: ${produced.runs} runs in ${produced.seconds.toFixed(1)} s, ${produced.cpu.toFixed(1)} CPU s; ` +
      `load average before ${loadBefore}, after ${loadAfter}\n`,
    );

    writeFileSync(RESULTS, `${JSON.stringify({
      date: new Date().toISOString(), machine: info, loadBefore, loadAfter,
      config: { seconds: SECONDS, rounds: ROUNDS, warmUpRounds: 1, fills: FILLS, ringSize: RING_SIZE, capacity: CAPACITY, width: WIDTH, batch: BATCH, perRun: PER_RUN, affinity: AFFINITY },
      live: summaries, drain: drains, ratios, producer: produced,
    }, null, 2)}\n`);
    process.stdout.write(`results written to ${path.relative(ROOT, RESULTS)}\n`);
    return 0;
  } finally {
    cleanup();
    obj.close();
  }
}

try {
  process.exitCode = await main();
} catch (e) {
  process.stderr.write(`bench: FAILED: ${e instanceof Error ? e.message : String(e)}\n`);
  cleanup();
  process.exitCode = 1;
}

/**
 * `node --import tsx bench/spans.ts`: a ring buffer's records all the way to a collector, against
 * libbpf's C consumer of the same ring in the same run (bench/ringbuf.ts measures the reader alone).
 *
 * The producer is bench/c/ringbuf-produce.bpf.c (64-byte span-like records: seq, trace id, span id,
 * parent id, start, end, pid, kind), run once per fill on this CPU through BPF_PROG_TEST_RUN: each
 * fill is a full ring. Contestants, interleaved every round, each emptying BENCH_SPANS_FILLS fills
 * (default 20), only the emptying timed:
 *   c        bench/out/ringbuf-consume ... drain: libbpf's ring_buffer__consume, a C callback copying each record
 *   read     RingBufferReader.consume alone
 *   events   the same, then what an `events:` job does with each record (metrics from events): each
 *            valued 1 and added, where it lies, to the job's aggregator, a counter by the record's
 *            kind (4 series); the counter's total is checked against the records
 *   decode   the same, then SpanRecords.decode: each record a SpanInput (ids as hex, the start made wall time)
 *   export   the same, then SpanExporter.add, until forceFlush: every span sent over OTLP http/protobuf
 *            to a receiver in a child process that reads each body and answers 200
 * Each row prints records a second and the ratio to c. BENCH_SPANS_ROUNDS (default 3; one warm-up
 * round is excluded), BENCH_SPANS_RING (bytes, default 1 MiB).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfObject } from '../src/bpf/object.js';
import type { BpfMap } from '../src/bpf/map.js';
import { native, wallMinusMonotonicNs } from '../src/bpf/libbpf.js';
import { RingBufferReader } from '../src/bpf/ring-buffer.js';
import { planEvents, type EventValues } from '../src/collect/job.js';
import { MapAggregator } from '../src/aggregate/map-aggregator.js';
import { parseConfig } from '../src/config/parse.js';
import { SpanRecords } from '../src/publish/span-records.js';
import { SpanExporter, type SpanInput } from '../src/publish/otel-spans.js';
import type { MapSpec } from '../src/config/types.js';
import { logger } from '../src/log.js';
import { checkBpffs, removePins } from './fill.js';
import { machine, median, table } from './support.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'bench/out');
const OBJ = path.join(OUT, 'spans-produce.bpf.o');
const CONSUME_BIN = path.join(OUT, 'ringbuf-consume');
const PIN_DIR = '/sys/fs/bpf/bpf-map-exporter-bench-spans';
const WIDTH = 64;
const RING = Number(process.env.BENCH_SPANS_RING ?? 1 << 20);
const CAPACITY = Math.floor(RING / (WIDTH + 8));
const FILLS = Number(process.env.BENCH_SPANS_FILLS ?? 20);
const ROUNDS = Number(process.env.BENCH_SPANS_ROUNDS ?? 3);

type Name = 'c' | 'read' | 'events' | 'decode' | 'export';
const NAMES: readonly Name[] = ['c', 'read', 'events', 'decode', 'export'];

/** The bench record as a spans job lays it out. */
function spec(): MapSpec {
  const at = { file: 'bench', line: 0, column: 0 };
  const f = (name: string, type: string) => ({ name, type, at });
  const l = (name: string, from = name) => ({ name, from, at });
  return {
    name: 'bench', source: { pinned: '' }, mode: 'read', interval: 1000, batch_size: 4096, batch: true, metrics: [], at,
    key: [f('seq', 'u64'), f('trace_id', 'u8[16]'), f('span_id', 'u8[8]'), f('parent_span_id', 'u8[8]'), f('start', 'u64'), f('end', 'pad[8]'), f('pid', 'u32'), f('kind', 'u32')],
    spans: { name: 'bench', service: 'bench', labels: [l('trace_id'), l('span_id'), l('parent_span_id'), l('span_monotonic_timestamp_ns', 'start'), l('pid'), l('kind')], at },
  };
}

/** The bench record as an `events:` job counting records by kind: the job's values and its aggregator. */
function eventsJob(ring: BpfMap): { counted: EventValues; aggregator: MapAggregator } {
  const spec = parseConfig(`
maps:
  - name: bench_events
    source: { pinned: ${PIN_DIR}/events }
    events: {}
    key:
      - { name: seq, type: u64 }
      - { name: ids, type: "pad[32]" }
      - { name: start, type: u64 }
      - { name: end, type: "pad[8]" }
      - { name: pid, type: u32 }
      - { name: kind, type: u32 }
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: bench_events_total, type: counter, help: records by kind, value: n, labels: [ { name: kind, from: kind } ] }
`, 'bench-events.yaml').maps[0];
  // Planned as the daemon plans an events job on this ring.
  const { counted, plan, problems } = planEvents(spec, 0, ring.info);
  if (plan === undefined) throw new Error(`events plan: ${JSON.stringify(problems)}`);
  return { counted, aggregator: new MapAggregator(plan, { accumulate: true, stream: true }) };
}

/** A receiver in a child process: reads each request's body whole, answers 200. Its URL. */
async function receiver(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ['-e', `
    const s = require('node:http').createServer((q, r) => { q.on('data', () => {}); q.on('end', () => r.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()); });
    s.listen(0, '127.0.0.1', () => console.log(s.address().port));`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
  return { url: `http://127.0.0.1:${port}/v1/traces`, stop: () => child.kill() };
}

function ctlSeq(ctl: BpfMap): number {
  return Number(ctl.lookup(Buffer.alloc(4))!.readBigUInt64LE(8));
}

async function main(): Promise<void> {
  logger.level = 'warn';
  checkBpffs(path.dirname(PIN_DIR));
  mkdirSync(OUT, { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-o', CONSUME_BIN, path.join(ROOT, 'bench/c/ringbuf-consume.c'), '-lbpf'], { stdio: 'inherit' });
  const multiarch = execFileSync('gcc', ['-dumpmachine'], { encoding: 'utf8' }).trim();
  execFileSync('clang', ['-g', '-O2', '-target', 'bpf', `-I/usr/include/${multiarch}`, `-DRING_SIZE=${RING}`, '-c', path.join(ROOT, 'bench/c/ringbuf-produce.bpf.c'), '-o', OBJ], { stdio: 'inherit' });
  removePins(PIN_DIR);
  mkdirSync(PIN_DIR);
  const obj = BpfObject.load(OBJ);
  const rx = await receiver();
  try {
    obj.map('events').pin(`${PIN_DIR}/events`);
    obj.map('ctl').pin(`${PIN_DIR}/ctl`);
    if (native.objPin(obj.programFd('produce'), `${PIN_DIR}/produce`) < 0) throw new Error('pin the producer program');
    const ctl = obj.map('ctl');
    // ctl.count: one run fills the ring (the C consumer's drain sets it too).
    const fillsTheRing = (): void => {
      const v = ctl.lookup(Buffer.alloc(4))!;
      v.writeUInt32LE(CAPACITY, 0);
      ctl.update(Buffer.alloc(4), v);
    };
    // One reader for every contestant: each consume starts from the ring's consumer position, where
    // the C consumer's turn left it too.
    const reader = new RingBufferReader(obj.map('events'));
    const records = SpanRecords.plan(spec(), 0).records!;
    const exporter = new SpanExporter({ endpoint: rx.url, protocol: 'http/protobuf', maxQueue: CAPACITY * 2, maxBatch: 512, delayMillis: 50 });

    /** FILLS fills of the ring, each emptied by `drain`; the emptying's wall seconds and records. */
    const timed = async (drain: () => Promise<number> | number): Promise<{ seconds: number; records: number }> => {
      let seconds = 0;
      let n = 0;
      fillsTheRing();
      for (let i = 0; i < FILLS; i++) {
        obj.testRun('produce');
        const t = performance.now();
        n += await drain();
        seconds += (performance.now() - t) / 1000;
      }
      return { seconds, records: n };
    };
    const take = (each: (r: ReturnType<RingBufferReader['consume']>) => void): number => {
      let n = 0;
      for (let r = reader.consume(WIDTH, 4096); r.count > 0; r = reader.consume(WIDTH, 4096)) {
        each(r);
        n += r.count;
      }
      return n;
    };
    const run: Record<Name, () => Promise<{ seconds: number; records: number }>> = {
      c: async () => {
        const seq0 = ctlSeq(ctl);
        const out = execFileSync(CONSUME_BIN, [`${PIN_DIR}/events`, `${PIN_DIR}/ctl`, String(FILLS), 'drain', `${PIN_DIR}/produce`], { encoding: 'utf8' });
        const j = JSON.parse(out.trim()) as { records: number; seconds: number };
        if (ctlSeq(ctl) - seq0 !== j.records) throw new Error('c: records and sends differ');
        return { seconds: j.seconds, records: j.records };
      },
      read: () => timed(() => take(() => {})),
      events: async () => {
        const { counted, aggregator } = eventsJob(obj.map('events'));
        aggregator.begin();
        const t = await timed(() =>
          take((r) => {
            aggregator.add(r.data, counted.rows(r.data, r.count, WIDTH, r.offsets), r.count, r.offsets);
          }),
        );
        const total = aggregator.finish().families[0].series.reduce((sum, x) => sum + ('value' in x ? x.value : 0), 0);
        if (total !== t.records) throw new Error(`events: counted ${total} of ${t.records} records`);
        return t;
      },
      decode: () => timed(() => take((r) => void records.decode(r.data, r.offsets, r.count, wallMinusMonotonicNs(), () => {}))),
      export: () =>
        timed(async () => {
          const before = exporter.stats.exported;
          take((r) => void records.decode(r.data, r.offsets, r.count, wallMinusMonotonicNs(), (s: SpanInput) => void exporter.add(s)));
          await exporter.forceFlush();
          return exporter.stats.exported - before;
        }),
    };
    const samples = new Map<Name, number[]>(NAMES.map((n) => [n, []]));
    for (let round = 0; round <= ROUNDS; round++) {
      for (const name of NAMES) {
        const s = await run[name]();
        if (s.records !== FILLS * CAPACITY) throw new Error(`${name}: ${s.records} records, expected ${FILLS * CAPACITY}`);
        if (round > 0) samples.get(name)!.push(s.records / s.seconds);
      }
    }
    const c = median(samples.get('c')!);
    const m = machine();
    process.stdout.write(
      `ring ${RING} bytes (${CAPACITY} records of ${WIDTH} bytes), ${FILLS} fills a sample, ${ROUNDS} rounds (medians); ` +
        `${m.cpuModel}, kernel ${m.kernel}, node ${m.node}; load ${readFileSync('/proc/loadavg', 'utf8').trim()}\n`,
    );
    const rows = NAMES.map((n) => {
      const r = median(samples.get(n)!);
      return [n, `${(r / 1e6).toFixed(2)} M/s`, `${(1e9 / r).toFixed(0)} ns`, `${(r / c).toFixed(3)}x`];
    });
    process.stdout.write(`${table(['contestant', 'records/s', 'per record', '/ c'], rows, 1)}\n`);
    process.stdout.write(`spans exported ${exporter.stats.exported}, dropped ${JSON.stringify(exporter.stats.dropped)}\n`);
    await exporter.shutdown();
    reader.close();
  } finally {
    rx.stop();
    obj.close();
    removePins(PIN_DIR);
  }
}

await main();

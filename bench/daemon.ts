/**
 * `npm run bench`, second step (after bench/read-maps.ts), or alone:
 *
 *   node --import tsx bench/daemon.ts      # as root; builds bench/out/batch-read when it is missing
 *
 * The exporter's own read cycle and its /metrics latency on a 1M-entry PERCPU_HASH (u32 key, u64
 * value, max_entries 1<<20), pinned under /sys/fs/bpf/bpf-map-exporter-bench-daemon/.
 *
 * 1. Cycle time, side by side, per config, interleaved every round (the order alternates):
 *      exporter  MapJob.readAsync() of the config (src/collect/job.ts): first syscall to snapshot
 *      binding   BatchReader sweep that only sums the values (no aggregation), for reference
 *      c-batch   bench/out/batch-read <pin> batch 1 4096: the C libbpf loop of bench/read-maps.ts
 *    Configs:
 *      grouped   a counter labelled by the key's low byte (key: [lo u8, pad[3]]): 256 series
 *      per_key   a counter labelled by the whole u32 key, max_series 2000000: 1M series (worst case)
 *    The first cycle of a job decodes the labels of every new series; it is the warm-up, reported
 *    apart. Every cycle is checked: 1M entries, the expected series count, the sum of all series
 *    equal to what was written.
 * 2. Scrape latency: the real daemon (`exporter/main.ts run`, interval 1s, one of the configs) as
 *    a child process, /metrics scraped by a keep-alive client at a fixed rate (open loop: a request
 *    starts every 1/rate s whether or not the previous one has answered), first plain, then with
 *    Accept-Encoding: gzip. Latency is from the request's start to the last byte of the body.
 *    Read cycles are taken from the daemon's self-metrics (reads_total, read_duration_seconds,
 *    last_read_timestamp_seconds); from those, each scrape is classed as overlapping a read cycle
 *    or not. SIGTERM at the end must give exit code 0.
 *
 * Env: BENCH_DAEMON_ROUNDS (measured cycle rounds per config, default 7; 0 skips part 1),
 *      BENCH_DAEMON_SECONDS (seconds per scrape phase of the grouped daemon, default 30; 0 skips
 *      it), BENCH_DAEMON_RATE (scrapes/s,
 *      default 20), BENCH_DAEMON_PER_KEY_SECONDS / BENCH_DAEMON_PER_KEY_RATE (the same for the
 *      per_key daemon, default 15 s at 2/s: its document is ~43 MB, and at 20/s the loopback
 *      copies and the client would measure themselves; BENCH_DAEMON_PER_KEY_SECONDS=0 skips it).
 *      A scrape without an answer within 30 s counts as an error. BENCH_DAEMON_CPU_PROF=1 writes the
 *      daemon's CPU profile to bench/out/prof.
 * Results: bench/out/daemon-results.json.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { BpfMap } from '../src/bpf/map.js';
import { checkBpffs, cleanupOnExit, createFilledMap, removePins } from './fill.js';
import { BatchReader } from '../src/bpf/batch.js';
import { MapType, perCpuSlotSize } from '../src/bpf/map-types.js';
import { parseConfig } from '../src/config/parse.js';
import { MapJob, type JobRead } from '../src/collect/job.js';
import { machine, median, percentile, sleep, startExporter, stopExporter, table } from './support.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const C_SRC = path.join(ROOT, 'bench/c/batch-read.c');
const C_BIN = path.join(ROOT, 'bench/out/batch-read');
const RESULTS = path.join(ROOT, 'bench/out/daemon-results.json');
const PIN_DIR = '/sys/fs/bpf/bpf-map-exporter-bench-daemon';
const PIN = path.join(PIN_DIR, 'percpu_hash');

const ENTRIES = 1_000_000;
const MAX_ENTRIES = 1 << 20;
const BATCH_SIZE = 4096;
const TWO_32 = 4294967296;
const P99_GOAL_MS = 25;
const CYCLE_RATIO_GOAL = 1.5;

function envInt(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

const ROUNDS = envInt('BENCH_DAEMON_ROUNDS', 7, 0);
const SECONDS = envInt('BENCH_DAEMON_SECONDS', 30, 0);
const RATE = envInt('BENCH_DAEMON_RATE', 20);
const PER_KEY_SECONDS = envInt('BENCH_DAEMON_PER_KEY_SECONDS', 15, 0);
const PER_KEY_RATE = envInt('BENCH_DAEMON_PER_KEY_RATE', 2);

// --- configs -------------------------------------------------------------------------------------

type ConfigName = 'grouped' | 'per_key';

interface BenchConfig {
  name: ConfigName;
  /** The job's name (the map label of the self-metrics) and the metric's name. */
  job: string;
  metric: string;
  series: number;
  description: string;
  yaml: (interval: string) => string;
}

const CONFIGS: Record<ConfigName, BenchConfig> = {
  grouped: {
    name: 'grouped',
    job: 'bench_grouped',
    metric: 'bench_grouped_total',
    series: 256,
    description: 'counter, cpu: sum, labelled by the key\'s low byte (key: [lo u8, pad[3]]): 256 series',
    yaml: (interval) => `interval: ${interval}
maps:
  - name: bench_grouped
    source: { pinned: ${PIN} }
    batch_size: ${BATCH_SIZE}
    key: [ { name: lo, type: u8 }, { name: rest, type: "pad[3]" } ]
    value: [ { name: v, type: u64 } ]
    metrics:
      - name: bench_grouped_total
        type: counter
        help: Benchmark values summed over CPUs, by the key's low byte
        value: v
        cpu: sum
        labels: [ { name: lo, from: lo } ]
`,
  },
  per_key: {
    name: 'per_key',
    job: 'bench_per_key',
    metric: 'bench_per_key_total',
    series: ENTRIES,
    description: 'counter, cpu: sum, labelled by the u32 key, max_series 2000000: 1M series',
    yaml: (interval) => `interval: ${interval}
max_series: 2000000
maps:
  - name: bench_per_key
    source: { pinned: ${PIN} }
    batch_size: ${BATCH_SIZE}
    key: [ { name: key, type: u32 } ]
    value: [ { name: v, type: u64 } ]
    metrics:
      - name: bench_per_key_total
        type: counter
        help: Benchmark values summed over CPUs, by key
        value: v
        cpu: sum
        max_series: 2000000
        labels: [ { name: key, from: key } ]
`,
  },
};

// --- cleanup -------------------------------------------------------------------------------------

let pinsOwned = false;
let tmpDir: string | undefined;
const children = new Set<ChildProcess>();

function cleanup(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  children.clear();
  if (tmpDir !== undefined) {
    rmSync(tmpDir, { recursive: true, force: true });
    tmpDir = undefined;
  }
  if (!pinsOwned) return;
  pinsOwned = false;
  removePins(PIN_DIR);
}

cleanupOnExit(cleanup);

// --- filling (the same values as bench/read-maps.ts) ---------------------------------------------

function createAndFill(): { map: BpfMap; expectedSum: number; fillMs: number } {
  const f = createFilledMap({ type: MapType.percpu_hash, name: 'bm_daemon', pin: PIN, entries: ENTRIES, maxEntries: MAX_ENTRIES });
  return { map: f.map, expectedSum: Number(f.expectedSum), fillMs: f.fillMs };
}

// --- statistics ------------------------------------------------------------------------------------

interface Dist {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

function dist(xs: readonly number[]): Dist {
  return { count: xs.length, p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99), max: xs.length === 0 ? NaN : Math.max(...xs) };
}

const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');

// --- part 1: cycle time ----------------------------------------------------------------------------

const C_LINE = /^\{"ns":(\d+),"entries":(\d+),"sum":(\d+)\}$/;

function runC(): { ms: number; entries: number; sum: number } {
  const out = execFileSync(C_BIN, [PIN, 'batch', '1', String(BATCH_SIZE)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const m = C_LINE.exec(out.trim());
  if (m === null) throw new Error(`${C_BIN}: unexpected output ${JSON.stringify(out)}`);
  return { ms: Number(m[1]) / 1e6, entries: Number(m[2]), sum: Number(m[3]) };
}

/** The binding alone: one batch sweep that sums every u64 (what js-batch in bench/read-maps.ts does). */
class BindingSweep {
  private readonly map: BpfMap;
  private readonly reader: BatchReader;

  constructor() {
    this.map = BpfMap.openPinned(PIN);
    this.reader = new BatchReader(this.map, { batchSize: BATCH_SIZE, method: 'batch' });
  }

  sweep(): { ms: number; entries: number; sum: number } {
    const lo = os.endianness() === 'LE' ? 0 : 1;
    const slotWords = perCpuSlotSize(this.map.info.valueSize) >>> 2;
    const cpus = this.map.cpus;
    let sum = 0;
    let entries = 0;
    let viewOf: Buffer | undefined;
    let w: Uint32Array = new Uint32Array(0);
    const t0 = performance.now();
    for (const b of this.reader.batches('read')) {
      if (b.values !== viewOf) {
        w = new Uint32Array(b.values.buffer, b.values.byteOffset, b.values.byteLength >>> 2);
        viewOf = b.values;
      }
      const strideWords = b.valueStride >>> 2;
      for (let i = 0, o = 0; i < b.count; i++, o += strideWords) {
        for (let c = 0, p = o; c < cpus; c++, p += slotWords) sum += w[p + lo] + w[p + 1 - lo] * TWO_32;
      }
      entries += b.count;
    }
    return { ms: performance.now() - t0, entries, sum };
  }

  close(): void {
    this.map.close();
  }
}

interface CycleSample {
  ms: number;
  userMs: number;
  systemMs: number;
}

async function timedCycle(job: MapJob): Promise<{ sample: CycleSample; read: JobRead }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const read = await job.readAsync();
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  return { sample: { ms: t1 - t0, userMs: cpu.user / 1000, systemMs: cpu.system / 1000 }, read };
}

function checkRead(cfg: BenchConfig, read: JobRead, expectedSum: number, when: string): void {
  const fam = read.snapshot.families[0];
  let total = 0;
  for (const s of fam.series) if ('value' in s) total += s.value;
  const problems: string[] = [];
  if (read.iteration.entries !== ENTRIES) problems.push(`${read.iteration.entries} entries`);
  if (read.iteration.method !== 'batch') problems.push(`method ${read.iteration.method}`);
  if (fam.series.length !== cfg.series) problems.push(`${fam.series.length} series, expected ${cfg.series}`);
  if (total !== expectedSum) problems.push(`sum of series ${total}, expected ${expectedSum}`);
  if (problems.length > 0) throw new Error(`MISMATCH: exporter cycle of ${cfg.name} (${when}): ${problems.join(', ')}`);
}

interface CycleResult {
  config: ConfigName;
  description: string;
  series: number;
  warmUpMs: number;
  rounds: number;
  exporterMs: number[];
  exporterUserMs: number[];
  exporterSystemMs: number[];
  bindingMs: number[];
  cMs: number[];
  medianExporterMs: number;
  medianBindingMs: number;
  medianCMs: number;
  ratioExporterToC: number;
  ratioBindingToC: number;
  /** Longest event-loop stall (ms) seen during one extra, untimed cycle. */
  eventLoopMaxStallMs: number;
  eventLoopP99StallMs: number;
}

async function cycleBench(cfg: BenchConfig, expectedSum: number, binding: BindingSweep): Promise<CycleResult> {
  const config = parseConfig(cfg.yaml('1s'), path.join(tmpDir ?? ROOT, `${cfg.name}.yaml`));
  const job = new MapJob(config.maps[0], 0);
  const problems = job.open();
  if (problems.length > 0) throw new Error(`config ${cfg.name}: ${problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('; ')}`);
  try {
    const warm = await timedCycle(job);
    checkRead(cfg, warm.read, expectedSum, 'warm-up');
    process.stdout.write(`  ${cfg.name}: warm-up cycle ${ms(warm.sample.ms)} ms (decodes labels of ${cfg.series} new series)\n`);
    const ex: CycleSample[] = [];
    const bi: number[] = [];
    const cc: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const steps: (() => Promise<void>)[] = [
        async () => {
          const { sample, read } = await timedCycle(job);
          checkRead(cfg, read, expectedSum, `round ${r + 1}`);
          ex.push(sample);
        },
        async () => {
          const s = binding.sweep();
          if (s.entries !== ENTRIES || s.sum !== expectedSum) throw new Error(`MISMATCH: binding sweep read ${s.entries} entries, sum ${s.sum}`);
          bi.push(s.ms);
        },
        async () => {
          const s = runC();
          if (s.entries !== ENTRIES || s.sum !== expectedSum) throw new Error(`MISMATCH: C batch loop read ${s.entries} entries, sum ${s.sum}`);
          cc.push(s.ms);
        },
      ];
      if (r % 2 === 1) steps.reverse();
      for (const step of steps) await step();
      process.stdout.write(`  ${cfg.name}: round ${r + 1}/${ROUNDS}: exporter ${ms(ex[r].ms)} ms, binding ${ms(bi[r])} ms, C ${ms(cc[r])} ms\n`);
    }
    // One more cycle, untimed, with the event-loop delay monitor on: the longest stall is what a
    // scrape arriving during a cycle can wait before the daemon even reads its request.
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    checkRead(cfg, (await job.readAsync()), expectedSum, 'event-loop cycle');
    // The stall of the cycle's last synchronous part (finish()) is recorded when the monitor's
    // timer fires, which is after the await above resumes: give it that tick.
    await sleep(20);
    h.disable();
    const exporterMs = ex.map((s) => s.ms);
    const medE = median(exporterMs);
    const medB = median(bi);
    const medC = median(cc);
    return {
      config: cfg.name, description: cfg.description, series: cfg.series, warmUpMs: warm.sample.ms, rounds: ROUNDS,
      exporterMs, exporterUserMs: ex.map((s) => s.userMs), exporterSystemMs: ex.map((s) => s.systemMs), bindingMs: bi, cMs: cc,
      medianExporterMs: medE, medianBindingMs: medB, medianCMs: medC, ratioExporterToC: medE / medC, ratioBindingToC: medB / medC,
      eventLoopMaxStallMs: h.max / 1e6, eventLoopP99StallMs: h.percentile(99) / 1e6,
    };
  } finally {
    job.close();
  }
}

// --- part 2: the daemon and its scrapes --------------------------------------------------------------

interface SelfMetrics {
  reads: number;
  durationS: number;
  lastReadS: number;
  overruns: number;
  series: number;
}

function selfMetric(text: string, name: string, job: string): number {
  const m = new RegExp(`^${name}\\{[^}]*map="${job}"[^}]*\\} (\\S+)$`, 'm').exec(text);
  return m === null ? NaN : Number(m[1]);
}

/** The self-metrics of `job`, from the tail of a text exposition (they come after the jobs' families). */
function parseSelf(body: Buffer, job: string): SelfMetrics {
  const tail = body.subarray(Math.max(0, body.length - 65536)).toString('utf8');
  return {
    reads: selfMetric(tail, 'bpf_map_exporter_map_reads_total', job),
    durationS: selfMetric(tail, 'bpf_map_exporter_map_read_duration_seconds', job),
    lastReadS: selfMetric(tail, 'bpf_map_exporter_map_last_read_timestamp_seconds', job),
    // A labelled counter has no sample until its first increment: no line means 0.
    overruns: selfMetric(tail, 'bpf_map_exporter_map_read_overruns_total', job) || 0,
    series: selfMetric(tail, 'bpf_map_exporter_series', job),
  };
}

interface Scrape {
  /** Wall-clock ms (performance.timeOrigin based) when the request started and when its body ended. */
  start: number;
  end: number;
  latencyMs: number;
  status: number;
  bytes: number;
  encoding: string | undefined;
  body: Buffer;
}

const SCRAPE_TIMEOUT_MS = 30_000;

function scrapeOnce(agent: http.Agent, port: number, gzip: boolean): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get({ agent, host: '127.0.0.1', port, path: '/metrics', headers: gzip ? { 'Accept-Encoding': 'gzip' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const t1 = performance.now();
        const body = Buffer.concat(chunks);
        resolve({
          start: performance.timeOrigin + t0, end: performance.timeOrigin + t1, latencyMs: t1 - t0,
          status: res.statusCode ?? 0, bytes: body.length, encoding: res.headers['content-encoding'], body,
        });
      });
    });
    req.setTimeout(SCRAPE_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${SCRAPE_TIMEOUT_MS} ms`)));
    req.on('error', (e) => reject(new Error(`${e.message}${req.reusedSocket ? ' (on a reused keep-alive connection)' : ' (on a new connection)'}`)));
  });
}

interface PhaseResult {
  encoding: 'identity' | 'gzip';
  seconds: number;
  rate: number;
  latencyMs: Dist;
  /** Scrapes whose request overlapped a read cycle (as the self-metrics place the cycles) and the rest. */
  duringCycleMs: Dist;
  outsideCycleMs: Dist;
  unclassified: number;
  errors: number;
  errorMessages: string[];
  non200: number;
  medianBytes: number;
  cyclesInPhase: number;
  latenciesMs: number[];
}

/** Scrape at `rate` per second for `seconds` (open loop), then class each scrape against the read cycles. */
async function scrapePhase(port: number, cfg: BenchConfig, gzip: boolean, seconds: number, rate: number): Promise<PhaseResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const n = seconds * rate;
  const period = 1000 / rate;
  const pending: Promise<Scrape | Error>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await sleep(t0 + i * period - performance.now());
    pending.push(scrapeOnce(agent, port, gzip).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))));
  }
  const results = await Promise.all(pending);
  const ok = results.filter((r): r is Scrape => !(r instanceof Error));
  const errors = results.length - ok.length;
  const errorMessages = [...new Set(results.filter((r): r is Error => r instanceof Error).map((e) => e.message))];
  // Probes (not counted): scrape until a cycle that ended after the last scrape shows, so that the
  // cycle the last scrapes may have overlapped is known too.
  const probes: Scrape[] = [];
  const lastStart = Math.max(...ok.map((s) => s.start));
  const probeUntil = performance.now() + 5000;
  while (performance.now() < probeUntil) {
    await sleep(250);
    const p = await scrapeOnce(agent, port, false).catch(() => undefined);
    if (p === undefined || p.status !== 200) continue;
    probes.push(p);
    if (parseSelf(p.body, cfg.job).lastReadS * 1000 > lastStart) break;
  }
  agent.destroy();
  const non200 = ok.filter((s) => s.status !== 200 || (gzip && s.encoding !== 'gzip') || (!gzip && s.encoding !== undefined)).length;

  // Each distinct document names the last finished cycle: its end (last_read_timestamp) and length.
  const cycles = new Map<number, { start: number; end: number }>();
  let lastBody: Buffer | undefined;
  for (const s of [...ok, ...probes]) {
    if (s.status !== 200) continue;
    // Compressed documents of one generation are the same bytes: decompress each distinct one once.
    if (lastBody !== undefined && s.body.length === lastBody.length && s.body.equals(lastBody)) continue;
    lastBody = s.body;
    const text = s.encoding === 'gzip' ? gunzipSync(s.body) : s.body;
    const self = parseSelf(text, cfg.job);
    if (!Number.isFinite(self.lastReadS) || !Number.isFinite(self.durationS)) continue;
    const end = self.lastReadS * 1000;
    cycles.set(end, { start: end - self.durationS * 1000, end });
  }
  const spans = [...cycles.values()].sort((a, b) => a.start - b.start);
  const during: number[] = [];
  const outside: number[] = [];
  let unclassified = 0;
  const lastEnd = spans.length === 0 ? -Infinity : spans[spans.length - 1].end;
  for (const s of ok) {
    if (spans.some((c) => s.start < c.end && s.end > c.start)) during.push(s.latencyMs);
    // After the last cycle seen, another one may have been running: not known.
    else if (s.start > lastEnd) unclassified++;
    else outside.push(s.latencyMs);
  }
  // Cycles that ended while the phase ran (its first request to its last answer).
  const phaseStart = Math.min(...ok.map((s) => s.start));
  const phaseEnd = Math.max(...ok.map((s) => s.end));
  const cyclesInPhase = spans.filter((c) => c.end >= phaseStart && c.end <= phaseEnd).length;
  const latencies = ok.map((s) => s.latencyMs);
  return {
    encoding: gzip ? 'gzip' : 'identity', seconds, rate, latencyMs: dist(latencies), duringCycleMs: dist(during), outsideCycleMs: dist(outside),
    unclassified, errors, errorMessages, non200, medianBytes: median(ok.map((s) => s.bytes)),
    cyclesInPhase,
    latenciesMs: latencies.map((x) => Math.round(x * 1000) / 1000),
  };
}

interface DaemonResult {
  config: ConfigName;
  description: string;
  startToReadyMs: number;
  phases: PhaseResult[];
  readsTotal: number;
  lastReadDurationS: number;
  overrunsTotal: number;
  seriesExported: number;
  daemonCpuSeconds: number;
  daemonMaxRssMb: number;
  exitCode: number | null;
  exitSignal: string | null;
  warnings: string[];
}

function procCpuSeconds(pid: number): number {
  try {
    // /proc/PID/stat: fields after the ")" of the command name; utime and stime are the 14th and 15th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

function procMaxRssMb(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? NaN : Number(m[1]) / 1024;
  } catch {
    return NaN;
  }
}

async function daemonBench(cfg: BenchConfig, seconds: number, rate: number): Promise<DaemonResult> {
  const file = path.join(tmpDir ?? ROOT, `${cfg.name}-daemon.yaml`);
  writeFileSync(file, cfg.yaml('1s'));
  // As it ships: tsc's build (made before the run), run by node with the image's memory settings.
  const prof = process.env.BENCH_DAEMON_CPU_PROF === '1' ? ['--cpu-prof', `--cpu-prof-dir=${path.join(ROOT, 'bench/out/prof')}`] : [];
  const d = await startExporter({ dir: ROOT, config: file, nodeArgs: prof, readyWithinMs: 90_000, onSpawn: (c) => children.add(c) });
  const { child, port, warnings, startToReadyMs } = d;
  try {
    process.stdout.write(`  ${cfg.name} daemon: ready after ${ms(startToReadyMs)} ms (pid ${child.pid}, port ${port})\n`);
    const cpu0 = procCpuSeconds(child.pid ?? 0);
    const phases: PhaseResult[] = [];
    for (const gzip of [false, true]) {
      const ph = await scrapePhase(port, cfg, gzip, seconds, rate);
      phases.push(ph);
      const l = ph.latencyMs;
      process.stdout.write(
        `  ${cfg.name} daemon, ${ph.encoding}: ${l.count} scrapes, p50 ${ms(l.p50)} p90 ${ms(l.p90)} p99 ${ms(l.p99)} max ${ms(l.max)} ms; ` +
        `${ph.duringCycleMs.count} overlapped a read cycle (p99 ${ms(ph.duringCycleMs.p99)} ms); ${ph.cyclesInPhase} cycles` +
        `${ph.errors > 0 ? `; ${ph.errors} errors: ${ph.errorMessages.join(' | ')}` : ''}\n`,
      );
    }
    const cpuSeconds = procCpuSeconds(child.pid ?? 0) - cpu0;
    const maxRss = procMaxRssMb(child.pid ?? 0);
    // Final self-metrics.
    const agent = new http.Agent({ keepAlive: false });
    const last = await scrapeOnce(agent, port, false);
    agent.destroy();
    const self = parseSelf(last.body, cfg.job);
    const exit = await stopExporter(d, 15_000);
    children.delete(child);
    return {
      config: cfg.name, description: cfg.description, startToReadyMs, phases,
      readsTotal: self.reads, lastReadDurationS: self.durationS, overrunsTotal: self.overruns, seriesExported: self.series,
      daemonCpuSeconds: cpuSeconds, daemonMaxRssMb: maxRss, exitCode: exit.code, exitSignal: exit.signal, warnings,
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

// --- machine ---------------------------------------------------------------------------------------

// --- main ------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  if (!existsSync(C_BIN)) {
    mkdirSync(path.dirname(C_BIN), { recursive: true });
    execFileSync('cc', ['-O2', '-o', C_BIN, C_SRC, '-lbpf'], { stdio: 'inherit' });
  }
  checkBpffs(path.dirname(PIN_DIR));
  execFileSync(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  rmSync(PIN_DIR, { recursive: true, force: true }); // stale pins of an interrupted run
  pinsOwned = true;
  mkdirSync(PIN_DIR);
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'bpf-map-exporter-bench-daemon-'));
  const started = performance.now();
  const info = machine();
  process.stdout.write(
    `bpf-map-exporter daemon benchmark: PERCPU_HASH, ${ENTRIES} entries in max_entries ${MAX_ENTRIES} (u32 key, u64 value), batch ${BATCH_SIZE}\n` +
    `machine: nproc ${info.nproc}, possible CPUs ${info.possibleCpus}, ${info.cpuModel}, kernel ${info.kernel}, node ${info.node}, libbpf ${info.libbpf}\n` +
    `cycle rounds ${ROUNDS} per config (BENCH_DAEMON_ROUNDS); scrapes ${RATE}/s for ${SECONDS} s per encoding (grouped), ` +
    `${PER_KEY_RATE}/s for ${PER_KEY_SECONDS} s (per_key)\n\n`,
  );

  const { map, expectedSum, fillMs } = createAndFill();
  const binding = new BindingSweep();
  let failed = false;
  const cycles: CycleResult[] = [];
  const daemons: DaemonResult[] = [];
  try {
    process.stdout.write(`filled: ${ENTRIES} entries in ${ms(fillMs)} ms, expected sum ${expectedSum}, pinned at ${PIN}\n`);
    if (ROUNDS > 0) {
      process.stdout.write('\ncycle time (exporter: MapJob.readAsync; binding: BatchReader sweep; C: bench/out/batch-read):\n');
      for (const cfg of [CONFIGS.grouped, CONFIGS.per_key]) cycles.push(await cycleBench(cfg, expectedSum, binding));
    }

    process.stdout.write('\nscrape latency (the daemon as a child process, interval 1s):\n');
    const plan: [BenchConfig, number, number][] = [];
    if (SECONDS > 0) plan.push([CONFIGS.grouped, SECONDS, RATE]);
    if (PER_KEY_SECONDS > 0) plan.push([CONFIGS.per_key, PER_KEY_SECONDS, PER_KEY_RATE]);
    for (const [cfg, seconds, rate] of plan) {
      const d = await daemonBench(cfg, seconds, rate);
      daemons.push(d);
      const bad = d.phases.reduce((n, p) => n + p.errors + p.non200, 0);
      if (d.exitCode !== 0 || bad > 0) {
        failed = true;
        process.stderr.write(`bench: the ${cfg.name} daemon: exit code ${d.exitCode} (signal ${d.exitSignal}), ${bad} failed scrapes\n`);
      }
    }
  } finally {
    binding.close();
    map.close();
  }

  // --- report ---
  const cycleRows = cycles.map((c) => [
    c.config, String(c.series), ms(c.warmUpMs), String(c.rounds), ms(c.medianExporterMs), ms(median(c.exporterUserMs)), ms(median(c.exporterSystemMs)),
    ms(c.medianBindingMs), ms(c.medianCMs), `${c.ratioExporterToC.toFixed(2)}x`, `${c.ratioBindingToC.toFixed(2)}x`, ms(c.eventLoopMaxStallMs),
  ]);
  if (cycleRows.length > 0) {
    process.stdout.write(`\n${table(
      ['config', 'series', 'warm-up ms', 'rounds', 'exporter ms', 'user ms', 'sys ms', 'binding ms', 'C ms', 'exporter/C', 'binding/C', 'max stall ms'],
      cycleRows, 1,
    )}`);
  }
  const scrapeRows: string[][] = [];
  for (const d of daemons) {
    for (const p of d.phases) {
      const l = p.latencyMs;
      scrapeRows.push([
        d.config, p.encoding, String(l.count), ms(l.p50), ms(l.p90), ms(l.p99), ms(l.max),
        `${p.duringCycleMs.count}`, ms(p.duringCycleMs.p99), `${(p.medianBytes / 1024).toFixed(0)} KiB`, String(p.cyclesInPhase),
      ]);
    }
  }
  if (scrapeRows.length > 0) {
    process.stdout.write(`\n${table(
      ['config', 'encoding', 'scrapes', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'in cycle', 'in-cycle p99', 'body', 'cycles'],
      scrapeRows, 2,
    )}`);
  }
  for (const d of daemons) {
    process.stdout.write(
      `${d.config} daemon: reads_total ${d.readsTotal}, last read_duration_seconds ${d.lastReadDurationS}, overruns ${d.overrunsTotal}, ` +
      `series ${d.seriesExported}, CPU ${d.daemonCpuSeconds.toFixed(1)} s over both phases, max RSS ${d.daemonMaxRssMb.toFixed(0)} MB, ` +
      `exit ${d.exitCode}${d.exitSignal === null ? '' : ` (${d.exitSignal})`}, ${d.warnings.length} warnings\n`,
    );
    for (const w of d.warnings.slice(0, 5)) process.stdout.write(`  ${w}\n`);
  }

  // null: not measured in this run.
  const scrapeGoal = (name: ConfigName): boolean | null => {
    const d = daemons.find((x) => x.config === name);
    return d === undefined ? null : d.phases.every((p) => p.latencyMs.p99 <= P99_GOAL_MS);
  };
  const cycleGoal = (name: ConfigName): boolean | null => {
    const c = cycles.find((x) => x.config === name);
    return c === undefined ? null : c.ratioExporterToC <= CYCLE_RATIO_GOAL;
  };
  const goals = {
    scrapeP99AtMost25msGrouped: scrapeGoal('grouped'),
    scrapeP99AtMost25msPerKey: scrapeGoal('per_key'),
    cycleAtMost1_5xCGrouped: cycleGoal('grouped'),
    cycleAtMost1_5xCPerKey: cycleGoal('per_key'),
  };
  const met = (b: boolean | null): string => (b === null ? 'not measured' : b ? 'met' : 'NOT met');
  process.stdout.write(
    `\ngoals: /metrics p99 <= ${P99_GOAL_MS} ms while the map is read every second: grouped ${met(goals.scrapeP99AtMost25msGrouped)}, per_key ${met(goals.scrapeP99AtMost25msPerKey)}\n` +
    `       read cycle <= ${CYCLE_RATIO_GOAL}x the C batch loop: grouped ${met(goals.cycleAtMost1_5xCGrouped)}, per_key ${met(goals.cycleAtMost1_5xCPerKey)}\n`,
  );
  const totalS = (performance.now() - started) / 1000;
  mkdirSync(path.dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify({
    date: new Date().toISOString(), machine: info, totalSeconds: totalS,
    setup: { type: 'percpu_hash', entries: ENTRIES, maxEntries: MAX_ENTRIES, batchSize: BATCH_SIZE, expectedSum, fillMs, cycleRounds: ROUNDS, interval: '1s' },
    configs: Object.fromEntries(Object.values(CONFIGS).map((c) => [c.name, { description: c.description, yaml: c.yaml('1s') }])),
    cycles, daemons, goals,
  }, null, 2)}\n`);
  process.stdout.write(`results written to ${path.relative(ROOT, RESULTS)} (${totalS.toFixed(0)} s in all)\n`);
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    cleanup();
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`bench: FAILED: ${e instanceof Error ? e.message : String(e)}\n`);
    cleanup();
    process.exitCode = 1;
  },
);

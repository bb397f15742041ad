/**
 * The whole exporter at high cardinality against "the obvious build", side by side in one run:
 *
 *   node --import tsx bench/series.ts                    # as root, bpffs mounted: 10k and 100k flows
 *   BENCH_SERIES_SIZES=10000,100000,1000000 node --import tsx bench/series.ts
 *   node --import tsx bench/series.ts 100000             # sizes as arguments
 *   BENCH_SERIES_CPU_PROF=1 node --import tsx bench/series.ts 100000   # + a CPU profile of the daemon
 *
 * The map (bench/series-flows.ts): a BPF_MAP_TYPE_HASH of N flows, key saddr u8[4], daddr u8[4],
 * sport be16, dport be16, proto u8, pad[3]; value u64 bytes; every entry its own label set
 * (saddr inet_ip, sport, dport, proto static_map; daddr is not a label); max_entries N. Filled with
 * the project's binding (BpfMap.create + updateBatch), pinned at
 * /sys/fs/bpf/bpf-map-exporter-bench-series/flows (stale pins removed first; pins removed at exit,
 * on failure and on SIGINT/SIGTERM/SIGHUP). The values do not change during a run.
 *
 * Ours: the real daemon as it ships (tsc's build in dist/, plain node): `node dist/exporter/main.js run --config <tmp yaml>
 * --web.listen-address 127.0.0.1:0`, one read job, interval I, OTLP http/protobuf every I to a
 * receiver in this process (200, empty body; requests, bytes and arrival times recorded). Per N:
 *   warm-up   until the daemon has read the map 1 + BENCH_SERIES_WARMUP times (the first cycle decodes
 *             the labels of every series), /metrics scraped once per cycle in both encodings
 *   cost      K cycles (BENCH_SERIES_CYCLES). Once per cycle, half an interval after a read is due to
 *             end (aligned on the last_read_timestamp the documents carry), /metrics is scraped plain
 *             and then with Accept-Encoding: gzip (keep-alive agent), nothing else. CPU per cycle =
 *             the daemon's utime + stime (/proc/PID/stat, every thread) over the window / the reads
 *             that ended in it (reads_total and last_read_timestamp of the documents seen). Every
 *             document of the window is checked series by series (N series, each label set and value
 *             that of its flow, the sum) — at N > 200k only the first and last. Read cycle = median
 *             of bpf_map_exporter_map_read_duration_seconds of the reads that ended in the window
 *             (the daemon's own first syscall to snapshot).
 *   latency   BENCH_SERIES_LATENCY_SECONDS (default K x I, at most 20 s) of open-loop scrapes, plain
 *             and gzip each at BENCH_SERIES_RATE per second (a request starts on time whether or not earlier ones
 *             answered), latency from the request's start to the body's last byte. The daemon's CPU
 *             per cycle is reported for this window too (it includes serving the scrapes).
 *   Then VmHWM (peak RSS) and VmRSS of the daemon, SIGTERM (the exit code must be 0).
 *   Also printed: the cost window's CPU split between the main thread and the others (V8's compiler
 *   and GC helpers, libuv's pool), and the major collections in both windows (from the documents'
 *   nodejs_gc_duration_seconds). Every scrape and read end goes to bench/out/series-scrapes-<N>.json.
 *   floor     after the daemon has exited, the same open loop against bench/static-server.mjs, plain
 *             Node serving the daemon's last two documents as fixed bytes: the latency this machine
 *             and this client leave to any server of those bodies.
 *   Scrapes reported: all of the cost and latency windows per encoding, and apart the "first after
 *   a new snapshot": for each read that ended in the windows (its end from last_read_timestamp), the
 *   first scrape of that encoding started after it — the one that pays for a render, or is served
 *   the previous document ("stale") when the render is not ready within the daemon's wait.
 *   OTLP: requests that arrived in the cost window must be at least K - 1; the last one is decoded
 *   (N <= 200k) and must carry N points of flow_bytes_total with the expected sum.
 *
 * The obvious build, after the daemon has exited, each in its own child process:
 *   C read    bench/out/batch-read <pin> batch K+1 4096 (built when missing): the C libbpf batch loop
 *             of bench/read-maps.ts; median sweep of the last K (the first is a warm-up). Its sweep
 *             time counts as its CPU (a single-threaded, syscall-bound loop that does not sleep).
 *   render    bench/series-baseline.ts: prom-client Registry render + gzipSync, OTel SDK collect +
 *             OTLP protobuf serialise of the same N series with the same label values, in ONE process
 *             (what one obvious exporter holds), BENCH_SERIES_BASELINE_CYCLES measured cycles after as
 *             many warm-up cycles as the daemon had (BENCH_SERIES_WARMUP, at least one); CPU per part by process.cpuUsage(); its VmHWM is the obvious build's peak RSS.
 *   obvious CPU per cycle = C read + render + gzip + collect + serialise (medians). Updating the
 *   series' values (which the obvious build also has to do) is reported but not counted.
 *
 * Goals (printed, never the exit code): 100k: CPU ours/obvious <= 0.25, peak RSS <= 160 MB, scrape
 * p99 <= 25 ms plain and gzip, first-after-snapshot included, read cycle <= 2x C; 10k: CPU ratio
 * <= 0.3; 1M: peak RSS <= 700 MB, scrape p99 <= 1.5 s. Exit code 1 only for a mismatch (series,
 * values, sum, OTLP), a failed scrape, a daemon that does not exit 0, or a crash.
 *
 * Env: BENCH_SERIES_SIZES (default 10000,100000), BENCH_SERIES_INTERVAL (seconds; default 2 for
 *      N <= 10k, 5 above), BENCH_SERIES_CYCLES (K, default 8), BENCH_SERIES_WARMUP (default 2),
 *      BENCH_SERIES_RATE (scrapes/s per encoding; default 10 for N <= 100k, 1 above: a 1M document is
 *      ~85 MB), BENCH_SERIES_LATENCY_SECONDS (default K x I, at most 20),
 *      BENCH_SERIES_BASELINE_CYCLES (default 5 for N <= 100k, 2 above), BENCH_SERIES_NODE_ARGS (extra
 *      node flags for the daemon, e.g. "--single-threaded-gc"), BENCH_SERIES_CPU_PROF=1 (the daemon runs with --cpu-prof, profiles in
 *      bench/out/prof; profiling slows it), BENCH_SERIES_EXPORTER_DIR (a tree whose exporter/main.ts
 *      is run instead of this one's, e.g. an export of another commit with its own node_modules),
 *      BENCH_SERIES_EXPORTER_LABEL (what to call that tree in the output, e.g. its commit).
 * Default run (10k + 100k): about 2.5 minutes on 2 vCPUs. Results: bench/out/series-results.json.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback, gunzipSync } from 'node:zlib';
import type { BpfMap } from '../src/bpf/map.js';
import { checkBpffs, cleanupOnExit, removePins } from './fill.js';
import { BATCH_SIZE, JOB, METRIC, createFlowMap, expectedSum, flowConfig, flowLabels, flowValue } from './series-flows.js';
import type { BaselineResult, PartSample } from './series-baseline.js';
import { type ExporterProcess, median, percentile, run, sleep, startExporter, stopExporter, table } from './support.js';

const gunzipAsync = promisify(gunzipCallback);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const C_SRC = path.join(ROOT, 'bench/c/batch-read.c');
const C_BIN = path.join(ROOT, 'bench/out/batch-read');
const RESULTS = path.join(ROOT, 'bench/out/series-results.json');
const PROF_DIR = path.join(ROOT, 'bench/out/prof');
const PIN_DIR = '/sys/fs/bpf/bpf-map-exporter-bench-series';
const PIN = path.join(PIN_DIR, 'flows');
const FULL_CHECK_MAX = 200_000;
const OTLP_DECODE_MAX = 200_000;
const SCRAPE_TIMEOUT_MS = 60_000;

// --- settings ----------------------------------------------------------------------------------

function envNumber(name: string, fallback: number, min: number, integer = true): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
    throw new Error(`${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function sizes(): number[] {
  const args = process.argv.slice(2);
  const raw = args.length > 0 ? args.join(',') : (process.env.BENCH_SERIES_SIZES ?? '10000,100000');
  const out = raw.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => Number(s.replace(/_/g, '')));
  for (const n of out) if (!Number.isInteger(n) || n < 1) throw new Error(`series sizes must be positive integers, got ${JSON.stringify(raw)}`);
  return out;
}

interface Settings {
  n: number;
  intervalS: number;
  cycles: number;
  warmUp: number;
  rate: number;
  latencySeconds: number;
  baselineCycles: number;
}

function settingsFor(n: number): Settings {
  const large = n > 100_000;
  // 2 s keeps a small run short; from 100k series a cycle of the exporter (read, render, gzip, OTLP)
  // can take a second or more on 2 vCPUs, and 5 s (the issue's interval) leaves room for one scrape of
  // each encoding per cycle.
  const intervalS = envNumber('BENCH_SERIES_INTERVAL', n <= 10_000 ? 2 : 5, 0.5, false);
  const cycles = envNumber('BENCH_SERIES_CYCLES', 8, 2);
  return {
    n, intervalS, cycles,
    warmUp: envNumber('BENCH_SERIES_WARMUP', 2, 0),
    rate: envNumber('BENCH_SERIES_RATE', large ? 1 : 10, 0.1, false),
    latencySeconds: envNumber('BENCH_SERIES_LATENCY_SECONDS', Math.min(20, Math.round(cycles * intervalS)), 0, false),
    baselineCycles: envNumber('BENCH_SERIES_BASELINE_CYCLES', large ? 2 : 5, 1),
  };
}

const CPU_PROF = process.env.BENCH_SERIES_CPU_PROF === '1';
/** Extra node flags for the daemon (e.g. `--single-threaded-gc`), split on spaces. */
const NODE_ARGS = (process.env.BENCH_SERIES_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
const EXPORTER_DIR = path.resolve(process.env.BENCH_SERIES_EXPORTER_DIR ?? ROOT);
/** The baseline, bundled by esbuild (packages stay external), so it too runs on plain node. */
const BASELINE_BUNDLE = path.join(ROOT, 'bench/out/series-baseline.mjs');

/** Both contestants compiled before anything is measured. */
function buildContestants(): void {
  execFileSync(path.join(EXPORTER_DIR, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: EXPORTER_DIR, stdio: 'inherit' });
  execFileSync(path.join(ROOT, 'node_modules/.bin/esbuild'), ['bench/series-baseline.ts', '--bundle', '--platform=node', '--format=esm', '--packages=external', `--outfile=${BASELINE_BUNDLE}`, '--log-level=warning'], { cwd: ROOT, stdio: 'inherit' });
}

// --- cleanup -------------------------------------------------------------------------------------

let pinsOwned = false;
let tmpDir: string | undefined;
let otlpServer: http.Server | undefined;
const children = new Set<ChildProcess>();

function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  otlpServer?.close();
  otlpServer?.closeAllConnections();
  otlpServer = undefined;
  if (tmpDir !== undefined) {
    rmSync(tmpDir, { recursive: true, force: true });
    tmpDir = undefined;
  }
  if (!pinsOwned) return;
  pinsOwned = false;
  removePins(PIN_DIR);
}

cleanupOnExit(cleanup);

// --- statistics ----------------------------------------------------------------------------------

interface Dist {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

function dist(xs: readonly number[]): Dist {
  return { count: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99), max: xs.length === 0 ? NaN : Math.max(...xs) };
}

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f0 = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '-');
const mb = (bytes: number): string => (Number.isFinite(bytes) ? `${(bytes / 1048576).toFixed(2)} MiB` : '-');
const ratio = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}x` : '-');
const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : '-');

// --- /proc ---------------------------------------------------------------------------------------

const CLK_TCK = 100;

/** utime + stime, in ms, of a /proc stat file: a process's (all its threads) or one thread's. */
function statCpuMs(path: string): number {
  const stat = readFileSync(path, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/** utime + stime of every thread of `pid`, in ms. */
function procCpuMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/stat`);
}

/**
 * utime + stime of the main thread of `pid` (the event loop and the GC's pauses), in ms; the rest of
 * procCpuMs is V8's helper threads (concurrent marking and sweeping, the optimizing compiler) and
 * libuv's pool (gzip). Node 20 does not name its threads, so they are not told apart further.
 */
function mainThreadCpuMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/task/${pid}/stat`);
}

/** CPU time (ms) the whole machine spent busy (user, nice, system, irq, softirq, steal), from /proc/stat. */
function machineBusyMs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return ((f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) * 1000) / CLK_TCK;
}

function procStatusMb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

// --- the documents -------------------------------------------------------------------------------

/** What a /metrics document says about the job (self-metrics). */
interface DocInfo {
  reads: number;
  lastReadS: number;
  durationS: number;
  overruns: number;
  series: number;
  /** The daemon's major (mark-compact) collections so far, and their time in seconds (prom-client's gc metric). */
  majorGcs: number;
  majorGcS: number;
}

function selfMetric(text: string, name: string): number {
  const m = new RegExp(`^${name}\\{[^}]*map="${JOB}"[^}]*\\} (\\S+)`, 'm').exec(text);
  return m === null ? NaN : Number(m[1]);
}

function gcMetric(text: string, sample: 'count' | 'sum'): number {
  const m = new RegExp(`^nodejs_gc_duration_seconds_${sample}\\{kind="major"\\} (\\S+)`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

function parseSelf(text: string): DocInfo {
  return {
    reads: selfMetric(text, 'bpf_map_exporter_map_reads_total'),
    lastReadS: selfMetric(text, 'bpf_map_exporter_map_last_read_timestamp_seconds'),
    durationS: selfMetric(text, 'bpf_map_exporter_map_read_duration_seconds'),
    // A labelled counter has no sample until its first increment: no line means 0.
    overruns: selfMetric(text, 'bpf_map_exporter_map_read_overruns_total') || 0,
    series: selfMetric(text, 'bpf_map_exporter_series'),
    majorGcs: gcMetric(text, 'count'),
    majorGcS: gcMetric(text, 'sum'),
  };
}

/** The self-metrics, from the document's tail (they follow the jobs' families), else the whole text. */
function docInfo(body: Buffer): DocInfo {
  const tail = parseSelf(body.subarray(Math.max(0, body.length - 65536)).toString('utf8'));
  if (Number.isFinite(tail.reads) && Number.isFinite(tail.lastReadS)) return tail;
  return parseSelf(body.toString('utf8'));
}

const SAMPLE_PREFIX = `${METRIC}{`;
const LABEL_RE = /(\w+)="([^"]*)"/g;

/**
 * Every series of flow_bytes_total in a text document is checked: its labels name flow i (through
 * sport and saddr, see series-flows.ts), every label is that of flow i, its value is flowValue(i),
 * each flow appears once, N in all, and the sum is the expected one. Returns problems (empty: good).
 */
function checkDocument(text: string, n: number, sum: number): { series: number; sum: number; problems: string[] } {
  const seen = new Uint8Array(n);
  const problems: string[] = [];
  let count = 0;
  let total = 0;
  const problem = (p: string): void => {
    if (problems.length < 5) problems.push(p);
  };
  let pos = 0;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    if (text.startsWith(SAMPLE_PREFIX, pos)) {
      const line = text.slice(pos, nl);
      const close = line.lastIndexOf('} ');
      const value = Number(line.slice(close + 2).split(' ')[0]);
      const labels: Record<string, string> = {};
      for (const m of line.slice(SAMPLE_PREFIX.length, close).matchAll(LABEL_RE)) labels[m[1]] = m[2];
      count++;
      total += value;
      const sa = (labels.saddr ?? '').split('.').map(Number);
      const i = (sa[1] << 8) + sa[2] + 4096 * (Number(labels.sport) - 1024);
      if (!(i >= 0 && i < n)) {
        problem(`series ${line} names no flow`);
      } else {
        const want = flowLabels(i);
        const got = [labels.saddr, labels.sport, labels.dport, labels.proto];
        if (want.some((w, k) => w !== got[k]) || Object.keys(labels).length !== 4) problem(`series ${line}: expected labels ${want.join(',')}`);
        else if (value !== flowValue(i)) problem(`series ${line}: expected value ${flowValue(i)}`);
        if (seen[i] === 1) problem(`flow ${i} appears twice`);
        seen[i] = 1;
      }
    }
    pos = nl + 1;
  }
  if (count !== n) problem(`${count} series, expected ${n}`);
  if (total !== sum) problem(`sum of series ${total}, expected ${sum}`);
  return { series: count, sum: total, problems };
}

// --- scraping ------------------------------------------------------------------------------------

type Encoding = 'identity' | 'gzip';
type Phase = 'warm-up' | 'cost' | 'latency';

interface Scrape {
  phase: Phase;
  encoding: Encoding;
  /** Wall clock (epoch ms) when the request started and when the body's last byte came. */
  start: number;
  end: number;
  latencyMs: number;
  status: number;
  bytes: number;
  contentEncoding: string | undefined;
  /** Sent again after a keep-alive race (see scrapeOnce). */
  retried: boolean;
  error?: string;
  doc?: DocInfo;
}

interface Response {
  scrape: Scrape;
  body: Buffer;
}

/**
 * One GET /metrics; latency from the request's start to the body's last byte. A request that a
 * keep-alive connection's close raced (ECONNRESET/EPIPE before any answer, on a reused socket: the
 * server's keep-alive timeout and our request crossed) is sent again once, on a fresh connection,
 * its latency still counted from the first attempt.
 */
function scrapeOnce(agent: http.Agent, port: number, encoding: Encoding, phase: Phase): Promise<Response> {
  const t0 = performance.now();
  let retried = false;
  return new Promise((resolve) => {
    const attempt = (useAgent: http.Agent | false): void => {
      let answered = false;
      const failed = (e: Error & { code?: string }, reused: boolean): void => {
        if (!answered && !retried && reused && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) {
          retried = true;
          attempt(false);
          return;
        }
        const t1 = performance.now();
        resolve({
          scrape: {
            phase, encoding, start: performance.timeOrigin + t0, end: performance.timeOrigin + t1, latencyMs: t1 - t0, status: 0, bytes: 0,
            contentEncoding: undefined, retried, error: `${e.message}${reused ? ' (on a reused keep-alive connection)' : ''}`,
          },
          body: Buffer.alloc(0),
        });
      };
      const req = http.get({ agent: useAgent, host: '127.0.0.1', port, path: '/metrics', headers: encoding === 'gzip' ? { 'Accept-Encoding': 'gzip' } : {} }, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => failed(e, req.reusedSocket));
        res.on('end', () => {
          const t1 = performance.now();
          const body = Buffer.concat(chunks);
          resolve({
            scrape: {
              phase, encoding, start: performance.timeOrigin + t0, end: performance.timeOrigin + t1, latencyMs: t1 - t0,
              status: res.statusCode ?? 0, bytes: body.length, contentEncoding: res.headers['content-encoding'], retried,
            },
            body,
          });
        });
      });
      req.setTimeout(SCRAPE_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${SCRAPE_TIMEOUT_MS} ms`)));
      req.on('error', (e) => failed(e, req.reusedSocket));
    };
    attempt(agent);
  });
}

/** Decodes each distinct document once (a gzip body is the same bytes for the same document). */
class DocReader {
  private last: Record<Encoding, { body: Buffer; doc: DocInfo | undefined } | undefined> = { identity: undefined, gzip: undefined };

  async read(r: Response): Promise<{ doc: DocInfo | undefined; text?: Buffer }> {
    const s = r.scrape;
    if (s.status !== 200) return { doc: undefined };
    const prev = this.last[s.encoding];
    if (prev !== undefined && prev.body.length === r.body.length && prev.body.equals(r.body)) return { doc: prev.doc };
    const text = s.contentEncoding === 'gzip' ? await gunzipAsync(r.body) : r.body;
    const doc = docInfo(text);
    this.last[s.encoding] = { body: r.body, doc: Number.isFinite(doc.reads) ? doc : undefined };
    return { doc: this.last[s.encoding]?.doc, text };
  }

  /** The last body of each encoding. */
  bodies(): Record<Encoding, Buffer | undefined> {
    return { identity: this.last.identity?.body, gzip: this.last.gzip?.body };
  }
}

// --- the OTLP receiver ---------------------------------------------------------------------------

interface OtlpRequest {
  /** Epoch ms when the body's last byte came. */
  at: number;
  bytes: number;
  path: string;
  contentType: string | undefined;
  contentEncoding: string | undefined;
}

class OtlpReceiver {
  requests: OtlpRequest[] = [];
  lastBody: Buffer | undefined;
  port = 0;

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        this.requests.push({
          at: performance.timeOrigin + performance.now(), bytes: body.length, path: req.url ?? '',
          contentType: req.headers['content-type'], contentEncoding: req.headers['content-encoding'],
        });
        this.lastBody = req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body;
        res.writeHead(200, { 'Content-Type': req.headers['content-type'] ?? 'application/x-protobuf', 'Content-Length': 0 });
        res.end();
      });
    });
    otlpServer = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
  }

  reset(): void {
    this.requests = [];
    this.lastBody = undefined;
  }
}

interface ProtoType {
  decode(b: Uint8Array): unknown;
  toObject(m: unknown, o: { longs: NumberConstructor; defaults: boolean }): unknown;
}

interface OtlpBody {
  resourceMetrics: { scopeMetrics: { metrics: { name: string; sum?: { dataPoints: { asInt?: number; asDouble?: number }[] } }[] }[] }[];
}

/** Points of flow_bytes_total in an ExportMetricsServiceRequest and their sum (the OTel project's generated definitions). */
function decodeOtlp(body: Buffer): { points: number; sum: number } {
  const root = createRequire(import.meta.url)('otlp-proto-definitions/build/src/generated/root.js') as {
    opentelemetry: { proto: { collector: { metrics: { v1: { ExportMetricsServiceRequest: ProtoType } } } } };
  };
  const T = root.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest;
  const o = T.toObject(T.decode(body), { longs: Number, defaults: false }) as OtlpBody;
  let points = 0;
  let sum = 0;
  for (const rm of o.resourceMetrics) {
    for (const sm of rm.scopeMetrics) {
      for (const m of sm.metrics) {
        if (m.name !== METRIC) continue;
        for (const p of m.sum?.dataPoints ?? []) {
          points++;
          sum += Number(p.asInt ?? p.asDouble ?? 0);
        }
      }
    }
  }
  return { points, sum };
}

// --- the daemon ----------------------------------------------------------------------------------

type Daemon = ExporterProcess;

async function startDaemon(config: string, s: Settings, otlpPort: number): Promise<Daemon> {
  const nodeArgs = [...NODE_ARGS, ...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : [])];
  if (CPU_PROF) mkdirSync(PROF_DIR, { recursive: true });
  const intervalMs = String(Math.round(s.intervalS * 1000));
  // As it ships: tsc's output run by plain node (tsx's loader thread would add ~30 MB of RSS and its CPU).
  return startExporter({
    dir: EXPORTER_DIR,
    config,
    nodeArgs,
    env: {
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `http://127.0.0.1:${otlpPort}/v1/metrics`,
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
      OTEL_METRIC_EXPORT_INTERVAL: intervalMs,
      OTEL_METRIC_EXPORT_TIMEOUT: intervalMs,
    },
    readyWithinMs: 180_000,
    onSpawn: (c) => children.add(c),
  });
}

async function stopDaemon(d: Daemon): Promise<{ code: number | null; signal: string | null }> {
  const exit = await stopExporter(d, 60_000);
  children.delete(d.child);
  return exit;
}

// --- one size ------------------------------------------------------------------------------------

interface WindowCpu {
  cpuMs: number;
  reads: number;
  cpuMsPerCycle: number;
  seconds: number;
}

interface ScrapeStats {
  all: Dist;
  firstAfterSnapshot: Dist;
  /** First-after-snapshot scrapes that were served an older document than the read just ended. */
  firstAfterStale: number;
  perCycle: Dist;
  latencyWindow: Dist;
  medianBytes: number;
  retried: number;
  errors: number;
  errorMessages: string[];
}

interface OursResult {
  startToReadyMs: number;
  cost: WindowCpu;
  latency: WindowCpu;
  readCycleMs: { median: number; samples: number[]; latencyWindowMedian: number };
  scrapes: Record<Encoding, ScrapeStats>;
  /** The same open loop against bench/static-server.mjs serving the same bytes (null: no document). */
  floor: Record<Encoding, Dist> | null;
  peakRssMb: number;
  rssMb: number;
  otlp: {
    requestsInCostWindow: number;
    requestsTotal: number;
    medianBytes: number;
    bytesTotal: number;
    contentType: string | undefined;
    contentEncoding: string | undefined;
    decoded: { points: number; sum: number } | null;
  };
  /** Shares of the machine's CPU time (all CPUs) over both windows: the daemon, this process, everything else. */
  machineShare: { daemon: number; bench: number; other: number };
  documentsChecked: number;
  readsTotal: number;
  overruns: number;
  seriesSelfMetric: number;
  exitCode: number | null;
  exitSignal: string | null;
  warnings: string[];
  profile: string | null;
}

interface CResult {
  sweepsMs: number[];
  medianMs: number;
}

interface SizeResult {
  settings: Settings;
  expectedSum: number;
  fillMs: number;
  ours: OursResult;
  c: CResult;
  baseline: BaselineResult;
  obvious: { cpuMsPerCycle: number; cpuMsPerCycleNoGzip: number; parts: Record<string, number>; updateMs: number; peakRssMb: number };
  ratios: { cpu: number; cpuNoGzip: number; readCycleToC: number; peakRss: number };
  goals: Record<string, boolean>;
  /** What makes a figure less certain (not a failure). */
  notes: string[];
  problems: string[];
}

const C_LINE = /^\{"ns":(\d+),"entries":(\d+),"sum":(\d+)\}$/;

function runC(n: number, sum: number, rounds: number, problems: string[]): CResult {
  const out = execFileSync(C_BIN, [PIN, 'batch', String(rounds + 1), String(BATCH_SIZE)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const sweeps: number[] = [];
  for (const line of out.trim().split('\n')) {
    const m = C_LINE.exec(line.trim());
    if (m === null) throw new Error(`${C_BIN}: unexpected output ${JSON.stringify(line)}`);
    if (Number(m[2]) !== n || Number(m[3]) !== sum) problems.push(`C read ${m[2]} entries summing to ${m[3]}, expected ${n} and ${sum}`);
    sweeps.push(Number(m[1]) / 1e6);
  }
  const measured = sweeps.slice(1);
  return { sweepsMs: measured, medianMs: median(measured) };
}

function runBaseline(s: Settings): Promise<BaselineResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BASELINE_BUNDLE, String(s.n), String(s.baselineCycles), String(Math.max(1, s.warmUp))], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.add(child);
    let out = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (c: string) => (out += c));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (code !== 0) {
        reject(new Error(`bench/series-baseline.ts exited with ${code ?? signal}`));
        return;
      }
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as BaselineResult);
      } catch (e) {
        reject(new Error(`bench/series-baseline.ts: unreadable result (${(e as Error).message}): ${out.slice(0, 200)}`));
      }
    });
  });
}

/** The main thread's profile of process `pid` (node names them CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main one, the others are e.g. tsx's loader worker). */
function profileOf(pid: number): string | null {
  if (!existsSync(PROF_DIR)) return null;
  const f = readdirSync(PROF_DIR).find((x) => x.endsWith('.cpuprofile') && x.includes(`.${pid}.0.`));
  return f === undefined ? null : path.join(PROF_DIR, f);
}

/**
 * BENCH_SERIES_LATENCY_SECONDS of open-loop scrapes of `port`, plain and gzip each at BENCH_SERIES_RATE
 * per second, half a period apart; a request starts on time whether or not earlier ones answered.
 */
async function openLoop(port: number, s: Settings, onResponse: (r: Response) => Promise<void>): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const period = 1000 / s.rate;
  const count = Math.floor(s.latencySeconds * s.rate);
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    for (const [enc, offset] of [['identity', 0], ['gzip', period / 2]] as const) {
      await sleep(t0 + i * period + offset - performance.now());
      pending.push(scrapeOnce(agent, port, enc, 'latency').then(onResponse));
    }
  }
  await Promise.all(pending);
  agent.destroy();
}

/**
 * The floor of /metrics latency on this machine: bench/static-server.mjs serving the daemon's last
 * documents, plain and gzip, scraped by the same open loop after the daemon has exited. Whatever of
 * the daemon's p99 the floor also has is the machine's and the client's, not the exporter's.
 */
async function runFloor(s: Settings, bodies: Record<Encoding, Buffer | undefined>, problems: string[]): Promise<Record<Encoding, Dist> | null> {
  if (bodies.identity === undefined || bodies.gzip === undefined) return null;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bpf-map-exporter-bench-floor-'));
  writeFileSync(path.join(dir, 'plain'), bodies.identity);
  writeFileSync(path.join(dir, 'gzip'), bodies.gzip);
  const child = spawn(process.execPath, [path.join(ROOT, 'bench/static-server.mjs'), path.join(dir, 'plain'), path.join(dir, 'gzip')], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout?.once('data', (b: Buffer) => resolve((JSON.parse(b.toString()) as { port: number }).port));
      child.once('exit', (code) => reject(new Error(`the static server exited (code ${code}) before listening`)));
    });
    const latencies: Record<Encoding, number[]> = { identity: [], gzip: [] };
    await openLoop(port, s, async (r) => {
      if (r.scrape.status !== 200 || r.scrape.error !== undefined) problems.push(`floor scrape failed: ${r.scrape.error ?? r.scrape.status}`);
      else latencies[r.scrape.encoding].push(r.scrape.latencyMs);
    });
    return { identity: dist(latencies.identity), gzip: dist(latencies.gzip) };
  } finally {
    child.kill('SIGTERM');
    children.delete(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runOurs(s: Settings, sum: number, otlp: OtlpReceiver, problems: string[]): Promise<OursResult> {
  const config = path.join(tmpDir ?? os.tmpdir(), `series-${s.n}.yaml`);
  writeFileSync(config, flowConfig(PIN, `${s.intervalS * 1000}ms`));
  otlp.reset();
  const d = await startDaemon(config, s, otlp.port);
  const intervalMs = s.intervalS * 1000;
  process.stdout.write(`  daemon ready after ${f0(d.startToReadyMs)} ms (pid ${d.pid}, port ${d.port})\n`);
  try {
    const reader = new DocReader();
    const scrapes: Scrape[] = [];
    const cycleAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let documentsChecked = 0;
    let lastEnd = NaN;
    let lastDoc: DocInfo | undefined;
    const seenDocs = new Map<number, DocInfo>(); // by reads_total

    const record = async (r: Response, check: boolean): Promise<void> => {
      const s2 = r.scrape;
      scrapes.push(s2);
      if (s2.error !== undefined || s2.status !== 200) return;
      const { doc, text } = await reader.read(r);
      if (doc === undefined) {
        problems.push(`${s2.encoding} scrape: no self-metrics of job ${JOB} in the document`);
        return;
      }
      s2.doc = doc;
      if (!seenDocs.has(doc.reads)) seenDocs.set(doc.reads, doc);
      if (!(doc.lastReadS * 1000 <= lastEnd)) lastEnd = doc.lastReadS * 1000;
      if (lastDoc === undefined || doc.reads > lastDoc.reads) lastDoc = doc;
      if (check && text !== undefined) {
        const c = checkDocument(text.toString('utf8'), s.n, sum);
        documentsChecked++;
        for (const p of c.problems) problems.push(`MISMATCH in a ${s2.encoding} document (reads_total ${doc.reads}): ${p}`);
      }
    };
    /** One scrape of each encoding, half an interval after the next read is due to end. */
    let target = NaN;
    const perCycle = async (phase: Phase, check: boolean, afterScrapes?: () => void): Promise<void> => {
      const due = Number.isFinite(lastEnd) ? lastEnd + 1.5 * intervalMs : Date.now();
      target = Number.isFinite(target) && due <= Date.now() ? target + intervalMs : due;
      // Never further than two intervals ahead (a document that went stale).
      await sleep(Math.min(target - Date.now(), 2 * intervalMs));
      const plain = await scrapeOnce(cycleAgent, d.port, 'identity', phase);
      const gz = await scrapeOnce(cycleAgent, d.port, 'gzip', phase);
      afterScrapes?.();
      await record(plain, check);
      await record(gz, check);
    };

    // Warm-up: until 1 + warmUp reads are done, one scrape of each encoding per cycle.
    await record(await scrapeOnce(cycleAgent, d.port, 'identity', 'warm-up'), false);
    while ((lastDoc?.reads ?? 0) < 1 + s.warmUp) await perCycle('warm-up', false);
    process.stdout.write(`  warm-up: ${lastDoc?.reads ?? 0} reads done; cost window: ${s.cycles} cycles of ${s.intervalS} s\n`);

    // Cost window. Each document is checked series by series as it comes (the daemon is between reads
    // then); the CPU sample of the window's end is taken right after its last scrapes, before their check.
    const gcDoc0 = lastDoc;
    const busy0 = machineBusyMs();
    const self0 = process.cpuUsage();
    const wall0 = performance.now();
    const cpu0 = procCpuMs(d.pid);
    const main0 = mainThreadCpuMs(d.pid);
    let cpu1 = cpu0;
    let main1 = main0;
    const costT0 = Date.now();
    let costT1 = costT0;
    const fullCheck = s.n <= FULL_CHECK_MAX;
    for (let k = 0; k < s.cycles; k++) {
      const last = k === s.cycles - 1;
      await perCycle('cost', fullCheck || k === 0 || last, () => {
        if (!last) return;
        cpu1 = procCpuMs(d.pid);
        main1 = mainThreadCpuMs(d.pid);
        costT1 = Date.now();
      });
    }
    const otlpInCost = otlp.requests.filter((r) => r.at >= costT0 && r.at <= costT1);
    const otlpBodyOfCost = otlp.lastBody;

    // Latency window: open loop, both encodings.
    const lcpu0 = procCpuMs(d.pid);
    const latT0 = Date.now();
    await openLoop(d.port, s, (r) => record(r, false));
    const lcpu1 = procCpuMs(d.pid);
    const latT1 = Date.now();
    const selfCpu = process.cpuUsage(self0);
    const benchCpuMs = (selfCpu.user + selfCpu.system) / 1000;
    const otherCpuMs = machineBusyMs() - busy0 - benchCpuMs - (lcpu1 - cpu0);
    const machineMs = (performance.now() - wall0) * os.availableParallelism();
    // One more scrape so that the read that may have ended during the last requests is known.
    await record(await scrapeOnce(cycleAgent, d.port, 'identity', 'warm-up'), false);
    // Reads in a window: those whose end (last_read_timestamp, the same clock as Date.now()) falls
    // between the window's two CPU samples, from every document seen.
    const readsAt = (t: number): number => Math.max(0, ...[...seenDocs.values()].filter((x) => x.lastReadS * 1000 <= t).map((x) => x.reads));
    const window = (cpuMs: number, t0: number, t1: number): WindowCpu => {
      const reads = readsAt(t1) - readsAt(t0);
      return { cpuMs, reads, cpuMsPerCycle: cpuMs / Math.max(1, reads), seconds: (t1 - t0) / 1000 };
    };
    const cost = window(cpu1 - cpu0, costT0, costT1);
    const latency = window(lcpu1 - lcpu0, latT0, latT1);
    process.stdout.write(
      `  cost window: ${cost.reads} reads, daemon CPU ${f0(cost.cpuMs)} ms = ${f1(cost.cpuMsPerCycle)} ms per cycle; ${documentsChecked} documents checked; ` +
      `open-loop window: ${latency.reads} reads, ${f1(latency.cpuMsPerCycle)} ms per cycle\n` +
      `  cost window per cycle: main thread ${f1((main1 - main0) / Math.max(1, cost.reads))} ms, other threads ${f1((cost.cpuMs - (main1 - main0)) / Math.max(1, cost.reads))} ms\n`,
    );
    // Major collections (forced by src/util/external-gc.ts or V8's own), as the daemon's documents count them.
    const majorGcs = lastDoc !== undefined && gcDoc0 !== undefined ? lastDoc.majorGcs - gcDoc0.majorGcs : NaN;
    const majorGcMs = lastDoc !== undefined && gcDoc0 !== undefined ? (lastDoc.majorGcS - gcDoc0.majorGcS) * 1000 : NaN;
    const gcReads = lastDoc !== undefined && gcDoc0 !== undefined ? lastDoc.reads - gcDoc0.reads : NaN;
    process.stdout.write(`  major collections in both windows: ${majorGcs} over ${gcReads} reads, ${f1(majorGcMs)} ms in all\n`);
    cycleAgent.destroy();

    // Every scrape and every read's end, for a timeline of the slow ones (epoch ms).
    writeFileSync(
      path.join(ROOT, `bench/out/series-scrapes-${s.n}.json`),
      JSON.stringify({ readEnds: [...seenDocs.values()].map((x) => x.lastReadS * 1000), scrapes: scrapes.map(({ doc: _, ...x }) => x) }),
    );
    const peakRssMb = procStatusMb(d.pid, 'VmHWM');
    const rssMb = procStatusMb(d.pid, 'VmRSS');
    const exit = await stopDaemon(d);
    if (exit.code !== 0) problems.push(`the daemon exited with code ${exit.code} (signal ${exit.signal}) after SIGTERM`);
    const profile = CPU_PROF ? profileOf(d.pid) : null;
    const floor = await runFloor(s, reader.bodies(), problems);

    // Read cycles: the reads that ended in each window.
    const endedIn = (t0: number, t1: number): DocInfo[] => [...seenDocs.values()].filter((x) => x.lastReadS * 1000 > t0 && x.lastReadS * 1000 <= t1);
    const costDocs = endedIn(costT0, costT1);
    const latDocs = endedIn(latT0, latT1);
    const readSamples = costDocs.map((x) => x.durationS * 1000);

    // OTLP.
    if (otlpInCost.length < s.cycles - 1) problems.push(`${otlpInCost.length} OTLP requests arrived in the cost window of ${s.cycles} cycles, expected at least ${s.cycles - 1}`);
    let decoded: { points: number; sum: number } | null = null;
    if (otlpBodyOfCost !== undefined && s.n <= OTLP_DECODE_MAX) {
      decoded = decodeOtlp(otlpBodyOfCost);
      if (decoded.points !== s.n || decoded.sum !== sum) problems.push(`MISMATCH in an OTLP request: ${decoded.points} points of ${METRIC} summing to ${decoded.sum}, expected ${s.n} and ${sum}`);
    } else if (otlpBodyOfCost === undefined) {
      problems.push('no OTLP request arrived');
    }

    const windows = scrapes.filter((x) => x.phase === 'cost' || x.phase === 'latency');
    const scrapeStats = (enc: Encoding): ScrapeStats => {
      const mine = windows.filter((x) => x.encoding === enc).sort((a, b) => a.start - b.start);
      const ok = mine.filter((x) => x.status === 200 && x.error === undefined);
      const errs = mine.filter((x) => !(x.status === 200 && x.error === undefined));
      // First scrape of this encoding started after each read that ended within the windows.
      const first: Scrape[] = [];
      const ends = [...seenDocs.values()].map((x) => ({ end: x.lastReadS * 1000, reads: x.reads })).sort((a, b) => a.end - b.end);
      let stale = 0;
      for (const e of ends) {
        if (ok.length === 0 || e.end < ok[0].start - intervalMs) continue;
        const f = ok.find((x) => x.start >= e.end);
        if (f === undefined || first.includes(f)) continue;
        first.push(f);
        if ((f.doc?.reads ?? 0) < e.reads) stale++;
      }
      return {
        all: dist(ok.map((x) => x.latencyMs)),
        firstAfterSnapshot: dist(first.map((x) => x.latencyMs)),
        firstAfterStale: stale,
        perCycle: dist(ok.filter((x) => x.phase === 'cost').map((x) => x.latencyMs)),
        latencyWindow: dist(ok.filter((x) => x.phase === 'latency').map((x) => x.latencyMs)),
        medianBytes: median(ok.map((x) => x.bytes)),
        retried: mine.filter((x) => x.retried).length,
        errors: errs.length,
        errorMessages: [...new Set(errs.map((x) => x.error ?? `HTTP ${x.status}`))].slice(0, 5),
      };
    };
    const stats = { identity: scrapeStats('identity'), gzip: scrapeStats('gzip') };
    for (const enc of ['identity', 'gzip'] as const) {
      if (stats[enc].errors > 0) problems.push(`${stats[enc].errors} ${enc} scrapes failed: ${stats[enc].errorMessages.join(' | ')}`);
    }
    const final = lastDoc as DocInfo;
    if (final.series !== s.n) problems.push(`bpf_map_exporter_series says ${final.series}, expected ${s.n}`);
    return {
      startToReadyMs: d.startToReadyMs, cost, latency,
      readCycleMs: { median: median(readSamples), samples: readSamples, latencyWindowMedian: median(latDocs.map((x) => x.durationS * 1000)) },
      scrapes: stats, floor, peakRssMb, rssMb,
      otlp: {
        requestsInCostWindow: otlpInCost.length, requestsTotal: otlp.requests.length,
        medianBytes: median(otlp.requests.map((r) => r.bytes)), bytesTotal: otlp.requests.reduce((a, r) => a + r.bytes, 0),
        contentType: otlp.requests[0]?.contentType, contentEncoding: otlp.requests[0]?.contentEncoding, decoded,
      },
      machineShare: { daemon: (lcpu1 - cpu0) / machineMs, bench: benchCpuMs / machineMs, other: Math.max(0, otherCpuMs) / machineMs },
      documentsChecked, readsTotal: final.reads, overruns: final.overruns, seriesSelfMetric: final.series,
      exitCode: exit.code, exitSignal: exit.signal, warnings: d.warnings, profile,
    };
  } finally {
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
  }
}

async function runSize(s: Settings, otlp: OtlpReceiver): Promise<SizeResult> {
  const problems: string[] = [];
  rmSync(PIN_DIR, { recursive: true, force: true }); // stale pins of an interrupted run
  pinsOwned = true;
  mkdirSync(PIN_DIR);
  const sum = expectedSum(s.n);
  let map: BpfMap | undefined;
  try {
    const filled = createFlowMap(s.n, PIN);
    map = filled.map;
    process.stdout.write(
      `\n== ${s.n.toLocaleString('en-US')} flows: filled in ${f0(filled.fillMs)} ms, expected sum ${sum}; interval ${s.intervalS} s, ` +
      `${s.cycles} cycles measured after ${s.warmUp} warm-up, scrapes ${s.rate}/s per encoding for ${s.latencySeconds} s\n`,
    );
    const ours = await runOurs(s, sum, otlp, problems);
    process.stdout.write(`  daemon: exit ${ours.exitCode}, peak RSS ${f0(ours.peakRssMb)} MB${ours.profile === null ? '' : `, CPU profile ${path.relative(ROOT, ours.profile)}`}\n`);
    const c = runC(s.n, sum, s.cycles, problems);
    process.stdout.write(`  C read: median ${f1(c.medianMs)} ms over ${c.sweepsMs.length} sweeps\n`);
    const baseline = await runBaseline(s);
    const med = (xs: PartSample[]): number => median(xs.map((x) => x.cpuMs));
    const parts = {
      cRead: c.medianMs, render: med(baseline.parts.render), gzip: med(baseline.parts.gzip),
      collect: med(baseline.parts.collect), serialize: med(baseline.parts.serialize),
    };
    const obviousCpu = parts.cRead + parts.render + parts.gzip + parts.collect + parts.serialize;
    const obvious = {
      cpuMsPerCycle: obviousCpu, cpuMsPerCycleNoGzip: obviousCpu - parts.gzip, parts,
      updateMs: med(baseline.parts.update), peakRssMb: baseline.hwmMb,
    };
    const ratios = {
      cpu: ours.cost.cpuMsPerCycle / obvious.cpuMsPerCycle,
      cpuNoGzip: ours.cost.cpuMsPerCycle / obvious.cpuMsPerCycleNoGzip,
      readCycleToC: ours.readCycleMs.median / c.medianMs,
      peakRss: ours.peakRssMb / obvious.peakRssMb,
    };
    const p99 = (enc: Encoding): number => Math.max(ours.scrapes[enc].all.p99, ours.scrapes[enc].firstAfterSnapshot.p99);
    const goals: Record<string, boolean> = {};
    if (s.n === 10_000) goals['CPU ours/obvious <= 0.3'] = ratios.cpu <= 0.3;
    if (s.n === 100_000) {
      goals['CPU ours/obvious <= 0.25'] = ratios.cpu <= 0.25;
      goals['peak RSS <= 160 MB'] = ours.peakRssMb <= 160;
      goals['scrape p99 <= 25 ms (plain, first-after-snapshot included)'] = p99('identity') <= 25;
      goals['scrape p99 <= 25 ms (gzip, first-after-snapshot included)'] = p99('gzip') <= 25;
      goals['read cycle <= 2x C'] = ratios.readCycleToC <= 2;
    }
    if (s.n === 1_000_000) {
      goals['peak RSS <= 700 MB'] = ours.peakRssMb <= 700;
      goals['scrape p99 <= 1.5 s (plain, first-after-snapshot included)'] = p99('identity') <= 1500;
      goals['scrape p99 <= 1.5 s (gzip, first-after-snapshot included)'] = p99('gzip') <= 1500;
    }
    const notes: string[] = [];
    if (ours.cost.reads !== s.cycles) {
      notes.push(`the daemon read the map ${ours.cost.reads} times in the cost window of ${s.cycles} per-cycle scrapes: cycles outlasted the interval or ` +
        'scrapes came late, so not every snapshot was rendered once per encoding (CPU per cycle is per read)');
    }
    if (ours.overruns > 0) notes.push(`${ours.overruns} read overruns (a cycle outlasted its interval)`);
    const other = ours.machineShare.other;
    if (other > 0.05) notes.push(`other processes used ${(other * 100).toFixed(0)}% of the machine's CPU time while the daemon was measured`);
    return { settings: s, expectedSum: sum, fillMs: filled.fillMs, ours, c, baseline, obvious, ratios, goals, notes, problems };
  } finally {
    map?.close();
    removePins(PIN_DIR);
    pinsOwned = false;
  }
}

// --- report --------------------------------------------------------------------------------------

function report(r: SizeResult): string {
  const o = r.ours;
  const b = r.baseline;
  const p = r.obvious.parts;
  let out = `\n${r.settings.n.toLocaleString('en-US')} flows (interval ${r.settings.intervalS} s; ours: ${o.cost.reads} reads in the cost window; obvious: ${b.cycles} cycles)\n`;
  out += table(['', 'ours', 'obvious', 'ours/obvious'], [
    ['read cycle, median ms (obvious: C batch loop)', f1(o.readCycleMs.median), f1(r.c.medianMs), ratio(r.ratios.readCycleToC)],
    ['CPU per cycle, ms', f1(o.cost.cpuMsPerCycle), f1(r.obvious.cpuMsPerCycle), ratio(r.ratios.cpu)],
    ['CPU per cycle without gzip (obvious), ms', f1(o.cost.cpuMsPerCycle), f1(r.obvious.cpuMsPerCycleNoGzip), ratio(r.ratios.cpuNoGzip)],
    ['CPU per cycle while scraped open-loop, ms', f1(o.latency.cpuMsPerCycle), '', ''],
    ['peak RSS (VmHWM), MB', f0(o.peakRssMb), f0(r.obvious.peakRssMb), ratio(r.ratios.peakRss)],
    ['RSS at end, MB', f0(o.rssMb), f0(b.rssMb), ''],
    ['/metrics body plain', mb(o.scrapes.identity.medianBytes), mb(b.textBytes), ratio(o.scrapes.identity.medianBytes / b.textBytes)],
    ['/metrics body gzip', mb(o.scrapes.gzip.medianBytes), mb(b.gzipBytes), ratio(o.scrapes.gzip.medianBytes / b.gzipBytes)],
    ['OTLP request (median)', mb(o.otlp.medianBytes), mb(b.otlpBytes), ratio(o.otlp.medianBytes / b.otlpBytes)],
  ], 1);
  out += `obvious CPU parts (median ms): C read ${f1(p.cRead)}, prom-client render ${f1(p.render)}, gzip ${f1(p.gzip)}, ` +
    `OTel collect ${f1(p.collect)}, serialize ${f1(p.serialize)}; not counted: update ${f1(r.obvious.updateMs)}; ` +
    `whole baseline loop ${f1(b.loopCpuMsPerCycle)} per cycle (with update)\n`;
  const rows: string[][] = [];
  for (const enc of ['identity', 'gzip'] as const) {
    const s = o.scrapes[enc];
    rows.push([enc === 'identity' ? 'plain' : 'gzip', 'all', String(s.all.count), f1(s.all.p50), f1(s.all.p99), f1(s.all.max), '']);
    rows.push(['', 'first after snapshot', String(s.firstAfterSnapshot.count), f1(s.firstAfterSnapshot.p50), f1(s.firstAfterSnapshot.p99), f1(s.firstAfterSnapshot.max), String(s.firstAfterStale)]);
    rows.push(['', 'once per cycle', String(s.perCycle.count), f1(s.perCycle.p50), f1(s.perCycle.p99), f1(s.perCycle.max), '']);
    rows.push(['', `open loop ${r.settings.rate}/s`, String(s.latencyWindow.count), f1(s.latencyWindow.p50), f1(s.latencyWindow.p99), f1(s.latencyWindow.max), '']);
    const fl = o.floor?.[enc];
    if (fl !== undefined) rows.push(['', 'floor: static server', String(fl.count), f1(fl.p50), f1(fl.p99), f1(fl.max), '']);
  }
  out += table(['/metrics', 'scrapes', 'count', 'p50 ms', 'p99 ms', 'max ms', 'stale'], rows, 2);
  out += `OTLP: ${o.otlp.requestsInCostWindow} requests in the cost window, ${o.otlp.requestsTotal} in all (${mb(o.otlp.bytesTotal)}), ` +
    `${o.otlp.contentType ?? '?'}${o.otlp.contentEncoding === undefined ? '' : `, ${o.otlp.contentEncoding}`}` +
    `${o.otlp.decoded === null ? '' : `; last of the cost window: ${o.otlp.decoded.points} points, sum ${o.otlp.decoded.sum}`}\n`;
  const retried = o.scrapes.identity.retried + o.scrapes.gzip.retried;
  if (retried > 0) out += `scrapes sent again after a keep-alive race: ${retried} (latency counted from the first attempt)\n`;
  out += `daemon: ready after ${f0(o.startToReadyMs)} ms, reads_total ${o.readsTotal}, overruns ${o.overruns}, series ${o.seriesSelfMetric}, ` +
    `${o.documentsChecked} documents checked, exit ${o.exitCode}, ${o.warnings.length} warnings; machine CPU during the windows: ` +
    `daemon ${pct(o.machineShare.daemon)}, bench ${pct(o.machineShare.bench)}, other processes ${pct(o.machineShare.other)}` +
    `${o.profile === null ? '' : `; CPU profile: ${path.relative(ROOT, o.profile)}`}\n`;
  for (const w of o.warnings.slice(0, 5)) out += `  ${w}\n`;
  for (const [g, met] of Object.entries(r.goals)) out += `goal ${r.settings.n}: ${g}: ${met ? 'met' : 'NOT met'}\n`;
  for (const nt of r.notes) out += `note: ${nt}\n`;
  for (const pr of r.problems) out += `PROBLEM: ${pr}\n`;
  return out;
}

// --- main ----------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const list = sizes();
  if (!existsSync(C_BIN)) {
    mkdirSync(path.dirname(C_BIN), { recursive: true });
    execFileSync('cc', ['-O2', '-o', C_BIN, C_SRC, '-lbpf'], { stdio: 'inherit' });
  }
  if (!existsSync(path.join(EXPORTER_DIR, 'exporter/main.ts'))) throw new Error(`${EXPORTER_DIR} has no exporter/main.ts`);
  buildContestants();
  checkBpffs(path.dirname(PIN_DIR));
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'bpf-map-exporter-bench-series-'));
  const started = performance.now();
  const machine = {
    nproc: os.availableParallelism(), cpuModel: os.cpus()[0]?.model ?? 'unknown', kernel: os.release(), node: process.version,
    libbpf: run('dpkg-query', ['-W', '-f=${Version}', 'libbpf1']), loadavg: os.loadavg(),
  };
  // BENCH_SERIES_EXPORTER_LABEL names a tree that is not a git work tree (e.g. the commit it was exported from).
  const exporterCommit = process.env.BENCH_SERIES_EXPORTER_LABEL ?? run('git', ['-C', EXPORTER_DIR, 'rev-parse', '--short', 'HEAD']);
  // null: not a git work tree (e.g. an export of a commit).
  const status = run('git', ['-C', EXPORTER_DIR, 'status', '--porcelain', '--', 'src', 'exporter']);
  const exporterDirty = status === 'unknown' ? null : status !== '';
  process.stdout.write(
    `bpf-map-exporter series benchmark: sizes ${list.join(', ')}; exporter ${EXPORTER_DIR} (${exporterCommit}${exporterDirty === null ? ', not a git work tree' : ''}${exporterDirty === true ? ', uncommitted changes in src/ or exporter/' : ''})\n` +
    `machine: nproc ${machine.nproc}, ${machine.cpuModel}, kernel ${machine.kernel}, node ${machine.node}, libbpf ${machine.libbpf}, load ${machine.loadavg.map((x) => x.toFixed(2)).join(' ')}` +
    `${CPU_PROF ? '\nthe daemon runs with --cpu-prof (slower)' : ''}\n`,
  );
  const otlp = new OtlpReceiver();
  await otlp.start();
  const results: SizeResult[] = [];
  for (const n of list) {
    const r = await runSize(settingsFor(n), otlp);
    results.push(r);
    process.stdout.write(report(r));
  }
  const totalS = (performance.now() - started) / 1000;
  mkdirSync(path.dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify({
    date: new Date().toISOString(), machine, exporter: { dir: EXPORTER_DIR, commit: exporterCommit, dirty: exporterDirty }, cpuProfile: CPU_PROF,
    totalSeconds: totalS, config: flowConfig(PIN, '<interval>'), results,
  }, null, 2)}\n`);
  const problems = results.reduce((k, r) => k + r.problems.length, 0);
  process.stdout.write(`\nresults written to ${path.relative(ROOT, RESULTS)} (${totalS.toFixed(0)} s in all)${problems > 0 ? `; ${problems} problems` : ''}\n`);
  return problems > 0 ? 1 : 0;
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

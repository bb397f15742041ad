/**
 * Runs cloudflare/ebpf_exporter's examples under our exporter, one at a time, and says what each gives.
 *
 *   node --import tsx scripts/ebpf-exporter-examples.ts CHECKOUT [--names a,b] [--json OUT.json] [--markdown OUT.md] [--reclaim NAMES]
 *
 * CHECKOUT is their repository (or its examples/ folder) with the examples built: NAME.yaml beside
 * NAME.bpf.o. For each example (or those named) it runs, as a user of theirs would:
 *
 * 1. `check --config.dir EXAMPLES --config.names NAME`: the fast verdict (exit code, its lines);
 * 2. `run` with the same flags on a free loopback port; waits for the listening line (or the exit),
 *    then for the object's attach line; drives a small bounded workload (syscalls, file writes with
 *    fsync, TCP connections and UDP datagrams on loopback, a few short processes, a busy loop);
 * 3. dumps each metric's map with bpftool (found through the exporter's own fds), waits for the
 *    exporter's next read, scrapes /metrics, dumps the map again, and compares: the series count and
 *    the sum of the samples must lie between what the two dumps give (counters and histogram counts
 *    only grow, so the exporter's read is bracketed by the two dumps);
 * 4. stops the exporter (SIGINT, then SIGKILL after 6 s).
 *
 * It prints a markdown table (one row per example, for docs/migrating-from-ebpf-exporter.md) and
 * writes every detail as JSON. Nothing here is specific to one example: re-run it after the exporter
 * changes and paste the rows.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, readSync, rmSync, writeFileSync, openSync, writeSync, fsyncSync, closeSync, statSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { createSocket } from 'node:dgram';
import { basename, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const START_TIMEOUT_MS = 30_000;
const ATTACH_WAIT_MS = 8_000;
const READ_WAIT_MS = 7_000;
const STOP_GRACE_MS = 6_000;

// ---------- their config, as far as this script needs it ----------

interface TheirLabel { name: string; size: number; padding: number; decoders: string[] }
interface TheirMetric {
  kind: 'counter' | 'histogram';
  name: string;
  labels: TheirLabel[];
  bucketMax?: number;
  bucketMin?: number;
  bucketMultiplier?: number;
  bucketType?: string;
  perfEventArray: boolean;
}
interface TheirConfig { metrics: TheirMetric[]; sections: string[] }

function readTheirConfig(file: string): TheirConfig {
  const doc = (parseYaml(readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown>;
  const metrics: TheirMetric[] = [];
  const m = (doc.metrics ?? {}) as Record<string, unknown>;
  for (const kind of ['counter', 'histogram'] as const) {
    for (const raw of ((m[`${kind}s`] ?? []) as Record<string, unknown>[])) {
      const labels = ((raw.labels ?? []) as Record<string, unknown>[]).map((l) => ({
        name: String(l.name),
        size: Number(l.size ?? 0),
        padding: Number(l.padding ?? 0),
        decoders: ((l.decoders ?? []) as Record<string, unknown>[]).map((d) => String(d.name)),
      }));
      metrics.push({
        kind,
        name: String(raw.name),
        labels,
        bucketMax: raw.bucket_max === undefined ? undefined : Number(raw.bucket_max),
        bucketMin: raw.bucket_min === undefined ? undefined : Number(raw.bucket_min),
        bucketMultiplier: raw.bucket_multiplier === undefined ? undefined : Number(raw.bucket_multiplier),
        bucketType: raw.bucket_type === undefined ? undefined : String(raw.bucket_type),
        perfEventArray: raw.perf_event_array === true,
      });
    }
  }
  return { metrics, sections: Object.keys(doc).filter((k) => k !== 'metrics').concat(Object.keys(m).filter((k) => k !== 'counters' && k !== 'histograms').map((k) => `metrics.${k}`)) };
}

/** The ELF section names of the object's programs (readelf), for saying which attach types it needs. */
function programSections(object: string): string[] {
  const r = spawnSync('readelf', ['-SW', object], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return [];
  const out: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /\]\s+(\S+)\s+PROGBITS\s+\S+\s+\S+\s+\S+\s+\S+\s+(\S+)/.exec(line);
    if (m !== null && m[2].includes('X')) out.push(m[1]);
  }
  return out;
}

// ---------- the machine ----------

interface Machine {
  kernel: string;
  cpus: number;
  pmus: string[];
  kprobes: boolean;
  /** BPF_PROG_TYPE_TRACING (fentry, fexit) as bpftool's feature probe finds it. */
  tracingPrograms: boolean;
  hardwarePmu: boolean;
  /** The PATH the exporter and the workload get, and why it differs from ours, if it does. */
  path: string;
  pathNote?: string;
}

function machine(): Machine {
  const pmus = existsSync('/sys/bus/event_source/devices') ? readdirSync('/sys/bus/event_source/devices').sort() : [];
  const kprobes = pmus.includes('kprobe') || existsSync('/sys/kernel/tracing/kprobe_events') || existsSync('/sys/kernel/debug/tracing/kprobe_events');
  const probe = spawnSync('bpftool', ['feature', 'probe', 'kernel'], { encoding: 'utf8', timeout: 60_000 });
  const tracingPrograms = !/program_type tracing is NOT available/.test(probe.stdout ?? '');
  // usdt/python3:... finds python3 on PATH; libbpf needs an ELF file there, not a script (pyenv's shims are).
  let path = process.env.PATH ?? '/usr/bin:/bin';
  let pathNote: string | undefined;
  const python = path.split(':').map((d) => join(d, 'python3')).find((f) => existsSync(f));
  if (python !== undefined && !isElf(python) && isElf('/usr/bin/python3')) {
    path = `/usr/bin:${path}`;
    pathNote = `python3 first on PATH (${python}) is not an ELF file; /usr/bin is put first for the exporter and the workload, so usdt/python3:... finds /usr/bin/python3 (without it libbpf's usdt attach fails: EBADF)`;
  }
  return { kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), cpus: cpuCount(), pmus, kprobes, tracingPrograms, hardwarePmu: pmus.includes('cpu') || pmus.some((p) => p.startsWith('cpu_')) || pmus.includes('armv8_pmuv3'), path, pathNote };
}

function isElf(file: string): boolean {
  try {
    const fd = openSync(file, 'r');
    const b = Buffer.alloc(4);
    readSync(fd, b, 0, 4, 0);
    closeSync(fd);
    return b.toString('latin1') === '\x7fELF';
  } catch {
    return false;
  }
}

let kernelBtf: Set<string> | undefined;
/** Functions and tracepoints (btf_trace_NAME) in the kernel's BTF. */
function kernelTargets(): Set<string> {
  if (kernelBtf !== undefined) return kernelBtf;
  const r = spawnSync('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux'], { encoding: 'utf8', timeout: 120_000, maxBuffer: 1 << 30 });
  kernelBtf = new Set();
  for (const m of (r.stdout ?? '').matchAll(/^\[\d+\] (?:FUNC|TYPEDEF) '([^']+)'/gm)) kernelBtf.add(m[1]);
  return kernelBtf;
}

/**
 * What the object's programs need that this machine lacks: kprobes, fentry/fexit, a hardware PMU,
 * or the kernel function or tracepoint a section names (checked in the kernel's BTF).
 */
function lacks(sections: string[], mach: Machine): string[] {
  const out = new Set<string>();
  const btf = kernelTargets();
  for (const sec of sections) {
    const [kind, target] = [sec.slice(0, sec.indexOf('/')), sec.slice(sec.indexOf('/') + 1)];
    if ((kind === 'kprobe' || kind === 'kretprobe') && !mach.kprobes) out.add('kprobes');
    if ((kind === 'fentry' || kind === 'fexit') && !mach.tracingPrograms) out.add('fentry/fexit programs');
    if (kind === 'perf_event' && /type=[03],/.test(target) && !mach.hardwarePmu) out.add('a hardware PMU');
    const fn = target.split('+')[0];
    if (['kprobe', 'kretprobe', 'fentry', 'fexit'].includes(kind) && btf.size > 0 && !btf.has(fn)) out.add(`kernel function ${fn}`);
    if ((kind === 'tp_btf' || kind === 'raw_tp') && btf.size > 0 && !btf.has(`btf_trace_${target}`)) out.add(`tracepoint ${target}`);
  }
  return [...out];
}

function cpuCount(): number {
  // bpftool prints per-CPU values for every possible CPU.
  const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
  let n = 0;
  for (const part of text.split(',')) {
    const [a, b] = part.split('-').map(Number);
    n += b === undefined ? 1 : b - a + 1;
  }
  return n;
}

// ---------- the exporter ----------

function exporterArgs(command: 'check' | 'run', dir: string, name: string, port?: number): string[] {
  const args = ['--import', 'tsx', join(ROOT, 'exporter/main.ts'), command, '--config.dir', dir, '--config.names', name];
  if (port !== undefined) args.push('--web.listen-address', `127.0.0.1:${port}`);
  return args;
}

interface CheckResult { exit: number | null; lines: string[] }

/** The environment of the exporter and the workload's processes (PATH as machine() chose it). */
let childEnv: NodeJS.ProcessEnv = process.env;

function check(dir: string, name: string): CheckResult {
  const r = spawnSync(process.execPath, exporterArgs('check', dir, name), { cwd: ROOT, env: childEnv, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('  '));
  return { exit: r.status, lines };
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((res) => srv.close(() => res()));
  return port;
}

interface LogLine { level?: string; msg?: string; [k: string]: unknown }

class Exporter {
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  exit: number | null | undefined;
  private waiters: (() => void)[] = [];

  constructor(dir: string, name: string, readonly port: number) {
    this.child = spawn(process.execPath, exporterArgs('run', dir, name, port), { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
    let out = '';
    this.child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      let i;
      while ((i = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.stderr.push(line);
        }
        this.wake();
      }
    });
    let err = '';
    this.child.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      let i;
      while ((i = err.indexOf('\n')) >= 0) {
        const line = err.slice(0, i);
        err = err.slice(i + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          if (line.trim() !== '' && !line.startsWith('  ')) this.stderr.push(line);
        }
        this.wake();
      }
    });
    this.child.on('exit', (code) => {
      this.exit = code;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when pred holds (true) or the time is up or the process has exited (false). */
  async until(pred: () => boolean, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (this.exit !== undefined || Date.now() >= end) return pred();
      await new Promise<void>((res) => {
        const t = setTimeout(res, Math.min(250, end - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
    return true;
  }

  async stop(): Promise<void> {
    if (this.exit !== undefined) return;
    this.child.kill('SIGINT');
    if (!(await this.until(() => this.exit !== undefined, STOP_GRACE_MS))) {
      this.child.kill('SIGKILL');
      await this.until(() => this.exit !== undefined, 3_000);
    }
  }

  async scrape(): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.port}/metrics`, { signal: AbortSignal.timeout(10_000) });
    return res.text();
  }
}

// ---------- /metrics ----------

interface Sample { name: string; labels: Record<string, string>; value: number }

function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , n, t] = line.split(' ');
      types.set(n, t);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    if (m[2] !== undefined) for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { types, samples };
}

const labelText = (l: Record<string, string>): string => `{${Object.entries(l).map(([k, v]) => `${k}="${v}"`).join(',')}}`;

// ---------- the maps, raw ----------

interface MapInfo { id: number; name: string; type: string; bytes_key: number; bytes_value: number }
interface RawEntry { key: Buffer; values: bigint[] }

function bpftoolJson(args: string[]): unknown {
  const r = spawnSync('bpftool', ['-j', ...args], { encoding: 'utf8', timeout: 30_000, maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`bpftool ${args.join(' ')}: ${r.stderr.trim() || r.stdout.trim()}`);
  return JSON.parse(r.stdout);
}

/** The BPF maps the process holds fds of, by id (from /proc/PID/fdinfo). */
function mapsOf(pid: number): MapInfo[] {
  const ids = new Set<number>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  for (const fd of fds) {
    try {
      if (!readlinkSync(`/proc/${pid}/fd/${fd}`).includes('bpf-map')) continue;
      const m = /map_id:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m !== null) ids.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  const out: MapInfo[] = [];
  for (const id of ids) {
    try {
      out.push(bpftoolJson(['map', 'show', 'id', String(id)]) as MapInfo);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The object's maps in the order libbpf creates them (its .maps section), by full name. */
function mapOrder(object: string): string[] {
  try {
    const btf = bpftoolJson(['btf', 'dump', 'file', object]) as { types: { id: number; kind: string; name: string; vars?: { type_id: number }[] }[] };
    const byId = new Map(btf.types.map((t) => [t.id, t]));
    const sec = btf.types.find((t) => t.kind === 'DATASEC' && t.name === '.maps');
    return (sec?.vars ?? []).map((v) => byId.get(v.type_id)?.name ?? '');
  } catch {
    return [];
  }
}

/**
 * The exporter's map for a metric. The kernel keeps 15 characters of a map's name, so maps whose
 * names share them (softirq_serviced_total, softirq_service_latency_seconds) are told apart by
 * creation order: ids grow in the order of the object's .maps section.
 */
function mapResolver(infos: MapInfo[], order: string[]): (m: TheirMetric) => MapInfo | undefined {
  return (m) => {
    const short = m.name.slice(0, 15);
    const same = infos.filter((i) => i.name === short).sort((a, b) => a.id - b.id);
    const names = order.filter((n) => n.slice(0, 15) === short);
    if (names.length <= 1) return same.at(-1);
    // The newest load of the object: its last names.length maps of that short name.
    const newest = same.slice(-names.length);
    return newest.length === names.length ? newest[names.indexOf(m.name)] : undefined;
  };
}

const hexBytes = (a: unknown): Buffer => Buffer.from((a as string[]).map((h) => Number.parseInt(h, 16)));
const u64le = (b: Buffer): bigint => (b.length >= 8 ? b.readBigUInt64LE(0) : b.length >= 4 ? BigInt(b.readUInt32LE(0)) : 0n);

function dump(id: number): RawEntry[] {
  const rows = bpftoolJson(['map', 'dump', 'id', String(id)]) as Record<string, unknown>[];
  return rows.map((r) => {
    const key = hexBytes(r.key);
    if (Array.isArray(r.values)) return { key, values: (r.values as Record<string, unknown>[]).map((v) => u64le(hexBytes(v.value))) };
    return { key, values: [u64le(hexBytes(r.value))] };
  });
}

// ---------- the workload ----------

/**
 * --reclaim NAMES: for those examples the workload also asks the kernel to drop reclaimable slab
 * objects once (vm.drop_caches = 2), which runs its shrinkers (the regexp example counts them).
 * Host-wide, so only for the examples named.
 */
let reclaimFor: string[] = [];

async function workload(ms: number, reclaim: boolean): Promise<void> {
  const end = Date.now() + ms;
  const dir = mkdtempSync(join('/var/tmp', 'ebpfx-load-'));
  try {
    // TCP on loopback: a server, connections with a little data each.
    const srv = createServer((s) => s.on('data', (d) => s.end(d)));
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
    const port = (srv.address() as AddressInfo).port;
    // UDP: a socket that never reads, with a small buffer, gets more than it holds (drops).
    const sink = createSocket({ type: 'udp4', recvBufferSize: 4096 });
    await new Promise<void>((res) => sink.bind(0, '127.0.0.1', () => res()));
    const udpPort = sink.address().port;
    const sender = createSocket('udp4');
    let round = 0;
    while (Date.now() < end && round < 20) {
      round++;
      // syscalls and file I/O with fsync
      for (let i = 0; i < 10; i++) {
        const f = join(dir, `f${round}-${i}`);
        const fd = openSync(f, 'w');
        writeSync(fd, Buffer.alloc(16384, i));
        fsyncSync(fd);
        closeSync(fd);
        statSync(f);
        readFileSync(f);
      }
      await Promise.all(
        Array.from({ length: 5 }, () =>
          new Promise<void>((res) => {
            const c = connect(port, '127.0.0.1', () => c.write('hello'));
            c.on('data', () => c.end());
            c.on('close', () => res());
            c.on('error', () => res());
            c.setTimeout(2_000, () => c.destroy());
          }),
        ),
      );
      await Promise.all(Array.from({ length: 50 }, () => new Promise<void>((res) => sender.send(Buffer.alloc(1024), udpPort, '127.0.0.1', () => res()))));
      // short processes (exec, fork, exit, scheduling) and a busy loop
      spawnSync('/bin/true', { timeout: 5_000, env: childEnv });
      const busy = Date.now() + 50;
      while (Date.now() < busy) Math.sqrt(Math.random());
      await new Promise((res) => setTimeout(res, 20));
    }
    if (reclaim) writeFileSync('/proc/sys/vm/drop_caches', '2\n');
    spawnSync('ping', ['-c', '2', '-i', '0.2', '-W', '1', '127.0.0.1'], { stdio: 'ignore', timeout: 5_000, env: childEnv });
    spawnSync('python3', ['-c', 'import json, csv'], { stdio: 'ignore', timeout: 10_000, env: childEnv });
    sender.close();
    sink.close();
    await new Promise<void>((res) => srv.close(() => res()));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------- one example ----------

interface MetricResult {
  name: string;
  kind: 'counter' | 'histogram';
  exported: string;
  present: boolean;
  type?: string;
  series: number;
  labelNames: string[];
  expectedLabelNames: string[];
  samples: string[];
  mapUp?: number;
  raw?: { mapId: number; mapType: string; before: number; after: number; sumBefore: string; sumAfter: string; ours: string; agree: boolean; note: string };
  rawError?: string;
}

interface ExampleResult {
  name: string;
  sections: string[];
  otherKeys: string[];
  check: CheckResult;
  started: boolean;
  exit?: number | null;
  startError?: string;
  attached?: string[];
  attachError?: string;
  metrics: MetricResult[];
  category: string;
  result: string;
  lacks?: string[];
  detail: string;
  differences: string[];
}

function errorLine(e: Exporter): string | undefined {
  const l = e.logs.find((x) => ['warn', 'error', 'fatal'].includes(x.level ?? '') && x.source !== 'libbpf' && typeof x.msg === 'string' && (x.errno !== undefined || x.level !== 'warn'));
  return l?.msg;
}

function compareRaw(m: TheirMetric, info: MapInfo, before: RawEntry[], after: RawEntry[], ours: Sample[], cpus: number): NonNullable<MetricResult['raw']> {
  const perCpu = info.type.startsWith('percpu') || info.type.startsWith('lru_percpu');
  const cpuLabel = perCpu && m.labels.at(-1)?.name === 'cpu';
  const mayMerge = m.labels.some((l) => l.decoders.some((d) => d === 'regexp' || d === 'static_map' || d === 'ksym' || d === 'cgroup' || d === 'string'));
  const noLabels = m.labels.length === 0;
  let count: (es: RawEntry[]) => number;
  let sum: (es: RawEntry[]) => bigint;
  let ourCount: number;
  let ourSum: number;
  let bucketNote: string | undefined;
  let bucketsAgree = true;
  if (m.kind === 'counter') {
    count = (es) => (noLabels ? Math.min(es.length, 1) : cpuLabel ? es.length * cpus : es.length);
    sum = (es) => es.reduce((a, e) => a + e.values.reduce((x, y) => x + y, 0n), 0n);
    const series = ours.filter((s) => s.name === `ebpf_exporter_${m.name}` || s.name === `ebpf_exporter_${m.name}_total`);
    ourCount = series.length;
    ourSum = series.reduce((a, s) => a + s.value, 0);
  } else {
    // The last label is the bucket: the series are the distinct key prefixes before it.
    const bucket = m.labels.at(-1)!;
    const prefixLen = m.labels.slice(0, -1).reduce((a, l) => a + l.size + l.padding, 0);
    const bucketOf = (k: Buffer): number => {
      const b = k.subarray(prefixLen, prefixLen + bucket.size);
      return b.length >= 8 ? Number(b.readBigUInt64LE(0)) : b.length >= 4 ? b.readUInt32LE(0) : b.length >= 2 ? b.readUInt16LE(0) : b[0];
    };
    const isSum = (k: Buffer): boolean => m.bucketMax !== undefined && m.bucketType !== 'fixed' && bucketOf(k) === m.bucketMax + 1;
    count = (es) => new Set(es.map((e) => e.key.subarray(0, prefixLen).toString('hex'))).size;
    sum = (es) => es.filter((e) => !isSum(e.key)).reduce((a, e) => a + e.values.reduce((x, y) => x + y, 0n), 0n);
    const counts = ours.filter((s) => s.name === `ebpf_exporter_${m.name}_count`);
    ourCount = counts.length;
    ourSum = counts.reduce((a, s) => a + s.value, 0);
    // The buckets, over all series: for each finite le, the samples' total against the raw entries
    // whose bucket bound is at most le (a key below bucket_min in the first bucket, as ours counts it).
    if (m.bucketType !== 'fixed' && m.bucketMax !== undefined) {
      const mult = m.bucketMultiplier === undefined || m.bucketMultiplier === 0 ? 1 : m.bucketMultiplier;
      const min = m.bucketMin ?? 0;
      const max = m.bucketMax;
      const bound = (k: number): number => (m.bucketType === 'exp2' ? 2 ** k * mult : m.bucketType === 'exp2zero' ? (k === 0 ? 0 : 2 ** (k - 1) * mult) : k * mult);
      const cum = (es: RawEntry[], le: number): bigint =>
        es.filter((e) => !isSum(e.key) && bucketOf(e.key) <= max && bound(Math.max(bucketOf(e.key), min)) <= le * (1 + 1e-9)).reduce((a, e) => a + e.values.reduce((x, y) => x + y, 0n), 0n);
      const byLe = new Map<string, number>();
      for (const s of ours) if (s.name === `ebpf_exporter_${m.name}_bucket` && s.labels.le !== '+Inf') byLe.set(s.labels.le, (byLe.get(s.labels.le) ?? 0) + s.value);
      const drops = m.labels.some((l) => l.decoders.includes('regexp'));
      const off = [...byLe.entries()].filter(([le, v]) => {
        const ourV = BigInt(Math.round(v));
        return !((drops || ourV >= cum(before, Number(le))) && ourV <= cum(after, Number(le)));
      });
      bucketNote = off.length === 0 ? `${byLe.size} buckets agree` : `buckets off at le=${off.slice(0, 3).map(([le, v]) => `${le} (ours ${v}, raw ${cum(before, Number(le))}..${cum(after, Number(le))})`).join(', ')}`;
      bucketsAgree = off.length === 0;
    }
  }
  const b = count(before);
  const a = count(after);
  const sb = sum(before);
  const sa = sum(after);
  const sumIn = BigInt(Math.round(ourSum)) >= sb && BigInt(Math.round(ourSum)) <= sa;
  let agree: boolean;
  let note: string;
  if (cpuLabel) {
    agree = ourCount <= a && sumIn;
    note = `per-CPU with a cpu label: at most ${a} series (keys × ${cpus} CPUs)`;
  } else if (mayMerge) {
    agree = ourCount <= a && BigInt(Math.round(ourSum)) <= sa;
    note = 'its decoders may merge or drop rows: series and sum at most the raw ones';
  } else {
    agree = ourCount >= b && ourCount <= a && sumIn;
    note = m.kind === 'histogram' ? 'series = distinct keys without the bucket; count = sum of the bucket entries' : 'series = entries; sum = sum of the values';
  }
  if (bucketNote !== undefined) note += `; ${bucketNote}`;
  return { mapId: info.id, mapType: info.type, before: b, after: a, sumBefore: sb.toString(), sumAfter: sa.toString(), ours: `${ourCount} series, sum ${ourSum}`, agree: agree && bucketsAgree, note };
}


/**
 * What differs from theirs, from the config (a decoder whose values differ for some inputs, a counter
 * exported as a gauge, a metric without labels), each with what this run saw of it, and any label
 * name that differs in the samples.
 */
function differences(cfg: TheirConfig, metrics: MetricResult[], samples: Sample[]): string[] {
  // Each difference once per example, with what the run saw of it over all its metrics.
  const found = new Map<string, Set<string>>();
  /** A difference; `onlyIfSeen`: one that exists only when a value of this run shows it. */
  const add = (text: string, values: string[] = [], pred: (v: string) => boolean = () => false, onlyIfSeen = false): void => {
    const set = found.get(text) ?? new Set<string>();
    for (const v of values) if (pred(v)) set.add(v);
    if (!onlyIfSeen || set.size > 0) found.set(text, set);
  };
  for (const m of cfg.metrics) {
    if (m.kind === 'counter' && !m.name.endsWith('_total')) add(`\`${m.name}\` is a gauge here (our counters end in _total), same samples`);
    const raw = metrics.find((r) => r.name === m.name)?.raw;
    if (m.labels.length === 0 && (raw === undefined || raw.after > 1)) add(`\`${m.name}\` has no labels: ours adds every key of its map into the one series, theirs reads key 0 only${raw === undefined ? '' : ` (its map has ${raw.after} entries)`}`);
    const series = samples.filter((s) => s.name.startsWith(`ebpf_exporter_${m.name}`));
    for (const l of m.labels) {
      const values = [...new Set(series.map((s) => s.labels[l.name]).filter((v): v is string => v !== undefined))];
      const dec = l.decoders;
      // Compat mode gives their label values (style: ebpf_exporter); a value in another form is a difference seen.
      if (dec.includes('cgroup')) add(`\`${l.name}\` (cgroup): a value that is not their full path (\`/sys/fs/cgroup...\`)`, values, (v) => !v.startsWith('/sys/fs/cgroup'), true);
      if (dec.includes('syscall')) add(`\`${l.name}\` (syscall): a bare number (theirs: a name or \`unknown_syscall:N\`)`, values, (v) => /^\d+$/.test(v), true);
      for (const d of ['errno', 'ifname'] as const) {
        if (dec.includes(d)) add(`\`${l.name}\` (${d}): a bare number (theirs: a name or \`unknown:N\`)`, values, (v) => /^\d+$/.test(v), true);
      }
      if (dec.includes('inet_ip')) add(`\`${l.name}\` (inet_ip): an IPv4-mapped IPv6 address written as \`::ffff:a.b.c.d\` (theirs \`a.b.c.d\`)`, values, (v) => v.startsWith('::ffff:'), true);
      if (dec.includes('ksym') || dec.includes('kstack')) {
        add(`\`${l.name}\` (${dec.includes('ksym') ? 'ksym' : 'kstack'}): where several kernel symbols share an address, ours names the first /proc/kallsyms lists, theirs the one its sort leaves last`);
      }
    }
  }
  for (const r of metrics) {
    if (r.present && r.series > 0 && r.labelNames.join(',') !== r.expectedLabelNames.join(',')) add(`\`${r.exported}\` labels are {${r.labelNames.join(',')}}, theirs {${r.expectedLabelNames.join(',')}}`);
  }
  return [...found.entries()].map(([text, seen]) => {
    if (seen.size > 0) return `${text} (seen: ${[...seen].slice(0, 3).map((v) => `\`${v}\``).join(', ')}${seen.size > 3 ? ', ...' : ''})`;
    return text;
  });
}

/** The first line of an error, without libbpf's log; with the one libbpf line that names a missing target. */
function shortError(line: string): string {
  let first = line.split('\n')[0];
  const cut = first.search(/;? ?libbpf said:/);
  const missing = /failed to find kernel BTF type ID of '([^']+)'/.exec(line);
  if (cut >= 0) {
    first = first.slice(0, cut).replace(/[ ;(]+$/, '');
    if ((first.match(/\(/g) ?? []).length > (first.match(/\)/g) ?? []).length) first += ')';
  }
  if (missing !== null) first += ` [libbpf: failed to find kernel BTF type ID of '${missing[1]}']`;
  return first;
}

function classify(r: ExampleResult, mach: Machine): void {
  const raw = r.startError ?? r.attachError ?? r.check.lines.find((l) => r.check.exit !== 0 && l.includes(': ')) ?? '';
  const line = shortError(raw);
  r.lacks = lacks(r.sections, mach);
  const lackText = r.lacks.length === 0 ? '' : ` This machine lacks, for its programs: ${r.lacks.join(', ')}.`;
  if (r.started && r.attachError === undefined && r.metrics.every((m) => m.present)) {
    const noData = r.metrics.filter((m) => m.series === 0);
    r.category = 'runs';
    r.result = noData.length === 0 ? 'runs' : noData.length === r.metrics.length ? 'runs (no data from the workload)' : `runs (${noData.length} of ${r.metrics.length} metrics without data)`;
    r.detail = r.metrics.map((m) => `\`${m.exported}\` (${m.type ?? '?'}, ${m.series} series${m.raw === undefined ? `, map not compared: ${m.rawError ?? '?'}` : m.raw.agree ? `, agrees with the map${/buckets agree/.test(m.raw.note) ? ', bucket by bucket' : ''}` : `, DISAGREES with the map: ${m.raw.ours} vs ${m.raw.before}..${m.raw.after} entries, sum ${m.raw.sumBefore}..${m.raw.sumAfter}`})`).join('; ');
    return;
  }
  r.detail = `\`${line.replace(/\|/g, '\\|').replace(/`/g, "'")}\``;
  if (/tracing spans from ring buffers/.test(line)) r.category = 'refused: tracing (spans from ring buffers, another issue)';
  else if (/kaddrs/.test(line)) r.category = 'refused: kaddrs';
  else if (/perf_event_array/.test(line)) r.category = 'refused: perf_event_array counters';
  else if (/decoder (kstack|dname|pci_\w+)/.test(line)) r.category = `refused: decoder ${/decoder (\w+)/.exec(line)![1]}`;
  else if (/section convention/.test(line)) r.category = `refused: section ${/perf_event\/type/.test(line) ? 'perf_event/...' : 'xdp/IFNAME'}`;
  else if (/no kprobes/.test(line)) r.category = 'kernel lacks kprobes (attach ENOENT)';
  else if (/EPERM/.test(line) && /section (fentry|fexit)\//.test(line)) r.category = 'kernel refuses fentry/fexit programs (load EPERM)';
  else if (/failed to find kernel BTF type ID/.test(line)) r.category = 'kernel lacks a function the object names (load ESRCH)';
  else if (/no PMU of this machine counts/.test(line)) r.category = 'machine lacks a hardware PMU (perf_event ENOENT)';
  else if (/\/proc\/kallsyms has no kernel symbol/.test(line)) r.category = 'kernel lists no such symbol for kaddrs (/proc/kallsyms)';
  else if (r.exit === 2 && !r.started) r.category = 'refused: config';
  else r.category = 'needs a look';
  r.result = r.started ? 'starts; programs not attached (map_up 0)' : 'refused at start';
  r.detail += lackText;
}

async function runExample(dir: string, name: string, mach: Machine): Promise<ExampleResult> {
  const yamlFile = join(dir, `${name}.yaml`);
  const cfg = readTheirConfig(yamlFile);
  const object = join(dir, `${name}.bpf.o`);
  const r: ExampleResult = { name, sections: existsSync(object) ? programSections(object) : [], otherKeys: cfg.sections, check: check(dir, name), started: false, metrics: [], category: '', result: '', detail: '', differences: [] };
  const port = await freePort();
  const e = new Exporter(dir, name, port);
  try {
    const listening = await e.until(() => e.logs.some((l) => l.msg === 'listening'), START_TIMEOUT_MS);
    if (!listening) {
      if (e.exit === undefined) {
        r.startError = `no listening line within ${START_TIMEOUT_MS / 1000} s`;
      } else {
        await e.until(() => false, 300);
        r.exit = e.exit;
        r.startError = e.stderr[0] ?? errorLine(e) ?? `exited ${e.exit}`;
      }
      r.differences = differences(cfg, [], []);
      classify(r, mach);
      return r;
    }
    r.started = true;
    await e.until(() => e.logs.some((l) => Array.isArray(l.attached)) || errorLine(e) !== undefined, ATTACH_WAIT_MS);
    const att = e.logs.find((l) => Array.isArray(l.attached));
    if (att !== undefined) r.attached = att.attached as string[];
    r.attachError = errorLine(e);
    await workload(3_000, reclaimFor.includes(name));
    // Dump, wait for the exporter's next read, scrape, dump again.
    const mapFor = mapResolver(mapsOf(e.child.pid!), mapOrder(object));
    const before = new Map<string, RawEntry[]>();
    for (const m of cfg.metrics) {
      const info = mapFor(m);
      if (info !== undefined) try { before.set(m.name, dump(info.id)); } catch { /* reported after */ }
    }
    // Every map's reads counter, by map: each must have moved on since the first dump.
    const reads = (text: string): Map<string, number> => new Map(parseExposition(text).samples.filter((s) => s.name === 'bpf_map_exporter_map_reads_total').map((s) => [s.labels.map, s.value]));
    const r0 = reads(await e.scrape());
    const allRead = (text: string): boolean => {
      const now = reads(text);
      return [...r0.entries()].every(([k, v]) => (now.get(k) ?? 0) > v);
    };
    const end = Date.now() + READ_WAIT_MS;
    let text = await e.scrape();
    while (!allRead(text) && Date.now() < end) {
      await new Promise((res) => setTimeout(res, 250));
      text = await e.scrape();
    }
    const { types, samples } = parseExposition(text);
    for (const m of cfg.metrics) {
      const exported = `ebpf_exporter_${m.name}`;
      const own = samples.filter((s) => (m.kind === 'histogram' ? s.name === `${exported}_count` : s.name === exported || s.name === `${exported}_total`));
      const typeName = types.has(exported) ? exported : types.has(`${exported}_total`) ? `${exported}_total` : undefined;
      const labelNames = [...new Set(own.flatMap((s) => Object.keys(s.labels)))].sort();
      const expectedLabelNames = (m.kind === 'histogram' ? m.labels.slice(0, -1) : m.labels).map((l) => l.name).sort();
      const up = samples.find((s) => s.name === 'bpf_map_exporter_map_up' && s.labels.map === `${name}/${m.name}`);
      const mr: MetricResult = {
        name: m.name,
        kind: m.kind,
        exported: typeName ?? exported,
        present: typeName !== undefined,
        type: typeName === undefined ? undefined : types.get(typeName),
        series: own.length,
        labelNames,
        expectedLabelNames,
        samples: own.slice(0, 3).map((s) => labelText(s.labels)),
        mapUp: up?.value,
      };
      const info = mapFor(m);
      if (info === undefined) mr.rawError = 'no map of that name among the exporter\'s fds';
      else {
        try {
          const after = dump(info.id);
          const b = before.get(m.name);
          if (b === undefined) mr.rawError = 'first dump failed';
          else mr.raw = compareRaw(m, info, b, after, samples, mach.cpus);
        } catch (err) {
          mr.rawError = (err as Error).message.split('\n')[0];
        }
      }
      r.metrics.push(mr);
    }
    r.differences = differences(cfg, r.metrics, r.attachError === undefined && r.metrics.every((m) => m.mapUp !== 0) ? samples : []);
    if (r.attachError === undefined && r.metrics.some((m) => m.mapUp === 0)) r.attachError = errorLine(e) ?? 'map_up 0';
    classify(r, mach);
    return r;
  } finally {
    await e.stop();
    if (r.exit === undefined) r.exit = e.exit;
  }
}

// ---------- the table ----------

const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function tableRows(results: ExampleResult[], dir: string): string[] {
  const rows = ['| example | result here | metrics exported / why not | remaining differences |', '|---|---|---|---|'];
  for (const r of results) rows.push(`| ${r.name} | ${esc(r.result)} | ${r.detail.includes('`') ? r.detail.replace(/\n/g, ' ') : esc(r.detail)} | ${r.differences.length === 0 ? '' : esc(r.differences.join('; '))} |`);
  // Their folder as `examples/`, so the rows do not depend on where the checkout is.
  return rows.map((row) => row.split(`${dir}/`).join('examples/'));
}

function summary(results: ExampleResult[]): string[] {
  const groups = new Map<string, string[]>();
  for (const r of results) groups.set(r.category, [...(groups.get(r.category) ?? []), r.name]);
  return [...groups.entries()].sort((a, b) => b[1].length - a[1].length).map(([k, v]) => `- ${k}: ${v.length} (${v.join(', ')})`);
}

// ---------- main ----------

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const opt = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    argv.splice(i, 2);
    return v;
  };
  const names = opt('--names');
  const jsonOut = opt('--json');
  const mdOut = opt('--markdown');
  reclaimFor = (opt('--reclaim') ?? '').split(',').filter((n) => n !== '');
  if (argv.length !== 1) {
    console.error('usage: node --import tsx scripts/ebpf-exporter-examples.ts CHECKOUT [--names a,b] [--json OUT.json] [--markdown OUT.md] [--reclaim NAMES]');
    return 2;
  }
  let dir = resolve(argv[0]);
  if (existsSync(join(dir, 'examples'))) dir = join(dir, 'examples');
  const all = readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => basename(f, '.yaml')).sort();
  const chosen = names === undefined ? all : names.split(',');
  for (const n of chosen) if (!all.includes(n)) {
    console.error(`no ${n}.yaml in ${dir}`);
    return 2;
  }
  const mach = machine();
  childEnv = { ...process.env, PATH: mach.path };
  const about = `Machine: kernel ${mach.kernel}, ${mach.cpus} CPUs; PMUs ${mach.pmus.join(', ')}; kprobes: ${mach.kprobes ? 'yes' : 'no'}; fentry/fexit: ${mach.tracingPrograms ? 'yes' : 'no'}; hardware PMU: ${mach.hardwarePmu ? 'yes' : 'no'}.${mach.pathNote === undefined ? '' : ` Note: ${mach.pathNote}.`}`;
  console.error(about);
  const results: ExampleResult[] = [];
  for (const n of chosen) {
    const t0 = Date.now();
    const r = await runExample(dir, n, mach);
    results.push(r);
    console.error(`${n}: ${r.result} [${r.category}] (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
  const md = [about, '', ...tableRows(results, dir), '', 'Summary:', ...summary(results)].join('\n');
  console.log(md);
  if (mdOut !== undefined) writeFileSync(mdOut, `${md}\n`);
  if (jsonOut !== undefined) writeFileSync(jsonOut, `${JSON.stringify({ machine: mach, dir, when: new Date().toISOString(), results }, null, 2)}\n`);
  return 0;
}

process.exitCode = await main();

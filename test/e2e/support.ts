import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Exporter {
  proc: ChildProcess;
  base: string;
  log(): string;
  /** SIGTERM and the exit code. */
  stop(): Promise<number | null>;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  /** A command the exporter runs under (e.g. setpriv with another uid and capabilities). */
  wrap?: string[];
  /** More arguments to `run` (e.g. --web.config.file). */
  args?: string[];
  /** Instead of `--config CONFIG`: how the config is named (e.g. --config.dir DIR --config.names A). */
  configArgs?: string[];
}

/** The exporter's `run` as a process on a free loopback port, once its log says it listens. */
export async function spawnExporter(config: string, opts: SpawnOptions = {}): Promise<Exporter & { port: number }> {
  const [cmd, ...args] = [...(opts.wrap ?? []), process.execPath, '--import', 'tsx', join(root, 'exporter/main.ts'), 'run', ...(opts.configArgs ?? ['--config', config]), '--web.listen-address', '127.0.0.1:0', ...(opts.args ?? [])];
  const proc = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'info', ...opts.env },
  });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    return exited;
  };
  for (let i = 0; i < 300; i++) {
    const m = /"address":"127\.0\.0\.1:(\d+)"/.exec(log);
    if (m !== null) return { proc, port: Number(m[1]), base: `http://127.0.0.1:${m[1]}`, log: () => log, stop };
    if (proc.exitCode !== null) break;
    await sleep(50);
  }
  proc.kill('SIGKILL');
  throw new Error(`the exporter did not start listening:\n${log}`);
}

/** The exporter as a process on a free loopback port (plain HTTP), once /readyz says ready. */
export async function startExporter(config: string, env: Record<string, string> = {}, wrap: string[] = [], configArgs?: string[]): Promise<Exporter> {
  const e = await spawnExporter(config, { env, wrap, configArgs });
  for (let j = 0; j < 200; j++) {
    if ((await fetch(`${e.base}/readyz`)).status === 200) return e;
    await sleep(50);
  }
  e.proc.kill('SIGKILL');
  throw new Error(`the exporter did not become ready:\n${e.log()}`);
}

/** Build the examples (npm run build:bpf). */
export function buildExamples(): void {
  execFileSync(process.execPath, [join(root, 'scripts/build-bpf.mjs')], { stdio: 'pipe' });
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** The value of the one sample `series` (written as in the exposition) in a /metrics text. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/**
 * Ids of the BPF programs process `pid` holds (program fds, and the programs of its link fds), read
 * from /proc/PID/fdinfo: the programs an exporter loaded, told apart from programs of the same
 * name that tests running alongside load.
 */
export function programsHeldBy(pid: number | 'self'): number[] {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const id = /^prog_id:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1];
      if (id !== undefined) ids.add(Number(id));
    } catch {
      // closed while we looked
    }
  }
  return [...ids].sort((a, b) => a - b);
}

/** The programs loaded on the host now, as bpftool lists them. */
export function loadedPrograms(): { id: number; name?: string }[] {
  return JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show']).toString()) as { id: number; name?: string }[];
}

/** Which of `ids` are still loaded, once the kernel has had a moment to free them (bounded: 5 s). */
export async function stillLoaded(ids: readonly number[]): Promise<number[]> {
  let left = [...ids];
  for (let i = 0; i < 50; i++) {
    const now = new Set(loadedPrograms().map((p) => p.id));
    left = ids.filter((id) => now.has(id));
    if (left.length === 0) break;
    await sleep(100);
  }
  return left;
}

export const PROMETHEUS = '/usr/bin/prometheus';

export type PromResult = { metric: Record<string, string>; value: [number, string] }[];

export interface Prometheus {
  /** http://127.0.0.1:PORT */
  base: string;
  /** An instant query; rejects when the API does not answer with success. */
  query(q: string): Promise<PromResult>;
  /** Poll `q` (bounded: 30 s) until `pred` holds; the last result either way. */
  until(q: string, pred: (r: PromResult) => boolean): Promise<PromResult>;
  log(): string;
  stop(): void;
}

/**
 * A real Prometheus (Debian's package) on a free loopback port with `scrapeConfigs` (YAML list items
 * of scrape_configs, indented by four spaces), scraping every second, its data in `dir`.
 */
export async function startPrometheus(dir: string, scrapeConfigs: string): Promise<Prometheus> {
  const port = await freePort();
  writeFileSync(join(dir, 'prometheus.yml'), `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n${scrapeConfigs}`);
  const proc = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const query = async (q: string): Promise<PromResult> => {
    const r = (await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { status: string; data: { result: PromResult } };
    if (r.status !== 'success') throw new Error(`query ${q}: ${JSON.stringify(r)}`);
    return r.data.result;
  };
  const until = async (q: string, pred: (r: PromResult) => boolean): Promise<PromResult> => {
    let r: PromResult = [];
    for (let i = 0; i < 150; i++) {
      r = await query(q).catch(() => []);
      if (pred(r)) return r;
      await sleep(200);
    }
    return r;
  };
  return { base: `http://127.0.0.1:${port}`, query, until, log: () => log, stop: () => proc.kill('SIGTERM') };
}


/** The perf event fds a process holds (each shows as anon_inode:[perf_event]). */
export function perfEventFds(pid: number | 'self'): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[perf_event]';
    } catch {
      return false; // closed while we looked
    }
  }).length;
}

/**
 * Whether this machine has a PMU that counts hardware events: the core PMU's folder in sysfs (cpu on
 * x86, cpu_core/cpu_atom on hybrid x86, armv8_* on arm64). Most VMs expose none.
 */
export function hardwarePmu(): boolean {
  const devices = '/sys/bus/event_source/devices';
  return existsSync(`${devices}/cpu`) || readdirSync(devices).some((d) => /^(cpu_core|cpu_atom|armv8_.*)$/.test(d));
}

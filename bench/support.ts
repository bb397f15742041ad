/** What the benchmarks share: statistics, the machine's description, tables, a status probe. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** The nearest-rank percentile (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export const sleep = (msec: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, msec)));

/** A command's trimmed output, or "unknown". */
export function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export function machine(): Record<string, string | number> {
  return {
    nproc: os.availableParallelism(),
    possibleCpus: readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    kernel: os.release(),
    node: process.version,
    libbpf: run('dpkg-query', ['-W', '-f=${Version}', 'libbpf1']),
    cc: run('cc', ['--version']).split('\n')[0],
  };
}

/** A plain-text table: columns from `rightFrom` on right-aligned. */
export function table(header: string[], rows: string[][], rightFrom: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i >= rightFrom ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return `${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}\n`;
}

/** The HTTP status of GET http://127.0.0.1:port/p on a fresh connection (0 when it fails). */
export function getStatus(port: number, p: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
  });
}

export interface ExporterProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  startToReadyMs: number;
  /** Warning and error log lines (and any line that is not a JSON log line), as they come. */
  warnings: string[];
  exited: Promise<{ code: number | null; signal: string | null }>;
}

/**
 * The exporter as it ships: `dir`'s tsc build (dist/exporter/main.js) run by node with the memory
 * settings of the image and the systemd unit, on a free port of 127.0.0.1; resolves once /readyz
 * answers 200 (every map read once). `onSpawn` gets the child at once, for cleanup on a signal.
 */
export async function startExporter(o: {
  dir: string;
  config: string;
  nodeArgs?: string[];
  env?: Record<string, string>;
  readyWithinMs: number;
  onSpawn?: (child: ChildProcess) => void;
}): Promise<ExporterProcess> {
  const t0 = performance.now();
  const args = [...(o.nodeArgs ?? []), '--max-semi-space-size=4', 'dist/exporter/main.js', 'run', '--config', o.config, '--web.listen-address', '127.0.0.1:0'];
  const child = spawn(process.execPath, args, { cwd: o.dir, stdio: ['ignore', 'ignore', 'pipe'], env: { MALLOC_ARENA_MAX: '2', ...process.env, ...o.env } });
  o.onSpawn?.(child);
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const warnings: string[] = [];
  let onPort: (p: number) => void = () => undefined;
  // Settles once: the address logged, the exporter gone, or the time up (later calls are no-ops).
  const portKnown = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the exporter did not log its address within ${o.readyWithinMs} ms`)), o.readyWithinMs);
    onPort = (p) => {
      clearTimeout(timer);
      resolve(p);
    };
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the exporter exited (code ${code}, signal ${signal}) before listening: ${warnings.join(' | ')}`));
    });
  });
  let partial = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      const addr = /"address":"127\.0\.0\.1:(\d+)"/.exec(line);
      if (addr !== null) onPort(Number(addr[1]));
      // Warnings, errors and fatal lines; a line that is not a JSON log line is kept too.
      const level = /"level":"(\w+)"/.exec(line);
      if (level === null ? line.trim() !== '' : ['warn', 'error', 'fatal'].includes(level[1])) warnings.push(line.slice(0, 500));
    }
  });
  const port = await portKnown;
  for (;;) {
    if ((await getStatus(port, '/readyz')) === 200) break;
    if (child.exitCode !== null) throw new Error(`the exporter exited with ${child.exitCode} before it was ready: ${warnings.join(' | ')}`);
    if (performance.now() - t0 > o.readyWithinMs) throw new Error(`the exporter was not ready within ${o.readyWithinMs} ms`);
    await sleep(50);
  }
  return { child, pid: child.pid ?? 0, port, startToReadyMs: performance.now() - t0, warnings, exited };
}

/** SIGTERM, and the exit; SIGKILL and an error when it does not come within `withinMs`. */
export async function stopExporter(e: ExporterProcess, withinMs: number): Promise<{ code: number | null; signal: string | null }> {
  e.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), withinMs);
  });
  const exit = await Promise.race([e.exited, timeout]);
  clearTimeout(timer);
  if (exit === undefined) {
    e.child.kill('SIGKILL');
    throw new Error(`the exporter did not exit within ${withinMs} ms of SIGTERM`);
  }
  return exit;
}

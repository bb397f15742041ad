/**
 * What drain durability costs and what it buys (issue 11).
 *
 * 1. Cost: a drain of the same 1M-entry hash map, in this process, without a journal (as before it),
 *    with every batch written to it before the next batch call (state_sync: cycle, the default) and
 *    written and synced (state_sync: batch), alternated round by round; entries per second and ratios.
 * 2. Loss: the daemon as it ships (dist/, a tsc build) drains a pinned map while a writer inserts new
 *    keys of value 1 (a known total). It is SIGKILLed at a random moment, then started again to take
 *    what is left: the total it exports against what was written gives the loss of that kill.
 *
 *   node --import tsx bench/durability.ts            # 1M entries, 5 rounds, 50 kills
 *   BENCH_KILLS=10 BENCH_ENTRIES=200000 node --import tsx bench/durability.ts
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { BpfMap } from '../src/bpf/map.js';
import { MapType } from '../src/bpf/map-types.js';
import { parseConfig } from '../src/config/parse.js';
import { MapJob } from '../src/collect/job.js';
import { Journal } from '../src/collect/journal.js';
import { checkBpffs } from './fill.js';
import { machine, median, sleep, startExporter, stopExporter, table } from './support.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const ENTRIES = Number(process.env.BENCH_ENTRIES ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const KILLS = Number(process.env.BENCH_KILLS ?? 50);
const PINS = '/sys/fs/bpf';
const work = mkdtempSync(path.join(tmpdir(), 'bme-durability-'));
const pinDir = path.join(PINS, `bme-bench-durability-${process.pid}`);

function fill(map: BpfMap, from: number, n: number): void {
  const CHUNK = 65536;
  const keys = Buffer.alloc(4 * CHUNK);
  const values = Buffer.alloc(8 * CHUNK);
  for (let at = 0; at < n; at += CHUNK) {
    const c = Math.min(CHUNK, n - at);
    for (let i = 0; i < c; i++) {
      keys.writeUInt32LE(from + at + i, 4 * i);
      values.writeBigUInt64LE(1n, 8 * i);
    }
    map.updateBatch(keys, values, c);
  }
}

function config(name: string, batch: number, stateFile: string): string {
  return `interval: 100ms\nstate_file: ${stateFile}\nmaps:\n  - name: ${name}\n    mode: drain\n    batch_size: ${batch}\n    source: { pinned: ${pinDir}/${name} }\n    key: [ { name: k, type: u32 } ]\n    value: [ { name: v, type: u64 } ]\n    metrics:\n      - { name: ${name}_total, type: counter, help: entries taken, value: v, max_series: 10 }\n`;
}

/** Part 1: drain rate with and without the journal, same map, same process, alternated. */
async function cost(batch: number): Promise<string[]> {
  const name = `cost${batch}`;
  const map = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: ENTRIES });
  map.pin(`${pinDir}/${name}`);
  const file = path.join(work, `${name}.yaml`);
  const stateFile = path.join(work, `${name}-state`, 'state.json');
  writeFileSync(file, config(name, batch, stateFile));
  const spec = parseConfig(config(name, batch, stateFile), file).maps[0];
  const job = new MapJob(spec, 0);
  const problems = job.open({ write: true });
  if (problems.length > 0) throw new Error(problems.map((p) => p.message).join('; '));
  const { journal } = Journal.open(`${stateFile}.journal`, 0);
  const { keySize, valueStride } = job.mapPlan!.shape;
  const rates = { plain: [] as number[], cycle: [] as number[], batch: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const way of ['plain', 'cycle', 'batch'] as const) {
      fill(map, 0, ENTRIES);
      const t = performance.now();
      // As MapTask journals: written before the next batch call; with state_sync: batch, synced too.
      const taken =
        way === 'plain'
          ? undefined
          : async (keys: Uint8Array, values: Uint8Array, count: number) => {
              journal.append(name, keys, values, count, keySize, valueStride);
              if (way === 'batch') await journal.commit();
              else await new Promise<void>((resolve) => setImmediate(resolve));
            };
      const { iteration } = await job.readAsync('drain', taken);
      const ms = performance.now() - t;
      if (iteration.entries !== ENTRIES) throw new Error(`drained ${iteration.entries} of ${ENTRIES}`);
      rates[way].push(ENTRIES / (ms / 1000));
      journal.compact([]);
    }
  }
  journal.close();
  job.close();
  map.close();
  const plain = median(rates.plain);
  const cycle = median(rates.cycle);
  const synced = median(rates.batch);
  const k = (x: number) => `${Math.round(x / 1000)}k`;
  return [String(batch), k(plain), k(cycle), `${(cycle / plain).toFixed(2)}x`, k(synced), `${(synced / plain).toFixed(2)}x`];
}

/** Part 2: SIGKILLs at random moments while a writer runs; the loss of each, measured by a restart. */
async function loss(): Promise<{ rows: string[][]; total: number; written: number; max: number; batch: number }> {
  const name = 'crash';
  const batch = 256;
  const map = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 1 << 22 });
  map.pin(`${pinDir}/${name}`);
  const file = path.join(work, `${name}.yaml`);
  writeFileSync(file, config(name, batch, path.join(work, `${name}-state`, 'state.json')));
  let written = 0;
  let writing = false;
  let writer: Promise<void> = Promise.resolve();
  const write = () => {
    writing = true;
    writer = (async () => {
      while (writing) {
        fill(map, written, 200);
        written += 200;
        await sleep(10);
      }
    })();
  };
  const pause = async () => {
    writing = false;
    await writer;
  };
  const exported = async (port: number): Promise<number> => {
    // Wait for a cycle that finds the map empty, then read the total.
    for (let i = 0; i < 400; i++) {
      const t = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      if (/^bpf_map_exporter_map_entries\{map="crash"\} 0$/m.test(t)) return Number(/^crash_total (\d+)$/m.exec(t)?.[1] ?? 0);
      await sleep(50);
    }
    throw new Error('the map was not emptied');
  };
  const rows: string[][] = [];
  let lost = 0;
  let max = 0;
  for (let k = 0; k < KILLS; k++) {
    write();
    // Downtime: the first cycle of the next start drains what is written now.
    await sleep(200 + Math.random() * 1000);
    const child = spawn(process.execPath, ['--max-semi-space-size=4', 'dist/exporter/main.js', 'run', '--config', file, '--web.listen-address', '127.0.0.1:0'], { cwd: ROOT, stdio: 'ignore', env: { ...process.env, MALLOC_ARENA_MAX: '2' } });
    const exited = new Promise((r) => child.once('exit', r));
    const at = Math.round(Math.random() * 1500);
    await sleep(at);
    child.kill('SIGKILL');
    await exited;
    await pause();
    const e = await startExporter({ dir: ROOT, config: file, readyWithinMs: 30_000 });
    const total = await exported(e.port);
    await stopExporter(e, 10_000);
    const kill = written - total - lost;
    lost += kill;
    max = Math.max(max, kill);
    rows.push([String(k + 1), `${at} ms`, String(written), String(kill)]);
    process.stderr.write(`kill ${k + 1}/${KILLS}: at ${at} ms, lost ${kill}\n`);
  }
  map.close();
  return { rows, total: lost, written, max, batch };
}

async function main(): Promise<void> {
  checkBpffs(PINS);
  mkdirSync(pinDir, { recursive: true });
  execFileSync(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  try {
    const costRows = [await cost(4096), await cost(256)];
    console.log(`## Drain with the journal against a drain without (${ENTRIES} entries, hash u32 -> u64, median of ${ROUNDS} rounds)\n`);
    console.log(table(['batch_size', 'no journal (entries/s)', 'state_sync: cycle', 'ratio', 'state_sync: batch', 'ratio'], costRows, 1));
    const l = await loss();
    console.log(`\n## ${KILLS} SIGKILLs at random moments while a writer runs (batch_size ${l.batch})\n`);
    console.log(`written ${l.written}, lost ${l.total} in all, at most ${l.max} in one kill (bound: ${l.batch} per kill); kills that lost anything: ${l.rows.filter((r) => r[3] !== '0').length}\n`);
    console.log(JSON.stringify(machine()));
  } finally {
    rmSync(pinDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}

await main();

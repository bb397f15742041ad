/**
 * `npm run bench` (through scripts/bench.mjs): read 1M-entry HASH and PERCPU_HASH maps through the
 * binding and through a C program doing the same libbpf loops, side by side in the same run.
 *
 * Contestants, interleaved in this order every round:
 *   js-batch    BatchReader method 'batch'    (bpf_map_lookup_batch through koffi)
 *   c-batch     bench/out/batch-read batch    (the same loop in C)
 *   js-per-key  BatchReader method 'per-key'  (get_next_key + lookup through koffi)
 *   c-per-key   bench/out/batch-read perkey   (the same loop in C)
 * Every contestant sums every u64 value (every possible CPU's slot for per-CPU maps) and reports
 * entries read and the sum; every sample of every contestant must agree with what was written.
 *
 * Env: BENCH_ROUNDS (measured rounds, default 7), BENCH_PERKEY_ROUNDS (measured rounds of the
 * per-key contestants, default min(3, BENCH_ROUNDS)). One warm-up round runs first and is excluded.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfMap } from '../src/bpf/map.js';
import { checkBpffs, cleanupOnExit, createFilledMap, removePins, type Filled as FilledMap } from './fill.js';
import { BatchReader, type IterationMethod } from '../src/bpf/batch.js';
import { MapType, perCpuSlotSize } from '../src/bpf/map-types.js';
import { machine, median } from './support.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const C_BIN = path.join(ROOT, 'bench/out/batch-read');
const RESULTS = path.join(ROOT, 'bench/out/results.json');
const PIN_DIR = '/sys/fs/bpf/bpf-map-exporter-bench';

const ENTRIES = 1_000_000;
const MAX_ENTRIES = 1 << 20;
const BATCH_SIZE = 4096;
const TWO_32 = 4294967296;

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

const ROUNDS = envInt('BENCH_ROUNDS', 7);
const PERKEY_ROUNDS = Math.min(ROUNDS, envInt('BENCH_PERKEY_ROUNDS', Math.min(3, ROUNDS)));

type ContestantName = 'js-batch' | 'c-batch' | 'js-per-key' | 'c-per-key';
const CONTESTANTS: readonly ContestantName[] = ['js-batch', 'c-batch', 'js-per-key', 'c-per-key'];
const DESCRIPTION: Record<ContestantName, string> = {
  'js-batch': 'binding, batch',
  'c-batch': 'C, batch',
  'js-per-key': 'binding, per-key',
  'c-per-key': 'C, per-key',
};

interface Sample {
  ns: number;
  entries: number;
  sum: bigint;
}

interface MapSpec {
  name: 'hash' | 'percpu_hash';
  type: number;
}

const MAPS: readonly MapSpec[] = [
  { name: 'hash', type: MapType.hash },
  { name: 'percpu_hash', type: MapType.percpu_hash },
];

// --- pins --------------------------------------------------------------------------------------

let pinsOwned = false;

function cleanup(): void {
  if (!pinsOwned) return;
  pinsOwned = false;
  removePins(PIN_DIR);
}

cleanupOnExit(cleanup);

// --- filling -----------------------------------------------------------------------------------

interface Filled extends FilledMap {
  pin: string;
}

function createAndFill(spec: MapSpec): Filled {
  // Map names keep 15 characters: bm_percpu_hash fits.
  const pin = path.join(PIN_DIR, spec.name);
  return { ...createFilledMap({ type: spec.type, name: `bm_${spec.name}`, pin, entries: ENTRIES, maxEntries: MAX_ENTRIES }), pin };
}

// --- contestants -------------------------------------------------------------------------------

const LITTLE = os.endianness() === 'LE';
const LO = LITTLE ? 0 : 1;
const HI = LITTLE ? 1 : 0;

/** One binding contestant: a read-only fd on the pin and one BatchReader whose buffers every sweep reuses. */
class JsContestant {
  private readonly map: BpfMap;
  private readonly reader: BatchReader;
  private readonly method: IterationMethod;
  private readonly cpus: number;
  private readonly slotWords: number;
  private viewOf: Buffer | undefined;
  private words: Uint32Array = new Uint32Array(0);

  constructor(pin: string, method: IterationMethod) {
    this.map = BpfMap.openPinned(pin);
    this.method = method;
    this.reader = new BatchReader(this.map, { batchSize: BATCH_SIZE, method });
    this.cpus = this.map.cpus;
    this.slotWords = perCpuSlotSize(this.map.info.valueSize) >>> 2;
  }

  /** The u32 view of a batch's value buffer, created once per buffer (the reader reuses it until it grows). */
  private view(values: Buffer): Uint32Array {
    if (values !== this.viewOf) {
      if (values.byteOffset % 4 !== 0) throw new Error('value buffer is not 4-byte aligned');
      this.words = new Uint32Array(values.buffer, values.byteOffset, values.byteLength >>> 2);
      this.viewOf = values;
    }
    return this.words;
  }

  sweep(): Sample {
    const cpus = this.cpus;
    const slotWords = this.slotWords;
    let sum = 0;
    let entries = 0;
    const t0 = process.hrtime.bigint();
    for (const b of this.reader.batches('read')) {
      const w = this.view(b.values);
      const strideWords = b.valueStride >>> 2;
      const n = b.count;
      for (let i = 0, o = 0; i < n; i++, o += strideWords) {
        for (let c = 0, p = o; c < cpus; c++, p += slotWords) sum += w[p + LO] + w[p + HI] * TWO_32;
      }
      entries += n;
    }
    const ns = Number(process.hrtime.bigint() - t0);
    const st = this.reader.stats;
    if (st.method !== this.method) throw new Error(`${this.map.label}: asked for ${this.method}, the reader used ${st.method} (${st.fallback ?? 'no reason'})`);
    if (st.entries !== entries) throw new Error(`${this.map.label}: reader stats say ${st.entries} entries, the batches held ${entries}`);
    if (st.truncated) throw new Error(`${this.map.label}: the per-key walk was truncated`);
    if (!Number.isSafeInteger(sum)) throw new Error(`${this.map.label}: the sum ${sum} is not exact`);
    return { ns, entries, sum: BigInt(sum) };
  }

  close(): void {
    this.map.close();
  }
}

const C_LINE = /^\{"ns":(\d+),"entries":(\d+),"sum":(\d+)\}$/;

function runC(pin: string, method: 'batch' | 'perkey'): Sample {
  const out = execFileSync(C_BIN, [pin, method, '1', String(BATCH_SIZE)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = out.trim().split('\n');
  const m = lines.length === 1 ? C_LINE.exec(lines[0]) : null;
  if (m === null) throw new Error(`${C_BIN} ${pin} ${method}: unexpected output ${JSON.stringify(out)}`);
  return { ns: Number(m[1]), entries: Number(m[2]), sum: BigInt(m[3]) };
}

// --- statistics and output -----------------------------------------------------------------------

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function fmtRate(perSec: number): string {
  return `${(perSec / 1e6).toFixed(2)} M/s`;
}

// --- main --------------------------------------------------------------------------------------

interface ContestantResult {
  description: string;
  rounds: number;
  samplesNs: number[];
  medianMs: number;
  minMs: number;
  entriesPerSec: number;
}

interface MapResult {
  type: string;
  entries: number;
  maxEntries: number;
  expectedSum: string;
  fillMs: number;
  contestants: Record<string, ContestantResult>;
  ratios: {
    bindingBatchVsCBatch: number;
    bindingBatchVsCPerKey: number;
    bindingBatchVsBindingPerKey: number;
    cBatchVsCPerKey: number;
  };
}

function main(): number {
  if (!existsSync(C_BIN)) throw new Error(`${C_BIN} is missing: run \`npm run bench\`, which builds it`);
  checkBpffs(path.dirname(PIN_DIR));
  removePins(PIN_DIR); // stale pins of an interrupted run
  pinsOwned = true;
  mkdirSync(PIN_DIR);

  const info = machine();
  process.stdout.write(
    `bpf-map-exporter read benchmark: ${ENTRIES} entries in max_entries ${MAX_ENTRIES} maps (u32 key, u64 value), batch ${BATCH_SIZE}\n` +
    `machine: nproc ${info.nproc}, possible CPUs ${info.possibleCpus}, ${info.cpuModel}, kernel ${info.kernel}, node ${info.node}, libbpf ${info.libbpf}\n` +
    `rounds: 1 warm-up (excluded) + ${ROUNDS} measured for batch contestants, ${PERKEY_ROUNDS} measured for per-key contestants (BENCH_ROUNDS, BENCH_PERKEY_ROUNDS)\n\n`,
  );

  const filled: Filled[] = [];
  const js: { batch: JsContestant; perKey: JsContestant }[] = [];
  try {
    for (const spec of MAPS) {
      const f = createAndFill(spec);
      filled.push(f);
      process.stdout.write(`filled ${spec.name}: ${ENTRIES} entries in ${f.fillMs.toFixed(0)} ms, expected sum ${f.expectedSum}, pinned at ${f.pin}\n`);
      js.push({ batch: new JsContestant(f.pin, 'batch'), perKey: new JsContestant(f.pin, 'per-key') });
    }

    const samples = MAPS.map(() => new Map<ContestantName, Sample[]>(CONTESTANTS.map((c) => [c, []])));
    const started = process.hrtime.bigint();
    for (let round = 0; round <= ROUNDS; round++) {
      const warmUp = round === 0;
      for (let mi = 0; mi < MAPS.length; mi++) {
        const f = filled[mi];
        const got = new Map<ContestantName, Sample>();
        for (const c of CONTESTANTS) {
          const perKey = c === 'js-per-key' || c === 'c-per-key';
          if (perKey && round > PERKEY_ROUNDS) continue;
          let s: Sample;
          switch (c) {
            case 'js-batch': s = js[mi].batch.sweep(); break;
            case 'c-batch': s = runC(f.pin, 'batch'); break;
            case 'js-per-key': s = js[mi].perKey.sweep(); break;
            case 'c-per-key': s = runC(f.pin, 'perkey'); break;
          }
          got.set(c, s);
        }
        // Every contestant must have read what was written, hence the same as every other one.
        const wrong = [...got].filter(([, s]) => s.entries !== ENTRIES || s.sum !== f.expectedSum);
        if (wrong.length > 0) {
          throw new Error(
            `MISMATCH on ${MAPS[mi].name} in ${warmUp ? 'the warm-up round' : `round ${round}`}: ` +
            `wrote ${ENTRIES} entries with sum ${f.expectedSum}; read: ` +
            [...got].map(([c, s]) => `${c} ${s.entries} entries, sum ${s.sum}`).join('; '),
          );
        }
        if (!warmUp) for (const [c, s] of got) samples[mi].get(c)?.push(s);
      }
      const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
      process.stdout.write(`${warmUp ? 'warm-up round' : `round ${round}/${ROUNDS}`} done (${elapsed.toFixed(1)} s elapsed)\n`);
    }

    // All samples agreed with the expected entries and sum (checked above), hence with each other.
    const results: Record<string, MapResult> = {};
    const rows: string[][] = [];
    const ratioLines: string[] = [];
    for (let mi = 0; mi < MAPS.length; mi++) {
      const spec = MAPS[mi];
      const contestants: Record<string, ContestantResult> = {};
      const rate = new Map<ContestantName, number>();
      for (const c of CONTESTANTS) {
        const ss = samples[mi].get(c) ?? [];
        const ns = ss.map((s) => s.ns);
        const med = median(ns);
        const perSec = ENTRIES / (med / 1e9);
        rate.set(c, perSec);
        contestants[c] = { description: DESCRIPTION[c], rounds: ns.length, samplesNs: ns, medianMs: med / 1e6, minMs: Math.min(...ns) / 1e6, entriesPerSec: perSec };
        rows.push([spec.name, `${c} (${DESCRIPTION[c]})`, String(ns.length), (med / 1e6).toFixed(1), (Math.min(...ns) / 1e6).toFixed(1), fmtRate(perSec)]);
      }
      const r = (a: ContestantName, b: ContestantName): number => (rate.get(a) ?? NaN) / (rate.get(b) ?? NaN);
      const ratios = {
        bindingBatchVsCBatch: r('js-batch', 'c-batch'),
        bindingBatchVsCPerKey: r('js-batch', 'c-per-key'),
        bindingBatchVsBindingPerKey: r('js-batch', 'js-per-key'),
        cBatchVsCPerKey: r('c-batch', 'c-per-key'),
      };
      results[spec.name] = {
        type: spec.name, entries: ENTRIES, maxEntries: MAX_ENTRIES, expectedSum: String(filled[mi].expectedSum),
        fillMs: filled[mi].fillMs, contestants, ratios,
      };
      ratioLines.push(
        `${spec.name}: binding batch / C batch = ${ratios.bindingBatchVsCBatch.toFixed(2)}x (goal >= 0.8x: ${ratios.bindingBatchVsCBatch >= 0.8 ? 'met' : 'NOT met'}); ` +
        `binding batch / C per-key = ${ratios.bindingBatchVsCPerKey.toFixed(2)}x; ` +
        `binding batch / binding per-key = ${ratios.bindingBatchVsBindingPerKey.toFixed(2)}x (goal >= 3x: ${ratios.bindingBatchVsBindingPerKey >= 3 ? 'met' : 'NOT met'}); ` +
        `C batch / C per-key = ${ratios.cBatchVsCPerKey.toFixed(2)}x`,
      );
    }

    const header = ['map', 'contestant', 'rounds', 'median ms', 'min ms', 'entries/s'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
    const line = (cells: string[]): string => cells.map((cell, i) => pad(cell, widths[i], i >= 2)).join('  ');
    process.stdout.write(`\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}\n\n`);
    process.stdout.write(`${ratioLines.join('\n')}\n`);
    process.stdout.write(
      `all contestants agreed in every round: ${MAPS.map((s, i) => `${s.name} ${ENTRIES} entries, sum ${filled[i].expectedSum}`).join('; ')}\n`,
    );
    process.stdout.write(`per-key contestants ran ${PERKEY_ROUNDS} measured rounds, batch contestants ${ROUNDS}\n`);

    const goals = {
      bindingBatchAtLeast0_8xCBatch: Object.values(results).every((m) => m.ratios.bindingBatchVsCBatch >= 0.8),
      bindingBatchAtLeast3xBindingPerKey: Object.values(results).every((m) => m.ratios.bindingBatchVsBindingPerKey >= 3),
      bindingBatchAtLeast3xCPerKey: Object.values(results).every((m) => m.ratios.bindingBatchVsCPerKey >= 3),
    };
    mkdirSync(path.dirname(RESULTS), { recursive: true });
    writeFileSync(RESULTS, `${JSON.stringify({
      date: new Date().toISOString(), machine: info,
      config: { entries: ENTRIES, maxEntries: MAX_ENTRIES, batchSize: BATCH_SIZE, rounds: ROUNDS, perKeyRounds: PERKEY_ROUNDS, warmUpRounds: 1 },
      maps: results, goals,
    }, null, 2)}\n`);
    process.stdout.write(`results written to ${path.relative(ROOT, RESULTS)}\n`);
    return 0;
  } finally {
    for (const j of js) {
      j.batch.close();
      j.perKey.close();
    }
    for (const f of filled) f.map.close();
    cleanup();
  }
}

try {
  process.exitCode = main();
} catch (e) {
  process.stderr.write(`bench: FAILED: ${e instanceof Error ? e.message : String(e)}\n`);
  cleanup();
  process.exitCode = 1;
}

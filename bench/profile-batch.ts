/**
 * Where the binding's batch read spends its time, for BENCHMARKS.md. Not part of `npm run bench`.
 *
 *   node --cpu-prof --cpu-prof-dir=bench/out/prof --import tsx bench/profile-batch.ts [hash|percpu_hash] [sweeps]
 *
 * Fills one 1M-entry map (not pinned), then times, per sweep:
 *   full     BatchReader sweep + summing every u64 (what js-batch in read-maps.ts does)
 *   iterate  BatchReader sweep, values not touched
 *   sum      summing one 4096-entry batch buffer as many times as a sweep has batches (no syscalls)
 * with the process's user and system CPU time per sweep (process.cpuUsage).
 */
import { BpfMap } from '../src/bpf/map.js';
import { BatchReader } from '../src/bpf/batch.js';
import { MapType, perCpuSlotSize } from '../src/bpf/map-types.js';

const ENTRIES = 1_000_000;
const TWO_32 = 4294967296;
const kind = process.argv[2] === 'percpu_hash' ? 'percpu_hash' : 'hash';
const sweeps = Number(process.argv[3] ?? 20);

const map = BpfMap.create({ type: kind === 'hash' ? MapType.hash : MapType.percpu_hash, keySize: 4, valueSize: 8, maxEntries: 1 << 20 });
const chunk = 65536;
const keys = Buffer.alloc(chunk * 4);
const vals = Buffer.alloc(chunk * map.valueStride);
for (let start = 0; start < ENTRIES; start += chunk) {
  const n = Math.min(chunk, ENTRIES - start);
  for (let j = 0; j < n; j++) {
    keys.writeUInt32LE(start + j, j * 4);
    for (let c = 0; c < map.cpus; c++) vals.writeUInt32LE(start + j, j * map.valueStride + c * 8);
  }
  map.updateBatch(keys, vals, n);
}

const reader = new BatchReader(map, { batchSize: 4096, method: 'batch' });
const cpus = map.cpus;
const slotWords = perCpuSlotSize(8) >>> 2;

function sumWords(w: Uint32Array, n: number, strideWords: number): number {
  let sum = 0;
  for (let i = 0, o = 0; i < n; i++, o += strideWords) {
    for (let c = 0, p = o; c < cpus; c++, p += slotWords) sum += w[p] + w[p + 1] * TWO_32;
  }
  return sum;
}

function full(): number {
  let sum = 0;
  for (const b of reader.batches('read')) {
    const w = new Uint32Array(b.values.buffer, b.values.byteOffset, b.values.byteLength >>> 2);
    sum += sumWords(w, b.count, b.valueStride >>> 2);
  }
  return sum;
}

function iterate(): number {
  let entries = 0;
  for (const b of reader.batches('read')) entries += b.count;
  return entries;
}

let calls = 0;
function sumOnly(): number {
  const buf = Buffer.alloc(4096 * map.valueStride, 1);
  const w = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  let sum = 0;
  const batches = Math.ceil(ENTRIES / 4096);
  for (let i = 0; i < batches; i++) sum += sumWords(w, 4096, map.valueStride >>> 2);
  return sum;
}

function time(name: string, fn: () => number): void {
  const ms: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < sweeps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (name !== 'sum') calls = reader.stats.calls;
  }
  const cpu = process.cpuUsage(cpu0);
  ms.sort((a, b) => a - b);
  process.stdout.write(
    `${kind} ${name.padEnd(8)} median ${ms[ms.length >> 1].toFixed(1)} ms  min ${ms[0].toFixed(1)} ms  ` +
    `per sweep: user ${(cpu.user / 1000 / sweeps).toFixed(1)} ms, system ${(cpu.system / 1000 / sweeps).toFixed(1)} ms\n`,
  );
}

time('full', full);
time('iterate', iterate);
time('sum', sumOnly);
process.stdout.write(`${kind}: ${calls} lookup-batch calls per sweep\n`);
map.close();

/**
 * Where the exporter's read cycle spends its time, for BENCHMARKS.md. Not part of `npm run bench`.
 *
 *   node --cpu-prof --cpu-prof-dir=bench/out/prof --import tsx bench/daemon-profile.ts [grouped|per_key] [cycles] [cycle-only]
 *   node --import tsx bench/daemon-profile.ts --summary bench/out/prof/<file>.cpuprofile [top]
 *   node --import tsx bench/daemon-profile.ts --micro
 *
 * The first form fills a 1M-entry PERCPU_HASH (not pinned; the config names it by id), opens a MapJob
 * on the config of bench/daemon.ts and splits a cycle into its parts, timed apart, `cycles` times
 * (default 5) after a warm-up cycle:
 *   cycle    MapJob.readAsync(): what bench/daemon.ts times
 *   sweep    BatchReader sweep alone, values untouched (the syscalls)
 *   begin    MapAggregator.begin()
 *   add      MapAggregator.add() over every batch of a sweep, copied once into memory (no syscalls)
 *   finish   MapAggregator.finish(): the snapshot (one series object per series)
 *   render   the snapshot's text exposition (renderFamily), as the daemon builds it at the first
 *            scrape after a cycle, on its event loop
 *   gzip     that text gzipped (zlib defaults; the daemon does it on the libuv pool)
 * with the GC pause time seen during each (PerformanceObserver 'gc'). With `cycle-only`, only the
 * cycles run (after the warm-up), so that a CPU profile shows the read cycle alone, warm-up aside.
 * The second form prints the functions with the most self time in a V8 CPU profile. The third runs
 * two micro-measurements on 1M keys in a shuffled (hash-map-like) order, no BPF involved:
 *   KeyTable.find() of each key (what MetricAggregator.row does per row) against comparing each
 *   key with the key stored at the same position (a "position hint"); and the steps of rendering
 *   1M one-label series the way prometheus-render.ts does (label text, sort, concatenation, Buffer).
 */
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { PerformanceObserver } from 'node:perf_hooks';
import { BpfMap } from '../src/bpf/map.js';
import { BatchReader } from '../src/bpf/batch.js';
import { MapType } from '../src/bpf/map-types.js';
import { parseConfig } from '../src/config/parse.js';
import { MapJob } from '../src/collect/job.js';
import { MapAggregator } from '../src/aggregate/map-aggregator.js';
import { renderFamily } from '../src/publish/prometheus-render.js';
import { KeyTable } from '../src/aggregate/key-table.js';

// --- --summary: self time per function of a .cpuprofile ---------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function summary(file: string, top: number): void {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    total += dt;
    const f = byId.get(id)?.callFrame;
    // Line numbers are left out: under tsx they point into the transpiled text, not the source.
    const where = f === undefined ? '?' : `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(src|bench|node_modules)\//, '$1/')}`;
    self.set(where, (self.get(where) ?? 0) + dt);
  });
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
  process.stdout.write(`${file}: ${(total / 1000).toFixed(0)} ms sampled\n  self ms      %  function\n`);
  for (const [where, us] of rows) {
    process.stdout.write(`${(us / 1000).toFixed(0).padStart(8)}  ${((100 * us) / total).toFixed(1).padStart(5)}  ${where}\n`);
  }
}

// --- the breakdown ------------------------------------------------------------------------------------

const ENTRIES = 1_000_000;

function fill(): BpfMap {
  const map = BpfMap.create({ type: MapType.percpu_hash, name: 'bm_profile', keySize: 4, valueSize: 8, maxEntries: 1 << 20 });
  const chunk = 65536;
  const keys = Buffer.alloc(chunk * 4);
  const vals = Buffer.alloc(chunk * map.valueStride);
  for (let start = 0; start < ENTRIES; start += chunk) {
    const n = Math.min(chunk, ENTRIES - start);
    for (let j = 0; j < n; j++) {
      const i = start + j;
      keys.writeUInt32LE(i, j * 4);
      for (let c = 0; c < map.cpus; c++) {
        vals.writeUInt32LE((i * 7 + c * 3) >>> 0, j * map.valueStride + c * 8);
        vals.writeUInt32LE((i + c) & 1, j * map.valueStride + c * 8 + 4);
      }
    }
    map.updateBatch(keys, vals, n);
  }
  return map;
}

function yamlOf(kind: 'grouped' | 'per_key', id: number): string {
  const key = kind === 'grouped' ? '[ { name: lo, type: u8 }, { name: rest, type: "pad[3]" } ]' : '[ { name: key, type: u32 } ]';
  const label = kind === 'grouped' ? 'lo' : 'key';
  return `max_series: 2000000
maps:
  - name: profile
    source: { id: ${id} }
    key: ${key}
    value: [ { name: v, type: u64 } ]
    metrics:
      - name: profile_total
        type: counter
        help: profile
        value: v
        labels: [ { name: ${label}, from: ${label} } ]
`;
}

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

async function timed<T>(fn: () => T | Promise<T>): Promise<{ ms: number; gc: number; value: T }> {
  // GC entries reach the observer a timer tick later: let earlier ones arrive first, so they are not counted here.
  await new Promise<void>((r) => setTimeout(r, 0));
  const gc0 = gcMs;
  const t0 = performance.now();
  const value = await fn();
  const t1 = performance.now();
  await new Promise<void>((r) => setTimeout(r, 0));
  return { ms: t1 - t0, gc: gcMs - gc0, value };
}

async function breakdown(kind: 'grouped' | 'per_key', cycles: number, cycleOnly: boolean): Promise<void> {
  const map = fill();
  try {
    const config = parseConfig(yamlOf(kind, map.info.id), '(profile)');
    const job = new MapJob(config.maps[0], 0);
    const problems = job.open();
    if (problems.length > 0) throw new Error(problems.map((p) => p.message).join('; '));
    const plan = job.mapPlan;
    if (plan === undefined) throw new Error('no plan');
    const warm = await timed(() => job.readAsync());
    process.stdout.write(`${kind}: warm-up cycle ${warm.ms.toFixed(0)} ms (gc ${warm.gc.toFixed(0)} ms), ${warm.value.snapshot.families[0].series.length} series\n`);

    if (cycleOnly) {
      const xs: number[] = [];
      for (let i = 0; i < cycles; i++) xs.push((await timed(() => job.readAsync())).ms);
      process.stdout.write(`${kind}: ${cycles} cycles: ${xs.map((x) => x.toFixed(0)).join(' ')} ms\n`);
      job.close();
      return;
    }
    // The batches of one sweep, copied, so that add() can be timed without syscalls.
    const reader = new BatchReader(map, { batchSize: 4096, method: 'batch' });
    const copies: { keys: Buffer; values: Buffer; count: number }[] = [];
    for (const b of reader.batches('read')) copies.push({ keys: Buffer.from(b.keys), values: Buffer.from(b.values), count: b.count });
    const agg = new MapAggregator(plan);
    agg.begin();
    for (const c of copies) agg.add(c.keys, c.values, c.count);
    agg.finish(); // the aggregator's own warm-up: its series exist from here on

    const rows: Record<string, { ms: number; gc: number }[]> = { cycle: [], sweep: [], begin: [], add: [], finish: [], render: [], gzip: [] };
    for (let i = 0; i < cycles; i++) {
      rows.cycle.push(await timed(() => job.readAsync()));
      rows.sweep.push(await timed(() => {
        let n = 0;
        for (const b of reader.batches('read')) n += b.count;
        return n;
      }));
      rows.begin.push(await timed(() => agg.begin()));
      rows.add.push(await timed(() => {
        for (const c of copies) agg.add(c.keys, c.values, c.count);
      }));
      const fin = await timed(() => agg.finish());
      rows.finish.push(fin);
      // What the daemon does with a snapshot at the first scrape after a cycle: the job's text
      // (synchronous, on the event loop), then its gzip form (on the libuv pool there).
      const text = await timed(() => Buffer.from(fin.value.families.map((f) => renderFamily(f, 'text')).join(''), 'utf8'));
      rows.render.push(text);
      rows.gzip.push(await timed(() => gzipSync(text.value)));
    }
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
    process.stdout.write(`${kind}: medians of ${cycles} (ms; gc = GC pauses during the part)\n`);
    for (const [part, xs] of Object.entries(rows)) {
      process.stdout.write(`  ${part.padEnd(7)} ${med(xs.map((x) => x.ms)).toFixed(1).padStart(8)}   gc ${med(xs.map((x) => x.gc)).toFixed(1).padStart(6)}\n`);
    }
    const perRow = (med(rows.add.map((x) => x.ms)) * 1e6) / ENTRIES;
    process.stdout.write(`  add() per row: ${perRow.toFixed(0)} ns\n`);
    job.close();
  } finally {
    map.close();
  }
}

// --- --micro ------------------------------------------------------------------------------------------

function shuffled(n: number): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

function micro(): void {
  const order = shuffled(ENTRIES);
  const keys = new Uint8Array(ENTRIES * 4);
  const dv = new DataView(keys.buffer);
  for (let i = 0; i < ENTRIES; i++) dv.setUint32(i * 4, order[i], true);
  const table = new KeyTable(4);
  const s = table.scratch;
  const load = (i: number): void => {
    const o = i * 4;
    s[0] = keys[o];
    s[1] = keys[o + 1];
    s[2] = keys[o + 2];
    s[3] = keys[o + 3];
  };
  for (let i = 0; i < ENTRIES; i++) {
    load(i);
    if (table.find() < 0) table.insert();
  }
  const hint = new Int32Array(ENTRIES);
  for (let i = 0; i < ENTRIES; i++) hint[i] = i; // ids were given in this order
  for (let r = 0; r < 3; r++) {
    let t0 = performance.now();
    let found = 0;
    for (let i = 0; i < ENTRIES; i++) {
      load(i);
      if (table.find() >= 0) found++;
    }
    const tFind = performance.now() - t0;
    t0 = performance.now();
    let hits = 0;
    for (let i = 0; i < ENTRIES; i++) {
      const k = table.key(hint[i]);
      const o = i * 4;
      if (k[0] === keys[o] && k[1] === keys[o + 1] && k[2] === keys[o + 2] && k[3] === keys[o + 3]) hits++;
    }
    const tHint = performance.now() - t0;
    process.stdout.write(`KeyTable.find() x ${found}: ${tFind.toFixed(0)} ms; position-hint compare x ${hits}: ${tHint.toFixed(0)} ms\n`);
  }

  const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  const series = Array.from(order, (k) => ({ labels: { key: String(k) }, value: k * 3 }));
  for (let r = 0; r < 3; r++) {
    let t0 = performance.now();
    const items = series.map((x) => ({ series: x, body: `key="${x.labels.key}"` }));
    const tText = performance.now() - t0;
    t0 = performance.now();
    items.sort((x, y) => compare(x.body, y.body));
    const tSort = performance.now() - t0;
    const again = items.slice();
    t0 = performance.now();
    again.sort((x, y) => compare(x.body, y.body));
    const tSorted = performance.now() - t0;
    t0 = performance.now();
    let out = '';
    for (const { series: x, body } of items) out += `m_total{${body}} ${String(x.value)}\n`;
    const tConcat = performance.now() - t0;
    t0 = performance.now();
    const buf = Buffer.from(out, 'utf8');
    const tBuffer = performance.now() - t0;
    process.stdout.write(
      `render steps, 1M series: label text ${tText.toFixed(0)} ms, sort ${tSort.toFixed(0)} ms (already sorted: ${tSorted.toFixed(0)} ms), ` +
      `concatenation ${tConcat.toFixed(0)} ms, Buffer.from ${tBuffer.toFixed(0)} ms (${buf.length} bytes)\n`,
    );
  }
}

const args = process.argv.slice(2);
if (args[0] === '--summary') {
  if (args[1] === undefined) throw new Error('--summary needs a .cpuprofile file');
  summary(args[1], Number(args[2] ?? 25));
} else if (args[0] === '--micro') {
  micro();
} else {
  await breakdown(args[0] === 'grouped' ? 'grouped' : 'per_key', Number(args[1] ?? 5), args[2] === 'cycle-only');
}

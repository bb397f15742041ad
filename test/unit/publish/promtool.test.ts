/**
 * Our exposition checked by Prometheus's own tools (Debian package "prometheus").
 *
 * - Text 0.0.4: `promtool check metrics` parses it with the text parser and lints it (names,
 *   suffixes, HELP); it must print nothing and exit 0.
 * - OpenMetrics: `promtool check metrics` cannot read it (it only knows the text format, see
 *   prometheus/prometheus#8932: an OpenMetrics counter's "# TYPE foo counter" + "foo_total" reads as
 *   two families there). Prometheus's OpenMetrics parser is reached through
 *   `promtool tsdb create-blocks-from openmetrics`, which needs a timestamp on every sample (added
 *   here) and must import every sample; openmetrics-lint.ts checks the rules that parser lets pass.
 *
 * Without promtool the tests skip loudly; with REQUIRE_BPF=1 (CI) they fail instead.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Histogram } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { ExpositionCache, renderFamilies } from '../../../src/publish/prometheus.js';
import type { ExpositionFormat } from '../../../src/publish/prometheus.js';
import { registerSelfMetrics, richFamilies } from './exposition-sample.js';
import { lintOpenMetrics } from './openmetrics-lint.js';
import { registerProcessMetrics, SelfMetrics } from '../../../src/publish/self-metrics.js';

const REQUIRE = process.env.REQUIRE_BPF === '1';

function findPromtool(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin', '/usr/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const p = join(dir, 'promtool');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

const promtool = findPromtool();
if (promtool === undefined && !REQUIRE) {
  console.warn('SKIPPING promtool tests: promtool not found (apt-get install prometheus); set REQUIRE_BPF=1 to make this a failure');
}
const itPromtool = promtool !== undefined || REQUIRE ? it : it.skip;

function tool(): string {
  if (promtool === undefined) throw new Error('promtool is required (REQUIRE_BPF=1) but not found: install the Debian package "prometheus"');
  return promtool;
}

async function richDocument(format: ExpositionFormat): Promise<string> {
  const cache = new ExpositionCache();
  registerSelfMetrics(cache.registry);
  cache.set('syscalls', richFamilies().slice(0, 3));
  cache.set('io', richFamilies().slice(3));
  return (await cache.render(format, false)).toString();
}

function checkMetrics(doc: string): { status: number | null; output: string } {
  const r = spawnSync(tool(), ['check', 'metrics'], { input: doc, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const work = mkdtempSync(join(tmpdir(), 'bpf-map-exporter-promtool-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let runs = 0;

/** Imports an OpenMetrics document with Prometheus's parser; returns its verdict and the samples it took. */
function importOpenMetrics(doc: string): { status: number | null; output: string; samples: number | undefined } {
  const dir = join(work, String(runs++));
  const input = `${dir}.om`;
  // Backfilling needs a timestamp on every sample; metadata and # EOF stay as rendered.
  writeFileSync(input, doc.replace(/^([^#\n].*)$/gm, '$1 1700000000'));
  const r = spawnSync(tool(), ['tsdb', 'create-blocks-from', 'openmetrics', input, dir], { encoding: 'utf8' });
  // The summary table: a header whose columns are two spaces apart, then one row per block.
  const [header, row] = r.stdout.trim().split('\n');
  const column = header?.split(/\s{2,}/).indexOf('NUM SAMPLES') ?? -1;
  const samples = column >= 0 && row !== undefined ? Number(row.trim().split(/\s+/)[column]) : undefined;
  return { status: r.status, output: `${r.stdout}${r.stderr}`, samples };
}

const sampleLines = (doc: string): number => doc.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;

describe('promtool', () => {
  itPromtool('check metrics reports nothing for the text format', async () => {
    const doc = await richDocument('text');
    expect(doc).toContain('syscalls_total{pid="9",syscall="a\\"b\\\\c\\nd"}');
    expect(checkMetrics(doc)).toEqual({ status: 0, output: '' });
    expect(checkMetrics(renderFamilies(richFamilies(), 'text'))).toEqual({ status: 0, output: '' });
    expect(checkMetrics(await new ExpositionCache().render('text', false).then(String))).toEqual({ status: 0, output: '' });
  });

  itPromtool('check metrics does lint (a gauge named like a counter is reported)', () => {
    const bad = renderFamilies([{ name: 'oops_total', type: 'gauge', help: 'h', series: [{ labels: {}, value: 1 }] }], 'text');
    const r = checkMetrics(bad);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain('oops_total non-counter metrics should not have "_total" suffix');
  });

  itPromtool("Prometheus's OpenMetrics parser takes every sample of the OpenMetrics format", async () => {
    const doc = await richDocument('openmetrics');
    expect(lintOpenMetrics(doc)).toEqual([]);
    const r = importOpenMetrics(doc);
    expect(r.status, r.output).toBe(0);
    expect(r.samples).toBe(sampleLines(doc));
    expect(r.samples).toBeGreaterThan(30);
  });

  itPromtool('the process metrics and the real self-metrics pass both checks, the GC histogram included', async () => {
    const cache = new ExpositionCache();
    registerProcessMetrics(cache.registry);
    const self = new SelfMetrics(cache.registry, { version: '0.1.0', inventory: true });
    self.read('syscalls', { entries: 3, maxEntries: 8, seconds: 0.01, method: 'batch', truncated: false, stats: new Map([['syscalls_total', { series: 4, seriesDropped: 0, rowsDropped: 0 }]]) });
    self.inventory(
      [{ id: 42, name: 'counts', type: 'hash', keySize: 4, valueSize: 8, maxEntries: 8, flags: 0, entries: 3, method: 'batch', memlockBytes: 4096 }],
      [{ id: 7, name: 'on_sys_enter', typeName: 'raw_tracepoint', tag: '0123456789abcdef', runTimeNs: 1_500_000n, runCount: 300n, recursionMisses: 2n }],
    );
    self.loadedPrograms([{ object: '/x/syscalls.bpf.o', program: 'on_sys_enter', section: 'raw_tp/sys_enter', id: 7, attached: true, runTimeNs: 1_500_000n, runCount: 300n, recursionMisses: 2n }]);
    (cache.registry.getSingleMetric('nodejs_gc_duration_seconds') as Histogram).observe({ kind: 'major' }, 0.0042);
    cache.set('syscalls', richFamilies().slice(0, 3));

    const text = (await cache.render('text', false)).toString();
    expect(text).toContain('# TYPE process_cpu_seconds_total counter\n');
    expect(text).toMatch(/^process_resident_memory_bytes [1-9]\d*$/m);
    expect(text).toMatch(/^nodejs_gc_duration_seconds_bucket\{kind="major",le="0\.001"\} 0$/m);
    expect(text).toMatch(/^nodejs_gc_duration_seconds_bucket\{kind="major",le="0\.01"\} [1-9]\d*$/m);
    expect(text).toMatch(/^nodejs_gc_duration_seconds_bucket\{kind="major",le="\+Inf"\} [1-9]\d*$/m);
    expect(text).not.toContain('_total gauge');
    expect(text).toContain('# TYPE bpf_program_runs_total counter\nbpf_program_runs_total{id="7",name="on_sys_enter",type="raw_tracepoint"} 300\n');
    expect(text).toContain('bpf_program_run_seconds_total{id="7",name="on_sys_enter",type="raw_tracepoint"} 0.0015\n');
    expect(text).toContain('bpf_map_exporter_program_runs_total{id="7",object="/x/syscalls.bpf.o",program="on_sys_enter"} 300\n');
    expect(text).toContain('# TYPE bpf_program_recursion_misses_total counter\nbpf_program_recursion_misses_total{id="7",name="on_sys_enter",type="raw_tracepoint"} 2\n');
    expect(text).toContain('bpf_map_exporter_program_recursion_misses_total{id="7",object="/x/syscalls.bpf.o",program="on_sys_enter"} 2\n');
    expect(checkMetrics(text)).toEqual({ status: 0, output: '' });

    const om = (await cache.render('openmetrics', false)).toString();
    expect(om).toContain('# TYPE process_cpu_seconds counter\n');
    expect(om).toMatch(/^process_cpu_seconds_total \S+$/m);
    expect(om).toMatch(/^nodejs_gc_duration_seconds_bucket\{kind="major",le="1\.0"\} [1-9]\d*$/m);
    expect(lintOpenMetrics(om)).toEqual([]);
    const r = importOpenMetrics(om);
    expect(r.status, r.output).toBe(0);
    expect(r.samples).toBe(sampleLines(om));
  });

  itPromtool("Prometheus's OpenMetrics parser does reject a broken document", async () => {
    const doc = await richDocument('openmetrics');
    expect(importOpenMetrics(doc.replace('# EOF\n', '')).status).not.toBe(0);
    expect(importOpenMetrics(doc.replace('# TYPE queue_depth gauge\n', '\n# TYPE queue_depth gauge\n')).status).not.toBe(0);
  });
});

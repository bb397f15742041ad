/**
 * The "obvious build" of bench/series.ts, in its own process (so that its RSS is its own):
 *
 *   node --import tsx bench/series-baseline.ts <series> <cycles> [warm-up cycles, default 2]
 *
 * What one obvious exporter process holds beside its map reader: a prom-client Registry with one
 * Counter flow_bytes_total{saddr,sport,dport,proto} of <series> series, and an OpenTelemetry SDK
 * MeterProvider with a manual MetricReader and one ObservableCounter of the same series (cardinality
 * limit raised above <series>). The label values are those the exporter renders for the flow map
 * (bench/series-flows.ts).
 *
 * Each cycle g (the warm-up cycles first, not reported) runs, each part timed apart with
 * process.cpuUsage() (user + system of the whole process, GC threads included) and wall time:
 *   update     every series gets a new value (prom-client: child.inc(delta) on the child of each label
 *              set, made once; OTel: the array the observable callback reads)
 *   render     await registry.metrics()
 *   gzip       zlib.gzipSync(text) (default level)
 *   collect    await reader.collect() (the observable callback observes every series)
 *   serialize  ProtobufMetricsSerializer.serializeRequest(resourceMetrics), what an OTLP http/protobuf
 *              exporter sends
 * Value of series i at cycle g: flowValue(i) + g * (i % 97 + 1). The first and last measured cycles are
 * checked: the text has <series> lines of flow_bytes_total summing to the expected value, and the
 * collection <series> points with the same sum and no overflow point. A mismatch exits 1.
 *
 * Prints one JSON line on stdout (BaselineResult); progress goes to stderr.
 */
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { Counter, Registry } from 'prom-client';
import type { ObservableResult } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { LABEL_NAMES, METRIC, flowLabels, flowValue } from './series-flows.js';

export interface PartSample {
  cpuMs: number;
  wallMs: number;
}

export interface BaselineResult {
  series: number;
  cycles: number;
  warmUpCycles: number;
  setupMs: number;
  /** Per measured cycle, per part. */
  parts: Record<'update' | 'render' | 'gzip' | 'collect' | 'serialize', PartSample[]>;
  /** Whole measured loop: CPU (user + system) per cycle, all parts and whatever GC ran between them. */
  loopCpuMsPerCycle: number;
  textBytes: number;
  gzipBytes: number;
  otlpBytes: number;
  points: number;
  rssAfterSetupMb: number;
  rssMb: number;
  hwmMb: number;
  checks: string[];
}

class ManualReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {
    // nothing buffered
  }

  protected override async onShutdown(): Promise<void> {
    // nothing to close
  }
}

function procStatusMb(field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

const increment = (i: number): number => (i % 97) + 1;

async function main(): Promise<void> {
  const n = Number(process.argv[2]);
  const cycles = Number(process.argv[3]);
  const warm = Number(process.argv[4] ?? 2);
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(cycles) || cycles < 1 || !Number.isInteger(warm) || warm < 0) {
    throw new Error('usage: series-baseline.ts <series> <cycles> [warm-up cycles]');
  }
  const t0 = performance.now();

  // prom-client: one child per label set, made once (the fast path of counter.labels()).
  const registry = new Registry();
  const counter = new Counter({ name: METRIC, help: 'Bytes per flow', labelNames: [...LABEL_NAMES], registers: [registry] });
  const children: ReturnType<typeof counter.labels>[] = new Array(n);
  // OTel: attributes objects made once, values in an array the callback observes.
  const attrs: Record<string, string>[] = new Array(n);
  const values = new Float64Array(n);
  let incSum = 0;
  let sum0 = 0;
  for (let i = 0; i < n; i++) {
    const [saddr, sport, dport, proto] = flowLabels(i);
    const child = counter.labels(saddr, sport, dport, proto);
    const v = flowValue(i);
    child.inc(v);
    children[i] = child;
    attrs[i] = { saddr, sport, dport, proto };
    values[i] = v;
    sum0 += v;
    incSum += increment(i);
  }
  const reader = new ManualReader({ cardinalitySelector: () => n + 1000 });
  const provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': 'series-baseline' }), readers: [reader] });
  const meter = provider.getMeter('series-baseline');
  const observable = meter.createObservableCounter(METRIC, { description: 'Bytes per flow', unit: 'By' });
  observable.addCallback((r: ObservableResult) => {
    for (let i = 0; i < n; i++) r.observe(values[i], attrs[i]);
  });
  const setupMs = performance.now() - t0;
  const rssAfterSetupMb = procStatusMb('VmRSS');
  process.stderr.write(`  baseline: ${n} series set up in ${setupMs.toFixed(0)} ms, RSS ${rssAfterSetupMb.toFixed(0)} MB\n`);

  const parts: BaselineResult['parts'] = { update: [], render: [], gzip: [], collect: [], serialize: [] };
  const checks: string[] = [];
  let textBytes = 0;
  let gzipBytes = 0;
  let otlpBytes = 0;
  let points = 0;
  let loopCpu0 = process.cpuUsage();
  const timed = async <T>(part: keyof BaselineResult['parts'], measured: boolean, fn: () => T | Promise<T>): Promise<T> => {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    const out = await fn();
    const w = performance.now() - w0;
    const c = process.cpuUsage(c0);
    if (measured) parts[part].push({ cpuMs: (c.user + c.system) / 1000, wallMs: w });
    return out;
  };

  for (let g = 1; g <= warm + cycles; g++) {
    const measured = g > warm;
    if (g === warm + 1) loopCpu0 = process.cpuUsage();
    await timed('update', measured, () => {
      for (let i = 0; i < n; i++) {
        const d = increment(i);
        children[i].inc(d);
        values[i] += d;
      }
    });
    const text = await timed('render', measured, () => registry.metrics());
    const gz = await timed('gzip', measured, () => gzipSync(text));
    const collected = await timed('collect', measured, () => reader.collect());
    const bytes = await timed('serialize', measured, () => ProtobufMetricsSerializer.serializeRequest(collected.resourceMetrics));
    if (bytes === undefined) throw new Error('the OTLP serializer returned nothing');
    textBytes = Buffer.byteLength(text);
    gzipBytes = gz.length;
    otlpBytes = bytes.length;
    if (g === warm + 1 || g === warm + cycles) {
      const expected = sum0 + g * incSum;
      checks.push(checkText(text, n, expected, g), checkCollection(collected.resourceMetrics, collected.errors, n, expected, g));
      points = countPoints(collected.resourceMetrics);
    }
    if (measured) {
      const r = parts.render[parts.render.length - 1];
      process.stderr.write(`  baseline: cycle ${g - warm}/${cycles}: render ${r.cpuMs.toFixed(0)} ms CPU, collect ${parts.collect[parts.collect.length - 1].cpuMs.toFixed(0)} ms CPU\n`);
    }
  }
  const loop = process.cpuUsage(loopCpu0);
  const result: BaselineResult = {
    series: n, cycles, warmUpCycles: warm, setupMs, parts,
    loopCpuMsPerCycle: (loop.user + loop.system) / 1000 / cycles,
    textBytes, gzipBytes, otlpBytes, points,
    rssAfterSetupMb, rssMb: procStatusMb('VmRSS'), hwmMb: procStatusMb('VmHWM'), checks,
  };
  await provider.shutdown();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function checkText(text: string, n: number, expected: number, g: number): string {
  let lines = 0;
  let sum = 0;
  const prefix = `${METRIC}{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    lines++;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  if (lines !== n || sum !== expected) {
    throw new Error(`MISMATCH: prom-client text at cycle ${g}: ${lines} series summing to ${sum}, expected ${n} summing to ${expected}`);
  }
  return `prom-client cycle ${g}: ${lines} series, sum ${sum}`;
}

function countPoints(rm: ResourceMetrics): number {
  let k = 0;
  for (const sm of rm.scopeMetrics) for (const m of sm.metrics) k += m.dataPoints.length;
  return k;
}

function checkCollection(rm: ResourceMetrics, errors: unknown[], n: number, expected: number, g: number): string {
  let k = 0;
  let sum = 0;
  let overflow = 0;
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics) {
      if (m.descriptor.name !== METRIC) continue;
      for (const p of m.dataPoints) {
        if (p.attributes['otel.metric.overflow'] !== undefined) overflow++;
        k++;
        sum += p.value as number;
      }
    }
  }
  if (errors.length > 0 || k !== n || sum !== expected || overflow > 0) {
    throw new Error(`MISMATCH: OTel collection at cycle ${g}: ${k} points (${overflow} overflow) summing to ${sum}, expected ${n} summing to ${expected}; ${errors.length} errors`);
  }
  return `otel cycle ${g}: ${k} points, sum ${sum}`;
}

main().catch((e: unknown) => {
  process.stderr.write(`series-baseline: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});

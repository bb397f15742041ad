/**
 * The daemon as a process against real pinned maps: exact values on /metrics, promtool, content
 * negotiation, drains that survive a re-created pin and a restart, reload by SIGHUP, a clean SIGTERM.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { BpfMap } from '../../../src/bpf/map.js';
import { MapType } from '../../../src/bpf/map-types.js';
import { kernelDescribe, pinDir } from '../support.js';
import { metrics, sample, sleep, startDaemon, stopDaemon, until } from './process.js';

// The OTel project's generated protobuf definitions (@opentelemetry/otlp-transformer 0.52, the last
// release that ships them), under a dev-only alias: 0.2xx encodes without them and cannot decode a request.
interface ProtoType { decode(b: Uint8Array): unknown; toObject(m: unknown, o: { longs: NumberConstructor; defaults: boolean }): unknown }
const otlpRoot = createRequire(import.meta.url)('otlp-proto-definitions/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: { metrics: { v1: { ExportMetricsServiceRequest: ProtoType } } } } };
};
const { ExportMetricsServiceRequest } = otlpRoot.opentelemetry.proto.collector.metrics.v1;

const le32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const le64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };

type Point = { asDouble?: number; asInt?: number | string; attributes: { key: string; value: { stringValue?: string } }[] };
type Metric = { name: string; sum?: { dataPoints: Point[]; isMonotonic: boolean; aggregationTemporality: number }; gauge?: { dataPoints: Point[] } };
type Body = { resourceMetrics: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeMetrics: { metrics: Metric[] }[] }[] };
/** A point's number: OTLP/JSON and protobuf carry doubles, or ints (as strings in JSON). */
const value = (p: Point): number => (p.asInt !== undefined && p.asInt !== 0 && p.asInt !== '0' ? Number(p.asInt) : (p.asDouble ?? 0));

kernelDescribe('the daemon', () => {
  let pins: string;
  let dir: string;
  const open: BpfMap[] = [];
  let counts: BpfMap;
  let events: BpfMap;
  const name = `bme_n${process.pid % 100000}`;
  const named = (v: number) => {
    const m = BpfMap.create({ type: MapType.hash, name, keySize: 4, valueSize: 8, maxEntries: 4 });
    m.update(le32(0), le64(v));
    return m;
  };
  let namedMap: BpfMap;

  const newEvents = () => {
    const m = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 64 });
    open.push(m);
    return m;
  };

  const configText = (extraMetric = '') => `
interval: 100ms
state_file: ${dir}/state.json
maps:
  - name: counts
    source: { pinned: ${pins}/counts }
    key: [ { name: id, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: demo_value, type: gauge, help: Per-id values, value: n, labels: [ { name: id, from: id } ] }
${extraMetric}
  - name: events
    source: { pinned: ${pins}/events }
    mode: drain
    key: [ { name: kind, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: demo_events_total, type: counter, help: Drained events, value: n, labels: [ { name: kind, from: kind, decoder: static_map, map: { 1: open, 2: close } } ] }
  - name: later
    source: { pinned: ${pins}/later }
    keep_stale: 1s
    key: [ { name: id, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: demo_later, type: gauge, help: A map that appears later, value: n }
  - name: named
    source: { name: ${name} }
    key: [ { name: id, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: demo_named, type: gauge, help: A map found by name, value: n }
`;

  beforeAll(() => {
    pins = pinDir('daemon');
    dir = mkdtempSync(join(tmpdir(), 'bme-daemon-'));
    counts = BpfMap.create({ type: MapType.percpu_hash, keySize: 4, valueSize: 8, maxEntries: 64 });
    open.push(counts);
    const v = counts.allocValues();
    for (let c = 0; c < counts.cpus; c++) v.writeBigUInt64LE(BigInt(10 * (c + 1)), c * 8);
    counts.update(le32(7), v);
    counts.pin(`${pins}/counts`);
    events = newEvents();
    events.pin(`${pins}/events`);
    namedMap = named(1);
    open.push(namedMap);
    writeFileSync(join(dir, 'config.yaml'), configText());
  });

  afterAll(() => {
    for (const m of open) m.close();
    rmSync(pins, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('exports exact values, negotiates formats, passes promtool, follows a late map, and drains without loss across re-creation, restart and reload', async () => {
    const cfg = join(dir, 'config.yaml');
    const cpuSum = Array.from({ length: counts.cpus }, (_, c) => 10 * (c + 1)).reduce((a, b) => a + b, 0);
    let d = await startDaemon(cfg);
    try {
      let t = await until(d, (x) => sample(x, 'bpf_map_exporter_map_up{map="later"}') === 0);
      expect(sample(t, 'demo_value{id="7"}')).toBe(cpuSum);
      expect(sample(t, 'bpf_map_exporter_map_up{map="counts"}')).toBe(1);
      expect(sample(t, 'bpf_map_exporter_map_read_errors_total{errno="ENOENT",map="later"}')).toBeGreaterThan(0);
      expect(sample(t, 'bpf_map_exporter_map_entries{map="counts"}')).toBe(1);
      expect(sample(t, 'bpf_map_exporter_map_max_entries{map="counts"}')).toBe(64);

      // promtool lints the text format; OpenMetrics and gzip are negotiated.
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: t, encoding: 'utf8' });
      expect(lint.status, lint.stdout + lint.stderr).toBe(0);
      expect(lint.stdout + lint.stderr).toBe('');
      const om = await fetch(`${d.base}/metrics`, { headers: { Accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' } });
      expect(om.headers.get('content-type')).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
      expect((await om.text()).endsWith('# EOF\n')).toBe(true);
      const raw = spawnSync('curl', ['-s', '-H', 'Accept-Encoding: gzip', `${d.base}/metrics`], { encoding: 'buffer' });
      expect(gunzipSync(raw.stdout).toString()).toContain('demo_value{id="7"}');
      expect((await fetch(`${d.base}/metrics`, { method: 'POST' })).status).toBe(405);

      // A map failing the same way every cycle is logged once; the errors go on counting.
      t = await until(d, (x) => (sample(x, 'bpf_map_exporter_map_read_errors_total{errno="ENOENT",map="later"}') ?? 0) >= 3);
      const warnings = (level: string) => d.stderr().split('\n').filter((l) => l.includes('"map":"later"') && l.includes(`"level":"${level}"`));
      expect(warnings('warn')).toHaveLength(1);

      // The late map appears: followed without a restart.
      const later = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 4 });
      open.push(later);
      later.update(le32(1), le64(42));
      later.pin(`${pins}/later`);
      t = await until(d, (x) => sample(x, 'demo_later') === 42);
      expect(sample(t, 'bpf_map_exporter_map_up{map="later"}')).toBe(1);
      expect(warnings('info').filter((l) => l.includes('the map is read again'))).toHaveLength(1);

      // The pin is replaced by a map that no longer fits: up 0 at once, the last good series kept
      // for keep_stale (1 s), then gone.
      unlinkSync(`${pins}/later`);
      const misfit = BpfMap.create({ type: MapType.hash, keySize: 8, valueSize: 8, maxEntries: 4 });
      open.push(misfit);
      misfit.pin(`${pins}/later`);
      const failedAt = Date.now();
      t = await until(d, (x) => sample(x, 'bpf_map_exporter_map_up{map="later"}') === 0);
      expect(sample(t, 'demo_later')).toBe(42);
      t = await until(d, (x) => sample(x, 'demo_later') === undefined);
      expect(Date.now() - failedAt).toBeGreaterThanOrEqual(900);

      // A map found by name is followed when its program restarts (a new map of that name).
      expect(sample(t, 'demo_named')).toBe(1);
      const renamed = named(2);
      open.push(renamed);
      namedMap.close();
      await until(d, (x) => sample(x, 'demo_named') === 2);

      // Drains: entries are taken out of the map and added to totals.
      events.update(le32(1), le64(5));
      events.update(le32(2), le64(1));
      await until(d, (x) => sample(x, 'demo_events_total{kind="open"}') === 5 && sample(x, 'demo_events_total{kind="close"}') === 1);
      expect(events.lookup(le32(1))).toBeUndefined();
      events.update(le32(1), le64(3));
      await until(d, (x) => sample(x, 'demo_events_total{kind="open"}') === 8);

      // The drained map is re-created under the same pin: the totals go on.
      unlinkSync(`${pins}/events`);
      events = newEvents();
      events.update(le32(1), le64(4));
      events.pin(`${pins}/events`);
      await until(d, (x) => sample(x, 'demo_events_total{kind="open"}') === 12);

      // Reload: a new metric appears, a broken config is refused, the totals stay.
      writeFileSync(cfg, configText('      - { name: demo_value_max, type: gauge, help: Per-id max over CPUs, value: n, cpu: max, labels: [ { name: id, from: id } ] }'));
      d.proc.kill('SIGHUP');
      t = await until(d, (x) => sample(x, 'demo_value_max{id="7"}') === 10 * counts.cpus);
      expect(sample(t, 'demo_events_total{kind="open"}')).toBe(12);
      writeFileSync(cfg, 'maps: [ { name: broken } ]\n');
      d.proc.kill('SIGHUP');
      await sleep(300);
      expect(d.stderr()).toContain('reload refused');
      expect(sample(await metrics(d), 'demo_value_max{id="7"}')).toBe(10 * counts.cpus);
      writeFileSync(cfg, configText());

      // SIGTERM: a final drain and checkpoint, exit 0 within 5 s.
      events.update(le32(2), le64(6));
      const stop = await stopDaemon(d);
      expect(stop.code).toBe(0);
      expect(stop.ms).toBeLessThan(5000);
      expect(events.lookup(le32(2))).toBeUndefined();
      const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { jobs: Record<string, Record<string, { labels: Record<string, string>; value: number }[]>> };
      expect(state.jobs.events.demo_events_total.map((s) => [s.labels.kind, s.value]).sort()).toEqual([['close', 7], ['open', 12]]);

      // A restart restores the totals and goes on counting.
      d = await startDaemon(cfg);
      t = await metrics(d);
      expect(sample(t, 'demo_events_total{kind="open"}')).toBe(12);
      expect(sample(t, 'demo_events_total{kind="close"}')).toBe(7);
      events.update(le32(1), le64(1));
      await until(d, (x) => sample(x, 'demo_events_total{kind="open"}') === 13);
    } finally {
      if (d.proc.exitCode === null) expect((await stopDaemon(d)).code).toBe(0);
    }
    expect(existsSync(join(dir, 'state.json'))).toBe(true);
  }, 120_000);

  for (const protocol of ['http/protobuf', 'http/json'] as const) {
    it(`pushes the same values over OTLP (${protocol}${protocol === 'http/protobuf' ? ', decoded with the OTel project\'s own protobuf definitions' : ''})`, async () => {
      const bodies: Body[] = [];
      const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          if (req.url === '/v1/metrics') {
            bodies.push(
              req.headers['content-type'] === 'application/x-protobuf'
                ? (ExportMetricsServiceRequest.toObject(ExportMetricsServiceRequest.decode(body), { longs: Number, defaults: true }) as Body)
                : (JSON.parse(body.toString()) as Body),
            );
          }
          res.writeHead(200, { 'Content-Type': req.headers['content-type'] ?? 'application/json' });
          res.end(req.headers['content-type'] === 'application/x-protobuf' ? Buffer.alloc(0) : '{}');
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      const tag = protocol.replace('/', '-');
      const cfg = join(dir, `otlp-${tag}.yaml`);
      // The OTLP settings come from the config here, the node name from the environment.
      writeFileSync(cfg, configText().replace(`state_file: ${dir}/state.json`, `state_file: ${dir}/otlp-${tag}.json\notel: { endpoint: "http://127.0.0.1:${port}", protocol: ${protocol}, interval: 200ms }`));
      const d = await startDaemon(cfg, { K8S_NODE_NAME: 'node-a' });
      try {
        events.update(le32(2), le64(9));
        await until(d, (x) => sample(x, 'demo_events_total{kind="close"}') === 9);
        const find = (metricName: string): { metric: Metric; resource: Body['resourceMetrics'][0]['resource'] } | undefined => {
          for (const b of [...bodies].reverse()) {
            for (const rm of b.resourceMetrics) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) if (m.name === metricName) return { metric: m, resource: rm.resource };
          }
          return undefined;
        };
        const closeValue = () => {
          const p = find('demo_events_total')?.metric.sum?.dataPoints.find((x) => x.attributes.some((a) => a.key === 'kind' && a.value.stringValue === 'close'));
          return p === undefined ? undefined : value(p);
        };
        for (let i = 0; i < 100 && (closeValue() !== 9 || find('demo_value') === undefined); i++) await sleep(50);
        const ev = find('demo_events_total')!;
        expect(ev.metric.sum!.isMonotonic).toBe(true);
        expect(ev.metric.sum!.aggregationTemporality).toBe(2); // cumulative
        expect(closeValue()).toBe(9);
        const cpuSum = Array.from({ length: counts.cpus }, (_, c) => 10 * (c + 1)).reduce((a, b) => a + b, 0);
        expect(find('demo_value')!.metric.gauge!.dataPoints.map(value)).toEqual([cpuSum]);
        expect(ev.resource.attributes).toEqual(expect.arrayContaining([{ key: 'k8s.node.name', value: expect.objectContaining({ stringValue: 'node-a' }) }]));
        expect((await stopDaemon(d)).code).toBe(0);
      } finally {
        if (d.proc.exitCode === null) d.proc.kill('SIGKILL');
        server.close();
      }
    }, 60_000);
  }
});

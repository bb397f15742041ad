/**
 * OTLP carries everything /metrics carries: the exporter as a process, pushing over http/protobuf
 * (endpoint and interval from the standard OTEL_* variables) to a receiver in the test, the requests
 * decoded with the OTel project's own protobuf definitions. With the default config (the inventory
 * alone) the inventory, the build info and the process metrics arrive; with a map job, its
 * self-metrics arrive too, beside the job's own series.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfMap } from '../../../src/bpf/map.js';
import { MapType } from '../../../src/bpf/map-types.js';
import { root, sleep, spawnExporter, type Exporter } from '../../e2e/support.js';
import { kernelDescribe, pinDir } from '../support.js';

// The OTel project's generated protobuf definitions (@opentelemetry/otlp-transformer 0.52 under a
// dev-only alias), as in daemon.test.ts.
interface ProtoType { decode(b: Uint8Array): unknown; toObject(m: unknown, o: { longs: NumberConstructor; defaults: boolean }): unknown }
const otlpRoot = createRequire(import.meta.url)('otlp-proto-definitions/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: { metrics: { v1: { ExportMetricsServiceRequest: ProtoType } } } } };
};
const { ExportMetricsServiceRequest } = otlpRoot.opentelemetry.proto.collector.metrics.v1;

type KeyValue = { key: string; value: { stringValue?: string } };
type Point = { asDouble?: number; attributes: KeyValue[]; startTimeUnixNano: number; timeUnixNano: number };
type Metric = {
  name: string;
  sum?: { dataPoints: Point[]; isMonotonic: boolean; aggregationTemporality: number };
  gauge?: { dataPoints: Point[] };
  histogram?: { dataPoints: unknown[] };
};
type Request = { resourceMetrics: { resource: { attributes: KeyValue[] }; scopeMetrics: { scope: { name: string }; metrics: Metric[] }[] }[] };

const CUMULATIVE = 2;
const le32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const le64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };
const attrs = (p: Point): Record<string, string | undefined> => Object.fromEntries(p.attributes.map((a) => [a.key, a.value.stringValue]));

interface Receiver {
  endpoint: string;
  requests: Request[];
  /** The newest received metric named `name` (in any scope), once some request has it (bounded: 15 s). */
  until(name: string, pred?: (m: Metric) => boolean): Promise<Metric>;
  close(): void;
}

async function receiver(): Promise<Receiver> {
  const requests: Request[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/metrics' && req.headers['content-type'] === 'application/x-protobuf') {
        requests.push(ExportMetricsServiceRequest.toObject(ExportMetricsServiceRequest.decode(Buffer.concat(chunks)), { longs: Number, defaults: true }) as Request);
      }
      res.writeHead(200, { 'Content-Type': 'application/x-protobuf' });
      res.end(Buffer.alloc(0));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const newest = (name: string, pred: (m: Metric) => boolean): Metric | undefined => {
    for (const b of [...requests].reverse()) {
      for (const rm of b.resourceMetrics) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) if (m.name === name && pred(m)) return m;
    }
    return undefined;
  };
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    until: async (name, pred = () => true) => {
      for (let i = 0; i < 300; i++) {
        const m = newest(name, pred);
        if (m !== undefined) return m;
        await sleep(50);
      }
      throw new Error(`no ${name} over OTLP in ${requests.length} requests: ${[...new Set(requests.flatMap((b) => b.resourceMetrics.flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics.map((m) => m.name)))))].join(', ')}`);
    },
    close: () => server.close(),
  };
}

const otlpEnv = (rx: Receiver): Record<string, string> => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint,
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
  OTEL_METRIC_EXPORT_INTERVAL: '200',
});

kernelDescribe('OTLP carries what /metrics carries', () => {
  let pins: string;
  let dir: string;
  let map: BpfMap;
  let big: BpfMap | undefined;
  const name = `bme_o${process.pid % 100000}`;
  const running: Exporter[] = [];
  const receivers: Receiver[] = [];

  beforeAll(() => {
    pins = pinDir('otlp');
    dir = mkdtempSync(join(tmpdir(), 'bme-otlp-'));
    // Before the exporters start: their first inventory lists it.
    map = BpfMap.create({ type: MapType.hash, name, keySize: 4, valueSize: 8, maxEntries: 16 });
    map.update(le32(1), le64(5));
    map.pin(`${pins}/counts`);
  });

  afterAll(async () => {
    for (const e of running) if (e.proc.exitCode === null) e.proc.kill('SIGKILL');
    for (const r of receivers) r.close();
    map?.close();
    big?.close();
    rmSync(pins, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('with the default config (the inventory alone): the inventory, the build info and the process metrics', async () => {
    const rx = await receiver();
    receivers.push(rx);
    const e = await spawnExporter(join(root, 'config/default.yaml'), { env: otlpEnv(rx) });
    running.push(e);

    const info = await rx.until('bpf_map_info', (m) => m.gauge!.dataPoints.some((p) => attrs(p).name === name));
    const mine = info.gauge!.dataPoints.filter((p) => attrs(p).name === name);
    expect(mine).toHaveLength(1);
    expect(attrs(mine[0])).toEqual({ id: String(map.info.id), name, type: 'hash', key_size: '4', value_size: '8', flags: '0x0' });
    expect(mine[0].asDouble).toBe(1);
    const entries = await rx.until('bpf_map_entries');
    expect(entries.gauge!.dataPoints.find((p) => attrs(p).id === String(map.info.id))?.asDouble).toBe(1);

    const build = await rx.until('bpf_map_exporter_build_info');
    expect(build.gauge!.dataPoints).toHaveLength(1);
    expect(attrs(build.gauge!.dataPoints[0])).toEqual({ version: expect.stringMatching(/^\d+\.\d+\.\d+/), nodejs: process.versions.node });
    expect(await rx.until('bpf_map_exporter_inventory_up').then((m) => m.gauge!.dataPoints[0].asDouble)).toBe(1);

    const rss = await rx.until('process_resident_memory_bytes');
    expect(rss.gauge!.dataPoints[0].asDouble).toBeGreaterThan(0);
    const cpu = await rx.until('process_cpu_seconds_total');
    expect(cpu.sum).toMatchObject({ isMonotonic: true, aggregationTemporality: CUMULATIVE });
    expect(cpu.sum!.dataPoints[0].startTimeUnixNano).toBeLessThan(cpu.sum!.dataPoints[0].timeUnixNano);
    // (nodejs_gc_duration_seconds has a series once a GC has happened, which may take seconds: unit-tested.)
    expect((await rx.until('nodejs_heap_size_used_bytes')).gauge!.dataPoints[0].asDouble).toBeGreaterThan(0);

    // The resource is the exporter's, as for the map jobs' series.
    const resource = rx.requests[rx.requests.length - 1].resourceMetrics[0].resource.attributes;
    expect(resource).toEqual(expect.arrayContaining([{ key: 'service.name', value: expect.objectContaining({ stringValue: 'bpf-map-exporter' }) }]));
    expect(await e.stop()).toBe(0);
  }, 60_000);

  it("with a map job: the job's self-metrics as monotonic sums, beside its series", async () => {
    const rx = await receiver();
    receivers.push(rx);
    const cfg = join(dir, 'job.yaml');
    writeFileSync(cfg, `
interval: 100ms
maps:
  - name: counts
    source: { pinned: ${pins}/counts }
    key: [ { name: id, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: otlp_demo_value, type: gauge, help: Per-id values, value: n, labels: [ { name: id, from: id } ] }
`);
    const e = await spawnExporter(cfg, { env: otlpEnv(rx) });
    running.push(e);

    const point = (m: Metric) => m.sum!.dataPoints.find((p) => attrs(p).map === 'counts');
    const first = await rx.until('bpf_map_exporter_map_reads_total', (m) => (point(m)?.asDouble ?? 0) >= 1);
    expect(first.sum).toMatchObject({ isMonotonic: true, aggregationTemporality: CUMULATIVE });
    const p1 = point(first)!;
    expect(attrs(p1)).toEqual({ map: 'counts' });
    // Read every 100 ms: a later export counts more reads, over the same start.
    const later = await rx.until('bpf_map_exporter_map_reads_total', (m) => (point(m)?.asDouble ?? 0) > p1.asDouble! + 2);
    const p2 = point(later)!;
    expect(p2.startTimeUnixNano).toBe(p1.startTimeUnixNano);
    expect(p2.timeUnixNano).toBeGreaterThan(p1.timeUnixNano);
    expect((await rx.until('bpf_map_exporter_map_up')).gauge!.dataPoints.find((p) => attrs(p).map === 'counts')?.asDouble).toBe(1);
    expect((await rx.until('otlp_demo_value')).gauge!.dataPoints.map((p) => [attrs(p), p.asDouble])).toEqual([[{ id: '1' }, 5]]);
    // The inventory is not asked for: it is not sent.
    expect(rx.requests.some((b) => b.resourceMetrics.some((rm) => rm.scopeMetrics.some((sm) => sm.metrics.some((m) => m.name === 'bpf_map_info' && (m.gauge?.dataPoints.length ?? 0) > 0))))).toBe(false);
    expect(await e.stop()).toBe(0);
  }, 60_000);

  it('keeps exporting while a /metrics client has stopped reading a document larger than the socket buffers', async () => {
    // 150,000 series: a document of ~5 MB, more than the kernel takes for a client that reads nothing
    // (checked below), so the response stays in progress and the export's slices wait for it (10 ms
    // at most each).
    const n = 150_000;
    big = BpfMap.create({ type: MapType.hash, name: `bme_ob${process.pid % 10000}`, keySize: 4, valueSize: 8, maxEntries: n });
    const keys = Buffer.alloc(4 * n);
    const values = Buffer.alloc(8 * n);
    for (let i = 0; i < n; i++) {
      keys.writeUInt32LE(i, 4 * i);
      values.writeBigUInt64LE(BigInt(i), 8 * i);
    }
    expect(big.updateBatch(keys, values, n)).toBe(n);
    big.pin(`${pins}/big`);
    const rx = await receiver();
    receivers.push(rx);
    const cfg = join(dir, 'big.yaml');
    writeFileSync(cfg, `
interval: 1s
maps:
  - name: big
    source: { pinned: ${pins}/big }
    key: [ { name: id, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: otlp_big_value, type: gauge, help: Per-id values, value: n, max_series: 500000, labels: [ { name: id, from: id } ] }
`);
    const e = await spawnExporter(cfg, { env: { ...otlpEnv(rx), OTEL_METRIC_EXPORT_INTERVAL: '1000' } });
    running.push(e);
    const reads = (m: Metric) => m.sum!.dataPoints.find((p) => attrs(p).map === 'big')?.asDouble ?? 0;
    const before = reads(await rx.until('bpf_map_exporter_map_reads_total', (m) => reads(m) >= 1));

    const stuck = connect(e.port, '127.0.0.1');
    let received = 0;
    await new Promise<void>((resolve) => stuck.once('connect', resolve));
    stuck.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    stuck.once('data', (c: Buffer) => {
      received += c.length;
      stuck.pause(); // and never read again
    });
    try {
      // The exporter's end of the connection has bytes the client does not take (/proc/net/tcp, tx_queue).
      const unsent = async (): Promise<number> => {
        const local = stuck.localPort!;
        for (let i = 0; i < 100; i++) {
          const row = readFileSync('/proc/net/tcp', 'utf8').split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f[1]?.endsWith(`:${e.port.toString(16).toUpperCase().padStart(4, '0')}`) && f[2]?.endsWith(`:${local.toString(16).toUpperCase().padStart(4, '0')}`));
          const queued = row === undefined ? 0 : parseInt(row[4].split(':')[0], 16);
          if (queued > 0) return queued;
          await sleep(100);
        }
        return 0;
      };
      expect(await unsent()).toBeGreaterThan(0);
      // Two more reads arrive over OTLP meanwhile, each with every series.
      const later = await rx.until('bpf_map_exporter_map_reads_total', (m) => reads(m) >= before + 2);
      expect(reads(later)).toBeGreaterThanOrEqual(before + 2);
      const value = await rx.until('otlp_big_value');
      expect(value.gauge!.dataPoints).toHaveLength(n);
      expect(received).toBeGreaterThan(0);
      // Still answering other scrapes.
      expect((await fetch(`${e.base}/healthz`)).status).toBe(200);
    } finally {
      stuck.destroy();
    }
    expect(await e.stop()).toBe(0);
  }, 90_000);
});

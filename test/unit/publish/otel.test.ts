/**
 * OTLP end to end inside the process: a receiver on 127.0.0.1 (node:http for http/protobuf and
 * http/json, grpc-js for grpc) takes what the real SDK reader and OTLP exporters built by startOtel
 * send, and the tests assert the decoded request field by field.
 *
 * Decoding protobuf: @opentelemetry/otlp-transformer 0.223 no longer ships generated protobuf code or
 * the .proto files: it serializes requests with a hand-written writer and only parses the *response*
 * (ProtobufMetricsSerializer.deserializeResponse). So the request is decoded here by a small wire
 * decoder written from the OTLP field numbers (opentelemetry/proto/metrics/v1/metrics.proto), and that
 * decoder is held to the project's own JSON serializer: the protobuf body must decode to exactly what
 * JsonMetricsSerializer makes of the same collection.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { JsonMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Family, HistogramSeries } from '../../../src/metric/series.js';
import { logger } from '../../../src/log.js';
import { Counter, Gauge, Registry } from 'prom-client';
import {
  REGISTRY_SCOPE_NAME,
  RegistryProducer,
  SCOPE_NAME,
  SnapshotProducer,
  createOtlpExporter,
  exporterVersion,
  startOtel,
  type Otel,
  type OtelOptions,
  type ProducerSource,
} from '../../../src/publish/otel.js';
import { OtlpGrpcExporter } from '../../../src/publish/otel-exporter.js';
import { waiter } from '../../otlp-traces.js';

// ---------------------------------------------------------------------------------------------------
// The decoded form both wire formats are brought to (the OTLP/JSON shape, attributes as a record).

type AttrValue = string | number | boolean;
interface OtlpPoint {
  attributes: Record<string, AttrValue>;
  startTimeUnixNano: string;
  timeUnixNano: string;
  asDouble?: number;
  asInt?: number;
  count?: number;
  sum?: number;
  bucketCounts?: number[];
  explicitBounds?: number[];
  min?: number;
  max?: number;
}
interface OtlpMetric {
  name: string;
  description: string;
  unit: string;
  sum?: { aggregationTemporality: number; isMonotonic: boolean; dataPoints: OtlpPoint[] };
  gauge?: { dataPoints: OtlpPoint[] };
  histogram?: { aggregationTemporality: number; dataPoints: OtlpPoint[] };
}
interface OtlpScopeMetrics {
  scope: { name: string; version: string };
  metrics: OtlpMetric[];
}
interface OtlpRequest {
  resourceMetrics: { resource: Record<string, AttrValue>; scopeMetrics: OtlpScopeMetrics[] }[];
}

const CUMULATIVE = 2; // AGGREGATION_TEMPORALITY_CUMULATIVE
const DELTA = 1;

// ---------------------------------------------------------------------------------------------------
// A protobuf wire decoder for ExportMetricsServiceRequest: just the fields the exporter writes.

class Wire {
  pos = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
    }
  }
  tag(): { field: number; wire: number } {
    const t = Number(this.varint());
    return { field: t >>> 3, wire: t & 7 };
  }
  fixed64(): bigint {
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  double(): number {
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  bytes(): Uint8Array {
    const n = Number(this.varint());
    const out = this.buf.subarray(this.pos, this.pos + n);
    if (out.length !== n) throw new Error('truncated bytes');
    this.pos += n;
    return out;
  }
  string(): string {
    return new TextDecoder().decode(this.bytes());
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`wire type ${wire}`);
  }
  /** Each field of a length-delimited message. */
  static fields(buf: Uint8Array, on: (field: number, wire: number, r: Wire) => void): void {
    const r = new Wire(buf);
    while (!r.done) {
      const { field, wire } = r.tag();
      const at = r.pos;
      on(field, wire, r);
      if (r.pos === at) r.skip(wire); // a field the caller does not read
    }
  }
}

function anyValue(buf: Uint8Array): AttrValue {
  let v: AttrValue = '';
  Wire.fields(buf, (f, _w, r) => {
    if (f === 1) v = r.string();
    else if (f === 2) v = r.varint() !== 0n;
    else if (f === 3) v = Number(BigInt.asIntN(64, r.varint()));
    else if (f === 4) v = r.double();
  });
  return v;
}

function keyValue(buf: Uint8Array, into: Record<string, AttrValue>): void {
  let key = '';
  let value: AttrValue = '';
  Wire.fields(buf, (f, _w, r) => {
    if (f === 1) key = r.string();
    else if (f === 2) value = anyValue(r.bytes());
  });
  into[key] = value;
}

function packed<T>(buf: Uint8Array, read: (r: Wire) => T): T[] {
  const r = new Wire(buf);
  const out: T[] = [];
  while (!r.done) out.push(read(r));
  return out;
}

/** NumberDataPoint (attributes 7) or HistogramDataPoint (attributes 9). */
function dataPoint(buf: Uint8Array, histogram: boolean): OtlpPoint {
  const p: OtlpPoint = { attributes: {}, startTimeUnixNano: '0', timeUnixNano: '0' };
  Wire.fields(buf, (f, w, r) => {
    if (f === 2) p.startTimeUnixNano = r.fixed64().toString();
    else if (f === 3) p.timeUnixNano = r.fixed64().toString();
    else if (!histogram) {
      if (f === 4) p.asDouble = r.double();
      else if (f === 6) p.asInt = Number(BigInt.asIntN(64, r.fixed64()));
      else if (f === 7) keyValue(r.bytes(), p.attributes);
    } else if (f === 4) p.count = Number(r.fixed64());
    else if (f === 5) p.sum = r.double();
    else if (f === 6 && w === 2) p.bucketCounts = packed(r.bytes(), (x) => Number(x.fixed64()));
    else if (f === 7 && w === 2) p.explicitBounds = packed(r.bytes(), (x) => x.double());
    else if (f === 9) keyValue(r.bytes(), p.attributes);
    else if (f === 11) p.min = r.double();
    else if (f === 12) p.max = r.double();
  });
  return p;
}

function metric(buf: Uint8Array): OtlpMetric {
  const m: OtlpMetric = { name: '', description: '', unit: '' };
  Wire.fields(buf, (f, _w, r) => {
    if (f === 1) m.name = r.string();
    else if (f === 2) m.description = r.string();
    else if (f === 3) m.unit = r.string();
    else if (f === 5) {
      const g = { dataPoints: [] as OtlpPoint[] };
      Wire.fields(r.bytes(), (ff, _ww, rr) => {
        if (ff === 1) g.dataPoints.push(dataPoint(rr.bytes(), false));
      });
      m.gauge = g;
    } else if (f === 7) {
      const s = { aggregationTemporality: 0, isMonotonic: false, dataPoints: [] as OtlpPoint[] };
      Wire.fields(r.bytes(), (ff, _ww, rr) => {
        if (ff === 1) s.dataPoints.push(dataPoint(rr.bytes(), false));
        else if (ff === 2) s.aggregationTemporality = Number(rr.varint());
        else if (ff === 3) s.isMonotonic = rr.varint() !== 0n;
      });
      m.sum = s;
    } else if (f === 9) {
      const h = { aggregationTemporality: 0, dataPoints: [] as OtlpPoint[] };
      Wire.fields(r.bytes(), (ff, _ww, rr) => {
        if (ff === 1) h.dataPoints.push(dataPoint(rr.bytes(), true));
        else if (ff === 2) h.aggregationTemporality = Number(rr.varint());
      });
      m.histogram = h;
    } else if (f === 10 || f === 11) throw new Error(`unexpected metric kind field ${f} in ${m.name}`);
  });
  return m;
}

function decodeProtobuf(body: Uint8Array): OtlpRequest {
  const req: OtlpRequest = { resourceMetrics: [] };
  Wire.fields(body, (f, _w, r) => {
    if (f !== 1) return;
    const rm: OtlpRequest['resourceMetrics'][number] = { resource: {}, scopeMetrics: [] };
    Wire.fields(r.bytes(), (f2, _w2, r2) => {
      if (f2 === 1) {
        Wire.fields(r2.bytes(), (f3, _w3, r3) => {
          if (f3 === 1) keyValue(r3.bytes(), rm.resource);
        });
      } else if (f2 === 2) {
        const sm: OtlpScopeMetrics = { scope: { name: '', version: '' }, metrics: [] };
        Wire.fields(r2.bytes(), (f3, _w3, r3) => {
          if (f3 === 1) {
            Wire.fields(r3.bytes(), (f4, _w4, r4) => {
              if (f4 === 1) sm.scope.name = r4.string();
              else if (f4 === 2) sm.scope.version = r4.string();
            });
          } else if (f3 === 2) sm.metrics.push(metric(r3.bytes()));
        });
        rm.scopeMetrics.push(sm);
      }
    });
    req.resourceMetrics.push(rm);
  });
  return req;
}

// ---------------------------------------------------------------------------------------------------
// OTLP/JSON brought to the same shape.

interface JsonKeyValue {
  key: string;
  value: { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean };
}
interface JsonPoint extends Omit<OtlpPoint, 'attributes'> {
  attributes: JsonKeyValue[];
}
interface JsonMetric {
  name: string;
  description?: string;
  unit?: string;
  sum?: { aggregationTemporality: number; isMonotonic?: boolean; dataPoints: JsonPoint[] };
  gauge?: { dataPoints: JsonPoint[] };
  histogram?: { aggregationTemporality: number; dataPoints: JsonPoint[] };
}
interface JsonRequest {
  resourceMetrics: { resource: { attributes: JsonKeyValue[] }; scopeMetrics: { scope: { name: string; version?: string }; metrics: JsonMetric[] }[] }[];
}

function attrs(kvs: JsonKeyValue[]): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const { key, value } of kvs) out[key] = value.stringValue ?? value.boolValue ?? value.doubleValue ?? Number(value.intValue);
  return out;
}
function jsonPoint(p: JsonPoint): OtlpPoint {
  const out: OtlpPoint = { ...p, attributes: attrs(p.attributes) };
  // Proto3 leaves out what the JSON spells as zero/empty.
  for (const k of ['bucketCounts', 'explicitBounds'] as const) if (out[k]?.length === 0) delete out[k];
  return out;
}
function decodeJson(body: Uint8Array): OtlpRequest {
  const req = JSON.parse(new TextDecoder().decode(body)) as JsonRequest;
  return {
    resourceMetrics: req.resourceMetrics.map((rm) => ({
      resource: attrs(rm.resource.attributes),
      scopeMetrics: rm.scopeMetrics.map((sm) => ({
        scope: { name: sm.scope.name, version: sm.scope.version ?? '' },
        metrics: sm.metrics.map((m) => {
          const out: OtlpMetric = { name: m.name, description: m.description ?? '', unit: m.unit ?? '' };
          if (m.sum) out.sum = { aggregationTemporality: m.sum.aggregationTemporality, isMonotonic: m.sum.isMonotonic ?? false, dataPoints: m.sum.dataPoints.map(jsonPoint) };
          if (m.gauge) out.gauge = { dataPoints: m.gauge.dataPoints.map(jsonPoint) };
          if (m.histogram) out.histogram = { aggregationTemporality: m.histogram.aggregationTemporality, dataPoints: m.histogram.dataPoints.map(jsonPoint) };
          return out;
        }),
      })),
    })),
  };
}

// ---------------------------------------------------------------------------------------------------
// Receivers.

interface Received {
  path: string;
  contentType: string;
  headers: IncomingHttpHeaders | Record<string, unknown>;
  body: Buffer;
}

interface Receiver {
  endpoint: string;
  got: Received[];
  /** Resolves once `n` requests have arrived; fails after `ms`. */
  waitFor(n: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

async function httpReceiver(): Promise<Receiver> {
  const got: Received[] = [];
  const w = waiter(got);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const contentType = req.headers['content-type'] ?? '';
      got.push({ path: req.url ?? '', contentType, headers: req.headers, body: Buffer.concat(chunks) });
      // An empty ExportMetricsServiceResponse: full success.
      if (contentType.includes('json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      w.notify();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    got,
    waitFor: w.waitFor,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const EXPORT_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';

async function grpcReceiver(): Promise<Receiver> {
  const got: Received[] = [];
  const w = waiter(got);
  const server = new grpc.Server();
  const raw = (b: Buffer) => b;
  server.addService(
    { export: { path: EXPORT_PATH, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
    {
      export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
        got.push({ path: EXPORT_PATH, contentType: 'application/grpc', headers: call.metadata.getMap(), body: call.request });
        done(null, Buffer.alloc(0));
        w.notify();
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    endpoint: `http://127.0.0.1:${port}`,
    got,
    waitFor: w.waitFor,
    close: async () => server.forceShutdown(),
  };
}

// ---------------------------------------------------------------------------------------------------
// Fixtures.

const T0 = 1_700_000_000_000;
const nanos = (ms: number) => (BigInt(ms) * 1_000_000n).toString();

const hseries = (labels: Record<string, string>, cum: [number, number][], sum: number): HistogramSeries => ({
  labels,
  buckets: cum.map(([le, count]) => ({ le, count })),
  count: cum[cum.length - 1][1],
  sum,
});

function families(scale = 1): Family[] {
  return [
    {
      name: 'syscalls_total',
      type: 'counter',
      help: 'System calls by syscall',
      series: [
        { labels: { syscall: 'read', comm: 'nginx' }, value: 1000 * scale },
        { labels: { syscall: 'write', comm: 'nginx' }, value: 250 * scale },
      ],
    },
    { name: 'conntrack_entries', type: 'gauge', help: 'Entries', series: [{ labels: { zone: '0' }, value: 42.5 }] },
    {
      name: 'io_latency_seconds',
      type: 'histogram',
      help: 'IO latency',
      series: [hseries({ op: 'read' }, [[0.001, 3 * scale], [0.002, 5 * scale], [0.004, 5 * scale], [Infinity, 9 * scale]], 0.0123 * scale)],
    },
  ];
}

function only(req: OtlpRequest): OtlpScopeMetrics {
  expect(req.resourceMetrics).toHaveLength(1);
  const ours = req.resourceMetrics[0].scopeMetrics.filter((s) => s.scope.name === SCOPE_NAME);
  expect(ours).toHaveLength(1);
  return ours[0];
}
function find(sm: OtlpScopeMetrics, name: string): OtlpMetric {
  const m = sm.metrics.find((x) => x.name === name);
  if (m === undefined) throw new Error(`no ${name}`);
  return m;
}

/** What the fixture must look like on the wire, whatever the encoding. */
function expectFixture(req: OtlpRequest, at: { start: number; time: number }): void {
  const resource = req.resourceMetrics[0].resource;
  expect(resource).toMatchObject({
    'service.name': 'bpf-map-exporter',
    'service.version': exporterVersion(),
    'host.name': hostname(),
    'k8s.node.name': 'node-7',
    'deployment.environment.name': 'ci',
    'telemetry.sdk.language': 'nodejs',
  });
  const sm = only(req);
  expect(sm.scope).toEqual({ name: SCOPE_NAME, version: exporterVersion() });
  expect(sm.metrics.map((m) => m.name)).toEqual(['syscalls_total', 'conntrack_entries', 'io_latency_seconds']);
  const start = nanos(at.start);
  const time = nanos(at.time);
  expect(find(sm, 'syscalls_total')).toEqual({
    name: 'syscalls_total',
    description: 'System calls by syscall',
    unit: '',
    sum: {
      aggregationTemporality: CUMULATIVE,
      isMonotonic: true,
      dataPoints: [
        { attributes: { syscall: 'read', comm: 'nginx' }, startTimeUnixNano: start, timeUnixNano: time, asDouble: 1000 },
        { attributes: { syscall: 'write', comm: 'nginx' }, startTimeUnixNano: start, timeUnixNano: time, asDouble: 250 },
      ],
    },
  });
  expect(find(sm, 'conntrack_entries')).toEqual({
    name: 'conntrack_entries',
    description: 'Entries',
    unit: '',
    gauge: { dataPoints: [{ attributes: { zone: '0' }, startTimeUnixNano: start, timeUnixNano: time, asDouble: 42.5 }] },
  });
  expect(find(sm, 'io_latency_seconds')).toEqual({
    name: 'io_latency_seconds',
    description: 'IO latency',
    unit: '',
    histogram: {
      aggregationTemporality: CUMULATIVE,
      dataPoints: [
        {
          attributes: { op: 'read' },
          startTimeUnixNano: start,
          timeUnixNano: time,
          explicitBounds: [0.001, 0.002, 0.004],
          bucketCounts: [3, 2, 0, 4], // per bucket; the last is (0.004, +Inf)
          count: 9,
          sum: 0.0123,
        },
      ],
    },
  });
}

// ---------------------------------------------------------------------------------------------------

const running: Otel[] = [];
const receivers: Receiver[] = [];

async function started(producer: ProducerSource | ProducerSource[], opts: OtelOptions): Promise<Otel> {
  const otel = startOtel(producer, opts);
  running.push(otel);
  return otel;
}
async function receiver(kind: 'http' | 'grpc' = 'http'): Promise<Receiver> {
  const r = kind === 'http' ? await httpReceiver() : await grpcReceiver();
  receivers.push(r);
  return r;
}

// The exporter logs a line per start; tests that look at logs spy on the logger.
let logLevel: string;
beforeAll(() => {
  logLevel = logger.level;
  logger.level = 'silent';
});
afterAll(() => {
  logger.level = logLevel;
});

beforeEach(() => {
  vi.stubEnv('K8S_NODE_NAME', 'node-7');
  vi.stubEnv('OTEL_RESOURCE_ATTRIBUTES', 'deployment.environment.name=ci');
  for (const name of [
    'OTEL_SERVICE_NAME',
    'OTEL_EXPORTER_OTLP_ENDPOINT',
    'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT',
    'OTEL_EXPORTER_OTLP_PROTOCOL',
    'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL',
    'OTEL_EXPORTER_OTLP_HEADERS',
    'OTEL_EXPORTER_OTLP_METRICS_HEADERS',
    'OTEL_METRIC_EXPORT_INTERVAL',
    'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE',
  ]) {
    vi.stubEnv(name, undefined);
  }
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((o) => o.shutdown()));
  await Promise.all(receivers.splice(0).map((r) => r.close()));
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe('startOtel over http/protobuf', () => {
  it('exports counters, gauges and histograms with exact values, attributes and resource', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_METRICS_HEADERS', 'x-from-env=e1,x-tenant=from-env');
    const rx = await receiver();
    const producer = new SnapshotProducer();
    producer.set('syscalls', families(), { startTime: T0, time: T0 + 15_000 });
    const otel = await started(producer, { endpoint: rx.endpoint, headers: { 'x-tenant': 'blue' } });
    expect(otel.settings).toMatchObject({ protocol: 'http/protobuf', url: `${rx.endpoint}/v1/metrics`, temporality: 'cumulative' });

    await otel.forceFlush();
    await rx.waitFor(1);
    const [got] = rx.got;
    expect(got.path).toBe('/v1/metrics');
    expect(got.contentType).toBe('application/x-protobuf');
    // Headers from the environment are sent too; the option wins for the same name.
    expect(got.headers).toMatchObject({ 'x-from-env': 'e1', 'x-tenant': 'blue' });
    expectFixture(decodeProtobuf(got.body), { start: T0, time: T0 + 15_000 });
  });

  it('decodes to exactly what the OpenTelemetry JSON serializer makes of the same collection', async () => {
    const rx = await receiver();
    const producer = new SnapshotProducer();
    producer.set('syscalls', families(), { startTime: [1_700_000_000, 987_654_321], time: T0 + 15_000 });
    const otel = await started(producer, { endpoint: rx.endpoint });
    await otel.forceFlush();
    await rx.waitFor(1);
    // Cumulative points carry the snapshot's times, not the collection's: two collections agree.
    const { resourceMetrics } = await otel.reader.collect();
    const viaJson = decodeJson(JsonMetricsSerializer.serializeRequest(resourceMetrics)!);
    expect(decodeProtobuf(rx.got[0].body)).toEqual(viaJson);
    expect(find(only(viaJson), 'syscalls_total').sum!.dataPoints[0].startTimeUnixNano).toBe('1700000000987654321');
  });

  it('exports all 5000 series of one counter: no cardinality cut at 2000', async () => {
    const rx = await receiver();
    const producer = new SnapshotProducer();
    const series = Array.from({ length: 5000 }, (_, i) => ({ labels: { pid: String(i) }, value: i + 0.5 }));
    producer.set('pids', [{ name: 'pid_syscalls_total', type: 'counter', help: 'per pid', series }], { startTime: T0, time: T0 + 1000 });
    const otel = await started(producer, { endpoint: rx.endpoint });
    await otel.forceFlush();
    await rx.waitFor(1);
    const points = find(only(decodeProtobuf(rx.got[0].body)), 'pid_syscalls_total').sum!.dataPoints;
    expect(points).toHaveLength(5000);
    expect(new Set(points.map((p) => p.attributes.pid)).size).toBe(5000);
    expect(points.every((p) => p.asDouble === Number(p.attributes.pid) + 0.5)).toBe(true);
    expect(points.some((p) => 'otel.metric.overflow' in p.attributes)).toBe(false);
  });

  it('with delta temporality sends the differences between two collections', async () => {
    const rx = await receiver();
    const producer = new SnapshotProducer();
    const otel = await started(producer, { endpoint: rx.endpoint, temporality: 'delta' });
    producer.set('syscalls', families(1), { startTime: T0, time: T0 + 15_000 });
    await otel.forceFlush();
    producer.set('syscalls', families(3), { startTime: T0, time: T0 + 30_000 });
    await otel.forceFlush();
    await rx.waitFor(2);

    const first = only(decodeProtobuf(rx.got[0].body));
    expect(find(first, 'syscalls_total').sum).toMatchObject({ aggregationTemporality: DELTA, isMonotonic: true });
    expect(find(first, 'syscalls_total').sum!.dataPoints.map((p) => p.asDouble)).toEqual([1000, 250]);

    const second = only(decodeProtobuf(rx.got[1].body));
    const sum = find(second, 'syscalls_total').sum!;
    expect(sum.aggregationTemporality).toBe(DELTA);
    expect(sum.dataPoints.map((p) => [p.asDouble, p.startTimeUnixNano, p.timeUnixNano])).toEqual([
      [2000, nanos(T0 + 15_000), nanos(T0 + 30_000)],
      [500, nanos(T0 + 15_000), nanos(T0 + 30_000)],
    ]);
    const h = find(second, 'io_latency_seconds').histogram!;
    expect(h.aggregationTemporality).toBe(DELTA);
    expect(h.dataPoints[0]).toMatchObject({ bucketCounts: [6, 4, 0, 8], count: 18, explicitBounds: [0.001, 0.002, 0.004] });
    expect(h.dataPoints[0].sum).toBeCloseTo(0.0246, 12);
    expect(find(second, 'conntrack_entries').gauge!.dataPoints[0].asDouble).toBe(42.5);

    // A third collection with no new snapshot has nothing to say: no request at all.
    await otel.forceFlush();
    expect(rx.got).toHaveLength(2);
  });

  it('exports on its own timer at the configured interval', async () => {
    const rx = await receiver();
    const producer = new SnapshotProducer();
    producer.set('syscalls', families(), { startTime: T0, time: T0 + 15_000 });
    await started(producer, { endpoint: rx.endpoint, interval: 100 });
    await rx.waitFor(2, 5000);
    expectFixture(decodeProtobuf(rx.got[1].body), { start: T0, time: T0 + 15_000 });
  });

  it('takes the interval from OTEL_METRIC_EXPORT_INTERVAL when the options have none', async () => {
    vi.stubEnv('OTEL_METRIC_EXPORT_INTERVAL', '100');
    const rx = await receiver();
    const producer = new SnapshotProducer();
    producer.set('syscalls', families(), { startTime: T0, time: T0 + 15_000 });
    const otel = await started(producer, { endpoint: rx.endpoint });
    expect(otel.settings.intervalMillis).toBe(100);
    await rx.waitFor(1, 5000);
  });

  it('shutdown flushes what the producer holds, once', async () => {
    const rx = await receiver();
    const producer = new SnapshotProducer();
    const otel = startOtel(producer, { endpoint: rx.endpoint });
    producer.set('syscalls', families(), { startTime: T0, time: T0 + 15_000 });
    expect(rx.got).toHaveLength(0);
    await otel.shutdown();
    expect(rx.got).toHaveLength(1);
    expectFixture(decodeProtobuf(rx.got[0].body), { start: T0, time: T0 + 15_000 });
    await otel.shutdown(); // a second call is the same promise, not an error
    expect(rx.got).toHaveLength(1);
  });

  it('logs a failing export instead of throwing, on the timer and on flush', async () => {
    // A port nobody listens on: bind one, then let it go.
    const gone = await httpReceiver();
    await gone.close();
    const errors: unknown[][] = [];
    vi.spyOn(logger, 'error').mockImplementation(((...args: unknown[]) => void errors.push(args)) as typeof logger.error);
    try {
      const producer = new SnapshotProducer();
      producer.set('syscalls', families(), { startTime: T0, time: T0 + 15_000 });
      const otel = await started(producer, { endpoint: gone.endpoint, interval: 100, timeout: 50 });
      await expect(otel.forceFlush()).resolves.toBeUndefined();
      const deadline = Date.now() + 5000;
      while (errors.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(errors.length).toBeGreaterThanOrEqual(2);
      // The reader's own message, with the cause: what an operator needs to see.
      expect(String(errors[0][errors[0].length - 1])).toMatch(/metrics export failed.*ECONNREFUSED/);
      await expect(otel.shutdown()).resolves.toBeUndefined();
    } finally {
      vi.restoreAllMocks();
    }
  });
});

describe('startOtel with the registry beside the snapshots', () => {
  function registry(): { registry: Registry; reads: Counter } {
    const r = new Registry();
    const reads = new Counter({ name: 'bpf_map_exporter_map_reads_total', help: 'Read cycles of the map', labelNames: ['map'], registers: [r] });
    new Gauge({ name: 'bpf_map_info', help: 'Every BPF map on the host; always 1', labelNames: ['id', 'name', 'type'], registers: [r] }).set({ id: '7', name: 'counts', type: 'hash' }, 1);
    return { registry: r, reads };
  }

  it('exports both producers in one request, each under its own scope', async () => {
    const rx = await receiver();
    const { registry: reg, reads } = registry();
    reads.inc({ map: 'syscalls' }, 3);
    const producer = new SnapshotProducer();
    producer.set('syscalls', families(), { startTime: T0, time: T0 + 15_000 });
    const otel = await started([producer, new RegistryProducer(reg, { startTime: T0 - 5_000 })], { endpoint: rx.endpoint });
    await otel.forceFlush();
    await rx.waitFor(1);
    const req = decodeProtobuf(rx.got[0].body);
    expectFixture(req, { start: T0, time: T0 + 15_000 });
    const regScope = req.resourceMetrics[0].scopeMetrics.filter((x) => x.scope.name === REGISTRY_SCOPE_NAME);
    expect(regScope).toHaveLength(1);
    expect(regScope[0].scope.version).toBe(exporterVersion());
    expect(regScope[0].metrics.map((m) => m.name)).toEqual(['bpf_map_exporter_map_reads_total', 'bpf_map_info']);
    const sum = find(regScope[0], 'bpf_map_exporter_map_reads_total').sum!;
    expect(sum).toMatchObject({ aggregationTemporality: CUMULATIVE, isMonotonic: true });
    expect(sum.dataPoints).toMatchObject([{ attributes: { map: 'syscalls' }, asDouble: 3, startTimeUnixNano: nanos(T0 - 5_000) }]);
    expect(find(regScope[0], 'bpf_map_info').gauge!.dataPoints).toMatchObject([{ attributes: { id: '7', name: 'counts', type: 'hash' }, asDouble: 1 }]);
  });

  it('exports the registry when no job has a snapshot (the inventory alone)', async () => {
    const rx = await receiver();
    const otel = await started([new SnapshotProducer(), new RegistryProducer(registry().registry)], { endpoint: rx.endpoint });
    await otel.forceFlush();
    await rx.waitFor(1);
    const req = decodeProtobuf(rx.got[0].body);
    expect(req.resourceMetrics[0].scopeMetrics.map((x) => x.scope.name)).toEqual([REGISTRY_SCOPE_NAME]);
    expect(req.resourceMetrics[0].resource).toMatchObject({ 'service.name': 'bpf-map-exporter', 'k8s.node.name': 'node-7' });
  });

  it('gives each reader its own delta view of the registry', async () => {
    const rx = await receiver();
    const { registry: reg, reads } = registry();
    const producer = new RegistryProducer(reg);
    reads.inc({ map: 'a' }, 3);
    const one = await started([producer], { endpoint: rx.endpoint, temporality: 'delta' });
    const two = await started([producer], { endpoint: rx.endpoint, temporality: 'delta' });
    await one.forceFlush();
    reads.inc({ map: 'a' }, 2);
    await one.forceFlush();
    await two.forceFlush();
    await rx.waitFor(3);
    const value = (i: number) => {
      const sm = decodeProtobuf(rx.got[i].body).resourceMetrics[0].scopeMetrics.find((x) => x.scope.name === REGISTRY_SCOPE_NAME)!;
      const s = find(sm, 'bpf_map_exporter_map_reads_total').sum!;
      expect(s.aggregationTemporality).toBe(DELTA);
      return s.dataPoints[0].asDouble;
    };
    expect([value(0), value(1), value(2)]).toEqual([3, 2, 5]);
  });
});

describe('startOtel over http/json', () => {
  it('exports the same values, as OTLP/JSON', async () => {
    const rx = await receiver();
    const producer = new SnapshotProducer();
    producer.set('syscalls', families(), { startTime: T0, time: T0 + 15_000 });
    const otel = await started(producer, { endpoint: `${rx.endpoint}/custom/path`, protocol: 'http/json' });
    await otel.forceFlush();
    await rx.waitFor(1);
    expect(rx.got[0].path).toBe('/custom/path'); // an endpoint with a path is used as is
    expect(rx.got[0].contentType).toBe('application/json');
    expectFixture(decodeJson(rx.got[0].body), { start: T0, time: T0 + 15_000 });
  });

  it('takes the protocol and endpoint from the environment when the options have none', async () => {
    const rx = await receiver();
    vi.stubEnv('OTEL_EXPORTER_OTLP_PROTOCOL', 'http/json');
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', rx.endpoint);
    const producer = new SnapshotProducer();
    producer.set('syscalls', families(), { startTime: T0, time: T0 + 15_000 });
    const otel = await started(producer, {});
    expect(otel.settings.protocol).toBe('http/json');
    await otel.forceFlush();
    await rx.waitFor(1);
    expect(rx.got[0].path).toBe('/v1/metrics');
    expectFixture(decodeJson(rx.got[0].body), { start: T0, time: T0 + 15_000 });
  });
});

describe('startOtel over grpc', () => {
  it('createOtlpExporter builds the grpc exporter for protocol grpc', async () => {
    const exporter = createOtlpExporter({ protocol: 'grpc', endpoint: 'http://127.0.0.1:4317' });
    try {
      expect(exporter).toBeInstanceOf(OtlpGrpcExporter);
    } finally {
      await exporter.shutdown();
    }
  });

  it('exports to a gRPC receiver, with headers as metadata', async () => {
    const rx = await receiver('grpc');
    const producer = new SnapshotProducer();
    producer.set('syscalls', families(), { startTime: T0, time: T0 + 15_000 });
    const otel = await started(producer, { endpoint: rx.endpoint, protocol: 'grpc', headers: { 'x-tenant': 'blue' } });
    await otel.forceFlush();
    await rx.waitFor(1);
    expect(rx.got[0].headers).toMatchObject({ 'x-tenant': 'blue' });
    expectFixture(decodeProtobuf(rx.got[0].body), { start: T0, time: T0 + 15_000 });
  });
});

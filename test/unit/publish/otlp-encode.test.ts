/**
 * The OTLP protobuf encoder against the SDK's own serializer: for the same collection, both bodies
 * must decode to the same request with the OTel project's generated protobuf definitions
 * (@opentelemetry/otlp-transformer 0.52 under the dev-only alias otlp-proto-definitions).
 */
import { createRequire } from 'node:module';
import { ValueType } from '@opentelemetry/api';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType, type MetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { columnFamily } from '../../../src/aggregate/columns.js';
import { type Family, LabelTable } from '../../../src/metric/series.js';
import { COLUMN_POINTS, SnapshotProducer, type ColumnMetric } from '../../../src/publish/otel-producer.js';
import { columnSerializer, RequestBuffers } from '../../../src/publish/otel-exporter.js';
import { encodeMetricsRequest, encodeMetricsRequestAsync, encodePointsAhead, UnsupportedMetric } from '../../../src/publish/otlp-encode.js';

interface ProtoType { decode(b: Uint8Array): unknown; toObject(m: unknown, o: { longs: StringConstructor; defaults: boolean }): unknown }
const otlpRoot = createRequire(import.meta.url)('otlp-proto-definitions/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: { metrics: { v1: { ExportMetricsServiceRequest: ProtoType } } } } };
};
const { ExportMetricsServiceRequest } = otlpRoot.opentelemetry.proto.collector.metrics.v1;
const decode = (b: Uint8Array): unknown => ExportMetricsServiceRequest.toObject(ExportMetricsServiceRequest.decode(b), { longs: String, defaults: true });

const T0 = 1_700_000_000_123;

function families(step: number): Family[] {
  const table = new LabelTable();
  const names = ['a', 'b"c', 'ünï', ''];
  const ids = Int32Array.from(names, (n) => table.add({ saddr: `10.0.0.${n.length}`, comm: n }));
  const hist = new LabelTable();
  const hid = Int32Array.of(hist.add({ op: 'read' }), hist.add({ op: 'write' }));
  return [
    columnFamily({ name: 'flow_bytes_total', type: 'counter', help: 'Bytes' }, { table, ids, values: Float64Array.from(names, (_, i) => (i + 1) * 1e12 * step + 0.5) }),
    columnFamily({ name: 'queue_depth', type: 'gauge', help: '' }, { table, ids: ids.subarray(0, 2), values: Float64Array.of(-3, 2 ** 53 + 2) }),
    columnFamily(
      { name: 'io_seconds', type: 'histogram', help: 'IO' },
      { table: hist, ids: hid, values: Float64Array.of(6 * step, 2 * step), bounds: [0.001, 0.1, 10], buckets: Float64Array.of(1, 2, 0, 3, 0, 0, 2, 0).map((x) => x * step), sums: Float64Array.of(0.25 * step, 20 * step) },
    ),
    columnFamily({ name: 'empty_total', type: 'counter', help: 'h' }, { table, ids: new Int32Array(0), values: new Float64Array(0) }),
  ];
}

/** Self-metric-like points, as another producer makes them. */
const plain: MetricData[] = [
  {
    descriptor: { name: 'process_open_fds', description: 'fds', unit: '', valueType: ValueType.INT },
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.GAUGE,
    dataPoints: [{ startTime: [1_700_000_000, 5], endTime: [1_700_000_001, 999_999_999], attributes: {}, value: 17 }],
  },
  {
    descriptor: { name: 'reads_total', description: 'reads', unit: '1', valueType: ValueType.DOUBLE },
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.SUM,
    isMonotonic: true,
    dataPoints: [{ startTime: [1_700_000_000, 0], endTime: [1_700_000_010, 0], attributes: { map: 'flows', n: 3, ok: true, f: 1.5, arr: ['x', 'y'] }, value: 12.5 }],
  },
  {
    descriptor: { name: 'gc_seconds', description: '', unit: 's', valueType: ValueType.DOUBLE },
    aggregationTemporality: AggregationTemporality.DELTA,
    dataPointType: DataPointType.HISTOGRAM,
    dataPoints: [{ startTime: [1, 0], endTime: [2, 0], attributes: { kind: 'minor' }, value: { buckets: { boundaries: [0.01, 1], counts: [1, 2, 0] }, count: 3, sum: 0.7, min: 0.001, max: 0.5 } }],
  },
];

async function collection(temporality: 'cumulative' | 'delta'): Promise<ResourceMetrics> {
  const p = new SnapshotProducer({ temporality, version: '9.9.9' });
  p.set('flows', families(1), { startTime: T0, time: T0 + 5000 });
  if (temporality === 'delta') await p.collect();
  p.set('flows', families(2), { startTime: T0, time: T0 + 10_000 });
  p.set('other', [columnFamily({ name: 'flow_bytes_total', type: 'counter', help: 'Bytes' }, { table: (() => { const t = new LabelTable(); t.add({ saddr: 'x', comm: 'y' }); return t; })(), ids: Int32Array.of(0), values: Float64Array.of(7) })], { startTime: T0, time: T0 + 10_000 });
  const { resourceMetrics } = await p.collect();
  return {
    resource: resourceFromAttributes({ 'service.name': 'bpf-map-exporter', 'host.name': 'node-1', 'process.pid': 42, 'process.command_args': ['node', 'run'] }),
    scopeMetrics: [...resourceMetrics.scopeMetrics, { scope: { name: 'self', version: '1.0.0', schemaUrl: 'https://opentelemetry.io/schemas/1.24.0' }, metrics: plain }],
  };
}

describe('encodeMetricsRequest', () => {
  for (const temporality of ['cumulative', 'delta'] as const) {
    it(`decodes to exactly what the SDK's serializer sends (${temporality}, columns and data points in one request)`, async () => {
      const ours = decode(encodeMetricsRequest(await collection(temporality)));
      // A new collection for the SDK: our metrics build their data points only when asked.
      const theirs = decode(ProtobufMetricsSerializer.serializeRequest(await collection(temporality))!);
      expect(ours).toEqual(theirs);
      const text = JSON.stringify(ours);
      // A u64-sized counter stays exact as a double; a delta is the difference of two snapshots.
      expect(text).toMatch(temporality === 'cumulative' ? /"asDouble":8000000000000\.5[,}]/ : /"asDouble":4000000000000[,}]/);
      expect(text).toContain('ünï');
    });
  }

  it('leaves what it cannot write to the SDK serializer', async () => {
    const rm = await collection('cumulative');
    const expo = { ...plain[0], dataPointType: DataPointType.EXPONENTIAL_HISTOGRAM } as unknown as MetricData;
    rm.scopeMetrics[1].metrics = [expo];
    expect(() => encodeMetricsRequest(rm)).toThrow(UnsupportedMetric);
    rm.scopeMetrics[1].metrics = [];
    expect(decode(columnSerializer().serializeRequest(rm)!)).toEqual(decode(ProtobufMetricsSerializer.serializeRequest(rm)!));
  });
});

describe('RequestBuffers', () => {
  it('writes the next request into the last one\'s buffer only once its export has ended', async () => {
    const buffers = new RequestBuffers();
    const serializer = columnSerializer(buffers);
    const rm = await collection('cumulative');
    const expected = decode(ProtobufMetricsSerializer.serializeRequest(await collection('cumulative'))!);
    const bodies: Uint8Array[] = [];
    const ends: (() => void)[] = [];
    // One export: the bytes the SDK's delegate would take from the serializer, and its end.
    const exportOne = (): Promise<void> =>
      new Promise((resolve, reject) =>
        buffers.export(
          rm,
          (done) => {
            bodies.push(serializer.serializeRequest(rm)!);
            ends.push(done);
            resolve();
          },
          reject,
        ),
      );
    await exportOne();
    await exportOne(); // while the first is in flight: a buffer of its own
    expect(bodies[1].buffer).not.toBe(bodies[0].buffer);
    ends[0]();
    await exportOne(); // the first's buffer, now free
    expect(bodies[2].buffer).toBe(bodies[0].buffer);
    await exportOne(); // the second is still in flight, the first's is taken again: a new one
    expect(new Set(bodies.map((b) => b.buffer)).size).toBe(3);
    for (const b of bodies.slice(1)) expect(decode(b)).toEqual(expected);
    // An export whose callback comes at once (the SDK's "too many exports in progress") keeps nothing.
    ends[1]();
    await new Promise<void>((resolve, reject) => buffers.export(rm, (done) => (done(), resolve()), reject));
    await exportOne();
    expect(bodies[4].buffer).toBe(bodies[1].buffer);
    // What export() encoded is handed over once: asked again, the serializer encodes anew.
    expect(serializer.serializeRequest(rm)!.buffer).not.toBe(bodies[4].buffer);
  });

  it('sends a request it cannot encode through the SDK\'s serializer, and reports other failures', async () => {
    const buffers = new RequestBuffers();
    const rm = await collection('cumulative');
    rm.scopeMetrics[1].metrics = [{ ...plain[0], dataPointType: DataPointType.EXPONENTIAL_HISTOGRAM } as unknown as MetricData];
    const sent = await new Promise<boolean>((resolve, reject) => buffers.export(rm, () => resolve(true), reject));
    // Sent, with nothing encoded ahead: the serializer hands the request to the SDK's.
    expect(sent).toBe(true);
    expect(buffers.encodedFor(rm)).toBeUndefined();
    const broken = await collection('cumulative');
    const m = broken.scopeMetrics[0].metrics[0] as ColumnMetric;
    broken.scopeMetrics[0].metrics = [{ ...m, [COLUMN_POINTS]: [{ ...m[COLUMN_POINTS][0], table: undefined }] } as unknown as MetricData];
    const failure = await new Promise<unknown>((resolve) => buffers.export(broken, () => resolve('sent'), resolve));
    expect(failure).toBeInstanceOf(TypeError);
    const thrown = await new Promise<unknown>((resolve) => buffers.export(rm, () => { throw new RangeError('transport'); }, resolve));
    expect(thrown).toBeInstanceOf(RangeError);
  });
});

describe('encodeMetricsRequestAsync', () => {
  it('writes the same bytes as encodeMetricsRequest, a slice of points per turn of the event loop', async () => {
    const table = new LabelTable();
    const n = 10_000;
    const ids = Int32Array.from({ length: n }, (_, i) => table.add({ saddr: `10.1.${i >> 8}.${i & 255}`, port: String(i % 977) }));
    const p = new SnapshotProducer({ version: '1' });
    p.set('flows', [
      columnFamily({ name: 'flow_bytes_total', type: 'counter', help: 'Bytes' }, { table, ids, values: Float64Array.from(ids, (i) => i * 7 + 0.5) }),
      columnFamily(
        { name: 'rtt_seconds', type: 'histogram', help: 'RTT' },
        { table, ids, values: Float64Array.from(ids, () => 3), bounds: [0.01, 1], buckets: Float64Array.from({ length: 3 * n }, () => 1), sums: Float64Array.from(ids, (i) => i / 10) },
      ),
    ], { startTime: T0, time: T0 + 5000 });
    const rm = (await p.collect()).resourceMetrics;
    // No encodePointsAhead: the async encoder also encodes the new series' messages in slices.
    let turns = 0;
    let counting = true;
    const count = (): void => {
      turns++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    const bytes = await encodeMetricsRequestAsync(rm);
    counting = false;
    // Two metrics of 10,000 series, 4,096 per slice: three slices each to encode and three to write, two yields between each three.
    expect(turns).toBeGreaterThanOrEqual(8);
    expect(Buffer.from(bytes).equals(Buffer.from(encodeMetricsRequest(rm)))).toBe(true);
    expect(decode(bytes)).toEqual(decode(ProtobufMetricsSerializer.serializeRequest((await p.collect()).resourceMetrics)!));
  });
});

describe('encodePointsAhead', () => {
  it('encodes a new table\'s points between turns of the loop, and the request is the same as without it', async () => {
    const table = new LabelTable();
    const n = 20_000;
    const ids = Int32Array.from({ length: n }, (_, i) => table.add({ saddr: `10.0.${i >> 8}.${i & 255}`, comm: `c${i % 13}` }));
    const fam = (t: LabelTable): Family[] => [columnFamily({ name: 'flow_bytes_total', type: 'counter', help: 'Bytes' }, { table: t, ids, values: Float64Array.from(ids, (i) => i * 3) })];
    const request = async (t: LabelTable, ahead: boolean): Promise<Uint8Array> => {
      const p = new SnapshotProducer({ version: '1' });
      let turns = 0;
      if (ahead) {
        let done = false;
        p.onFamily = (cols, bounds) => void encodePointsAhead(cols.table, bounds).then(() => (done = true));
        p.set('flows', fam(t), { startTime: T0, time: T0 + 5000 });
        // Other work runs while it encodes: it takes several turns.
        while (!done) {
          await new Promise((r) => setImmediate(r));
          turns++;
        }
        expect(turns).toBeGreaterThan(2);
      } else p.set('flows', fam(t), { startTime: T0, time: T0 + 5000 });
      return encodeMetricsRequest((await p.collect()).resourceMetrics);
    };
    const copy = new LabelTable();
    for (const l of table.labels) copy.add(l);
    expect(Buffer.from(await request(table, true)).equals(Buffer.from(await request(copy, false)))).toBe(true);
  });
});

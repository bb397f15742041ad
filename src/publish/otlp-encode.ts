/**
 * OTLP metrics as protobuf bytes (ExportMetricsServiceRequest, opentelemetry-proto v1), written
 * straight from the snapshot's columns.
 *
 * Why not the SDK's ProtobufMetricsSerializer: it turns every point into an OTLP object (attributes
 * into KeyValue objects, times into strings or Longs) and hands the tree to protobufjs. At 100,000
 * series that is most of an export's CPU and a few hundred MB of garbage. Here a series' attributes
 * are encoded once in its life (a LabelArena per label table) and a point is a copy of those bytes,
 * its two times (encoded once per snapshot) and its value, into one buffer allocated at its exact
 * size. Metrics that do not come from a SnapshotProducer (the self-metrics) are encoded from their
 * data points; a kind this encoder does not know (exponential histograms) sends the whole request
 * through the SDK's serializer instead.
 *
 * Field numbers (opentelemetry/proto/...):
 *   ExportMetricsServiceRequest: resource_metrics 1
 *   ResourceMetrics: resource 1, scope_metrics 2, schema_url 3
 *   Resource: attributes 1          ScopeMetrics: scope 1, metrics 2, schema_url 3
 *   InstrumentationScope: name 1, version 2
 *   Metric: name 1, description 2, unit 3, gauge 5, sum 7, histogram 9
 *   Gauge: data_points 1            Sum: data_points 1, aggregation_temporality 2, is_monotonic 3
 *   Histogram: data_points 1, aggregation_temporality 2
 *   NumberDataPoint: start_time_unix_nano 2 (fixed64), time_unix_nano 3 (fixed64), as_double 4, as_int 6 (sfixed64), attributes 7
 *   HistogramDataPoint: start 2, time 3, count 4 (fixed64), sum 5 (double), bucket_counts 6 (packed fixed64),
 *                       explicit_bounds 7 (packed double), attributes 9, min 11, max 12
 *   KeyValue: key 1, value 2        AnyValue: string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7
 *   ArrayValue / KeyValueList: values 1
 *   AggregationTemporality: DELTA 1, CUMULATIVE 2
 */
import type { Attributes, AttributeValue, HrTime } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType, type DataPoint, type Histogram, type MetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { ValueType } from '@opentelemetry/api';
import type { LabelTable } from '../metric/series.js';
import { arenaFor, type LabelArena } from './label-arena.js';
import { ByteWriter } from './byte-writer.js';
import { nextSlice } from '../util/slices.js';
import { COLUMN_POINTS, isColumnMetric, type ColumnPoints } from './otel-producer.js';
import { ExporterError } from '../util/errors.js';

export const LEN = 2;
export const I64 = 1;
export const VARINT = 0;
export const tag = (field: number, wire: number): number => (field << 3) | wire;

/** A metric kind this encoder does not write: the caller falls back to the SDK's serializer. */
export class UnsupportedMetric extends ExporterError {
  declare readonly code: 'ERR_OTLP_UNSUPPORTED';

  constructor(message: string) {
    super('ERR_OTLP_UNSUPPORTED', message);
  }
}

function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Bytes of a length-delimited field holding `len` bytes. */
const fieldSize = (len: number): number => 1 + varintSize(len) + len;

/** Protobuf into a Buffer that grows (small messages) or is allocated at its exact size (the request). */
export class PbWriter extends ByteWriter {
  /** A view of `buf` for fixed64Big, made again when the buffer grows. */
  private view: DataView | undefined;
  private viewOf: Buffer | undefined;

  varint(v: number): void {
    this.reserve(10);
    while (v >= 128) {
      this.buf[this.pos++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  /** A signed int64 as protobuf's int64 varint (negative numbers take ten bytes). */
  int64(v: number): void {
    if (v >= 0) this.varint(v);
    else {
      let x = BigInt.asUintN(64, BigInt(v));
      this.reserve(10);
      while (x >= 128n) {
        this.buf[this.pos++] = Number(x & 127n) | 128;
        x >>= 7n;
      }
      this.buf[this.pos++] = Number(x);
    }
  }

  double(v: number): void {
    this.reserve(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
  }

  /** A u64 (nanoseconds past 2^53) as fixed64, through a DataView kept for the buffer (no BigInt made). */
  fixed64Big(v: bigint): void {
    this.reserve(8);
    if (this.viewOf !== this.buf) {
      this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
      this.viewOf = this.buf;
    }
    this.view!.setBigUint64(this.pos, v, true);
    this.pos += 8;
  }

  /** An unsigned integer (a count) as fixed64; negative or fractional values are clamped and rounded. */
  fixed64(v: number): void {
    const x = v > 0 ? Math.round(v) : 0;
    this.reserve(8);
    this.buf.writeUInt32LE(x % 0x1_0000_0000, this.pos);
    this.buf.writeUInt32LE(Math.min(0xffff_ffff, Math.floor(x / 0x1_0000_0000)), this.pos + 4);
    this.pos += 8;
  }

  string(field: number, s: string): void {
    this.varint(tag(field, LEN));
    const n = s.length;
    if (n < 128) {
      // A short ASCII string (names, attribute keys, most values) byte by byte, its length one byte:
      // two calls into Buffer's native code (byteLength, write) cost more than the loop.
      this.reserve(1 + n);
      const buf = this.buf;
      let p = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[p++] = c;
      }
      if (i === n) {
        buf[this.pos] = n;
        this.pos = p;
        return;
      }
    }
    const len = Buffer.byteLength(s);
    this.varint(len);
    this.reserve(len);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** A length-delimited field whose content `write` produces (small messages: written, then moved once). */
  message(field: number, write: () => void): void {
    this.varint(tag(field, LEN));
    const start = this.pos;
    this.reserve(1);
    this.pos++;
    write();
    const len = this.pos - start - 1;
    const extra = varintSize(len) - 1;
    if (extra > 0) {
      this.reserve(extra);
      this.buf.copyWithin(start + 1 + extra, start + 1, this.pos);
      this.pos += extra;
    }
    const end = this.pos;
    this.pos = start;
    this.varint(len);
    this.pos = end;
  }

}

function small(write: (w: PbWriter) => void): Buffer {
  const w = new PbWriter(256);
  write(w);
  return w.result();
}

function nanos(t: HrTime): bigint {
  return BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
}

/** A fixed64 field of a time, as its 9 bytes (tag included). */
function timeField(field: number, t: HrTime): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = tag(field, I64);
  b.writeBigUInt64LE(nanos(t), 1);
  return b;
}

// ---- attributes

function anyValue(w: PbWriter, v: AttributeValue | undefined | null): void {
  if (typeof v === 'string') w.string(1, v);
  else if (typeof v === 'boolean') {
    w.varint(tag(2, VARINT));
    w.varint(v ? 1 : 0);
  } else if (typeof v === 'number') {
    if (Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER) {
      w.varint(tag(3, VARINT));
      w.int64(v);
    } else {
      w.varint(tag(4, I64));
      w.double(v);
    }
  } else if (Array.isArray(v)) {
    w.message(5, () => {
      for (const x of v as readonly (string | number | boolean | null | undefined)[]) w.message(1, () => anyValue(w, x));
    });
  }
}

export function keyValues(w: PbWriter, field: number, attrs: Attributes): void {
  for (const key of Object.keys(attrs)) {
    const v = attrs[key];
    if (v === undefined) continue;
    w.message(field, () => {
      w.string(1, key);
      w.message(2, () => anyValue(w, v));
    });
  }
}

/**
 * A series' whole point message, encoded once in its life with its attributes and zeros where its
 * times and values go: a new snapshot copies runs of these (one copy for consecutive series) and
 * writes the times and values in place. The fixed-size fields come last in each message (field order
 * is free in protobuf), so they sit at fixed distances from the message's end.
 *
 * Number: [attributes (7)] [start (2) fixed64] [time (3) fixed64] [as_double (4)]
 * Histogram: [attributes (9)] [start] [time] [count (4) fixed64] [sum (5) double]
 *            [bucket_counts (6) packed fixed64 x width] [explicit_bounds (7), the family's, constant]
 */
interface PointLayout {
  /** Per table: the encoded points by series id. */
  readonly arenas: WeakMap<LabelTable, LabelArena<PbWriter>>;
  readonly encode: (labels: Readonly<Record<string, string>>, w: PbWriter) => void;
  /** Bytes from the start field's first value byte to the message's end. */
  readonly tail: number;
  readonly width: number;
}

const ZERO8 = Buffer.alloc(8);
/** Where a series' point message is written before it is copied into its arena. */
const scratch = new PbWriter(1024);
const layouts = new Map<string, PointLayout>();

function pointLayout(bounds: readonly number[] | undefined): PointLayout {
  const key = bounds === undefined ? 'number' : bounds.join(',');
  let l = layouts.get(key);
  if (l !== undefined) return l;
  const width = bounds === undefined ? 0 : bounds.length + 1;
  const fixed = small((w) => {
    for (const field of bounds === undefined ? [2, 3, 4] : [2, 3, 4, 5]) {
      w.varint(tag(field, I64));
      w.bytes(ZERO8);
    }
    if (bounds === undefined) return;
    w.varint(tag(6, LEN));
    w.varint(8 * width);
    for (let b = 0; b < width; b++) w.bytes(ZERO8);
    if (bounds.length > 0) {
      w.varint(tag(7, LEN));
      w.varint(8 * bounds.length);
      for (const x of bounds) w.double(x);
    }
  });
  const attrsField = bounds === undefined ? 7 : 9;
  const encode = (labels: Readonly<Record<string, string>>, w: PbWriter): void =>
    w.message(1, () => {
      keyValues(w, attrsField, labels);
      w.bytes(fixed);
    });
  l = { arenas: new WeakMap(), encode, tail: fixed.length - 1, width };
  // One layout per distinct set of bounds a process ever exports: a handful.
  layouts.set(key, l);
  return l;
}

/** Series whose point messages are encoded, or points written into a request, per turn of the event loop. */
const SLICE = 4096;
const aheadRunning = new WeakSet<LabelTable>();

/** Encode the point messages of `table`'s series not encoded yet, a slice per step. */
function* fillSteps(table: LabelTable, layout: PointLayout): Generator<void, LabelArena<PbWriter>> {
  const arena = arenaFor(layout.arenas, table, layout.encode, scratch, 0);
  const upTo = table.labels.length;
  while (arena.size < upTo) {
    arena.fill(table, Math.min(upTo, arena.size + SLICE));
    if (arena.size < upTo) yield;
  }
  return arena;
}

/**
 * Encode the point messages of `table`'s new series (histograms: with `bounds`) in slices, between
 * turns of the event loop, so that the next export finds them ready: encoding 100,000 series at
 * once took the export ~0.5-1 s of one turn (a million, seconds), in which /metrics and /healthz
 * could not answer. An export that comes first encodes the rest itself, in slices too.
 */
export async function encodePointsAhead(table: LabelTable, bounds: readonly number[] | undefined): Promise<void> {
  if (aheadRunning.has(table)) return;
  aheadRunning.add(table);
  try {
    const steps = fillSteps(table, pointLayout(bounds));
    while (steps.next().done !== true) await nextSlice();
  } finally {
    aheadRunning.delete(table);
  }
}

/** A time as the two little-endian halves of its fixed64 nanoseconds. */
function timeHalves(t: HrTime): [number, number] {
  const ns = nanos(t);
  return [Number(ns & 0xffffffffn), Number(ns >> 32n)];
}

// ---- metrics

/** A metric's encoding: its exact size first, then the writing, which pauses between slices of points. */
interface Planned {
  size: number;
  write(w: PbWriter): Iterable<void>;
}

function otlpTemporality(t: AggregationTemporality): number {
  return t === AggregationTemporality.DELTA ? 1 : 2;
}

/** Field number of the data in Metric, and whether it carries temporality and monotonicity. */
function dataField(m: MetricData): number {
  switch (m.dataPointType) {
    case DataPointType.GAUGE:
      return 5;
    case DataPointType.SUM:
      return 7;
    case DataPointType.HISTOGRAM:
      return 9;
    default:
      throw new UnsupportedMetric(`data point type ${String(m.dataPointType)}`);
  }
}

/** The data message's fields after its points: temporality (sum, histogram), is_monotonic (sum). */
function dataTrailer(m: MetricData): Buffer {
  return small((w) => {
    if (m.dataPointType === DataPointType.GAUGE) return;
    w.varint(tag(2, VARINT));
    w.varint(otlpTemporality(m.aggregationTemporality));
    if (m.dataPointType === DataPointType.SUM && m.isMonotonic) {
      w.varint(tag(3, VARINT));
      w.varint(1);
    }
  });
}

function metricHead(m: MetricData): Buffer {
  return small((w) => {
    w.string(1, m.descriptor.name);
    if (m.descriptor.description !== '') w.string(2, m.descriptor.description);
    if (m.descriptor.unit !== '') w.string(3, m.descriptor.unit);
  });
}

/**
 * A metric from columns: runs of its series' encoded points copied, then times and values written in
 * place. Series not encoded yet (a first export that came before encodePointsAhead finished) are
 * encoded first, a slice per step.
 */
function* planColumns(m: MetricData, parts: readonly ColumnPoints[]): Generator<void, Planned> {
  const field = dataField(m);
  const head = metricHead(m);
  const trailer = dataTrailer(m);
  const prepared: { p: ColumnPoints; layout: PointLayout; points: LabelArena<PbWriter>; size: number }[] = [];
  for (const p of parts) {
    const layout = pointLayout(m.dataPointType === DataPointType.HISTOGRAM ? (p.bounds ?? []) : undefined);
    const points = yield* fillSteps(p.table, layout);
    let size = 0;
    forRuns(p.ids, 0, p.ids.length, (from, to) => (size += points.rangeLength(from, to)));
    prepared.push({ p, layout, points, size });
  }
  const dataSize = prepared.reduce((n, x) => n + x.size, 0) + trailer.length;
  return {
    size: head.length + fieldSize(dataSize),
    *write(w) {
      w.bytes(head);
      w.varint(tag(field, LEN));
      w.varint(dataSize);
      for (const { p, layout, points, size } of prepared) {
        w.reserve(size);
        yield* writePoints(w, p, layout, points);
      }
      w.bytes(trailer);
    },
  };
}

/** A metric's points, SLICE at a time: the encoded messages copied, then their times and values patched in. */
function* writePoints(w: PbWriter, p: ColumnPoints, layout: PointLayout, points: LabelArena<PbWriter>): Generator<void, void> {
  const { ids, startOf } = p;
  // Halves of each start time in two typed arrays: no array to unpack per point.
  const startLo = Uint32Array.from(p.starts, (t) => timeHalves(t)[0]);
  const startHi = Uint32Array.from(p.starts, (t) => timeHalves(t)[1]);
  const [timeLo, timeHi] = timeHalves(p.time);
  const { width } = layout;
  for (let from = 0; from < ids.length; from += SLICE) {
    if (from > 0) yield;
    const to = Math.min(ids.length, from + SLICE);
    const base = w.pos;
    // Copy: one call per run of consecutive ids (a read job's series are usually all of them, in order).
    forRuns(ids, from, to, (a, b) => (w.pos += points.copyRange(a, b, w.buf, w.pos)));
    // Patch: the fixed fields sit at fixed distances before each message's end.
    const view = new DataView(w.buf.buffer, w.buf.byteOffset, w.buf.length);
    let end = base;
    for (let i = from; i < to; i++) {
      end += points.length(ids[i]);
      let at = end - layout.tail; // first byte of the start time
      const s = startOf[i];
      view.setUint32(at, startLo[s], true);
      view.setUint32(at + 4, startHi[s], true);
      view.setUint32(at + 9, timeLo, true);
      view.setUint32(at + 13, timeHi, true);
      at += 18;
      if (width === 0) {
        view.setFloat64(at, p.values[i], true);
        continue;
      }
      setFixed64(view, at, p.values[i]);
      view.setFloat64(at + 9, p.sums?.[i] ?? 0, true);
      at += 17 + 1 + varintSize(8 * width);
      for (let b = 0; b < width; b++) setFixed64(view, at + 8 * b, p.buckets?.[i * width + b] ?? 0);
    }
  }
}

/** Calls `fn(first, end)` for each run of consecutive ids in ids[from..to-1] (ids first..end-1). */
function forRuns(ids: Int32Array, from: number, to: number, fn: (first: number, end: number) => void): void {
  for (let i = from; i < to; ) {
    let j = i + 1;
    while (j < to && ids[j] === ids[j - 1] + 1) j++;
    fn(ids[i], ids[j - 1] + 1);
    i = j;
  }
}

/** An unsigned count as fixed64; negative or fractional values are clamped and rounded. */
function setFixed64(view: DataView, at: number, v: number): void {
  const x = v > 0 ? Math.round(v) : 0;
  view.setUint32(at, x % 0x1_0000_0000, true);
  view.setUint32(at + 4, Math.min(0xffff_ffff, Math.floor(x / 0x1_0000_0000)), true);
}

/** A metric from its data points (the self-metrics: a few hundred points at most). */
function planPoints(m: MetricData): Planned {
  const field = dataField(m);
  const body = small((w) => {
    w.bytes(metricHead(m));
    w.message(field, () => {
      for (const dp of m.dataPoints as DataPoint<number | Histogram>[]) {
        w.message(1, () => {
          if (m.dataPointType === DataPointType.HISTOGRAM) histogramPoint(w, dp as DataPoint<Histogram>);
          else numberPoint(w, dp as DataPoint<number>, m.descriptor.valueType);
        });
      }
      w.bytes(dataTrailer(m));
    });
  });
  return {
    size: body.length,
    write(w) {
      w.bytes(body);
      return [];
    },
  };
}

function numberPoint(w: PbWriter, dp: DataPoint<number>, valueType: ValueType): void {
  w.bytes(timeField(2, dp.startTime));
  w.bytes(timeField(3, dp.endTime));
  if (valueType === ValueType.INT && Number.isInteger(dp.value)) {
    w.varint(tag(6, I64));
    w.reserve(8);
    w.pos = w.buf.writeBigInt64LE(BigInt(dp.value), w.pos);
  } else {
    w.varint(tag(4, I64));
    w.double(dp.value);
  }
  keyValues(w, 7, dp.attributes);
}

function histogramPoint(w: PbWriter, dp: DataPoint<Histogram>): void {
  const h = dp.value;
  w.bytes(timeField(2, dp.startTime));
  w.bytes(timeField(3, dp.endTime));
  w.varint(tag(4, I64));
  w.fixed64(h.count);
  if (h.sum !== undefined) {
    w.varint(tag(5, I64));
    w.double(h.sum);
  }
  w.message(6, () => {
    for (const c of h.buckets.counts) w.fixed64(c);
  });
  if (h.buckets.boundaries.length > 0) {
    w.message(7, () => {
      for (const b of h.buckets.boundaries) w.double(b);
    });
  }
  keyValues(w, 9, dp.attributes);
  if (h.min !== undefined) {
    w.varint(tag(11, I64));
    w.double(h.min);
  }
  if (h.max !== undefined) {
    w.varint(tag(12, I64));
    w.double(h.max);
  }
}

/**
 * The request for one collection, as protobuf bytes. Throws UnsupportedMetric for a kind of metric it
 * does not write. `buffer(size)` gives the buffer the request is written into (from its start; it
 * may be larger): by default one of exactly that size.
 */
export function encodeMetricsRequest(rm: ResourceMetrics, buffer: (size: number) => Buffer = allocate): Uint8Array {
  const steps = requestSteps(rm, buffer);
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}

/**
 * The same request, encoded a slice of points per turn of the event loop: at 100,000 series an
 * export written at once held the loop for 15-50 ms, and a scrape that came meanwhile waited. The
 * collection must not change while it is encoded (a snapshot's columns never do).
 */
export async function encodeMetricsRequestAsync(rm: ResourceMetrics, buffer: (size: number) => Buffer = allocate): Promise<Uint8Array> {
  const steps = requestSteps(rm, buffer);
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
    await nextSlice();
  }
}

const allocate = (size: number): Buffer => Buffer.allocUnsafe(size);

function* requestSteps(rm: ResourceMetrics, buffer: (size: number) => Buffer): Generator<void, Uint8Array> {
  const resource = small((w) => keyValues(w, 1, rm.resource.attributes));
  const scopes = [];
  for (const sm of rm.scopeMetrics) {
    const scope = small((w) => {
      w.string(1, sm.scope.name);
      if (sm.scope.version !== undefined && sm.scope.version !== '') w.string(2, sm.scope.version);
    });
    const metrics: Planned[] = [];
    for (const m of sm.metrics) metrics.push(isColumnMetric(m) ? yield* planColumns(m, m[COLUMN_POINTS]) : planPoints(m));
    const schema = sm.scope.schemaUrl === undefined || sm.scope.schemaUrl === '' ? undefined : small((w) => w.string(3, sm.scope.schemaUrl!));
    const size = fieldSize(scope.length) + metrics.reduce((n, m) => n + fieldSize(m.size), 0) + (schema?.length ?? 0);
    scopes.push({ scope, metrics, schema, size });
  }
  const schemaUrl = rm.resource.schemaUrl;
  const rmSchema = schemaUrl === undefined || schemaUrl === '' ? undefined : small((w) => w.string(3, schemaUrl));
  const rmSize = fieldSize(resource.length) + scopes.reduce((n, s) => n + fieldSize(s.size), 0) + (rmSchema?.length ?? 0);
  const w = new PbWriter(buffer(fieldSize(rmSize)));
  w.varint(tag(1, LEN));
  w.varint(rmSize);
  w.varint(tag(1, LEN));
  w.varint(resource.length);
  w.bytes(resource);
  for (const s of scopes) {
    w.varint(tag(2, LEN));
    w.varint(s.size);
    w.varint(tag(1, LEN));
    w.varint(s.scope.length);
    w.bytes(s.scope);
    for (const m of s.metrics) {
      w.varint(tag(2, LEN));
      w.varint(m.size);
      const before = w.pos;
      yield* m.write(w);
      if (w.pos - before !== m.size) throw new Error(`OTLP encoder: metric wrote ${w.pos - before} bytes, planned ${m.size}`);
    }
    if (s.schema !== undefined) w.bytes(s.schema);
  }
  if (rmSchema !== undefined) w.bytes(rmSchema);
  return w.result();
}

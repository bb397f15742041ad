/**
 * Ring buffer records as spans, the way ebpf_exporter's tracing reads them: the record is cut into
 * labels by the job's key layout and decoded by the same decoders as map labels; labels with the
 * span fields' names make the span, every other label is an attribute (a string).
 *
 * - trace_id: 32 hex digits (16 bytes, in memory order, as the hex decoder writes them); all zero is
 *   no trace: the record is counted invalid.
 * - span_id: 16 hex digits; all zero: a random id (theirs does the same).
 * - parent_span_id: 16 hex digits; all zero: a root span.
 * - span_monotonic_timestamp_ns: bpf_ktime_get_ns() at the start; made wall time with the wall
 *   clock's offset from the monotonic clock, taken at every read. Without it: the time of the read.
 * - span_duration_ns: the end is the start plus this (0 when absent).
 * - span_name: the span's name instead of the job's.
 * A decoder that drops the record (a regexp that did not match) drops the span.
 *
 * One difference from theirs, on purpose: a root span keeps the trace id and span id the record
 * gives. Theirs hands a record without a parent to its SDK as a new root, which draws new random
 * ids, so that the children the same program sent (which name the record's ids) lose their parent.
 */
import { randomFillSync } from 'node:crypto';
import type { MapSpec } from '../config/types.js';
import { createDecoder, defaultDecoderName, DecoderConfigError, type DecoderEnv, type LabelDecoder } from '../decode/index.js';
import { layoutFromSpecs } from '../layout/build.js';
import type { LayoutField } from '../layout/types.js';
import type { SpanInput } from './otel-spans.js';

/** A problem with the job's spans config, found when the record layout is known (config paths). */
export interface SpanConfigProblem {
  path: (string | number)[];
  message: string;
}

type Role = 'trace_id' | 'span_id' | 'parent_span_id' | 'start' | 'duration' | 'name' | 'attribute';
const ROLES: Readonly<Record<string, Role>> = {
  trace_id: 'trace_id',
  span_id: 'span_id',
  parent_span_id: 'parent_span_id',
  span_monotonic_timestamp_ns: 'start',
  span_duration_ns: 'duration',
  span_name: 'name',
};
/** The bytes and the decoder each id must have: its hex digits are the id. */
const ID_BYTES: Partial<Record<Role, number>> = { trace_id: 16, span_id: 8, parent_span_id: 8 };

interface Part {
  role: Role;
  name: string;
  field: LayoutField;
  decoder: LabelDecoder;
  /** The field read straight from the bytes: ids as hex, times as u64 (every span part but the name). */
  raw: boolean;
  /** A time written in host order (u64), not network order (be64). */
  littleEndian: boolean;
}

/** What one decode() made of its records besides spans. */
export interface SpanDecodeStats {
  spans: number;
  /** Dropped by a decoder (a regexp that did not match). */
  skipped: number;
  /** Records whose trace id was zero or whose ids or times did not read as such. */
  invalid: number;
}

export class SpanRecords {
  /** The record bytes read (the key layout's size): each record is cut or zero-filled to it. */
  readonly width: number;

  private constructor(
    private readonly parts: readonly Part[],
    width: number,
    private readonly name: string,
    private readonly service: string,
    private readonly attributes: Readonly<Record<string, string>>,
  ) {
    this.width = width;
  }

  /** Fit a job's spans config to its written record layout: the decoders, or the problems. */
  static plan(spec: MapSpec, index: number, env?: DecoderEnv): { records?: SpanRecords; problems: SpanConfigProblem[] } {
    const spans = spec.spans!;
    const layout = layoutFromSpecs(spec.key ?? []);
    const problems: SpanConfigProblem[] = [];
    const parts: Part[] = [];
    spans.labels.forEach((l, k) => {
      const at = ['maps', index, 'spans', 'labels', k];
      const role = ROLES[l.name] ?? 'attribute';
      if (l.from === undefined) {
        problems.push({ path: at, message: `label ${l.name} has no from: a span's labels are read from the record's fields` });
        return;
      }
      const field = layout.fields.find((f) => f.name === l.from)!;
      const decoderName = l.decoder ?? defaultDecoderName(field);
      const idBytes = ID_BYTES[role];
      if (idBytes !== undefined && (field.size !== idBytes || decoderName !== 'hex')) {
        problems.push({ path: [...at, 'from'], message: `${l.name} is read as ${idBytes} bytes in hex (the id's bytes in memory order), got field ${field.name} of ${field.size} bytes${decoderName === 'hex' ? '' : ` with decoder ${decoderName}`}` });
        return;
      }
      if ((role === 'start' || role === 'duration') && (field.type.kind !== 'int' || field.size !== 8 || decoderName !== 'uint')) {
        problems.push({ path: [...at, 'from'], message: `${l.name} is read as a u64 with decoder uint (nanoseconds), got field ${field.name} (${field.size} bytes${decoderName === 'uint' ? '' : `, decoder ${decoderName}`})` });
        return;
      }
      let decoder: LabelDecoder;
      try {
        decoder = createDecoder({ decoder: decoderName, map: l.map, allow_unknown: l.allow_unknown, pattern: l.pattern, patterns: l.patterns, rewrite: l.rewrite, style: l.style }, field, env);
      } catch (e) {
        if (!(e instanceof DecoderConfigError)) throw e;
        problems.push({ path: [...at, 'decoder'], message: e.message });
        return;
      }
      const bigEndian = field.type.kind === 'int' && field.type.bigEndian;
      parts.push({ role, name: l.name, field, decoder, raw: role !== 'attribute' && role !== 'name', littleEndian: !bigEndian });
    });
    if (problems.length > 0) return { problems };
    if (!parts.some((p) => p.role === 'trace_id')) return { problems: [{ path: ['maps', index, 'spans', 'labels'], message: 'no label trace_id: every span needs its trace id (16 bytes, hex) from the record' }] };
    const service = spans.service ?? nonEmpty(process.env.OTEL_SERVICE_NAME) ?? 'bpf-map-exporter';
    return { records: new SpanRecords(parts, layout.size, spans.name, service, spans.attributes ?? {}), problems: [] };
  }

  /**
   * The spans of `count` records, record k at `rows[offsets[k]]` and readable for `width` bytes
   * (RingRecords), handed to `emit` in record order. `offsetNs`: wall time minus monotonic time
   * now (wallMinusMonotonicNs).
   */
  decode(rows: Uint8Array, offsets: Uint32Array, count: number, offsetNs: bigint, emit: (span: SpanInput) => void): SpanDecodeStats {
    const stats: SpanDecodeStats = { spans: 0, skipped: 0, invalid: 0 };
    const view = new DataView(rows.buffer, rows.byteOffset, rows.byteLength);
    // Hex through Buffer's native encoder: one flat string per id (a concatenation of 16 pieces was a
    // rope that every later test of it flattened).
    const bytes = Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength);
    const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;
    records: for (let r = 0; r < count; r++) {
      const base = offsets[r];
      let traceId = '';
      let spanId = '';
      let parentSpanId: string | undefined;
      let start: bigint | undefined;
      let duration = 0n;
      let name = this.name;
      const attributes: Record<string, string> = {};
      for (const p of this.parts) {
        const at = base + p.field.offset;
        if (p.raw) {
          switch (p.role) {
            case 'trace_id':
              traceId = bytes.toString('hex', at, at + 16);
              break;
            case 'span_id':
              spanId = bytes.toString('hex', at, at + 8);
              break;
            case 'parent_span_id':
              parentSpanId = bytes.toString('hex', at, at + 8);
              break;
            case 'start':
              start = view.getBigUint64(at, p.littleEndian) + offsetNs;
              break;
            case 'duration':
              duration = view.getBigUint64(at, p.littleEndian);
              break;
          }
          continue;
        }
        const text = p.decoder.decode(rows, at);
        if (text === undefined) {
          stats.skipped++;
          continue records;
        }
        if (p.role === 'name') name = text;
        else attributes[p.name] = text;
      }
      if (isZero(traceId)) {
        stats.invalid++;
        continue;
      }
      if (isZero(spanId)) spanId = randomSpanId();
      if (parentSpanId !== undefined && isZero(parentSpanId)) parentSpanId = undefined;
      Object.assign(attributes, this.attributes);
      emit({ name, service: this.service, traceId, spanId, parentSpanId, startUnixNano: start ?? nowNs(), durationNanos: duration, attributes });
      stats.spans++;
    }
    return stats;
  }
}

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/** An id the hex decoder read from zero bytes (or none read: ''). */
function isZero(id: string): boolean {
  return id === '' || id === ZERO_SPAN_ID || id === ZERO_TRACE_ID;
}

const idBytes = Buffer.alloc(8);
function randomSpanId(): string {
  do randomFillSync(idBytes);
  while (idBytes.every((b) => b === 0));
  return idBytes.toString('hex');
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

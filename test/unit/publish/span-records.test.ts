/**
 * SpanRecords on records written by hand: which bytes become which part of a span, in host and
 * network byte order. (The kernel-made records are in test/e2e/ebpf-exporter-tracing.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/parse.js';
import { SpanRecords } from '../../../src/publish/span-records.js';
import type { SpanInput } from '../../../src/publish/otel-spans.js';

function records(start: string, duration: string): SpanRecords {
  const spec = parseConfig(`
maps:
  - name: work
    source: { object: x.bpf.o, map: spans }
    key:
      - { name: trace_id, type: "u8[16]" }
      - { name: parent_span_id, type: "u8[8]" }
      - { name: span_id, type: "u8[8]" }
      - { name: start, type: ${start} }
      - { name: duration, type: ${duration} }
      - { name: cpu, type: u32 }
      - { name: pad, type: u32 }
    spans:
      labels:
        - { name: trace_id, from: trace_id }
        - { name: parent_span_id, from: parent_span_id }
        - { name: span_id, from: span_id }
        - { name: span_monotonic_timestamp_ns, from: start }
        - { name: span_duration_ns, from: duration }
        - { name: cpu, from: cpu }
`, 'spans.yaml').maps[0];
  const { records: r, problems } = SpanRecords.plan(spec, 0);
  expect(problems).toEqual([]);
  return r!;
}

/** One 56-byte record: ids, the start and duration in the byte order asked, then cpu 3. */
function row(bigEndian: boolean, startNs: bigint, durationNs: bigint, parent = 0x22): Uint8Array {
  const b = Buffer.alloc(56);
  b.fill(0x11, 0, 16);
  b.fill(parent, 16, 24);
  b.fill(0x33, 24, 32);
  if (bigEndian) {
    b.writeBigUInt64BE(startNs, 32);
    b.writeBigUInt64BE(durationNs, 40);
  } else {
    b.writeBigUInt64LE(startNs, 32);
    b.writeBigUInt64LE(durationNs, 40);
  }
  b.writeUInt32LE(3, 48);
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

function decodeOne(r: SpanRecords, bytes: Uint8Array, offsetNs = 1_000n): SpanInput[] {
  const out: SpanInput[] = [];
  expect(r.decode(bytes, Uint32Array.of(0), 1, offsetNs, (s) => out.push(s))).toEqual({ spans: 1, skipped: 0, invalid: 0 });
  return out;
}

describe('SpanRecords', () => {
  const startNs = 0x0102030405060708n;
  const durationNs = 0x1234_5678n;

  it('reads the ids as hex and the times as u64 of host order, the rest as attributes', () => {
    const [s] = decodeOne(records('u64', 'u64'), row(false, startNs, durationNs));
    expect(s).toMatchObject({ name: 'work', traceId: '11'.repeat(16), parentSpanId: '22'.repeat(8), spanId: '33'.repeat(8), startUnixNano: startNs + 1_000n, durationNanos: durationNs, attributes: { cpu: '3' } });
  });

  it('reads times written in network order (be64) as times, not as attributes', () => {
    const [s] = decodeOne(records('be64', 'be64'), row(true, startNs, durationNs));
    expect(s.startUnixNano).toBe(startNs + 1_000n);
    expect(s.durationNanos).toBe(durationNs);
    expect(s.attributes).toEqual({ cpu: '3' });
  });

  it('a zero parent is a root span', () => {
    const [s] = decodeOne(records('u64', 'u64'), row(false, startNs, durationNs, 0));
    expect(s.parentSpanId).toBeUndefined();
  });
});

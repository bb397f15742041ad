/** What the tracing tests share: the spans a receiver got, and the span records a program kept in a map. */
import { readdirSync, readFileSync } from 'node:fs';
import { BpfMap } from '../../src/bpf/map.js';
import { BatchReader } from '../../src/bpf/batch.js';
import type { Receiver, WireGroup, WireSpan } from '../otlp-traces.js';

/** Every span the receiver got on /v1/traces, with its group (resource and scope). */
export const spansOf = (rx: Receiver): { group: WireGroup; span: WireSpan }[] =>
  rx.got.flatMap((g, i) => (g.path === '/v1/traces' ? rx.groups(i).flatMap((group) => group.spans.map((span) => ({ group, span }))) : []));

/** The head of a span record as the fixtures lay it out (their span_base_t), ids in hex as the hex decoder gives them. */
export interface SentHead {
  traceId: string;
  parentSpanId: string;
  spanId: string;
  startNs: bigint;
  durationNs: bigint;
}

/** The 48-byte head of a span record: trace id (16), parent span id (8), span id (8), start and duration (u64). */
export function spanHead(v: Buffer): SentHead {
  return {
    traceId: v.subarray(0, 16).toString('hex'),
    parentSpanId: v.subarray(16, 24).toString('hex'),
    spanId: v.subarray(24, 32).toString('hex'),
    startNs: v.readBigUInt64LE(32),
    durationNs: v.readBigUInt64LE(40),
  };
}

/** The id of the map named `name` that process `pid` holds (from /proc/PID/fdinfo): the exporter's own, not one of a test alongside. */
export function mapHeldBy(pid: number, name: string): number {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const id = /^map_id:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1];
      if (id !== undefined) ids.add(Number(id));
    } catch {
      // closed while we looked
    }
  }
  for (const id of ids) {
    const m = BpfMap.openById(id);
    const found = m.info.name === name;
    m.close();
    if (found) return id;
  }
  throw new Error(`process ${pid} holds no map named ${name} (of maps ${[...ids].join(', ')})`);
}

/** Every value of map `id`, each its first `bytes` bytes, read through `parse`. */
export function readValues<T>(id: number, bytes: number, parse: (v: Buffer) => T): T[] {
  const map = BpfMap.openById(id);
  try {
    const out: T[] = [];
    for (const b of new BatchReader(map).batches('read')) {
      for (let i = 0; i < b.count; i++) out.push(parse(b.values.subarray(i * b.valueStride, i * b.valueStride + bytes)));
    }
    return out;
  } finally {
    map.close();
  }
}

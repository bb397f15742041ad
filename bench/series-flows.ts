/**
 * The flow workload of bench/series.ts and bench/series-baseline.ts: what entry i of the flow map is,
 * its labels as the exporter renders them, its value, and the map itself (filled with the project's
 * own binding) and the exporter config that exports it.
 *
 * Key (16 bytes): saddr u8[4], daddr u8[4], sport be16, dport be16, proto u8, pad[3].
 * Value: u64 bytes.
 * Labels: saddr (inet_ip), sport, dport (uint), proto (static_map); daddr is not a label.
 *
 * Entry i: client c = i % 4096 and slot s = floor(i / 4096), so (c, s) is unique for every i.
 *   saddr  10.{c >> 8}.{c & 255}.{1 + s % 250}  (a client's flows spread over its addresses)
 *   sport  1024 + s                              (unique per s: with c, makes the label set unique)
 *   dport  one of DPORTS by i % 7
 *   proto  6 (tcp), 17 (udp), 132 (sctp) by i % 3
 *   daddr  192.168.{(i >> 8) & 255}.{i & 255}    (not a label)
 * (saddr, sport) alone is unique, so every entry is its own series.
 */
import { BpfMap } from '../src/bpf/map.js';
import { MapType } from '../src/bpf/map-types.js';

export const KEY_SIZE = 16;
export const VALUE_SIZE = 8;
export const BATCH_SIZE = 4096;
export const METRIC = 'flow_bytes_total';
export const JOB = 'flows';
export const LABEL_NAMES = ['saddr', 'sport', 'dport', 'proto'] as const;

const CLIENTS = 4096;
const DPORTS = [443, 80, 53, 22, 8080, 5432, 6379];
const PROTOS = [6, 17, 132];
export const PROTO_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp' };
const TWO_32 = 4294967296;
const FILL_CHUNK = 65536;

export interface Flow {
  saddr: [number, number, number, number];
  daddr: [number, number, number, number];
  sport: number;
  dport: number;
  proto: number;
}

export function flow(i: number): Flow {
  const c = i % CLIENTS;
  const s = Math.floor(i / CLIENTS);
  if (s > 65535 - 1024) throw new Error(`flow ${i}: sport would overflow (at most ${CLIENTS * (65536 - 1024)} flows)`);
  return {
    saddr: [10, c >> 8, c & 255, 1 + (s % 250)],
    daddr: [192, 168, (i >> 8) & 255, i & 255],
    sport: 1024 + s,
    dport: DPORTS[i % DPORTS.length],
    proto: PROTOS[i % PROTOS.length],
  };
}

/** The labels of entry i, as the exporter renders them (order: LABEL_NAMES). */
export function flowLabels(i: number): [saddr: string, sport: string, dport: string, proto: string] {
  const f = flow(i);
  return [f.saddr.join('.'), String(f.sport), String(f.dport), PROTO_NAMES[f.proto]];
}

/** The u64 value of entry i (bytes), below 2**32 so that the sum of a million stays an exact double. */
export function flowValue(i: number): number {
  return (i % 1000) * 1_000_003 + 977 * i + 1;
}

/** The sum of flowValue over 0..n-1, exact (checked to stay below 2**53). */
export function expectedSum(n: number): number {
  let s = 0n;
  for (let i = 0; i < n; i++) s += BigInt(flowValue(i));
  if (s > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`the sum of ${n} flows is beyond 2**53`);
  return Number(s);
}

/** Create a BPF_MAP_TYPE_HASH of n flows (max_entries n), fill it with batch updates and pin it. */
export function createFlowMap(n: number, pin: string): { map: BpfMap; fillMs: number } {
  const t0 = performance.now();
  const map = BpfMap.create({ type: MapType.hash, name: 'bm_series', keySize: KEY_SIZE, valueSize: VALUE_SIZE, maxEntries: n });
  try {
    const keys = Buffer.alloc(FILL_CHUNK * KEY_SIZE);
    const values = Buffer.alloc(FILL_CHUNK * VALUE_SIZE);
    for (let start = 0; start < n; start += FILL_CHUNK) {
      const count = Math.min(FILL_CHUNK, n - start);
      keys.fill(0);
      for (let j = 0; j < count; j++) {
        const i = start + j;
        const f = flow(i);
        const k = j * KEY_SIZE;
        keys.set(f.saddr, k);
        keys.set(f.daddr, k + 4);
        keys.writeUInt16BE(f.sport, k + 8);
        keys.writeUInt16BE(f.dport, k + 10);
        keys[k + 12] = f.proto;
        const v = flowValue(i);
        values.writeUInt32LE(v % TWO_32, j * VALUE_SIZE);
        values.writeUInt32LE(Math.floor(v / TWO_32), j * VALUE_SIZE + 4);
      }
      const written = map.updateBatch(keys, values, count);
      if (written !== count) throw new Error(`fill: update batch wrote ${written} of ${count}`);
    }
    map.pin(pin);
    return { map, fillMs: performance.now() - t0 };
  } catch (e) {
    map.close();
    throw e;
  }
}

/** The exporter config: one read job on the pin, the layout written out, one counter with 4 labels. */
export function flowConfig(pin: string, interval: string): string {
  const protoMap = Object.entries(PROTO_NAMES).map(([k, v]) => `${k}: ${v}`).join(', ');
  return `interval: ${interval}
max_series: 2000000
maps:
  - name: ${JOB}
    source: { pinned: ${pin} }
    batch_size: ${BATCH_SIZE}
    key:
      - { name: saddr, type: "u8[4]" }
      - { name: daddr, type: "u8[4]" }
      - { name: sport, type: be16 }
      - { name: dport, type: be16 }
      - { name: proto, type: u8 }
      - { name: pad, type: "pad[3]" }
    value:
      - { name: bytes, type: u64 }
    metrics:
      - name: ${METRIC}
        type: counter
        help: Bytes per flow
        value: bytes
        max_series: 2000000
        labels:
          - { name: saddr, from: saddr, decoder: inet_ip }
          - { name: sport, from: sport }
          - { name: dport, from: dport }
          - { name: proto, from: proto, decoder: static_map, map: { ${protoMap} } }
`;
}

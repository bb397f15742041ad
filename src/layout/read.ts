import type { FieldType } from './types.js';

const TWO32 = 4294967296;

/**
 * A reader of one integer field as a float64 (Prometheus and OTel values are float64): u64 as two
 * u32 halves, so the hot loop never builds a BigInt. Exact up to 2^53.
 */
export type NumberReader = (buf: Uint8Array, offset: number) => number;

export function numberReader(t: FieldType & { kind: 'int' }): NumberReader {
  switch (t.name) {
    case 'u8': return (b, o) => b[o];
    case 's8': return (b, o) => (b[o] << 24) >> 24;
    case 'u16': return (b, o) => b[o] | (b[o + 1] << 8);
    case 's16': return (b, o) => ((b[o] | (b[o + 1] << 8)) << 16) >> 16;
    case 'be16': return (b, o) => (b[o] << 8) | b[o + 1];
    case 'u32': return u32le;
    case 's32': return (b, o) => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
    case 'be32': return be32;
    case 'u64': return (b, o) => u32le(b, o) + u32le(b, o + 4) * TWO32;
    case 's64': return (b, o) => u32le(b, o) + (b[o + 4] | (b[o + 5] << 8) | (b[o + 6] << 16) | (b[o + 7] << 24)) * TWO32;
    case 'be64': return (b, o) => be32(b, o + 4) + be32(b, o) * TWO32;
  }
}

function u32le(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 16777216;
}

function be32(b: Uint8Array, o: number): number {
  return b[o] * 16777216 + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]);
}

/** The exact value of an integer field, for labels and checks (not the hot loop). */
export function readBigInt(buf: Uint8Array, offset: number, t: FieldType & { kind: 'int' }): bigint {
  let v = 0n;
  for (let i = 0; i < t.size; i++) {
    const byte = buf[offset + (t.bigEndian ? i : t.size - 1 - i)];
    v = (v << 8n) | BigInt(byte);
  }
  return t.signed ? BigInt.asIntN(t.size * 8, v) : v;
}

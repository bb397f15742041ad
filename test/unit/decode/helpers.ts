import { parseFieldType } from '../../../src/layout/field-type.js';
import type { LayoutField } from '../../../src/layout/types.js';
import { HOST_LITTLE_ENDIAN } from '../../../src/decode/int.js';

/** A layout field of a config type (`u32`, `char[16]`, `u8[4]`). */
export function field(type: string, extra: Partial<LayoutField> = {}): LayoutField {
  const t = parseFieldType(type);
  if (typeof t === 'string') throw new Error(t);
  return { name: 'f', offset: 0, size: t.size, type: t, ...extra };
}

/**
 * A buffer holding `bytes` at offset 3, with junk around them, so decoders are seen to read
 * exactly their field's bytes at the offset they are given.
 */
export function at3(bytes: readonly number[]): Uint8Array {
  return Uint8Array.from([0xaa, 0xbb, 0xcc, ...bytes, 0xdd, 0xee]);
}

/** Bytes of a host-order integer written little-endian in the test: reversed on a big-endian host. */
export function host(...littleEndian: number[]): number[] {
  return HOST_LITTLE_ENDIAN ? littleEndian : [...littleEndian].reverse();
}

/** The little-endian bytes of a u64 (as the kernel stores one on x86 and arm64). */
export function u64le(v: bigint): number[] {
  const out: number[] = [];
  for (let i = 0n; i < 8n; i++) out.push(Number((BigInt.asUintN(64, v) >> (8n * i)) & 0xffn));
  return out;
}

/** A small seeded PRNG (mulberry32): the random-bytes tests see the same bytes on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

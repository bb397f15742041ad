import { endianness } from 'node:os';
import type { FieldType } from '../layout/types.js';

export type IntFieldType = FieldType & { kind: 'int' };

/** An integer read exactly: a number while it is a safe integer, a bigint beyond (u64 above 2^53). */
export type IntValue = number | bigint;
export type IntReader = (buf: Uint8Array, offset: number) => IntValue;

/** Host-order fields (u*, s*) follow the machine's byte order; be* fields are always big-endian. */
export const HOST_LITTLE_ENDIAN = endianness() === 'LE';

const TWO32 = 4294967296;
const TWO21 = 2097152;

/**
 * A reader of an integer field, as unsigned or as two's complement. The signedness is a parameter
 * (not the field type's) because the decoder named in the config decides it: `uint` on an s32
 * prints the bits as unsigned, `int` on a u32 prints them as signed. Bytes past the end of the
 * buffer read as zero: decode() must never throw, whatever it is handed.
 */
export function intReader(t: IntFieldType, signed: boolean, hostLittleEndian = HOST_LITTLE_ENDIAN): IntReader {
  const size = t.size;
  const msbFirst = t.bigEndian || !hostLittleEndian;
  // An 8-byte value is built as two 32-bit halves so the common case never touches BigInt.
  const highBytes = size - 4;
  const half = 2 ** (size * 8 - 1);
  return (buf, offset) => {
    let hi = 0;
    let lo = 0;
    for (let i = 0; i < size; i++) {
      const b = buf[offset + (msbFirst ? i : size - 1 - i)] ?? 0;
      if (i < highBytes) hi = hi * 256 + b;
      else lo = lo * 256 + b;
    }
    if (size < 8) return signed && lo >= half ? lo - 2 * half : lo;
    if (signed && hi >= 2147483648) hi -= TWO32;
    // |hi| < 2^21 keeps hi * 2^32 + lo inside the safe integers: the float math is exact there.
    if (hi > -TWO21 && hi < TWO21) return hi * TWO32 + lo;
    return (BigInt(hi) << 32n) + BigInt(lo);
  };
}

/** A reader that follows the field type's own signedness. */
export function naturalIntReader(t: IntFieldType, hostLittleEndian = HOST_LITTLE_ENDIAN): IntReader {
  return intReader(t, t.signed, hostLittleEndian);
}

/** Decimal texts of the integers below this are made once and shared (ports, protocols, CPU and errno numbers). */
const SHARED_BELOW = 65536;
let shared: (string | undefined)[] | undefined;

/**
 * An integer in decimal. A label of small numbers (a port) would otherwise hold a string of its own
 * per series: at 100,000 flow series, two ports each, ~4 MB of heap.
 */
export function decimalText(v: IntValue): string {
  if (typeof v === 'number' && v >= 0 && v < SHARED_BELOW && Number.isInteger(v)) {
    shared ??= new Array<string | undefined>(SHARED_BELOW); // preallocated: fast elements, not a dictionary
    return (shared[v] ??= String(v));
  }
  return String(v);
}

import type { LabelDecoder } from './types.js';
import { requireInt, type DecoderFactory } from './field.js';
import { decimalText, intReader, type IntFieldType } from './int.js';

/**
 * uint and int: the decimal value of an integer field. The decoder's name sets the signedness and
 * the field type sets width and byte order, so `uint` on an s32 prints the bits as unsigned and
 * `int` on a u64 as two's complement. u64 values above 2^53 are printed exactly (through BigInt).
 */
export const createUintDecoder: DecoderFactory = (field) => decimal('uint', requireInt('uint', field), false);
export const createIntDecoder: DecoderFactory = (field) => decimal('int', requireInt('int', field), true);

function decimal(name: string, t: IntFieldType, signed: boolean): LabelDecoder {
  const read = intReader(t, signed);
  return { name, decode: (buf, offset) => decimalText(read(buf, offset)) };
}

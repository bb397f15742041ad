import type { LayoutField } from '../layout/types.js';
import { needs, type DecoderFactory } from './field.js';

// ignoreBOM: a leading U+FEFF is part of the value, not a marker to strip.
const UTF8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/**
 * string: the bytes up to the first NUL (or all of them), as UTF-8. Invalid sequences become
 * U+FFFD (a comm cut mid-character by the kernel's 16-byte limit ends in one). Control characters
 * are kept: label values may hold any UTF-8, and the exposition formats escape what they must.
 */
export const createStringDecoder: DecoderFactory = (field) => {
  if (field.type.kind !== 'char' && field.type.kind !== 'bytes') needs('string', field, 'a char[N] or u8[N] field');
  return { name: 'string', decode: stringReader(field) };
};

export function stringReader(field: LayoutField): (buf: Uint8Array, offset: number) => string {
  const size = field.size;
  return (buf, offset) => {
    // subarray clamps to the buffer, so a short buffer yields a shorter string instead of a throw.
    const bytes = buf.subarray(offset, offset + size);
    const nul = bytes.indexOf(0);
    return UTF8.decode(nul < 0 ? bytes : bytes.subarray(0, nul));
  };
}

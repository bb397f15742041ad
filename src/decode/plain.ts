import type { LayoutField } from '../layout/types.js';
import { hexReader } from './hex.js';
import { decimalText, naturalIntReader } from './int.js';
import { stringReader } from './string.js';

/**
 * The field's plain text, what static_map keys and regexp patterns are written against: integers
 * in decimal (signed when the type is), char[N] as its string, u8[N] (and padding) as hex. Enum
 * fields count as integers here, so static_map keys stay decimal as documented.
 */
export function plainForm(field: LayoutField): (buf: Uint8Array, offset: number) => string {
  switch (field.type.kind) {
    case 'int': {
      const read = naturalIntReader(field.type);
      return (buf, offset) => decimalText(read(buf, offset));
    }
    case 'char':
      return stringReader(field);
    case 'bytes':
    case 'pad':
      return hexReader(field);
  }
}

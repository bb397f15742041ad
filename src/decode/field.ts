import { formatFieldType } from '../layout/field-type.js';
import type { LayoutField } from '../layout/types.js';
import { DecoderConfigError } from './errors.js';
import type { IntFieldType } from './int.js';
import type { DecoderContext, DecoderSpec, LabelDecoder } from './types.js';

/** `u16 (2 bytes)`: how a field is named in messages. */
export function describeField(field: LayoutField): string {
  return `${formatFieldType(field.type)} (${field.size} byte${field.size === 1 ? '' : 's'})`;
}

/** Throws the one-line message every validation error shares: what the decoder needs, what it got. */
export function needs(decoder: string, field: LayoutField, what: string): never {
  throw new DecoderConfigError(`decoder ${decoder} needs ${what}, got ${describeField(field)}`, decoder, field.name);
}

export const ANY_INT = 'an integer field (u8..u64, s8..s64, be16..be64)';

export function isInt(field: LayoutField): field is LayoutField & { type: IntFieldType } {
  return field.type.kind === 'int';
}

/** The field's integer type, or the decoder's config error. `sizes` limits the accepted widths. */
export function requireInt(decoder: string, field: LayoutField, what = ANY_INT, sizes?: readonly number[]): IntFieldType {
  const t = field.type;
  if (t.kind !== 'int' || (sizes !== undefined && !sizes.includes(t.size))) needs(decoder, field, what);
  return t;
}

/** What every decoder file exports: validate the field (throwing DecoderConfigError), build the decoder. */
export type DecoderFactory = (field: LayoutField, spec: DecoderSpec, ctx: DecoderContext) => LabelDecoder;

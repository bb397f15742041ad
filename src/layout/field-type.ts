import type { FieldType, IntTypeName } from './types.js';

const INTS: Record<IntTypeName, FieldType & { kind: 'int' }> = {
  u8: { kind: 'int', name: 'u8', size: 1, signed: false, bigEndian: false },
  u16: { kind: 'int', name: 'u16', size: 2, signed: false, bigEndian: false },
  u32: { kind: 'int', name: 'u32', size: 4, signed: false, bigEndian: false },
  u64: { kind: 'int', name: 'u64', size: 8, signed: false, bigEndian: false },
  s8: { kind: 'int', name: 's8', size: 1, signed: true, bigEndian: false },
  s16: { kind: 'int', name: 's16', size: 2, signed: true, bigEndian: false },
  s32: { kind: 'int', name: 's32', size: 4, signed: true, bigEndian: false },
  s64: { kind: 'int', name: 's64', size: 8, signed: true, bigEndian: false },
  be16: { kind: 'int', name: 'be16', size: 2, signed: false, bigEndian: true },
  be32: { kind: 'int', name: 'be32', size: 4, signed: false, bigEndian: true },
  be64: { kind: 'int', name: 'be64', size: 8, signed: false, bigEndian: true },
};

export const FIELD_TYPE_HELP = 'u8, u16, u32, u64, s8, s16, s32, s64, be16, be32, be64, char[N], u8[N] or pad[N]';

/** The int type of that name (u8..u64, s8..s64, be16..be64). */
export function intType(name: IntTypeName): FieldType & { kind: 'int' } {
  return INTS[name];
}

/** Parse a field type as written in a config (`u32`, `char[16]`, `u8[6]`, `pad[4]`); a string is the problem. */
export function parseFieldType(text: string): FieldType | string {
  if (Object.hasOwn(INTS, text)) return INTS[text as IntTypeName];
  const m = /^(char|u8|pad)\[(\d+)\]$/.exec(text);
  if (m === null) return `unknown field type "${text}", expected ${FIELD_TYPE_HELP}`;
  const size = Number(m[2]);
  if (size < 1 || size > 65536) return `field type "${text}": N must be between 1 and 65536`;
  return { kind: m[1] === 'char' ? 'char' : m[1] === 'u8' ? 'bytes' : 'pad', size };
}

export function formatFieldType(t: FieldType): string {
  switch (t.kind) {
    case 'int': return t.name;
    case 'char': return `char[${t.size}]`;
    case 'bytes': return `u8[${t.size}]`;
    case 'pad': return `pad[${t.size}]`;
  }
}

import { formatFieldType } from './field-type.js';
import type { Layout, LayoutField } from './types.js';

/** A field value that cannot be written: which field (undefined: the whole mapping) and why. */
export interface EncodeProblem {
  field?: string;
  message: string;
}

const INT_TEXT = /^([-+]?)(0x[0-9a-fA-F]+|[0-9]+)$/;

/**
 * Write `values` (field name -> text as written in the config) into `out` at `offset`, laid out as
 * `layout` says: integers from decimal or 0x hex (negative only for signed types; be* in network
 * order), char[N] from a string of at most N - 1 bytes (NUL-terminated, the rest zero), u8[N] from
 * exactly 2N hex digits. Fields left out stay as `out` has them (zero in a fresh buffer); padding
 * cannot be written. Returns every problem, each naming its field.
 */
export function encodeFields(layout: Layout, values: Readonly<Record<string, string>>, out: Uint8Array, offset = 0): EncodeProblem[] {
  const problems: EncodeProblem[] = [];
  const byName = new Map(layout.fields.filter((f) => f.type.kind !== 'pad').map((f) => [f.name, f]));
  for (const [name, text] of Object.entries(values)) {
    const field = byName.get(name);
    if (field === undefined) {
      const names = [...byName.keys()];
      problems.push({ field: name, message: `no field named "${name}" in the ${layout.origin === 'btf' ? 'layout BTF gives' : 'layout written'}, expected one of ${names.join(', ') || 'none (every byte is padding)'}` });
      continue;
    }
    const wrong = encodeField(field, text, out, offset + field.offset);
    if (wrong !== undefined) problems.push({ field: name, message: wrong });
  }
  return problems;
}

/** Write one field's value; the reason it cannot be written otherwise. */
export function encodeField(field: LayoutField, text: string, out: Uint8Array, at: number): string | undefined {
  const t = field.type;
  const type = formatFieldType(t);
  switch (t.kind) {
    case 'int': {
      const m = INT_TEXT.exec(text.trim());
      if (m === null) return `"${text}" is not an integer, expected a ${type} in decimal or 0x hex`;
      const v = (m[1] === '-' ? -1n : 1n) * BigInt(m[2]);
      const bits = BigInt(t.size * 8);
      const min = t.signed ? -(1n << (bits - 1n)) : 0n;
      const max = t.signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
      if (v < min || v > max) return `${text} does not fit a ${type}, expected ${min} to ${max}`;
      let u = BigInt.asUintN(t.size * 8, v);
      for (let i = 0; i < t.size; i++) {
        out[at + (t.bigEndian ? t.size - 1 - i : i)] = Number(u & 0xffn);
        u >>= 8n;
      }
      return undefined;
    }
    case 'char': {
      const bytes = Buffer.from(text, 'utf8');
      if (bytes.length > t.size - 1) return `"${text}" takes ${bytes.length} bytes, expected at most ${t.size - 1} for a ${type} (its NUL ends it)`;
      out.fill(0, at, at + t.size);
      out.set(bytes, at);
      return undefined;
    }
    case 'bytes': {
      const hex = text.trim().replace(/^0x/i, '');
      if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length !== t.size * 2) return `"${text}" is not ${t.size * 2} hex digits, expected the ${t.size} bytes of a ${type} in hex, in memory order`;
      out.set(Buffer.from(hex, 'hex'), at);
      return undefined;
    }
    case 'pad':
      return `${field.name} is padding (${type}), which is not written`;
  }
}

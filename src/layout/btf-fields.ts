/**
 * The leaves of a BTF type with their absolute offsets: what a layout read from BTF is made of
 * (build.ts). The BTF reader itself is src/bpf/btf-parse.ts.
 */
import type { BtfType } from '../bpf/btf-parse.js';

/** Default bound for flattenFields: arrays of structs expand per element. */
const DEFAULT_MAX_FIELDS = 65536;

export interface BtfField {
  /** "a.b.c"; array-of-struct elements as "a[0].b"; members of anonymous structs/unions appear without a segment of their own, as in C. */
  path: string;
  /**
   * Absolute byte offset. For a bitfield, `offset` and `size` give the
   * smallest byte range holding its bits (so reading it never runs past the
   * enclosing struct); `bitOffset - 8 * offset` is the shift within that range
   * read as a little-endian integer.
   */
  offset: number;
  size: number;
  /** A leaf: int, float, enum, pointer, void, or an array of those. */
  type: BtfType;
  /** 0 unless a bitfield. */
  bitSize: number;
  /** Absolute bit offset; `8 * offset` for anything but a bitfield. */
  bitOffset: number;
}

/**
 * Leaves of a type with absolute byte offsets, in declaration order.
 * Struct and union members are descended into (union members overlap);
 * members of anonymous structs/unions keep the parent's path; arrays of
 * scalars stay one leaf; arrays of structs/unions (also multi-dimensional)
 * expand per element as "a[0].b" / "a[1][2].b"; bitfields are leaves with
 * bitSize > 0 (see BtfField for their offset/size). A non-aggregate `t`
 * gives one leaf whose path is `prefix`. Unnamed scalar members are padding
 * (`int :4`) and are left out. Throws RangeError past `maxFields` leaves,
 * since a large array of structs could otherwise expand without bound.
 */
export function flattenFields(t: BtfType, prefix = '', maxFields = DEFAULT_MAX_FIELDS): BtfField[] {
  const out: BtfField[] = [];
  const push = (f: BtfField): void => {
    if (out.length >= maxFields) throw new RangeError(`flattenFields: more than ${maxFields} fields under '${prefix}'`);
    out.push(f);
  };
  const join = (base: string, name: string): string => (base === '' ? name : `${base}.${name}`);

  const walk = (type: BtfType, path: string, offset: number): void => {
    if (type.kind === 'struct' || type.kind === 'union') {
      for (const m of type.members) {
        const abs = offset + m.offset;
        if (m.bitSize > 0) {
          if (m.name === '') continue;
          const bitOffset = offset * 8 + m.bitOffset;
          const first = Math.floor(bitOffset / 8);
          const last = Math.floor((bitOffset + m.bitSize - 1) / 8);
          push({ path: join(path, m.name), offset: first, size: last - first + 1, type: m.type, bitSize: m.bitSize, bitOffset });
          continue;
        }
        const aggregate = m.type.kind === 'struct' || m.type.kind === 'union';
        if (m.name === '' && !aggregate) continue;
        walk(m.type, m.name === '' ? path : join(path, m.name), abs);
      }
      return;
    }
    if (type.kind === 'array' && hasAggregateElement(type)) {
      const stride = type.element.size;
      for (let i = 0; i < type.length; i++) walk(type.element, `${path}[${i}]`, offset + i * stride);
      return;
    }
    push({ path, offset, size: type.size, type, bitSize: 0, bitOffset: offset * 8 });
  };

  walk(t, prefix, 0);
  return out;
}

function hasAggregateElement(t: BtfType): boolean {
  let e: BtfType = t;
  while (e.kind === 'array') e = e.element;
  return e.kind === 'struct' || e.kind === 'union';
}

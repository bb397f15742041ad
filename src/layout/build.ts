import type { BtfType } from '../bpf/btf-parse.js';
import { flattenFields } from './btf-fields.js';
import { formatFieldType, intType, parseFieldType } from './field-type.js';
import type { FieldType, IntTypeName, Layout, LayoutField } from './types.js';
import { ExporterError } from '../util/errors.js';

/** A problem with a layout; `field` is the index of the offending field, when there is one. */
export class LayoutError extends ExporterError {
  declare readonly code: 'ERR_LAYOUT';
  readonly field: number | undefined;
  constructor(message: string, field?: number) {
    super('ERR_LAYOUT', message);
    this.field = field;
  }
}

/** Fields laid out in order with no implicit alignment, as the config contract says. */
export function layoutFromSpecs(specs: readonly { name: string; type: string }[]): Layout {
  const fields: LayoutField[] = [];
  let offset = 0;
  specs.forEach((s, i) => {
    const t = parseFieldType(s.type);
    if (typeof t === 'string') throw new LayoutError(t, i);
    fields.push({ name: s.name, offset, size: t.size, type: t });
    offset += t.size;
  });
  return { fields, size: offset, origin: 'config' };
}

/** The layout must fill the map's key or value exactly: a mismatch names both numbers. */
export function checkSize(layout: Layout, what: 'key' | 'value', mapSize: number): void {
  if (layout.size !== mapSize) {
    throw new LayoutError(
      `the ${what} fields add up to ${layout.size} bytes (${layout.fields.map((f) => `${f.name}: ${formatFieldType(f.type)}`).join(', ')}) but the map's ${what}_size is ${mapSize}`,
    );
  }
}

function intName(size: number, signed: boolean): IntTypeName | undefined {
  const bits = size * 8;
  return [8, 16, 32, 64].includes(bits) ? ((signed ? 's' : 'u') + bits) as IntTypeName : undefined;
}

function leafType(path: string, t: BtfType, size: number): { type: FieldType; enumNames?: Map<bigint, string> } {
  switch (t.kind) {
    case 'int': {
      const name = intName(t.size, t.signed && !t.bool);
      if (name === undefined) throw new LayoutError(`BTF field ${path}: ${t.size}-byte integers are not supported`);
      return { type: intType(name) };
    }
    case 'enum': {
      const name = intName(t.size, t.signed);
      if (name === undefined) throw new LayoutError(`BTF field ${path}: ${t.size}-byte enums are not supported`);
      return { type: intType(name), enumNames: new Map(t.values.map((v) => [v.value, v.name])) };
    }
    case 'pointer':
      return { type: intType('u64') };
    case 'array': {
      const el = t.element;
      if (el.kind === 'int' && el.size === 1) return { type: { kind: el.char ? 'char' : 'bytes', size } };
      return { type: { kind: 'bytes', size } };
    }
    default:
      throw new LayoutError(`BTF field ${path}: ${t.kind} fields are not supported; describe the ${path} bytes in the config instead`);
  }
}

/**
 * A layout from a map's BTF type: struct members flattened with dotted names (`addr.port`), a plain
 * int or enum as one field named `name`. Bitfields are refused: their bits share bytes with others.
 * Gaps (compiler padding) become pad fields so that the layout covers every byte.
 */
export function layoutFromBtf(t: BtfType, name: string): Layout {
  const fields: LayoutField[] = [];
  let offset = 0;
  const leaves = t.kind === 'struct' || t.kind === 'union' ? flattenFields(t) : [{ path: name, offset: 0, size: t.size, type: t, bitSize: 0 }];
  if (t.kind === 'union') throw new LayoutError(`BTF ${name} is a union; describe its bytes in the config instead`);
  for (const leaf of leaves) {
    if (leaf.bitSize > 0) {
      throw new LayoutError(`BTF field ${leaf.path} is a bitfield (${leaf.bitSize} bits); describe the ${name} bytes in the config instead`);
    }
    if (leaf.offset < offset) throw new LayoutError(`BTF field ${leaf.path} overlaps the field before it`);
    if (leaf.offset > offset) fields.push({ name: `pad@${offset}`, offset, size: leaf.offset - offset, type: { kind: 'pad', size: leaf.offset - offset } });
    const { type, enumNames } = leafType(leaf.path, leaf.type, leaf.size);
    fields.push({ name: leaf.path, offset: leaf.offset, size: leaf.size, type, ...(enumNames ? { enumNames } : {}) });
    offset = leaf.offset + leaf.size;
  }
  if (offset < t.size) fields.push({ name: `pad@${offset}`, offset, size: t.size - offset, type: { kind: 'pad', size: t.size - offset } });
  return { fields, size: t.size, origin: 'btf' };
}

/**
 * A layout written in the config, checked against the map's BTF when it has one: every config
 * field must sit where BTF has a field of that size (pads excepted). A mismatch names both sides.
 */
export function checkAgainstBtf(written: Layout, btf: Layout, what: 'key' | 'value'): void {
  if (written.size !== btf.size) {
    throw new LayoutError(`the ${what} fields add up to ${written.size} bytes but the map's BTF ${what} type is ${btf.size} bytes (${describe(btf)})`);
  }
  written.fields.forEach((f, i) => {
    if (f.type.kind === 'pad') return;
    const match = btf.fields.find((b) => b.offset === f.offset && b.type.kind !== 'pad');
    if (match === undefined || match.size !== f.size) {
      throw new LayoutError(
        `${what} field ${f.name} (${formatFieldType(f.type)} at byte ${f.offset}) does not match the map's BTF, which has ${match === undefined ? 'no field starting there' : `${match.name} (${formatFieldType(match.type)})`}: ${describe(btf)}`,
        i,
      );
    }
  });
}

function describe(l: Layout): string {
  return l.fields.filter((f) => f.type.kind !== 'pad').map((f) => `${f.name}: ${formatFieldType(f.type)} @${f.offset}`).join(', ');
}

/**
 * What a YAML value may be, described as data: the shapes a Validator (validate.ts) walks, and that
 * jsonSchema() turns into a JSON Schema for editors. The exporter's config (src/config/schema.ts),
 * the web config (src/server/web-config.ts) and ebpf_exporter's format (src/compat/) are written in them.
 */

/** What one value may be. */
export type Shape =
  | StringShape
  | { type: 'integer'; min?: number; max?: number }
  /** A finite number; `above`: it must be greater than that. */
  | { type: 'number'; above?: number }
  | { type: 'boolean' }
  /** A string like 500ms, 5s, 1m30s; the result is milliseconds. */
  | { type: 'duration' }
  /** A label value: any scalar, kept as the text written (`1.0` stays "1.0"). */
  | { type: 'text' }
  | { type: 'list'; items: Shape; minItems?: number; check?: (items: readonly unknown[]) => string | undefined }
  | ObjectShape
  /**
   * A mapping to texts. Keys are integers (decimal or 0x hex, kept as decimal strings), as static_map
   * needs, unless `keys: 'string'` (header names, say).
   */
  | { type: 'dict'; keys?: 'integer' | 'string' };

export interface StringShape {
  type: 'string';
  enum?: readonly string[];
  /** Checked first, for specific messages; `undefined` means fine. */
  check?: (value: string) => string | undefined;
  /** The whole value must match; `expected` says what in words. Also written into the JSON Schema. */
  pattern?: RegExp;
  expected?: string;
  nonEmpty?: boolean;
}

export interface ObjectShape {
  type: 'object';
  props: Readonly<Record<string, Prop>>;
  /** Exactly one of these keys must be written. */
  exactlyOne?: readonly string[];
  /** The result gets `at`, the position of the mapping. */
  at?: boolean;
}

export interface Prop {
  shape: Shape;
  description: string;
  required?: boolean;
  /** Used when the key is not written; given as it would be written (durations as text). */
  default?: string | number | boolean | readonly [];
  /**
   * The key may be written only when the sibling key `key` is written (and, with `is`, has one
   * of those values); with `required`, it must then be written. The sibling must come earlier
   * in `props`: the validator judges by its value, converted before.
   */
  when?: { key: string; is?: readonly string[]; required?: boolean };
}

// h, m, s, ms in that order, each at most once, decimals allowed (1.5s); `m(?!s)` keeps 5ms from reading as 5m + s.
const NUM = String.raw`(\d+(?:\.\d+)?)`;
const DURATION = new RegExp(`^(?=\\d)(?:${NUM}h)?(?:${NUM}m(?!s))?(?:${NUM}s)?(?:${NUM}ms)?$`);
const DURATION_UNITS = [3_600_000, 60_000, 1000, 1];

/** Whole milliseconds for a duration like `1m30s`, or what is wrong with it. */
export function parseDuration(text: string): number | string {
  const m = DURATION.exec(text);
  if (m === null) return `invalid duration "${text}", expected a number with a unit like 500ms, 5s, 1m, 1h or 1m30s`;
  const ms = Math.round(DURATION_UNITS.reduce((sum, unit, i) => sum + Number(m[i + 1] ?? 0) * unit, 0));
  return ms >= 1 ? ms : `duration "${text}" is less than 1ms, expected at least 1ms`;
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function shapeSchema(shape: Shape): { [key: string]: Json } {
  switch (shape.type) {
    case 'string': {
      const s: { [key: string]: Json } = { type: 'string' };
      if (shape.enum !== undefined) s.enum = [...shape.enum];
      if (shape.pattern !== undefined) s.pattern = shape.pattern.source;
      if (shape.nonEmpty === true) s.minLength = 1;
      return s;
    }
    case 'integer': {
      const s: { [key: string]: Json } = { type: 'integer' };
      if (shape.min !== undefined) s.minimum = shape.min;
      if (shape.max !== undefined) s.maximum = shape.max;
      return s;
    }
    case 'number':
      return shape.above === undefined ? { type: 'number' } : { type: 'number', exclusiveMinimum: shape.above };
    case 'boolean':
      return { type: 'boolean' };
    case 'duration':
      return { type: 'string', pattern: DURATION.source };
    case 'text':
      return { type: ['string', 'number', 'boolean'] };
    case 'list': {
      const s: { [key: string]: Json } = { type: 'array', items: shapeSchema(shape.items) };
      if (shape.minItems !== undefined) s.minItems = shape.minItems;
      return s;
    }
    case 'dict':
      return shape.keys === 'string'
        ? { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } }
        : { type: 'object', propertyNames: { pattern: '^-?([0-9]+|0x[0-9a-fA-F]+)$' }, additionalProperties: { type: ['string', 'number', 'boolean'] } };
    case 'object':
      return objectSchema(shape);
  }
}

function objectSchema(shape: ObjectShape): { [key: string]: Json } {
  const properties: { [key: string]: Json } = {};
  const required: string[] = [];
  const conditions: Json[] = [];
  for (const [name, prop] of Object.entries(shape.props)) {
    const s: { [key: string]: Json } = { description: prop.description, ...shapeSchema(prop.shape) };
    if (prop.default !== undefined) s.default = typeof prop.default === 'object' ? [] : prop.default;
    properties[name] = s;
    if (prop.required === true) required.push(name);
    if (prop.when !== undefined) {
      const { key, is } = prop.when;
      const test: { [key: string]: Json } = { required: [key] };
      if (is !== undefined) test.properties = { [key]: { enum: [...is] } };
      const cond: { [key: string]: Json } = { if: test };
      if (prop.when.required === true) cond.then = { required: [name] };
      cond.else = { not: { required: [name] } };
      conditions.push(cond);
    }
  }
  const s: { [key: string]: Json } = { type: 'object', properties, additionalProperties: false };
  if (required.length > 0) s.required = required;
  if (shape.exactlyOne !== undefined) s.oneOf = shape.exactlyOne.map((k) => ({ required: [k] }));
  if (conditions.length > 0) s.allOf = conditions;
  return s;
}

/** `shape` as a JSON Schema (draft 2020-12) document with its title and description, as text. */
export function jsonSchema(shape: ObjectShape, meta: { title: string; description: string }): string {
  const schema = { $schema: 'https://json-schema.org/draft/2020-12/schema', ...meta, ...objectSchema(shape) };
  return `${JSON.stringify(schema, null, 2)}\n`;
}

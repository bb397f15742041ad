/**
 * The validator: walks a YAML document along a Shape (schema.ts), converts what it finds
 * (durations to milliseconds, defaults filled in) and records every problem instead of stopping
 * at the first, so that one run tells the user everything.
 */
import { isAlias, isMap, isScalar, isSeq, type Node } from 'yaml';
import type { ConfigPath } from './errors.js';
import { isEmpty, type Locator, type SourceRef } from './locate.js';
import { parseDuration, type ObjectShape, type Prop, type Shape, type StringShape } from './shapes.js';

export interface Problem {
  at: SourceRef;
  path: ConfigPath;
  message: string;
}

/** A value as written: its node (aliases resolved) and the key it is written under (none for list items). */
interface Here {
  value: Node | null;
  key: Node | null;
  /** An alias to no anchor: reported once, when found, and not judged any further. */
  dangling?: boolean;
}

export class Validator {
  readonly problems: Problem[] = [];

  constructor(private readonly loc: Locator) {}

  report(at: SourceRef, path: ConfigPath, message: string): void {
    this.problems.push({ at, path, message });
  }

  /** The whole document against the root shape. */
  document(shape: Shape, root: unknown): unknown {
    return this.walk(shape, this.child(root, null, []), []);
  }

  /** A child node with aliases resolved; an alias to nothing is reported (and read as empty). */
  private child(raw: unknown, key: Node | null, path: ConfigPath): Here {
    const value = this.loc.resolve(raw);
    if (!isAlias(raw) || value !== null) return { value, key };
    this.report(this.loc.pos(raw), path, `alias *${raw.source} refers to no anchor before it, expected an anchor &${raw.source} earlier in the file`);
    return { value, key, dangling: true };
  }

  /** The converted value, or undefined when it is wrong (the problem is recorded). */
  private walk(shape: Shape, here: Here, path: ConfigPath): unknown {
    if (here.dangling === true) return undefined;
    const node = here.value;
    const wrongType = (): undefined => {
      this.report(this.loc.valuePos(here), path, `got ${describe(node)}, expected ${expected(shape)}`);
      return undefined;
    };
    const scalar = isScalar(node) && !isEmpty(node) ? node.value : undefined;

    switch (shape.type) {
      case 'string':
        return typeof scalar === 'string' ? this.string(shape, scalar, here, path) : wrongType();
      case 'integer':
      case 'number': {
        if (typeof scalar !== 'number' || !Number.isFinite(scalar)) return wrongType();
        if (shape.type === 'integer' && !Number.isInteger(scalar)) return wrongType();
        const low = shape.type === 'integer' ? shape.min !== undefined && scalar < shape.min : shape.above !== undefined && scalar <= shape.above;
        const high = shape.type === 'integer' && shape.max !== undefined && scalar > shape.max;
        if (low || high) {
          this.report(this.loc.valuePos(here), path, `${sourceText(node)} is out of range, expected ${expected(shape)}`);
          return undefined;
        }
        return scalar;
      }
      case 'boolean':
        return typeof scalar === 'boolean' ? scalar : wrongType();
      case 'duration': {
        if (typeof scalar === 'number') {
          // A bare number has no unit: guessing seconds would be wrong half of the time.
          const n = sourceText(node);
          this.report(this.loc.valuePos(here), path, `got the bare number ${n}, expected a duration: add a unit, e.g. ${n}s or ${n}ms`);
          return undefined;
        }
        if (typeof scalar !== 'string') return wrongType();
        const ms = parseDuration(scalar);
        if (typeof ms === 'string') this.report(this.loc.valuePos(here), path, ms);
        return typeof ms === 'number' ? ms : undefined;
      }
      case 'text':
        if (typeof scalar === 'string') return scalar;
        if (typeof scalar === 'number' || typeof scalar === 'boolean') return sourceText(node);
        return wrongType();
      case 'list': {
        if (!isSeq(node)) return wrongType();
        if (shape.minItems !== undefined && node.items.length < shape.minItems) {
          this.report(this.loc.valuePos(here), path, `got an empty list, expected at least ${shape.minItems === 1 ? 'one item' : `${shape.minItems} items`}`);
          return undefined;
        }
        const items = node.items.map((item, i) => this.walk(shape.items, this.child(item, null, [...path, i]), [...path, i]));
        if (shape.check !== undefined && items.every((x) => x !== undefined)) {
          const wrong = shape.check(items);
          if (wrong !== undefined) this.report(this.loc.valuePos(here), path, wrong);
        }
        return items;
      }
      case 'dict':
        return isMap(node) ? this.dict(node.items, path, shape.keys ?? 'integer') : wrongType();
      case 'object':
        return isMap(node) ? this.object(shape, node.items, here, path) : wrongType();
    }
  }

  private string(shape: StringShape, value: string, here: Here, path: ConfigPath): string | undefined {
    let wrong: string | undefined;
    if (shape.nonEmpty === true && value.trim() === '') wrong = `got ${describe(here.value)}, expected ${expected(shape)}`;
    else if (shape.enum !== undefined && !shape.enum.includes(value)) wrong = `unknown value "${value}", expected one of ${shape.enum.join(', ')}`;
    else wrong = shape.check?.(value);
    if (wrong === undefined && shape.pattern !== undefined && !shape.pattern.test(value)) wrong = `invalid value "${value}", expected ${expected(shape)}`;
    if (wrong === undefined) return value;
    this.report(this.loc.valuePos(here), path, wrong);
    return undefined;
  }

  /** static_map's table: integer keys (decimal or 0x hex), kept as decimal text like the decoder sees them; or plain string keys. */
  private dict(pairs: readonly { key: unknown; value: unknown }[], path: ConfigPath, keys: 'integer' | 'string'): Record<string, string> | undefined {
    const out: Record<string, string> = {};
    let ok = true;
    for (const pair of pairs) {
      const keyNode = this.loc.resolve(pair.key);
      const key = keys === 'string' ? (isScalar(keyNode) && keyNode.value !== null && typeof keyNode.value !== 'object' ? String(keyNode.value) : undefined) : integerText(keyNode);
      const keyPath = [...path, isScalar(keyNode) ? String(keyNode.value) : '?'];
      if (key === undefined) {
        this.report(this.loc.pos(keyNode), keyPath, `got ${describe(keyNode)} as a key, expected ${keys === 'string' ? 'a plain key' : 'an integer (decimal or 0x hex)'}`);
        ok = false;
        continue;
      }
      const value = this.walk({ type: 'text' }, this.child(pair.value, keyNode, keyPath), keyPath);
      if (typeof value === 'string') out[key] = value;
      else ok = false;
    }
    return ok ? out : undefined;
  }

  private object(shape: ObjectShape, pairs: readonly { key: unknown; value: unknown }[], here: Here, path: ConfigPath): Record<string, unknown> {
    const written = new Map<string, { key: Node; value: unknown }>();
    // A misspelt required key is reported once, as the misspelling, not also as missing.
    const suggested = new Set<string>();
    for (const pair of pairs) {
      const key = this.loc.resolve(pair.key);
      if (!isScalar(key) || key.value === null || typeof key.value === 'object') {
        this.report(this.loc.pos(key), path, `got ${describe(key)} as a key, expected a plain key`);
        continue;
      }
      const name = String(key.value);
      if (Object.hasOwn(shape.props, name)) {
        written.set(name, { key, value: pair.value });
        continue;
      }
      const near = nearest(name, Object.keys(shape.props));
      if (near !== undefined) suggested.add(near);
      const message = near === undefined ? `unknown key, expected one of ${Object.keys(shape.props).join(', ')}` : `unknown key, did you mean "${near}"?`;
      this.report(this.loc.pos(key), [...path, name], message);
    }

    const out: Record<string, unknown> = {};
    const mapping = this.loc.pos(here.value);
    const missing = (name: string, why = ''): void => {
      if (!suggested.has(name)) this.report(mapping, path, `missing required key "${name}"${why}`);
    };
    for (const [name, prop] of Object.entries(shape.props)) {
      const w = written.get(name);
      const rule = prop.when === undefined ? undefined : this.condition(prop.when, written, out);
      if (w !== undefined && rule?.holds === false) {
        // Not walked further: its contents do not matter until it is allowed here.
        this.report(this.loc.pos(w.key), [...path, name], rule.refusal);
      } else if (w !== undefined) {
        const value = this.walk(prop.shape, this.child(w.value, w.key, [...path, name]), [...path, name]);
        if (value !== undefined) out[name] = value;
      } else if (prop.required === true || (rule?.holds === true && prop.when?.required === true)) {
        missing(name, rule === undefined ? '' : `, required ${rule.condition}`);
      } else if (prop.default !== undefined) {
        out[name] = convertDefault(prop);
      }
    }

    if (shape.exactlyOne !== undefined) {
      const given = shape.exactlyOne.filter((k) => written.has(k));
      const choices = shape.exactlyOne.join(', ');
      if (given.length === 0) this.report(mapping, path, `none of ${choices} is given, expected exactly one`);
      for (const k of given.slice(1)) this.report(this.loc.pos(written.get(k)!.key), [...path, k], `conflicts with ${given[0]}, expected exactly one of ${choices}`);
    }

    if (shape.at === true) out.at = mapping;
    return out;
  }

  /**
   * Whether a key that depends on a sibling may be written, judged by the sibling's converted
   * value (siblings come first in the schema, so it is known). `holds` is undefined when the
   * sibling is written wrong: that is reported already, and judging by it would mislead.
   */
  private condition(when: NonNullable<Prop['when']>, written: ReadonlyMap<string, unknown>, out: Record<string, unknown>): { holds?: boolean; condition: string; refusal: string } {
    const { key, is } = when;
    const condition = is === undefined ? `with ${key}` : `when ${key} is ${is.join(' or ')}`;
    if (!written.has(key)) return { holds: false, condition, refusal: is === undefined ? `allowed only with ${key}` : `not allowed without ${key}, only ${condition}` };
    const sibling = out[key];
    if (sibling === undefined) return { condition, refusal: '' };
    const holds = is === undefined || is.includes(String(sibling));
    return { holds, condition, refusal: `not allowed when ${key} is ${String(sibling)}, only ${condition}` };
  }
}

function convertDefault(prop: Prop): unknown {
  const d = prop.default;
  if (typeof d === 'object') return [];
  if (prop.shape.type === 'duration' && typeof d === 'string') return parseDuration(d);
  return d;
}

/** What a node is, for messages: `the string "x"`, `a list`, `nothing`. */
function describe(node: Node | null): string {
  if (isEmpty(node)) return 'nothing';
  if (isSeq(node)) return 'a list';
  if (isMap(node)) return 'a mapping';
  if (isScalar(node)) {
    const v = node.value;
    if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v)}`;
    if (typeof v === 'number') return `the number ${sourceText(node)}`;
    if (typeof v === 'boolean') return `the boolean ${String(v)}`;
  }
  return 'a value of another kind';
}

/** What a shape accepts, for messages. */
function expected(shape: Shape): string {
  switch (shape.type) {
    case 'string':
      if (shape.enum !== undefined) return `one of ${shape.enum.join(', ')}`;
      return shape.expected ?? (shape.nonEmpty === true ? 'a non-empty string' : 'a string');
    case 'integer':
      if (shape.min !== undefined && shape.max !== undefined) return `an integer from ${shape.min} to ${shape.max}`;
      return shape.min !== undefined ? `an integer of at least ${shape.min}` : 'an integer';
    case 'number':
      return shape.above === undefined ? 'a number' : `a number greater than ${shape.above}`;
    case 'boolean':
      return 'true or false';
    case 'duration':
      return 'a duration like 500ms, 5s, 1m, 1h or 1m30s';
    case 'text':
      return 'a string, number or boolean';
    case 'list':
      return 'a list';
    case 'dict':
      return shape.keys === 'string' ? 'a mapping of names to values' : 'a mapping from integers to label values, like { 0: read, 1: write }';
    case 'object':
      return shape.exactlyOne === undefined ? 'a mapping' : `a mapping with one of ${shape.exactlyOne.join(', ')}`;
  }
}

/** A number as written (`1.0e-9`, `0x10`), not as JavaScript would print it. */
function sourceText(node: Node | null): string {
  if (!isScalar(node)) return '';
  return typeof node.source === 'string' && node.source !== '' ? node.source : String(node.value);
}

function integerText(node: Node | null): string | undefined {
  if (!isScalar(node) || (typeof node.value !== 'number' && typeof node.value !== 'string')) return undefined;
  const text = typeof node.value === 'string' ? node.value.trim() : sourceText(node);
  const m = /^([-+]?)(0x[0-9a-fA-F]+|0o[0-7]+|[0-9]+)$/.exec(text);
  if (m === null) return undefined;
  // BigInt keeps u64 keys exact where a double would round them.
  const n = BigInt(m[2]);
  return String(m[1] === '-' ? -n : n);
}

/** The known word a typo most likely meant, if any is close enough. */
export function nearest(word: string, known: readonly string[]): string | undefined {
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const k of known) {
    const d = distance(word.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** Edit distance where swapping two neighbours counts as one edit (the commonest typo). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

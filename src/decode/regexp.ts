import { DecoderConfigError } from './errors.js';
import type { DecoderFactory } from './field.js';
import { plainForm } from './plain.js';

/** Capturing groups of a compiled pattern: an empty match of `p|` has one slot per group. */
function groupCount(re: RegExp): number {
  return new RegExp(`${re.source}|`, re.flags).exec('')!.length - 1;
}

/**
 * regexp: keeps rows whose field, in its plain form (see plain.ts: the string of a char[N], the
 * decimal of an integer), matches `pattern` (or one of `patterns`, tried in order) anywhere
 * (anchor with ^ and $); rows that match none are dropped (decode returns undefined). The label is
 * that plain form, or with `rewrite: true` the part that matched, or the first group of the
 * pattern that matched when it has one (a group that took no part gives ""): `^(kswapd).*$` labels
 * kswapd0 and kswapd1 alike as kswapd, so their rows are summed, as ebpf_exporter does. Patterns
 * are JavaScript regular expressions with the u flag: code points, not UTF-16 halves, and strict
 * syntax, which is close to the RE2 patterns ebpf_exporter configs hold.
 */
export const createRegexpDecoder: DecoderFactory = (field, spec) => {
  const given = spec.patterns ?? (spec.pattern === undefined ? undefined : [spec.pattern]);
  if (spec.pattern !== undefined && spec.patterns !== undefined) throw new DecoderConfigError('decoder regexp takes pattern or patterns, not both', 'regexp', field.name);
  if (given === undefined || given.length === 0 || given.some((p) => typeof p !== 'string')) throw new DecoderConfigError('decoder regexp needs a pattern option', 'regexp', field.name);
  const res = given.map((pattern) => {
    try {
      return new RegExp(pattern, 'u');
    } catch (e) {
      throw new DecoderConfigError(`decoder regexp: invalid pattern "${pattern}": ${(e as Error).message}`, 'regexp', field.name);
    }
  });
  const rewrite = spec.rewrite === true;
  if (rewrite) {
    const many = res.find((re) => groupCount(re) > 1);
    if (many !== undefined) throw new DecoderConfigError(`decoder regexp: pattern "${many.source}" has ${groupCount(many)} groups, expected at most one with rewrite: true (the label is the first group; make the others (?:...))`, 'regexp', field.name);
  }
  const form = plainForm(field);
  return {
    name: 'regexp',
    decode(buf, offset) {
      const s = form(buf, offset);
      for (const re of res) {
        // No g or y flag: exec() keeps no lastIndex state between rows.
        const m = re.exec(s);
        if (m === null) continue;
        if (!rewrite) return s;
        return m.length > 1 ? (m[1] ?? '') : m[0];
      }
      return undefined;
    },
  };
};

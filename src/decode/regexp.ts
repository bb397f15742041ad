import { DecoderConfigError } from './errors.js';
import type { DecoderFactory } from './field.js';
import { plainForm } from './plain.js';

/**
 * regexp: keeps rows whose field, in its plain form (see plain.ts: the string of a char[N], the
 * decimal of an integer), matches the pattern anywhere (anchor with ^ and $), and labels them
 * with that form; rows that do not match are dropped (decode returns undefined). Patterns are
 * JavaScript regular expressions with the u flag: code points, not UTF-16 halves, and strict syntax,
 * which is close to the RE2 patterns ebpf_exporter configs hold.
 */
export const createRegexpDecoder: DecoderFactory = (field, spec) => {
  const pattern: unknown = spec.pattern;
  if (typeof pattern !== 'string') throw new DecoderConfigError('decoder regexp needs a pattern option', 'regexp', field.name);
  let re: RegExp;
  try {
    re = new RegExp(pattern, 'u');
  } catch (e) {
    throw new DecoderConfigError(`decoder regexp: invalid pattern "${pattern}": ${(e as Error).message}`, 'regexp', field.name);
  }
  const form = plainForm(field);
  return {
    name: 'regexp',
    decode(buf, offset) {
      const s = form(buf, offset);
      // No g or y flag: test() keeps no lastIndex state between rows.
      return re.test(s) ? s : undefined;
    },
  };
};

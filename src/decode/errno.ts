import { requireInt, type DecoderFactory } from './field.js';
import { intReader, naturalIntReader } from './int.js';
import { ERRNO_NAMES, LINUX_ERRNO_NAMES } from '../util/errno-names.js';

/**
 * errno: an errno or its negation (kernel return values are -ENOENT) -> its name. The bits are
 * read as signed whatever the field's type says, so -2 stored in a u32 is ENOENT too: errno
 * numbers are small, and a huge unsigned value only ever means a negated one. Unknown values print
 * as the field's own number.
 *
 * With `style: ebpf_exporter`, as theirs: the value is read unsigned and not negated (-2 in a u32
 * is 4294967294), ENOTSUPP (524) is not named, and unknown values print as `unknown:<n>`.
 */
export const createErrnoDecoder: DecoderFactory = (field, spec) => {
  const t = requireInt('errno', field);
  if (spec.style === 'ebpf_exporter') {
    const unsigned = intReader(t, false);
    return {
      name: 'errno',
      decode(buf, offset) {
        const v = unsigned(buf, offset);
        return (typeof v === 'number' ? LINUX_ERRNO_NAMES.get(v) : undefined) ?? `unknown:${v}`;
      },
    };
  }
  const signed = intReader(t, true);
  const natural = naturalIntReader(t);
  return {
    name: 'errno',
    decode(buf, offset) {
      const v = signed(buf, offset);
      return (typeof v === 'number' ? ERRNO_NAMES.get(Math.abs(v)) : undefined) ?? String(natural(buf, offset));
    },
  };
};

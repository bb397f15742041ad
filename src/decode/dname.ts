import { needs, type DecoderFactory } from './field.js';

// ignoreBOM: a leading U+FEFF is part of the value, as in the string decoder.
const UTF8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const DOT = 0x2e;

/**
 * dname: a DNS name in wire format (length-prefixed labels: `\x07example\x03com\x00`) -> its
 * dotted text, `example.com`, as ebpf_exporter's string-then-dname chain gives it: the field's
 * bytes up to the first NUL (the root label ends a name) are read label by label and joined with
 * dots. No label at all (an empty name, the root) is `.`. A label longer than what is left (a
 * compression pointer, a cut name) makes the name malformed: the label is then the bytes as
 * they are, as text. Label bytes are copied as they are (a dot inside a label is not escaped);
 * invalid UTF-8 becomes U+FFFD.
 *
 * With `style: ebpf_exporter` on a u8[N] field, as their dname decoder alone reads it: every byte
 * of the field, so each zero byte after the name (the root's and the padding's) adds a dot
 * (`example.com...` for a 16-byte field). On char[N] the style changes nothing.
 */
export const createDnameDecoder: DecoderFactory = (field, spec) => {
  const t = field.type;
  if (t.kind !== 'char' && t.kind !== 'bytes') needs('dname', field, 'a char[N] or u8[N] field');
  const size = field.size;
  const wholeField = t.kind === 'bytes' && spec.style === 'ebpf_exporter';
  return {
    name: 'dname',
    decode(buf, offset) {
      let bytes = buf.subarray(offset, offset + size);
      if (!wholeField) {
        const nul = bytes.indexOf(0);
        if (nul >= 0) bytes = bytes.subarray(0, nul);
      }
      return UTF8.decode(dottedName(bytes));
    },
  };
};

/**
 * Wire-format labels -> dotted bytes: each length byte becomes a dot and the first dot is dropped.
 * Empty input is the root, `.`; a label running past the end returns the input unchanged.
 */
export function dottedName(wire: Uint8Array): Uint8Array {
  if (wire.length === 0) return Uint8Array.of(DOT);
  const out = new Uint8Array(wire.length);
  for (let off = 0; off < wire.length; ) {
    const n = wire[off];
    out[off++] = DOT;
    if (off + n > wire.length) return wire;
    out.set(wire.subarray(off, off + n), off);
    off += n;
  }
  return out.subarray(1);
}

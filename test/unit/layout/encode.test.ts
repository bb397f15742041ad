import { describe, expect, it } from 'vitest';
import { layoutFromSpecs } from '../../../src/layout/build.js';
import { encodeFields } from '../../../src/layout/encode.js';

const layout = layoutFromSpecs([
  { name: 'a', type: 'u8' },
  { name: 'b', type: 's16' },
  { name: 'c', type: 'be32' },
  { name: 'd', type: 'u64' },
  { name: '_p', type: 'pad[2]' },
  { name: 'comm', type: 'char[6]' },
  { name: 'raw', type: 'u8[3]' },
]);

describe('encodeFields: seed values written with a layout', () => {
  it('writes every type as the readers read it, in its place, leaving unnamed fields zero', () => {
    const out = Buffer.alloc(layout.size);
    expect(encodeFields(layout, { a: '255', b: '-2', c: '0x01020304', d: '18446744073709551615', comm: 'bash', raw: 'a0B1c2' }, out)).toEqual([]);
    expect(out.toString('hex')).toBe('ff' + 'feff' + '01020304' + 'ffffffffffffffff' + '0000' + '626173680000' + 'a0b1c2');
    const partial = Buffer.alloc(layout.size);
    expect(encodeFields(layout, { c: '7' }, partial)).toEqual([]);
    expect(partial.toString('hex')).toBe('00' + '0000' + '00000007' + '0000000000000000' + '0000' + '000000000000' + '000000');
  });

  it('writes at an offset (the k-th entry of a batch buffer)', () => {
    const out = Buffer.alloc(layout.size * 2);
    expect(encodeFields(layout, { a: '1' }, out, layout.size)).toEqual([]);
    expect(out[0]).toBe(0);
    expect(out[layout.size]).toBe(1);
  });

  it('names every field it cannot write, and why', () => {
    const out = Buffer.alloc(layout.size);
    expect(encodeFields(layout, { a: '256', b: '-32769', d: '-1', comm: 'bashes', raw: 'abc', x: '1', _p: '0', c: 'one' }, out)).toEqual([
      { field: 'a', message: '256 does not fit a u8, expected 0 to 255' },
      { field: 'b', message: '-32769 does not fit a s16, expected -32768 to 32767' },
      { field: 'd', message: '-1 does not fit a u64, expected 0 to 18446744073709551615' },
      { field: 'comm', message: '"bashes" takes 6 bytes, expected at most 5 for a char[6] (its NUL ends it)' },
      { field: 'raw', message: '"abc" is not 6 hex digits, expected the 3 bytes of a u8[3] in hex, in memory order' },
      { field: 'x', message: 'no field named "x" in the layout written, expected one of a, b, c, d, comm, raw' },
      { field: '_p', message: 'no field named "_p" in the layout written, expected one of a, b, c, d, comm, raw' },
      { field: 'c', message: '"one" is not an integer, expected a be32 in decimal or 0x hex' },
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { checkAgainstBtf, checkSize, layoutFromBtf, layoutFromSpecs, LayoutError } from '../../../src/layout/build.js';
import { formatFieldType, intType, parseFieldType } from '../../../src/layout/field-type.js';
import { numberReader, readBigInt } from '../../../src/layout/read.js';
import type { BtfType } from '../../../src/bpf/btf-parse.js';
import type { IntTypeName } from '../../../src/layout/types.js';

describe('field types', () => {
  it('parses every type the config contract names, and refuses others with the list', () => {
    expect(['u8', 's16', 'be32', 'u64', 'char[16]', 'u8[6]', 'pad[3]'].map((t) => formatFieldType(parseFieldType(t) as never))).toEqual(['u8', 's16', 'be32', 'u64', 'char[16]', 'u8[6]', 'pad[3]']);
    expect(parseFieldType('char[16]')).toEqual({ kind: 'char', size: 16 });
    expect(parseFieldType('u33')).toBe('unknown field type "u33", expected u8, u16, u32, u64, s8, s16, s32, s64, be16, be32, be64, char[N], u8[N] or pad[N]');
    expect(parseFieldType('u8[0]')).toBe('field type "u8[0]": N must be between 1 and 65536');
  });

  // Bytes 01 02 03 04 05 06 07 08 (and a high-bit variant) read as each type.
  const b = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const hi = Uint8Array.from([0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8]);
  const cases: [IntTypeName, bigint, bigint][] = [
    ['u8', 0x01n, 0xffn],
    ['s8', 0x01n, -1n],
    ['u16', 0x0201n, 0xfeffn],
    ['s16', 0x0201n, -257n],
    ['be16', 0x0102n, 0xfffen],
    ['u32', 0x04030201n, 0xfcfdfeffn],
    ['s32', 0x04030201n, -50462977n],
    ['be32', 0x01020304n, 0xfffefdfcn],
    ['u64', 0x0807060504030201n, 0xf8f9fafbfcfdfeffn],
    ['s64', 0x0807060504030201n, -506097522914230529n],
    ['be64', 0x0102030405060708n, 0xfffefdfcfbfaf9f8n],
  ];
  for (const [name, lo, high] of cases) {
    it(`reads ${name} exactly (BigInt) and as the nearest double`, () => {
      const t = intType(name);
      expect(readBigInt(b, 0, t)).toBe(lo);
      expect(readBigInt(hi, 0, t)).toBe(high);
      expect(numberReader(t)(b, 0)).toBe(Number(lo));
      expect(numberReader(t)(hi, 0)).toBe(Number(high));
    });
  }

  it('reads u64 values around 2^53 without BigInt, exactly below it', () => {
    const buf = Buffer.alloc(8);
    for (const v of [2n ** 53n - 1n, 2n ** 32n, 2n ** 32n - 1n, 123456789012345n]) {
      buf.writeBigUInt64LE(v);
      expect(numberReader(intType('u64'))(buf, 0)).toBe(Number(v));
    }
  });
});

const u32: BtfType = { kind: 'int', name: '__u32', size: 4, signed: false, bits: 32, char: false, bool: false };
const u16: BtfType = { kind: 'int', name: '__u16', size: 2, signed: false, bits: 16, char: false, bool: false };
const u64: BtfType = { kind: 'int', name: '__u64', size: 8, signed: false, bits: 64, char: false, bool: false };
const ch: BtfType = { kind: 'int', name: 'char', size: 1, signed: true, bits: 8, char: true, bool: false };
const member = (name: string, offset: number, type: BtfType, bitSize = 0) => ({ name, offset, bitOffset: offset * 8, bitSize, type });

describe('layouts from BTF', () => {
  const addr: BtfType = { kind: 'struct', name: 'addr', size: 8, members: [member('ip', 0, u32), member('port', 4, u16)] };
  const key: BtfType = {
    kind: 'struct', name: 'key', size: 32, members: [
      member('pid', 0, u32),
      member('comm', 4, { kind: 'array', name: '', size: 16, length: 16, element: ch }),
      member('peer', 20, addr),
      member('state', 28, { kind: 'enum', name: 'st', size: 4, signed: false, values: [{ name: 'UP', value: 1n }, { name: 'DOWN', value: 2n }] }),
    ],
  };

  it('flattens structs with dotted names, keeps char arrays as strings and enums with their names, pads the gaps', () => {
    const l = layoutFromBtf(key, 'key');
    expect(l.size).toBe(32);
    expect(l.origin).toBe('btf');
    expect(l.fields.map((f) => [f.name, f.offset, formatFieldType(f.type)])).toEqual([
      ['pid', 0, 'u32'], ['comm', 4, 'char[16]'], ['peer.ip', 20, 'u32'], ['peer.port', 24, 'u16'], ['pad@26', 26, 'pad[2]'], ['state', 28, 'u32'],
    ]);
    expect(l.fields[5].enumNames).toEqual(new Map([[1n, 'UP'], [2n, 'DOWN']]));
  });

  it('names a plain int key or value after what it is', () => {
    expect(layoutFromBtf(u64, 'value').fields).toEqual([{ name: 'value', offset: 0, size: 8, type: intType('u64') }]);
  });

  it('refuses bitfields and unions clearly', () => {
    const bits: BtfType = { kind: 'struct', name: 'b', size: 4, members: [member('a', 0, u32, 3), { name: 'b', offset: 0, bitOffset: 3, bitSize: 29, type: u32 }] };
    expect(() => layoutFromBtf(bits, 'value')).toThrow('BTF field a is a bitfield (3 bits); describe the value bytes in the config instead');
    expect(() => layoutFromBtf({ kind: 'union', name: 'u', size: 4, members: [member('a', 0, u32)] }, 'key')).toThrow('BTF key is a union; describe its bytes in the config instead');
  });

  it('checks a written layout against the map size and its BTF, naming both sides', () => {
    const written = layoutFromSpecs([{ name: 'pid', type: 'u32' }, { name: 'comm', type: 'char[16]' }, { name: 'rest', type: 'pad[12]' }]);
    expect(() => checkSize(written, 'key', 32)).not.toThrow();
    expect(() => checkAgainstBtf(written, layoutFromBtf(key, 'key'), 'key')).not.toThrow();
    expect(() => checkSize(written, 'key', 24)).toThrow("the key fields add up to 32 bytes (pid: u32, comm: char[16], rest: pad[12]) but the map's key_size is 24");
    const shifted = layoutFromSpecs([{ name: 'pid', type: 'u64' }, { name: 'x', type: 'pad[24]' }]);
    let err: unknown;
    try {
      checkAgainstBtf(shifted, layoutFromBtf(key, 'key'), 'key');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LayoutError);
    expect((err as LayoutError).field).toBe(0);
    expect((err as Error).message).toBe(
      "key field pid (u64 at byte 0) does not match the map's BTF, which has pid (u32): pid: u32 @0, comm: char[16] @4, peer.ip: u32 @20, peer.port: u16 @24, state: u32 @28",
    );
  });
});

import { describe, expect, it } from 'vitest';
import { createDecoder } from '../../../src/decode/index.js';
import { intReader } from '../../../src/decode/int.js';
import { intType } from '../../../src/layout/field-type.js';
import { at3, field, host, u64le } from './helpers.js';

const dec = (type: string, bytes: number[], decoder?: string): string | undefined =>
  createDecoder({ decoder }, field(type)).decode(at3(bytes), 3);

describe('uint and int', () => {
  it('read every host-order width at the offset given', () => {
    expect(dec('u8', [0xff])).toBe('255');
    expect(dec('u16', host(0x34, 0x12))).toBe('4660');
    expect(dec('u32', host(0x78, 0x56, 0x34, 0x12))).toBe('305419896');
    expect(dec('u32', host(0xff, 0xff, 0xff, 0xff))).toBe('4294967295');
    expect(dec('u64', host(...u64le(0x0123456789n)))).toBe('4886718345');
  });

  it('prints signed types as two\'s complement', () => {
    expect(dec('s8', [0x80])).toBe('-128');
    expect(dec('s8', [0x7f])).toBe('127');
    expect(dec('s16', host(0xfe, 0xff))).toBe('-2');
    expect(dec('s32', host(0x00, 0x00, 0x00, 0x80))).toBe('-2147483648');
    expect(dec('s32', host(0xff, 0xff, 0xff, 0x7f))).toBe('2147483647');
  });

  it('reads u64 exactly around 2^53 and up to 2^64-1', () => {
    for (const v of [2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 2n, 2n ** 64n - 1n, 0n, 1n, 2n ** 32n - 1n, 2n ** 32n]) {
      expect(dec('u64', host(...u64le(v)))).toBe(v.toString());
    }
  });

  it('reads s64 negatives exactly, small and past -2^53', () => {
    for (const v of [-1n, -2n, -(2n ** 31n), -(2n ** 32n), -(2n ** 53n) + 1n, -(2n ** 53n), -(2n ** 53n) - 1n, -(2n ** 63n), 2n ** 63n - 1n]) {
      expect(dec('s64', host(...u64le(v)))).toBe(v.toString());
    }
  });

  it('reads be16, be32 and be64 in network order whatever the host', () => {
    expect(dec('be16', [0x12, 0x34])).toBe('4660');
    expect(dec('be16', [0x00, 0x50])).toBe('80');
    expect(dec('be32', [0x12, 0x34, 0x56, 0x78])).toBe('305419896');
    expect(dec('be64', [0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01])).toBe((2n ** 53n + 1n).toString());
    expect(dec('be64', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).toBe('18446744073709551615');
  });

  it('lets the decoder name choose the signedness: uint on s32, int on u16 and be32', () => {
    expect(dec('s32', host(0xfe, 0xff, 0xff, 0xff), 'uint')).toBe('4294967294');
    expect(dec('u16', host(0xff, 0xff), 'int')).toBe('-1');
    expect(dec('be32', [0xff, 0xff, 0xff, 0xfe], 'int')).toBe('-2');
    expect(dec('u64', host(...u64le(2n ** 64n - 1n)), 'int')).toBe('-1');
  });

  it('defaults to uint for unsigned and int for signed fields', () => {
    expect(createDecoder({}, field('u32')).name).toBe('uint');
    expect(createDecoder({}, field('s32')).name).toBe('int');
    expect(createDecoder({}, field('be16')).name).toBe('uint');
  });

  it('follows the host byte order given, so a big-endian host reads host-order fields big-endian', () => {
    const bytes = Uint8Array.of(0x00, 0x00, 0x01, 0x02);
    expect(intReader(intType('u32'), false, true)(bytes, 0)).toBe(0x02010000);
    expect(intReader(intType('u32'), false, false)(bytes, 0)).toBe(0x0102);
    expect(intReader(intType('be32'), false, true)(bytes, 0)).toBe(0x0102);
    const s64 = Uint8Array.from(u64le(-5n).reverse());
    expect(intReader(intType('s64'), true, false)(s64, 0)).toBe(-5);
  });

  it('returns numbers while safe and bigints beyond', () => {
    const read = intReader(intType('u64'), false, true);
    expect(read(Uint8Array.from(u64le(2n ** 53n - 1n)), 0)).toBe(2 ** 53 - 1);
    expect(read(Uint8Array.from(u64le(2n ** 53n)), 0)).toBe(2n ** 53n);
  });
});

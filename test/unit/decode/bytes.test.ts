import { describe, expect, it } from 'vitest';
import { createDecoder } from '../../../src/decode/index.js';
import { at3, field, host } from './helpers.js';

const dec = (type: string, bytes: readonly number[], decoder?: string): string | undefined =>
  createDecoder({ decoder }, field(type)).decode(at3(bytes), 3);
const utf8 = (s: string): number[] => [...Buffer.from(s, 'utf8')];

describe('hex', () => {
  it('prints the bytes in memory order, lowercase, two digits each, no prefix', () => {
    expect(dec('u8[6]', [0x00, 0x1b, 0x21, 0xab, 0xcd, 0xef])).toBe('001b21abcdef');
    expect(createDecoder({}, field('u8[6]')).name).toBe('hex');
  });

  it('reads any field, integers in memory order', () => {
    expect(dec('u32', host(0x01, 0x00, 0x00, 0x00), 'hex')).toBe(host(0x01, 0x00, 0x00, 0x00).map((b) => b.toString(16).padStart(2, '0')).join(''));
    expect(dec('be16', [0x0a, 0xff], 'hex')).toBe('0aff');
    expect(dec('char[4]', utf8('ab\0c'), 'hex')).toBe('61620063');
  });
});

describe('string', () => {
  it('cuts at the first NUL', () => {
    expect(dec('char[16]', [...utf8('bash'), 0, ...utf8('stale tail'), 0, 0])).toBe('bash');
    expect(dec('char[4]', [0, 0x41, 0x42, 0x43])).toBe('');
    expect(createDecoder({}, field('char[4]')).name).toBe('string');
  });

  it('takes all N bytes when there is no NUL', () => {
    expect(dec('char[4]', utf8('abcd'))).toBe('abcd');
    expect(dec('u8[3]', utf8('xyz'), 'string')).toBe('xyz');
  });

  it('decodes UTF-8 and replaces invalid or cut sequences with U+FFFD', () => {
    expect(dec('char[8]', [...utf8('grüße'), 0])).toBe('grüße');
    // "é" is c3 a9: cut after c3 by the field's end, as the kernel cuts a long comm.
    expect(dec('char[3]', [0x61, 0x62, 0xc3])).toBe('ab\uFFFD');
    expect(dec('char[4]', [0xff, 0x61, 0x80, 0x00])).toBe('\uFFFDa\uFFFD');
  });

  it('keeps control characters and a leading BOM', () => {
    expect(dec('char[4]', [0x61, 0x0a, 0x09, 0x00])).toBe('a\n\t');
    expect(dec('char[4]', [0xef, 0xbb, 0xbf, 0x61])).toBe('\uFEFFa');
  });
});

describe('inet_ip', () => {
  const v6 = (hex: string): number[] => [...Buffer.from(hex.replace(/\s/g, ''), 'hex')];
  const ip6 = (hex: string): string | undefined => dec('u8[16]', v6(hex), 'inet_ip');

  it('prints IPv4 in the bytes\' (network) order for u32, be32, s32 and u8[4]', () => {
    for (const type of ['u32', 'be32', 's32', 'u8[4]']) expect(dec(type, [192, 168, 1, 20], 'inet_ip')).toBe('192.168.1.20');
    expect(dec('u32', [0, 0, 0, 0], 'inet_ip')).toBe('0.0.0.0');
    expect(dec('u32', [255, 255, 255, 255], 'inet_ip')).toBe('255.255.255.255');
  });

  it('compresses IPv6 as RFC 5952 says', () => {
    expect(ip6('00000000 00000000 00000000 00000000')).toBe('::');
    expect(ip6('00000000 00000000 00000000 00000001')).toBe('::1');
    expect(ip6('20010db8 00000000 00000000 00000001')).toBe('2001:db8::1');
    // leading and trailing runs
    expect(ip6('00000000 00000000 00000001 00020003')).toBe('::1:2:3');
    expect(ip6('fe800000 00000000 00000000 00000000')).toBe('fe80::');
    expect(ip6('20010db8 00010000 00000000 00000000')).toBe('2001:db8:1::');
    // the longest run wins; of equal runs, the first
    expect(ip6('20010000 00000001 00000000 00000001')).toBe('2001:0:0:1::1');
    expect(ip6('20010db8 00000000 00010000 00000001')).toBe('2001:db8::1:0:0:1');
    // a single zero group is not compressed
    expect(ip6('20010db8 00000001 00010001 00010001')).toBe('2001:db8:0:1:1:1:1:1');
    // no zero at all, lowercase, no leading zeros
    expect(ip6('20010DB8 ABCD0012 0FFF0001 000A000B')).toBe('2001:db8:abcd:12:fff:1:a:b');
  });

  it('prints IPv4-mapped addresses in mixed notation, and nothing else so', () => {
    expect(ip6('00000000 00000000 0000ffff 01020304')).toBe('::ffff:1.2.3.4');
    expect(ip6('00000000 00000000 0000ffff 00000000')).toBe('::ffff:0.0.0.0');
    expect(ip6('00000000 00000000 00000000 01020304')).toBe('::102:304'); // deprecated IPv4-compatible form
    expect(ip6('00640000 00000000 0000ffff 01020304')).toBe('64::ffff:102:304');
  });
});

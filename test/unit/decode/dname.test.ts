import { describe, expect, it } from 'vitest';
import { dottedName } from '../../../src/decode/dname.js';
import { createDecoder } from '../../../src/decode/index.js';
import { field } from './helpers.js';

const bytes = (s: string, size = s.length): Uint8Array => {
  const out = new Uint8Array(size);
  for (let i = 0; i < s.length && i < size; i++) out[i] = s.charCodeAt(i);
  return out;
};
const dname = (type: string, s: string, style = false): string | undefined => {
  const f = field(type);
  return createDecoder({ decoder: 'dname', ...(style ? { style: 'ebpf_exporter' as const } : {}) }, f).decode(bytes(s, f.size), 0);
};

describe('dname', () => {
  it('turns wire-format labels into a dotted name, up to the root label', () => {
    expect(dname('char[16]', '\x07example\x03com')).toBe('example.com');
    expect(dname('char[16]', '\x03com')).toBe('com');
    expect(dname('u8[32]', '\x03www\x07example\x03com\x00')).toBe('www.example.com');
    expect(dname('char[13]', '\x07example\x03com')).toBe('example.com'); // no NUL: the field ends the name
  });

  it('gives . for the root (an empty name)', () => {
    expect(dname('char[8]', '')).toBe('.');
    expect(dname('u8[8]', '\x00')).toBe('.');
  });

  it('gives a malformed name (a label longer than what is left, a compression pointer) as the bytes themselves', () => {
    expect(dname('char[8]', '\x05com')).toBe('\x05com');
    expect(dname('char[16]', '\x03www\xc0\x0c')).toBe('\x03www\ufffd\x0c');
    expect(dname('char[4]', '\x07exa')).toBe('\x07exa');
  });

  it('copies label bytes as they are: dots, and invalid UTF-8 as U+FFFD', () => {
    expect(dname('char[16]', '\x03a.b\x02cd')).toBe('a.b.cd');
    expect(dname('char[8]', '\x02\xff\x41')).toBe('\ufffdA');
  });

  it('with style: ebpf_exporter on u8[N], reads every byte as their dname alone does: each zero adds a dot', () => {
    expect(dname('u8[16]', '\x07example\x03com', true)).toBe('example.com....');
    expect(dname('u8[12]', '\x07example\x03com', true)).toBe('example.com');
    expect(dname('u8[4]', '', true)).toBe('...');
    // On char[N] (their string then dname) the style changes nothing.
    expect(dname('char[16]', '\x07example\x03com', true)).toBe('example.com');
  });

  it('dottedName works on bytes', () => {
    expect([...dottedName(new Uint8Array(0))]).toEqual([0x2e]);
    expect(new TextDecoder().decode(dottedName(bytes('\x01a\x01b')))).toBe('a.b');
  });
});

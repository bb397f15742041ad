import { describe, expect, it } from 'vitest';
import { createDecoder } from '../../../src/decode/index.js';
import type { LayoutField } from '../../../src/layout/types.js';
import { at3, field, host, u64le } from './helpers.js';

const le32 = (v: number): number[] => host(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);

describe('syscall', () => {
  const name = (arch: string, nr: number, type = 'u32'): string | undefined =>
    createDecoder({ decoder: 'syscall' }, field(type), { arch }).decode(at3(type === 'u64' ? host(...u64le(BigInt(nr))) : le32(nr)), 3);

  it('names x86-64 numbers', () => {
    expect([0, 39, 110, 231, 59, 321].map((nr) => name('x64', nr))).toEqual(['read', 'getpid', 'getppid', 'exit_group', 'execve', 'bpf']);
  });

  it('names arm64 numbers, the __NR3264_ ones resolved the 64-bit way', () => {
    expect([63, 172, 173, 94, 221, 280].map((nr) => name('arm64', nr))).toEqual(['read', 'getpid', 'getppid', 'exit_group', 'execve', 'bpf']);
    expect([25, 62, 79, 80, 222, 223].map((nr) => name('arm64', nr))).toEqual(['fcntl', 'lseek', 'newfstatat', 'fstat', 'mmap', 'fadvise64']);
    // Conditional entries arm64 enables: renameat, getrlimit, clone3, memfd_secret, sync_file_range (not ...2).
    expect([38, 163, 435, 447, 84].map((nr) => name('arm64', nr))).toEqual(['renameat', 'getrlimit', 'clone3', 'memfd_secret', 'sync_file_range']);
  });

  it('prints unknown numbers (gaps, beyond the table, negatives, huge u64) as the number', () => {
    expect(name('x64', 400)).toBe('400');
    expect(name('arm64', 250)).toBe('250'); // the arch-specific range arm64 leaves empty
    expect(name('arm64', 100000)).toBe('100000');
    expect(createDecoder({ decoder: 'syscall' }, field('s32'), { arch: 'x64' }).decode(at3(le32(0xffffffff)), 3)).toBe('-1');
    expect(name('x64', 0, 'u64')).toBe('read');
    expect(createDecoder({ decoder: 'syscall' }, field('u64'), { arch: 'x64' }).decode(at3(host(...u64le(2n ** 64n - 1n))), 3)).toBe('18446744073709551615');
  });

  it('picks the machine\'s own table by default', () => {
    const d = createDecoder({ decoder: 'syscall' }, field('u32'));
    const nr = process.arch === 'arm64' ? 172 : 39;
    if (process.arch === 'x64' || process.arch === 'arm64') expect(d.decode(at3(le32(nr)), 3)).toBe('getpid');
  });
});

describe('errno', () => {
  const errno = (type: string, bytes: number[]): string | undefined => createDecoder({ decoder: 'errno' }, field(type)).decode(at3(bytes), 3);

  it('names an errno or its negation, whatever the field\'s signedness', () => {
    expect(errno('s32', le32(2))).toBe('ENOENT');
    expect(errno('s32', le32(-2 >>> 0))).toBe('ENOENT');
    expect(errno('u32', le32(-13 >>> 0))).toBe('EACCES');
    expect(errno('s64', host(...u64le(-28n)))).toBe('ENOSPC');
    expect(errno('u8', [1])).toBe('EPERM');
  });

  it('uses the kernel\'s names for aliases and knows ENOTSUPP', () => {
    expect(errno('s32', le32(11))).toBe('EAGAIN');
    expect(errno('s32', le32(35))).toBe('EDEADLK');
    expect(errno('s32', le32(95))).toBe('EOPNOTSUPP');
    expect(errno('s32', le32(-524 >>> 0))).toBe('ENOTSUPP');
  });

  it('prints unknown values as the field\'s own number', () => {
    expect(errno('s32', le32(0))).toBe('0');
    expect(errno('s32', le32(-4000 >>> 0))).toBe('-4000');
    expect(errno('u32', le32(4000))).toBe('4000');
    expect(errno('u64', host(...u64le(2n ** 63n)))).toBe('9223372036854775808');
  });
});

describe('enum', () => {
  const state: LayoutField = field('u32', { enumNames: new Map([[0n, 'TCP_UNSET'], [1n, 'TCP_ESTABLISHED'], [10n, 'TCP_LISTEN']]) });
  const signed: LayoutField = field('s32', { enumNames: new Map([[-1n, 'NEG'], [0n, 'ZERO']]) });

  it('names values from BTF and is the default for enum fields', () => {
    const d = createDecoder({}, state);
    expect(d.name).toBe('enum');
    expect(d.decode(at3(le32(1)), 3)).toBe('TCP_ESTABLISHED');
    expect(d.decode(at3(le32(10)), 3)).toBe('TCP_LISTEN');
    expect(createDecoder({}, signed).decode(at3(le32(0xffffffff)), 3)).toBe('NEG');
  });

  it('prints values BTF does not name as the number', () => {
    expect(createDecoder({}, state).decode(at3(le32(7)), 3)).toBe('7');
    expect(createDecoder({}, signed).decode(at3(le32(-5 >>> 0)), 3)).toBe('-5');
  });

  it('leaves the number to uint when asked', () => {
    expect(createDecoder({ decoder: 'uint' }, state).decode(at3(le32(10)), 3)).toBe('10');
  });
});

describe('static_map', () => {
  const map = { '0': 'read', '1': 'write', '-1': 'none' };

  it('maps the decimal value to the label value', () => {
    const d = createDecoder({ decoder: 'static_map', map }, field('u32'));
    expect(d.decode(at3(le32(0)), 3)).toBe('read');
    expect(d.decode(at3(le32(1)), 3)).toBe('write');
    expect(createDecoder({ decoder: 'static_map', map }, field('s32')).decode(at3(le32(0xffffffff)), 3)).toBe('none');
  });

  it('prints unknown values as unknown:<n>, or as <n> with allow_unknown', () => {
    expect(createDecoder({ decoder: 'static_map', map }, field('u32')).decode(at3(le32(7)), 3)).toBe('unknown:7');
    expect(createDecoder({ decoder: 'static_map', map, allow_unknown: false }, field('u32')).decode(at3(le32(7)), 3)).toBe('unknown:7');
    expect(createDecoder({ decoder: 'static_map', map, allow_unknown: true }, field('u32')).decode(at3(le32(7)), 3)).toBe('7');
    expect(createDecoder({ decoder: 'static_map', map, allow_unknown: true }, field('u32')).decode(at3(le32(1)), 3)).toBe('write');
  });

  it('maps u64 values above 2^53 exactly, and be16 in network order', () => {
    const big = (2n ** 64n - 1n).toString();
    expect(createDecoder({ decoder: 'static_map', map: { [big]: 'max' } }, field('u64')).decode(at3(host(...u64le(2n ** 64n - 1n))), 3)).toBe('max');
    expect(createDecoder({ decoder: 'static_map', map: { '80': 'http' } }, field('be16')).decode(at3([0, 80]), 3)).toBe('http');
  });

  it('maps char fields by their string, u8[N] by their hex; no key is looked up on the prototype', () => {
    expect(createDecoder({ decoder: 'static_map', map: { bash: 'shell' } }, field('char[8]')).decode(at3([...Buffer.from('bash\0\0\0\0')]), 3)).toBe('shell');
    expect(createDecoder({ decoder: 'static_map', map: { '0a0b': 'x' } }, field('u8[2]')).decode(at3([10, 11]), 3)).toBe('x');
    expect(createDecoder({ decoder: 'static_map', map: { a: 'b' } }, field('char[12]')).decode(at3([...Buffer.from('constructor\0')]), 3)).toBe('unknown:constructor');
  });
});

describe('regexp', () => {
  it('keeps matching strings as they are and drops the rest', () => {
    const d = createDecoder({ decoder: 'regexp', pattern: '^(bash|sh)$' }, field('char[8]'));
    expect(d.decode(at3([...Buffer.from('bash\0xyz')]), 3)).toBe('bash');
    expect(d.decode(at3([...Buffer.from('zsh\0\0\0\0\0')]), 3)).toBeUndefined();
  });

  it('matches anywhere unless anchored, and the same way row after row', () => {
    const d = createDecoder({ decoder: 'regexp', pattern: 'worker' }, field('char[16]'));
    for (let i = 0; i < 3; i++) expect(d.decode(at3([...Buffer.from('kworker/0:1\0\0\0\0\0')]), 3)).toBe('kworker/0:1');
  });

  it('matches integers by their decimal form, signed ones included', () => {
    expect(createDecoder({ decoder: 'regexp', pattern: '^4[0-9]{2}$' }, field('u16')).decode(at3(host(0x94, 0x01)), 3)).toBe('404');
    expect(createDecoder({ decoder: 'regexp', pattern: '^4[0-9]{2}$' }, field('u16')).decode(at3(host(0xc8, 0x00)), 3)).toBeUndefined();
    expect(createDecoder({ decoder: 'regexp', pattern: '^-' }, field('s8')).decode(at3([0xff]), 3)).toBe('-1');
  });

  it('rewrite: the part matched, or the first group of the first pattern that matches, as ebpf_exporter labels', () => {
    const comm = (s: string) => at3([...Buffer.from(`${s}\0`.padEnd(16, '\0'))]);
    const d = createDecoder({ decoder: 'regexp', patterns: ['^(kswapd).*$', 'journal', '^x(y)?$'], rewrite: true }, field('char[16]'));
    expect(d.decode(comm('kswapd0'), 3)).toBe('kswapd');
    expect(d.decode(comm('kswapd1'), 3)).toBe('kswapd');
    expect(d.decode(comm('systemd-journal'), 3)).toBe('journal');
    // A group that takes no part in the match gives "".
    expect(d.decode(comm('x'), 3)).toBe('');
    expect(d.decode(comm('xy'), 3)).toBe('y');
    expect(d.decode(comm('bash'), 3)).toBeUndefined();
    // Without rewrite, the patterns only filter.
    expect(createDecoder({ decoder: 'regexp', patterns: ['^(kswapd).*$', 'journal'] }, field('char[16]')).decode(comm('kswapd0'), 3)).toBe('kswapd0');
  });

  it('refuses, with rewrite, a pattern of more than one group; and pattern with patterns', () => {
    expect(() => createDecoder({ decoder: 'regexp', patterns: ['^(a)(b)$'], rewrite: true }, field('char[4]'))).toThrow('decoder regexp: pattern "^(a)(b)$" has 2 groups, expected at most one with rewrite: true (the label is the first group; make the others (?:...))');
    expect(() => createDecoder({ decoder: 'regexp', pattern: 'a', patterns: ['b'] }, field('char[4]'))).toThrow('decoder regexp takes pattern or patterns, not both');
  });

  it('matches code points (the u flag)', () => {
    expect(createDecoder({ decoder: 'regexp', pattern: '^.{5}$' }, field('char[16]')).decode(at3([...Buffer.from('grüße\0')]), 3)).toBe('grüße');
  });
});

import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ARM64_DEFINES, evaluate, generate, GENERIC_HEADER, headersVersion, preprocess, syscallTable, VERSION_HEADER, X64_HEADER } from '../../../src/decode/generate-syscall-tables.js';
import { LATER_THAN_STRACE, newerThan, parseSyscallent } from '../../../src/decode/generate-strace-syscall-tables.js';
import { EBPF_EXPORTER_SYSCALLS_ARM64, EBPF_EXPORTER_SYSCALLS_X64, SYSCALLS_NEWER_ARM64, SYSCALLS_NEWER_X64 } from '../../../src/decode/strace-syscall-tables.js';
import { SYSCALLS_ARM64, SYSCALLS_X64 } from '../../../src/decode/syscall-tables.js';

describe('the syscall table generator', () => {
  it('evaluates preprocessor conditions as C does', () => {
    const m = new Map([['__BITS_PER_LONG', '64'], ['A', ''], ['B', '(A_NR + 3)'], ['A_NR', '244']]);
    expect(evaluate('defined(__ARCH_WANT_X) || __BITS_PER_LONG != 32', m, false)).toBe(1);
    expect(evaluate('__BITS_PER_LONG == 32 || defined(__SYSCALL_COMPAT)', m, false)).toBe(0);
    expect(evaluate('__BITS_PER_LONG == 64 && !defined(__SYSCALL_COMPAT)', m, false)).toBe(1);
    expect(evaluate('defined A && !defined B', m, false)).toBe(0);
    expect(evaluate('UNDEFINED_MACRO', m, false)).toBe(0);
    expect(evaluate('B', m, true)).toBe(247);
    expect(evaluate('0x10 + 1UL', m, true)).toBe(17);
    expect(() => evaluate('UNDEFINED_MACRO', m, true)).toThrow('UNDEFINED_MACRO has no value');
    expect(() => evaluate('1 +', m, true)).toThrow('unexpected end');
  });

  it('follows #if/#ifdef/#ifndef/#elif/#else/#endif, #define and #undef, comments included', () => {
    const header = `
#include <asm/bitsperlong.h>
#ifndef __SYSCALL
#define __SYSCALL(x, y)
#endif
#define __NR_a 0 /* a comment
   over lines with #define __NR_fake 99 */
#if defined(__ARCH_WANT_X) || __BITS_PER_LONG != 32
#define __NR_b 1
#endif
#ifdef __ARCH_WANT_Y
#define __NR_c 2
#elif __BITS_PER_LONG == 64
#define __NR3264_d 3
#else
#define __NR_c 4
#endif
#if __BITS_PER_LONG == 64 && !defined(__SYSCALL_COMPAT)
#define __NR_d __NR3264_d
#else
#define __NR_d64 __NR3264_d
#endif
#define __NR_syscalls 5
#define __NR_gone 6
#undef __NR_gone
`;
    const table = syscallTable(preprocess(header, { __BITS_PER_LONG: '64' }));
    expect([...table]).toEqual([[0, 'a'], [1, 'b'], [3, 'd']]);
    expect(preprocess(header, {}).has('__SYSCALL')).toBe(true);
    expect(() => preprocess('#if 1\n')).toThrow('unterminated #if');
    expect(() => syscallTable(new Map([['__NR_x', '1'], ['__NR_y', '1']]))).toThrow('syscall 1 is both x and y');
  });

  it('reads the version of the headers', () => {
    expect(headersVersion('#define LINUX_VERSION_MAJOR 6\n#define LINUX_VERSION_PATCHLEVEL 1\n#define LINUX_VERSION_SUBLEVEL 192\n')).toBe('6.1.192');
    expect(headersVersion('')).toBeUndefined();
  });

  const committed = readFileSync(new URL('../../../src/decode/syscall-tables.ts', import.meta.url), 'utf8');
  const sameHeaders =
    existsSync(X64_HEADER) && existsSync(GENERIC_HEADER) && existsSync(VERSION_HEADER) &&
    committed.includes(`Linux ${headersVersion(readFileSync(VERSION_HEADER, 'utf8')) ?? '?'} UAPI`);
  it.skipIf(!sameHeaders)('matches the committed tables when run on the same headers', () => {
    expect(generate()).toBe(committed);
  });

  it('resolves arm64 as arm64 configures the generic table', () => {
    expect(Object.keys(ARM64_DEFINES)).toContain('__ARCH_WANT_RENAMEAT');
    expect(SYSCALLS_ARM64.get(25)).toBe('fcntl');
    expect([...SYSCALLS_ARM64.values()]).not.toContain('fcntl64');
    expect([...SYSCALLS_ARM64.values()]).not.toContain('clock_gettime64');
    expect([...SYSCALLS_ARM64.values()]).not.toContain('arch_specific_syscall');
    expect(SYSCALLS_X64.size).toBeGreaterThan(350);
    expect(SYSCALLS_ARM64.size).toBeGreaterThan(300);
  });
});

describe('the strace syscall table generator', () => {
  it('reads strace\'s syscallent lines: number, handler name (ebpf_exporter\'s), quoted name (the kernel\'s)', () => {
    const text = [
      '[  7] = { 3,\tTD,\t\tSEN(poll_time64),\t\t"poll"\t\t\t},',
      '[BASE_NR + 451] = { 4,\tTD,\t\tSEN(cachestat),\t\t\t"cachestat"\t},',
      '#include "syscallent-common.h"',
      '/* [ 9] = { not an entry } */',
    ].join('\n');
    expect([...parseSyscallent(text)]).toEqual([[7, { handler: 'poll_time64', name: 'poll' }], [451, { handler: 'cachestat', name: 'cachestat' }]]);
  });

  it('keeps the numbers newer than the headers, by the kernel\'s names, and adds those strace lacks', () => {
    const strace = new Map([[7, { handler: 'poll_time64', name: 'poll' }], [451, { handler: 'cachestat', name: 'cachestat' }]]);
    expect([...newerThan(new Map([[7, 'poll']]), strace, [[336, 'uprobe']])]).toEqual([[336, 'uprobe'], [451, 'cachestat']]);
    expect(LATER_THAN_STRACE.x64).toEqual([[336, 'uprobe']]);
  });

  it('the committed tables: ebpf_exporter\'s names at strace v6.8, newer calls up to this kernel\'s', () => {
    expect(EBPF_EXPORTER_SYSCALLS_X64.size).toBe(373);
    expect(EBPF_EXPORTER_SYSCALLS_ARM64.size).toBe(317);
    expect(Math.max(...EBPF_EXPORTER_SYSCALLS_X64.keys())).toBe(461);
    expect(SYSCALLS_NEWER_X64.get(469)).toBe('file_setattr');
    // The newer tables only add numbers the headers lack.
    for (const nr of SYSCALLS_NEWER_X64.keys()) expect(SYSCALLS_X64.has(nr)).toBe(false);
    for (const nr of SYSCALLS_NEWER_ARM64.keys()) expect(SYSCALLS_ARM64.has(nr)).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { native } from '../../../src/bpf/libbpf.js';
import { PROG_TYPE_NAMES, progTypeName } from '../../../src/bpf/program.js';

describe('program type names', () => {
  it('are libbpf\'s (and so bpftool\'s) for every type this libbpf knows, by the kernel\'s number', () => {
    let known = 0;
    for (let t = 0; t < PROG_TYPE_NAMES.length + 8; t++) {
      const theirs = native.progTypeStr(t);
      if (theirs === null) continue;
      known++;
      expect(progTypeName(t), `type ${t}`).toBe(theirs);
    }
    // libbpf 1.1 knows unspec to syscall (31); netfilter (32) came with kernel 6.4 and libbpf 1.2.
    expect(known).toBeGreaterThanOrEqual(32);
    expect(progTypeName(32)).toBe('netfilter');
    expect(progTypeName(99)).toBe('type_99');
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { makeContext } from '../../../src/decode/env.js';
import { createDecoder } from '../../../src/decode/index.js';
import { createKstackDecoder } from '../../../src/decode/kstack.js';
import { KSYM_RELOAD_MS } from '../../../src/decode/ksym.js';
import { field, host, u64le } from './helpers.js';

/** A stack as bpf_get_stack() writes it: `depth` host-order u64 slots, the frames first, zeros after. */
function stack(depth: number, ...frames: bigint[]): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < depth; i++) out.push(...host(...u64le(frames[i] ?? 0n)));
  return Uint8Array.from(out);
}

const FAKE = ['0000000000000004 T one', '0000000000000006 T two', '00000000000000aa T three', '00000000000000f0 t in_mod\t[mymod]'].join('\n');

describe('kstack', () => {
  it('names each frame by the symbol containing it, innermost first, one per line', () => {
    const d = createDecoder({ decoder: 'kstack' }, field('u8[32]'), { kallsyms: () => FAKE });
    expect(d.decode(stack(4, 4n, 5n, 6n), 0)).toBe('one\none\ntwo');
    expect(d.decode(stack(4, 0xabn, 0x10n, 6n), 0)).toBe('three\ntwo\ntwo');
  });

  it('ends the stack at the first zero frame; an empty stack is the empty string', () => {
    const d = createDecoder({ decoder: 'kstack' }, field('u8[32]'), { kallsyms: () => FAKE });
    expect(d.decode(stack(4), 0)).toBe('');
    expect(d.decode(stack(4, 6n, 0n, 4n), 0)).toBe('two');
    // A single frame in a u64 field.
    expect(createDecoder({ decoder: 'kstack' }, field('u64'), { kallsyms: () => FAKE }).decode(stack(1, 0xaan), 0)).toBe('three');
  });

  it('prints ?? for a frame below every symbol, and marks such a stack provisional', () => {
    const d = createDecoder({ decoder: 'kstack' }, field('u8[32]'), { kallsyms: () => FAKE });
    const label = d.decode(stack(4, 1n, 0xacn, 1n), 0)!;
    expect(label).toBe('??\nthree\n??');
    expect(d.provisional?.(label)).toBe(true);
    expect(d.provisional?.('one\ntwo')).toBe(false);
    expect(d.provisional?.('')).toBe(false);
  });

  it('keeps a module symbol\'s [module] with style: ebpf_exporter, as theirs, and drops it without', () => {
    expect(createDecoder({ decoder: 'kstack' }, field('u8[16]'), { kallsyms: () => FAKE }).decode(stack(2, 0xf8n, 4n), 0)).toBe('in_mod\none');
    expect(createDecoder({ decoder: 'kstack', style: 'ebpf_exporter' }, field('u8[16]'), { kallsyms: () => FAKE }).decode(stack(2, 0xf8n, 4n), 0)).toBe('in_mod\t[mymod]\none');
  });

  it('reads kallsyms again when a frame is missing (at most once a minute), then names the whole stack from the new read', () => {
    let text = FAKE;
    let reads = 0;
    let t = 0;
    const ctx = makeContext({ kallsyms: () => (reads++, text) }, () => t);
    const d = createKstackDecoder(field('u8[24]'), {}, ctx);
    expect(d.decode(stack(3, 0xabn, 3n), 0)).toBe('three\n??');
    expect(reads).toBe(1);
    text = `0000000000000002 T zero\n${FAKE}`;
    expect(d.decode(stack(3, 0xabn, 3n), 0)).toBe('three\n??');
    expect(reads).toBe(1);
    t += KSYM_RELOAD_MS;
    expect(d.decode(stack(3, 0xabn, 3n), 0)).toBe('three\nzero');
    expect(reads).toBe(2);
  });

  it('names frames inside real kernel functions from /proc/kallsyms', () => {
    // Symbols of this kernel, read here independently of the decoder: text symbols whose address no
    // other symbol shares, with room after them for a frame address inside the function.
    const lines = readFileSync('/proc/kallsyms', 'utf8').split('\n').map((l) => l.split(/\s+/)).filter((f) => f.length >= 3 && f[0] !== '');
    const addrs = lines.map((f) => BigInt(`0x${f[0]}`)).filter((a) => a !== 0n).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(addrs.length, 'kallsyms shows addresses (the tests run as root)').toBeGreaterThan(1000);
    const picked: { name: string; addr: bigint }[] = [];
    for (const name of ['vfs_read', 'vfs_write', 'do_sys_openat2', 'schedule', 'kfree']) {
      const line = lines.find((f) => f[2] === name && (f[1] === 'T' || f[1] === 't'));
      if (line === undefined) continue;
      const addr = BigInt(`0x${line[0]}`);
      const same = lines.filter((f) => f[0] === line[0]).length;
      const next = addrs.find((a) => a > addr);
      if (same === 1 && next !== undefined && next - addr > 16n) picked.push({ name, addr });
    }
    expect(picked.length).toBeGreaterThanOrEqual(3);
    const d = createDecoder({ decoder: 'kstack', style: 'ebpf_exporter' }, field(`u8[${8 * (picked.length + 2)}]`), {});
    // Return addresses point a few bytes into their function: the symbol is the one at or below.
    const label = d.decode(stack(picked.length + 2, ...picked.map((p) => p.addr + 5n)), 0);
    expect(label).toBe(picked.map((p) => p.name).join('\n'));
  });
});

describe('ksym with style: ebpf_exporter', () => {
  it('names only the address a symbol starts at, and keeps a module\'s [module]', () => {
    const d = createDecoder({ decoder: 'ksym', style: 'ebpf_exporter' }, field('u64'), { kallsyms: () => FAKE });
    expect(d.decode(stack(1, 6n), 0)).toBe('two');
    expect(d.decode(stack(1, 7n), 0)).toBe('unknown_addr:0x7');
    expect(d.decode(stack(1, 0xf0n), 0)).toBe('in_mod\t[mymod]');
    expect(d.decode(stack(1, 1n), 0)).toBe('unknown_addr:0x1');
    // Ours names the symbol containing the address.
    expect(createDecoder({ decoder: 'ksym' }, field('u64'), { kallsyms: () => FAKE }).decode(stack(1, 7n), 0)).toBe('two');
  });
});

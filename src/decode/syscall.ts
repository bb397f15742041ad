import { DecoderConfigError } from './errors.js';
import { requireInt, type DecoderFactory } from './field.js';
import { intReader, naturalIntReader } from './int.js';
import { EBPF_EXPORTER_SYSCALLS_ARM64, EBPF_EXPORTER_SYSCALLS_X64, SYSCALLS_NEWER_ARM64, SYSCALLS_NEWER_X64 } from './strace-syscall-tables.js';
import { SYSCALLS_ARM64, SYSCALLS_X64 } from './syscall-tables.js';

/**
 * Tables by process.arch name: the kernel headers' numbers (syscall-tables.ts) and those of newer
 * kernels (strace-syscall-tables.ts), by the kernel's names.
 */
const TABLES: Readonly<Record<string, ReadonlyMap<number, string>>> = {
  x64: new Map([...SYSCALLS_X64, ...SYSCALLS_NEWER_X64]),
  arm64: new Map([...SYSCALLS_ARM64, ...SYSCALLS_NEWER_ARM64]),
};

/** ebpf_exporter's tables: strace's handler names (poll_time64, pread), fixed at its strace release. */
const THEIR_TABLES: Readonly<Record<string, ReadonlyMap<number, string>>> = { x64: EBPF_EXPORTER_SYSCALLS_X64, arm64: EBPF_EXPORTER_SYSCALLS_ARM64 };

/** The kernel's syscall names of an arch (x64, arm64), or undefined. */
export function syscallTable(arch: string): ReadonlyMap<number, string> | undefined {
  return Object.hasOwn(TABLES, arch) ? TABLES[arch] : undefined;
}

/**
 * syscall: a system call number -> its name in the table of env.arch (the machine's own by
 * default: a BPF program sees the numbers of the kernel it runs on), by the kernel's names.
 * Unknown numbers print as the number.
 *
 * With `style: ebpf_exporter`, as theirs: the value is read unsigned, named as theirs names it
 * (37 numbers on x86-64 and 32 on arm64 by other names, e.g. 7 poll_time64, 17 pread, and none
 * past 450), and unknown numbers print as `unknown_syscall:<n>`.
 */
export const createSyscallDecoder: DecoderFactory = (field, spec, ctx) => {
  const t = requireInt('syscall', field);
  const theirs = spec.style === 'ebpf_exporter';
  const tables = theirs ? THEIR_TABLES : TABLES;
  const table = Object.hasOwn(tables, ctx.arch) ? tables[ctx.arch] : undefined;
  if (table === undefined) {
    throw new DecoderConfigError(`decoder syscall has no table for arch ${ctx.arch} (known: ${Object.keys(TABLES).join(', ')})`, 'syscall', field.name);
  }
  const read = theirs ? intReader(t, false) : naturalIntReader(t);
  const unknown = theirs ? 'unknown_syscall:' : '';
  return {
    name: 'syscall',
    decode(buf, offset) {
      const nr = read(buf, offset);
      return (typeof nr === 'number' ? table.get(nr) : undefined) ?? `${unknown}${nr}`;
    },
  };
};

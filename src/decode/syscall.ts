import { DecoderConfigError } from './errors.js';
import { requireInt, type DecoderFactory } from './field.js';
import { naturalIntReader } from './int.js';
import { SYSCALLS_ARM64, SYSCALLS_X64 } from './syscall-tables.js';

/** Tables by process.arch name; generated from the kernel headers (see generate-syscall-tables.ts). */
const TABLES: Readonly<Record<string, ReadonlyMap<number, string>>> = { x64: SYSCALLS_X64, arm64: SYSCALLS_ARM64 };

/**
 * syscall: a system call number -> its name in the table of env.arch (the machine's own by
 * default: a BPF program sees the numbers of the kernel it runs on). Unknown numbers, and numbers
 * newer than the headers the tables came from, print as the number.
 */
export const createSyscallDecoder: DecoderFactory = (field, _spec, ctx) => {
  const read = naturalIntReader(requireInt('syscall', field));
  const table = Object.hasOwn(TABLES, ctx.arch) ? TABLES[ctx.arch] : undefined;
  if (table === undefined) {
    throw new DecoderConfigError(`decoder syscall has no table for arch ${ctx.arch} (known: ${Object.keys(TABLES).join(', ')})`, 'syscall', field.name);
  }
  return {
    name: 'syscall',
    decode(buf, offset) {
      const nr = read(buf, offset);
      return (typeof nr === 'number' ? table.get(nr) : undefined) ?? String(nr);
    },
  };
};

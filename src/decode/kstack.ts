import { needs, type DecoderFactory } from './field.js';
import { HOST_LITTLE_ENDIAN } from './int.js';
import { ksymTable } from './ksym.js';

/** What a frame whose address no symbol contains prints as. */
export const UNKNOWN_FRAME = '??';

/**
 * kstack: a kernel stack as bpf_get_stack() writes it (host-order u64 return addresses, innermost
 * first, the unused tail zeroed) -> the symbol containing each frame, one per line, innermost
 * first, as ebpf_exporter renders it. The stack ends at the first zero address; a frame below
 * every symbol prints as `??`; an empty stack is the empty string. Symbols come from the ksym
 * decoder's table (one parsed kallsyms per process), read again when a frame is missing. With
 * `style: ebpf_exporter` a module's symbol keeps kallsyms' `\t[module]` after its name, as theirs.
 */
export const createKstackDecoder: DecoderFactory = (field, spec, ctx) => {
  const t = field.type;
  if (!((t.kind === 'bytes' && t.size % 8 === 0) || (t.kind === 'int' && t.size === 8 && !t.bigEndian))) {
    needs('kstack', field, 'a u8[N] field with N a multiple of 8 (u64 frames, e.g. u8[160] for 20) or a u64');
  }
  const frames = field.size / 8;
  const table = ksymTable(ctx);
  const withModule = spec.style === 'ebpf_exporter';
  return {
    name: 'kstack',
    decode(buf, offset) {
      const addrs: bigint[] = [];
      for (let i = 0; i < frames; i++) {
        const addr = readU64(buf, offset + 8 * i);
        if (addr === 0n) break;
        addrs.push(addr);
      }
      return table.lookupAll(addrs, withModule).map((s) => s ?? UNKNOWN_FRAME).join('\n');
    },
    provisional: (label) => label.split('\n').includes(UNKNOWN_FRAME),
  };
};

/** A host-order u64; bytes past the end of the buffer read as zero (decode never throws). */
function readU64(buf: Uint8Array, at: number): bigint {
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < 4; i++) {
    const l = HOST_LITTLE_ENDIAN ? at + 3 - i : at + 4 + i;
    const h = HOST_LITTLE_ENDIAN ? at + 7 - i : at + i;
    lo = lo * 256 + (buf[l] ?? 0);
    hi = hi * 256 + (buf[h] ?? 0);
  }
  return (BigInt(hi) << 32n) | BigInt(lo);
}

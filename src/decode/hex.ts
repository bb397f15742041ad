import type { LayoutField } from '../layout/types.js';
import type { DecoderFactory } from './field.js';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * hex: the field's bytes in memory order as lowercase hex, two digits a byte and no `0x` prefix, as
 * ebpf_exporter prints them. Memory order also for integer fields: a host-order u32 1 on x86 is
 * `01000000`, which is what `xxd` of the map shows.
 */
export const createHexDecoder: DecoderFactory = (field) => ({ name: 'hex', decode: hexReader(field) });

export function hexReader(field: LayoutField): (buf: Uint8Array, offset: number) => string {
  const size = field.size;
  return (buf, offset) => {
    let out = '';
    for (let i = 0; i < size; i++) out += HEX[buf[offset + i] ?? 0];
    return out;
  };
}

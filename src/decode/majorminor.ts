import type { DecoderContext } from './types.js';
import { requireInt, type DecoderFactory } from './field.js';
import { intReader } from './int.js';

/** A miss re-reads /proc/partitions at most this often. */
export const PARTITIONS_REREAD_MS = 1000;

/**
 * majorminor: a device number as BPF programs get it from the kernel's new_encode_dev() (the
 * 32-bit form stat(2) reports: 12 bits of major, 20 of minor, interleaved) -> the device's name in
 * /proc/partitions (sda1). Only the low 32 bits count, so a u64 field holding one works too.
 * Unknown devices print as `major:minor`, or with `style: ebpf_exporter` as theirs,
 * `unknown:major:minor`.
 */
export const createMajorMinorDecoder: DecoderFactory = (field, spec, ctx) => {
  const read = intReader(requireInt('majorminor', field, 'a 32- or 64-bit integer field (u32 or u64)', [4, 8]), false);
  const partitions = partitionTable(ctx);
  const prefix = spec.style === 'ebpf_exporter' ? 'unknown:' : '';
  return {
    name: 'majorminor',
    decode(buf, offset) {
      const v = read(buf, offset);
      // ToUint32 is exact for the safe integers a number holds.
      const dev = typeof v === 'bigint' ? Number(BigInt.asUintN(32, v)) : v >>> 0;
      const major = (dev & 0xfff00) >>> 8;
      const minor = (dev & 0xff) | ((dev >>> 12) & 0xfff00);
      const key = `${major}:${minor}`;
      return partitions.lookup(key) ?? `${prefix}${key}`;
    },
    provisional: (label) => label.startsWith(prefix) && /^\d+:\d+$/.test(label.slice(prefix.length)),
  };
};

const tables = new WeakMap<DecoderContext, PartitionTable>();

function partitionTable(ctx: DecoderContext): PartitionTable {
  let table = tables.get(ctx);
  if (table === undefined) {
    table = new PartitionTable(ctx.partitions, ctx.cacheSize, ctx.now);
    tables.set(ctx, table);
  }
  return table;
}

/**
 * `major:minor` -> name from /proc/partitions, read at the first lookup and again on a miss (a
 * disk plugged in later) at most every PARTITIONS_REREAD_MS. Each read replaces the table, which
 * keeps at most cacheSize rows.
 */
export class PartitionTable {
  #names = new Map<string, string>();
  #readAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly source: () => string,
    private readonly cacheSize: number,
    private readonly now: () => number,
  ) {}

  lookup(key: string): string | undefined {
    const hit = this.#names.get(key);
    if (hit !== undefined || this.now() - this.#readAt < PARTITIONS_REREAD_MS) return hit;
    this.#readAt = this.now();
    let text: string;
    try {
      text = this.source();
    } catch {
      text = '';
    }
    this.#names = parsePartitions(text, this.cacheSize);
    return this.#names.get(key);
  }
}

/** `major minor #blocks name` rows (the header and blank lines fall out) -> `major:minor` -> name. */
export function parsePartitions(text: string, limit = Number.POSITIVE_INFINITY): Map<string, string> {
  const names = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (names.size >= limit) break;
    const f = line.trim().split(/\s+/);
    if (f.length === 4 && /^\d+$/.test(f[0]) && /^\d+$/.test(f[1])) names.set(`${Number(f[0])}:${Number(f[1])}`, f[3]);
  }
  return names;
}

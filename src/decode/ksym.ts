import type { DecoderContext } from './env.js';
import { requireInt, type DecoderFactory } from './field.js';
import { intReader } from './int.js';

/** A miss re-reads kallsyms at most this often: a full read parses ~10^5 lines. */
export const KSYM_RELOAD_MS = 60_000;

/**
 * ksym: a kernel address (u64) -> the name of the symbol containing it, i.e. the one with the
 * greatest address <= it, as ebpf_exporter answers. `unknown_addr:0x<hex>` when the address lies
 * below every symbol, or when kallsyms shows only zero addresses (a reader without CAP_SYSLOG).
 */
export const createKsymDecoder: DecoderFactory = (field, _spec, ctx) => {
  const read = intReader(requireInt('ksym', field, 'a 64-bit integer field (u64)', [8]), false);
  const table = ksymTable(ctx);
  return {
    name: 'ksym',
    decode(buf, offset) {
      const v = read(buf, offset);
      const addr = typeof v === 'bigint' ? v : BigInt(v);
      return table.lookup(addr) ?? `unknown_addr:0x${addr.toString(16)}`;
    },
    provisional: (label) => label.startsWith('unknown_addr:'),
  };
};

const tables = new WeakMap<DecoderContext, KsymTable>();

/** The context's one symbol table: every ksym label of a process shares a single parsed kallsyms. */
export function ksymTable(ctx: DecoderContext): KsymTable {
  let table = tables.get(ctx);
  if (table === undefined) {
    table = new KsymTable(ctx.kallsyms, ctx.now);
    tables.set(ctx, table);
  }
  return table;
}

/**
 * The symbols of kallsyms sorted by address. It is a full copy of the kernel's table (not a cache,
 * so not bounded by cacheSize): loaded at the first lookup, not at config time, and re-read when a
 * lookup misses (modules come and go, privileges may be granted), at most every KSYM_RELOAD_MS.
 */
export class KsymTable {
  #addrs: BigUint64Array = new BigUint64Array(0);
  #names: string[] = [];
  #loadedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly source: () => string,
    private readonly now: () => number,
  ) {}

  /** The name of the symbol containing `addr`, or undefined. */
  lookup(addr: bigint): string | undefined {
    let name = this.#find(addr);
    if (name === undefined && this.now() - this.#loadedAt >= KSYM_RELOAD_MS) {
      this.#load();
      name = this.#find(addr);
    }
    return name;
  }

  get size(): number {
    return this.#names.length;
  }

  #load(): void {
    this.#loadedAt = this.now();
    let text: string;
    try {
      text = this.source();
    } catch {
      text = ''; // unreadable: every address stays unknown until the next re-read
    }
    ({ addrs: this.#addrs, names: this.#names } = parseKallsyms(text));
  }

  #find(addr: bigint): string | undefined {
    const addrs = this.#addrs;
    let lo = 0;
    let hi = addrs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (addrs[mid] <= addr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? undefined : this.#names[found];
  }
}

/**
 * Parse `/proc/kallsyms` lines (`ffffffff81000000 T _stext`, module symbols with a `\t[module]`
 * suffix, which is dropped) into ascending addresses with one name each. Skipped: zero addresses
 * (what an unprivileged reader sees for every symbol) and absolute symbols (types a/A: on x86-64
 * the per-CPU variables, whose "addresses" are small offsets that would swallow every low
 * address). Of symbols sharing an address, the first in file order is kept.
 */
export function parseKallsyms(text: string): { addrs: BigUint64Array; names: string[] } {
  const rawAddrs: bigint[] = [];
  const rawNames: string[] = [];
  for (const line of text.split('\n')) {
    const sp1 = line.indexOf(' ');
    const sp2 = line.indexOf(' ', sp1 + 1);
    if (sp1 < 1 || sp2 !== sp1 + 2 || sp1 > 16) continue;
    const type = line[sp1 + 1];
    if (type === 'a' || type === 'A') continue;
    const hex = line.slice(0, sp1);
    if (!/^[0-9a-fA-F]+$/.test(hex)) continue;
    const addr = BigInt(`0x${hex}`);
    if (addr === 0n) continue;
    const tab = line.indexOf('\t', sp2 + 1);
    const name = line.slice(sp2 + 1, tab < 0 ? undefined : tab).trim();
    if (name === '') continue;
    rawAddrs.push(addr);
    rawNames.push(name);
  }

  // Array.prototype.sort is stable, so equal addresses keep their file order.
  const order = rawAddrs.map((_, i) => i).sort((a, b) => (rawAddrs[a] < rawAddrs[b] ? -1 : rawAddrs[a] > rawAddrs[b] ? 1 : 0));
  const addrs: bigint[] = [];
  const names: string[] = [];
  for (const i of order) {
    if (addrs.length > 0 && addrs[addrs.length - 1] === rawAddrs[i]) continue;
    addrs.push(rawAddrs[i]);
    names.push(rawNames[i]);
  }
  return { addrs: BigUint64Array.from(addrs), names };
}

import type { DecoderContext } from './types.js';
import { requireInt, type DecoderFactory } from './field.js';
import { intReader } from './int.js';

/** A miss re-reads kallsyms at most this often: a full read parses ~10^5 lines. */
export const KSYM_RELOAD_MS = 60_000;

/**
 * ksym: a kernel address (u64) -> the name of the symbol containing it, i.e. the one with the
 * greatest address <= it. `unknown_addr:0x<hex>` when the address lies below every symbol, or when
 * kallsyms shows only zero addresses (a reader without CAP_SYSLOG).
 *
 * With `style: ebpf_exporter`, as ebpf_exporter answers: only an address where a symbol starts
 * names it (any other is `unknown_addr:0x<hex>`), and a module's symbol keeps kallsyms' tab and
 * `[module]` after its name (`nf_hook_slow\t[nf_tables]`... as the file writes it).
 */
export const createKsymDecoder: DecoderFactory = (field, spec, ctx) => {
  const read = intReader(requireInt('ksym', field, 'a 64-bit integer field (u64)', [8]), false);
  const table = ksymTable(ctx);
  const theirs = spec.style === 'ebpf_exporter';
  return {
    name: 'ksym',
    decode(buf, offset) {
      const v = read(buf, offset);
      const addr = typeof v === 'bigint' ? v : BigInt(v);
      const sym = theirs ? table.lookupExact(addr, true) : table.lookup(addr);
      return sym ?? `unknown_addr:0x${addr.toString(16)}`;
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
  #modules: (string | undefined)[] = [];
  #loadedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly source: () => string,
    private readonly now: () => number,
  ) {}

  /**
   * The name of the symbol containing `addr`, or undefined. `withModule`: a module's symbol as
   * kallsyms writes it, `name\t[module]`.
   */
  lookup(addr: bigint, withModule = false): string | undefined {
    let i = this.#find(addr);
    if (i < 0 && this.#reloadDue()) i = this.#find(addr);
    return i < 0 ? undefined : this.#name(i, withModule);
  }

  /** The name of the symbol that starts at `addr` exactly, or undefined. */
  lookupExact(addr: bigint, withModule = false): string | undefined {
    let i = this.#find(addr);
    if ((i < 0 || this.#addrs[i] !== addr) && this.#reloadDue()) i = this.#find(addr);
    return i < 0 || this.#addrs[i] !== addr ? undefined : this.#name(i, withModule);
  }

  /**
   * The symbols containing each of `addrs`, in one pass: when one is missing, kallsyms is read
   * again (at most every KSYM_RELOAD_MS) and the whole stack looked up anew, so one stack never
   * mixes two reads.
   */
  lookupAll(addrs: readonly bigint[], withModule = false): (string | undefined)[] {
    let found = addrs.map((a) => this.#find(a));
    if (found.some((i) => i < 0) && this.#reloadDue()) found = addrs.map((a) => this.#find(a));
    return found.map((i) => (i < 0 ? undefined : this.#name(i, withModule)));
  }

  #name(i: number, withModule: boolean): string {
    const module = this.#modules[i];
    return withModule && module !== undefined ? `${this.#names[i]}\t[${module}]` : this.#names[i];
  }

  /** Reads kallsyms again when the last read is old enough; true when it did. */
  #reloadDue(): boolean {
    if (this.now() - this.#loadedAt < KSYM_RELOAD_MS) return false;
    this.#load();
    return true;
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
    ({ addrs: this.#addrs, names: this.#names, modules: this.#modules } = parseKallsyms(text));
  }

  /** The index of the symbol with the greatest address <= addr, or -1. */
  #find(addr: bigint): number {
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
    return found;
  }
}

/**
 * Parse `/proc/kallsyms` lines (`ffffffff81000000 T _stext`, module symbols with a `\t[module]`
 * suffix, kept apart in `modules`) into ascending addresses with one name each. Skipped: zero addresses
 * (what an unprivileged reader sees for every symbol) and absolute symbols (types a/A: on x86-64
 * the per-CPU variables, whose "addresses" are small offsets that would swallow every low
 * address). Of symbols sharing an address, the first in file order is kept.
 */
export function parseKallsyms(text: string): { addrs: BigUint64Array; names: string[]; modules: (string | undefined)[] } {
  const rawAddrs: bigint[] = [];
  const rawNames: string[] = [];
  const rawModules: (string | undefined)[] = [];
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
    const module = tab < 0 ? undefined : /^\[(.+)\]$/.exec(line.slice(tab + 1).trim())?.[1];
    rawAddrs.push(addr);
    rawNames.push(name);
    rawModules.push(module);
  }

  // Array.prototype.sort is stable, so equal addresses keep their file order.
  const order = rawAddrs.map((_, i) => i).sort((a, b) => (rawAddrs[a] < rawAddrs[b] ? -1 : rawAddrs[a] > rawAddrs[b] ? 1 : 0));
  const addrs: bigint[] = [];
  const names: string[] = [];
  const modules: (string | undefined)[] = [];
  for (const i of order) {
    if (addrs.length > 0 && addrs[addrs.length - 1] === rawAddrs[i]) continue;
    addrs.push(rawAddrs[i]);
    names.push(rawNames[i]);
    modules.push(rawModules[i]);
  }
  return { addrs: BigUint64Array.from(addrs), names, modules };
}

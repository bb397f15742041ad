import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireInt, type DecoderFactory } from './field.js';
import { naturalIntReader } from './int.js';

/** A miss re-scans /sys/class/net at most this often: a host with many veths has many files. */
export const IFNAME_RESCAN_MS = 1000;

/**
 * ifname: an interface index -> its name, from env.ifname (by default /sys/class/net). Unknown
 * indexes (gone interfaces, garbage) print as the number, or with `style: ebpf_exporter` as
 * theirs, `unknown:<n>`.
 */
export const createIfnameDecoder: DecoderFactory = (field, spec, ctx) => {
  const read = naturalIntReader(requireInt('ifname', field));
  const prefix = spec.style === 'ebpf_exporter' ? 'unknown:' : '';
  return {
    name: 'ifname',
    decode(buf, offset) {
      const index = read(buf, offset);
      let name: string | undefined;
      if (typeof index === 'number' && index > 0) {
        try {
          name = ctx.ifname(index);
        } catch {
          name = undefined; // an injected source that throws is a miss, not a failed scrape
        }
      }
      return name ?? `${prefix}${index}`;
    },
    provisional: (label) => label.startsWith(prefix) && /^-?\d+$/.test(label.slice(prefix.length)),
  };
};

/**
 * The default env.ifname: index -> name from `<dir>/<name>/ifindex`, scanned on a miss (at most
 * every IFNAME_RESCAN_MS) into a map that each scan replaces, holding at most `cacheSize` entries.
 * Replacing rather than merging keeps a reused index from answering with a deleted interface.
 */
export function sysfsIfname(dir: string, cacheSize: number, now: () => number): (index: number) => string | undefined {
  let names = new Map<number, string>();
  let scannedAt = Number.NEGATIVE_INFINITY;
  return (index) => {
    const hit = names.get(index);
    if (hit !== undefined || now() - scannedAt < IFNAME_RESCAN_MS) return hit;
    scannedAt = now();
    names = scan(dir, cacheSize);
    return names.get(index);
  };
}

function scan(dir: string, cacheSize: number): Map<number, string> {
  const names = new Map<number, string>();
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return names;
  }
  for (const name of entries) {
    if (names.size >= cacheSize) break;
    try {
      const index = Number(readFileSync(join(dir, name, 'ifindex'), 'utf8').trim());
      if (Number.isSafeInteger(index)) names.set(index, name);
    } catch {
      // Removed between readdir and read, or not an interface: skip it.
    }
  }
  return names;
}

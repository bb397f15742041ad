import { BpfMap, mapIds } from '../src/bpf/map.js';
import { BatchReader } from '../src/bpf/batch.js';
import { BpfError, Errno } from '../src/bpf/errors.js';
import { isArrayLike } from '../src/bpf/map-types.js';

export interface MapRow {
  id: number;
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** Entries counted by a batch read; null when the map cannot be iterated (ring buffers, ...). */
  entries: number | null;
  method: string | null;
}

/** Every map on the host with its entry count, read through batch lookups on read-only fds. */
export function listMaps(): MapRow[] {
  const rows: MapRow[] = [];
  for (const id of mapIds()) {
    let map: BpfMap;
    try {
      map = BpfMap.openById(id);
    } catch (e) {
      if (e instanceof BpfError && e.errno === Errno.ENOENT) continue; // gone since listed
      throw e;
    }
    try {
      const { info } = map;
      let entries: number | null = null;
      let method: string | null = null;
      if (isArrayLike(info.type)) {
        entries = info.maxEntries;
      } else {
        try {
          const stats = new BatchReader(map, { batchSize: 1024 }).forEach('read', () => {});
          entries = stats.entries;
          method = stats.method;
        } catch (e) {
          if (!(e instanceof BpfError)) throw e;
        }
      }
      rows.push({ id, name: info.name, type: info.typeName, keySize: info.keySize, valueSize: info.valueSize, maxEntries: info.maxEntries, flags: info.flags, entries, method });
    } finally {
      map.close();
    }
  }
  return rows;
}

export function formatMapTable(rows: MapRow[]): string {
  const head = ['ID', 'NAME', 'TYPE', 'KEY', 'VALUE', 'ENTRIES', 'MAX', 'FILL'];
  const body = rows.map((r) => [
    String(r.id), r.name, r.type, String(r.keySize), String(r.valueSize),
    r.entries === null ? '-' : String(r.entries), String(r.maxEntries),
    r.entries === null || r.maxEntries === 0 ? '-' : `${((100 * r.entries) / r.maxEntries).toFixed(1)}%`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  return [head, ...body].map((cols) => cols.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

import { readFileSync } from 'node:fs';
import { BpfMap, mapIds } from './map.js';
import { BatchReader } from './batch.js';
import { BpfError, Errno } from './errors.js';
import { isArrayLike } from './map-types.js';
import { programIds, programInfoById, type ProgramInfo } from './program.js';
import { nextTurn } from '../util/slices.js';

/** One map of the host, as the inventory sees it. */
export interface InventoryRow {
  id: number;
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** Entries counted by a batch read; null when the map cannot be iterated (ring buffers, ...). */
  entries: number | null;
  /** How the entries were counted: batch, per-key, or null (array-like maps hold max_entries). */
  method: string | null;
  /** The kernel's memlock accounting of the map (/proc/self/fdinfo), in bytes. */
  memlockBytes: number | null;
}

function memlock(fd: number): number | null {
  try {
    const m = /^memlock:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/**
 * Every BPF map on the host (needs CAP_SYS_ADMIN to list ids), each opened read-only and counted
 * with batch reads. A map that vanishes while listed is skipped.
 */
export function inventory(opts: { batchSize?: number } = {}): InventoryRow[] {
  return [...inventoryRows(opts)];
}

/** Maps listed between two turns of the event loop in inventoryAsync. */
const MAPS_PER_TURN = 50;

/**
 * The inventory as the daemon takes it: it gives the event loop a turn every MAPS_PER_TURN maps, so
 * that /healthz and scrapes answer while thousands of maps are counted (a synchronous inventory of
 * 2,000 maps held them up to 124 ms).
 */
export async function inventoryAsync(opts: { batchSize?: number } = {}): Promise<InventoryRow[]> {
  const rows: InventoryRow[] = [];
  for (const row of inventoryRows(opts)) {
    rows.push(row);
    if (rows.length % MAPS_PER_TURN === 0) await nextTurn();
  }
  return rows;
}

function* inventoryRows(opts: { batchSize?: number }): Generator<InventoryRow> {
  for (const id of mapIds()) {
    let map: BpfMap;
    try {
      map = BpfMap.openById(id);
    } catch (e) {
      if (e instanceof BpfError && e.errno === Errno.ENOENT) continue;
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
          const stats = new BatchReader(map, { batchSize: opts.batchSize ?? 1024 }).forEach('read', () => {});
          entries = stats.entries;
          method = stats.method;
        } catch (e) {
          // Maps without lookups (ring buffers, queues, struct_ops...) have no entries to count.
          if (!(e instanceof BpfError)) throw e;
        }
      }
      yield {
        id, name: info.name, type: info.typeName, keySize: info.keySize, valueSize: info.valueSize,
        maxEntries: info.maxEntries, flags: info.flags, entries, method, memlockBytes: memlock(map.fd),
      };
    } finally {
      map.close();
    }
  }
}

/** One program of the host, as the inventory sees it (run time and count stay 0 while BPF stats are off). */
export type ProgramRow = Pick<ProgramInfo, 'id' | 'name' | 'typeName' | 'tag' | 'runTimeNs' | 'runCount' | 'recursionMisses'>;

/**
 * Every BPF program on the host (needs CAP_SYS_ADMIN), each opened by id for its info and closed; a
 * program that goes away while listed is skipped. Like inventoryAsync, it gives the event loop a turn
 * every MAPS_PER_TURN programs.
 */
export async function programInventoryAsync(): Promise<ProgramRow[]> {
  const rows: ProgramRow[] = [];
  for (const id of programIds()) {
    const info = programInfoById(id);
    if (info === undefined) continue;
    rows.push({ id: info.id, name: info.name, typeName: info.typeName, tag: info.tag, runTimeNs: info.runTimeNs, runCount: info.runCount, recursionMisses: info.recursionMisses });
    if (rows.length % MAPS_PER_TURN === 0) await nextTurn();
  }
  return rows;
}

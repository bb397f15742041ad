import type { InventoryRow } from '../src/bpf/inventory.js';

export function formatMapTable(rows: InventoryRow[]): string {
  const head = ['ID', 'NAME', 'TYPE', 'KEY', 'VALUE', 'ENTRIES', 'MAX', 'FILL', 'MEMLOCK'];
  const body = rows.map((r) => [
    String(r.id), r.name, r.type, String(r.keySize), String(r.valueSize),
    r.entries === null ? '-' : String(r.entries), String(r.maxEntries),
    r.entries === null || r.maxEntries === 0 ? '-' : `${((100 * r.entries) / r.maxEntries).toFixed(1)}%`,
    r.memlockBytes === null ? '-' : String(r.memlockBytes),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  return [head, ...body].map((cols) => cols.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/**
 * A command's whole output reaches a reader that is slow to start, through a pipe: `dump --format
 * json | jq` of a large map used to receive 64 or 128 KiB of several MB and exit 0, because the exit
 * path called process.exit() before stdout had drained.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BpfMap } from '../../../src/bpf/map.js';
import { MapType } from '../../../src/bpf/map-types.js';
import { kernelDescribe, pinDir } from '../support.js';

const ENTRIES = 20_000;

kernelDescribe('output through a pipe', () => {
  let pins: string;
  let dir: string;
  let map: BpfMap;

  beforeAll(() => {
    pins = pinDir('output-pipe');
    dir = mkdtempSync(join(tmpdir(), 'bme-pipe-'));
    map = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: ENTRIES });
    const keys = Buffer.alloc(4 * ENTRIES);
    const values = Buffer.alloc(8 * ENTRIES);
    for (let i = 0; i < ENTRIES; i++) {
      keys.writeUInt32LE(i, 4 * i);
      values.writeBigUInt64LE(BigInt(i + 1), 8 * i);
    }
    map.updateBatch(keys, values, ENTRIES);
    map.pin(`${pins}/big`);
    writeFileSync(
      join(dir, 'big.yaml'),
      `maps:\n  - name: big\n    source: { pinned: ${pins}/big }\n    key: [ { name: k, type: u32 } ]\n    value: [ { name: v, type: u64 } ]\n    metrics:\n      - { name: big_total, type: counter, help: h, value: v, max_series: 100000, labels: [ { name: k, from: k } ] }\n`,
    );
  });

  afterAll(() => {
    map?.close();
    rmSync(pins, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('dump --format json reaches a reader that starts late, all of it, exit 0', () => {
    const main = new URL('../../../exporter/main.ts', import.meta.url).pathname;
    // The reader sleeps before it reads: the pipe fills, and the exporter has to wait for it.
    const script = `"${process.execPath}" --import tsx "${main}" dump --config "${join(dir, 'big.yaml')}" --format json | (sleep 1; cat)`;
    const r = spawnSync('bash', ['-o', 'pipefail', '-c', script], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(256 * 1024);
    const rows = JSON.parse(r.stdout) as { labels: Record<string, string>; value: number }[];
    expect(rows.length).toBe(ENTRIES);
    expect(rows.reduce((n, x) => n + x.value, 0)).toBe((ENTRIES * (ENTRIES + 1)) / 2);
  }, 60_000);
});

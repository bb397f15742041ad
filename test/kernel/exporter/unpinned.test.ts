/**
 * A pinned map whose last pin is removed: only the exporter's fd kept it alive, so it stayed
 * `map_up 1` with its last series exported forever. Now the cycle fails with ENOENT (map_up 0) and
 * the series go; a drain job first takes what is left in the map.
 */
import { rmSync } from 'node:fs';
import { Registry } from 'prom-client';
import { afterAll, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/parse.js';
import { Daemon } from '../../../src/collect/daemon.js';
import { ExpositionCache } from '../../../src/publish/prometheus.js';
import { SelfMetrics } from '../../../src/publish/self-metrics.js';
import { BpfMap } from '../../../src/bpf/map.js';
import { MapType } from '../../../src/bpf/map-types.js';
import { kernelDescribe, pinDir } from '../support.js';

kernelDescribe('a map whose pin is removed', () => {
  const pins = pinDir('unpinned');
  const maps: BpfMap[] = [];
  afterAll(() => {
    for (const m of maps) m.close();
    rmSync(pins, { recursive: true, force: true });
  });

  function pinned(name: string, value: number): BpfMap {
    const m = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 4 });
    const v = Buffer.alloc(8);
    v.writeBigUInt64LE(BigInt(value));
    m.update(Buffer.from([1, 0, 0, 0]), v);
    m.pin(`${pins}/${name}`);
    maps.push(m);
    return m;
  }

  const until = async (what: () => Promise<boolean>) => {
    for (let i = 0; i < 100 && !(await what()); i++) await new Promise((r) => setTimeout(r, 50));
  };

  it('stops exporting a read job\'s series and says map_up 0 (ENOENT); a drain job keeps its totals, drained to the end', async () => {
    pinned('read', 7);
    const drained = pinned('drain', 5);
    const metric = (job: string, mode: string) =>
      `  - name: ${job}\n    mode: ${mode}\n    source: { pinned: ${pins}/${job} }\n    key: [ { name: k, type: u32 } ]\n    value: [ { name: v, type: u64 } ]\n    metrics:\n      - { name: ${job}_total, type: counter, help: h, value: v, labels: [ { name: k, from: k } ] }\n`;
    const config = parseConfig(`interval: 100ms\nmaps:\n${metric('read', 'read')}${metric('drain', 'drain')}`, 'test.yaml');
    const registry = new Registry();
    const exposition = new ExpositionCache(registry);
    const daemon = new Daemon(config, { exposition, self: new SelfMetrics(registry, { version: 't', inventory: false }), inventory: false });
    daemon.start();
    const text = async () => (await exposition.render('text', false)).toString();
    try {
      await until(async () => (await text()).includes('read_total{k="1"} 7') && (await text()).includes('drain_total{k="1"} 5'));
      expect(await text()).toMatch(/^bpf_map_exporter_map_up\{map="read"\} 1$/m);
      // The program adds 3 more, then goes away with its pins.
      const v = Buffer.alloc(8);
      v.writeBigUInt64LE(3n);
      drained.update(Buffer.from([1, 0, 0, 0]), v);
      rmSync(`${pins}/read`);
      rmSync(`${pins}/drain`);
      await until(async () => /^bpf_map_exporter_map_up\{map="read"\} 0$/m.test(await text()) && /^bpf_map_exporter_map_up\{map="drain"\} 0$/m.test(await text()));
      const after = await text();
      expect(after).toMatch(/^bpf_map_exporter_map_up\{map="read"\} 0$/m);
      expect(after).toMatch(/^bpf_map_exporter_map_read_errors_total\{errno="ENOENT",map="read"\} [1-9]/m);
      expect(after).not.toContain('read_total{k="1"}');
      expect(after).toContain('drain_total{k="1"} 8');
    } finally {
      await daemon.stop();
    }
  });
});

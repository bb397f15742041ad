/**
 * `inventory:` follows the config across reloads: a reload that turns it off takes the inventory's
 * series away (run.ts used to read it once, at start, so it stayed on).
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

kernelDescribe('a reload and the inventory', () => {
  const pins = pinDir('reload-inventory');
  const map = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 4, name: 'reload_inv' });
  map.pin(`${pins}/m`);
  afterAll(() => {
    map.close();
    // The pin keeps the map alive after the process: every run left one behind.
    rmSync(pins, { recursive: true, force: true });
  });

  const config = (inventory: boolean) =>
    parseConfig(
      `interval: 200ms\ninventory: ${inventory}\nmaps:\n  - name: m\n    source: { pinned: ${pins}/m }\n    key: [ { name: k, type: u32 } ]\n    value: [ { name: v, type: u64 } ]\n    metrics:\n      - { name: m_total, type: counter, help: h, value: v, labels: [ { name: k, from: k } ] }\n`,
      'test.yaml',
    );

  async function until(what: () => Promise<boolean>): Promise<void> {
    for (let i = 0; i < 100 && !(await what()); i++) await new Promise((r) => setTimeout(r, 50));
  }

  it('starts with the inventory when the config asks, and drops it when a reload says inventory: false', async () => {
    const registry = new Registry();
    const self = new SelfMetrics(registry, { version: 't', inventory: true });
    const daemon = new Daemon(config(true), { exposition: new ExpositionCache(registry), self, inventory: false });
    daemon.start();
    try {
      const text = () => registry.metrics();
      await until(async () => (await text()).includes('name="reload_inv"'));
      expect(await text()).toMatch(/bpf_map_info\{[^}]*name="reload_inv"/);
      await daemon.reload(config(false));
      await new Promise((r) => setTimeout(r, 500));
      const after = await text();
      expect(after).not.toMatch(/^bpf_map_info\{/m);
      expect(after).not.toMatch(/^bpf_map_exporter_inventory_up /m);
      expect(after).toMatch(/^bpf_map_exporter_map_up\{map="m"\} 1$/m);
      await daemon.reload(config(true));
      await until(async () => (await text()).includes('name="reload_inv"'));
      expect(await text()).toMatch(/bpf_map_info\{[^}]*name="reload_inv"/);
    } finally {
      await daemon.stop();
    }
  });
});

/**
 * The exporter flags Prometheus exporters share, on the real daemon: --web.telemetry-path,
 * --web.disable-exporter-metrics (process_* and nodejs_* left out, the exporter's own kept) and
 * --web.listen-address given more than once.
 */
import { expect, it } from 'vitest';
import { kernelDescribe } from '../support.js';
import { spawnExporter } from '../../e2e/support.js';

kernelDescribe('exporter flags', () => {
  it('serves at --web.telemetry-path without process metrics under --web.disable-exporter-metrics', async () => {
    const e = await spawnExporter('', { configArgs: [], args: ['--web.telemetry-path', '/bpf/metrics', '--web.disable-exporter-metrics'] });
    try {
      let text = '';
      for (let i = 0; i < 100; i++) {
        const r = await fetch(`${e.base}/bpf/metrics`);
        text = await r.text();
        if (r.status === 200 && text.includes('bpf_map_exporter_')) break;
        await new Promise((r2) => setTimeout(r2, 50));
      }
      expect(text).toContain('bpf_map_exporter_inventory_up');
      expect(text).not.toMatch(/^(process|nodejs)_/m);
      expect((await fetch(`${e.base}/metrics`)).status).toBe(404);
    } finally {
      expect(await e.stop()).toBe(0);
    }
  });

  it('listens on every --web.listen-address given, each serving the same document', async () => {
    // spawnExporter adds --web.listen-address 127.0.0.1:0; 127.0.0.2 is loopback too.
    const e = await spawnExporter('', { configArgs: [], args: ['--web.listen-address', '127.0.0.2:0'] });
    try {
      for (let i = 0; i < 100 && (e.log().match(/"msg":"listening"/g) ?? []).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      const addresses = [...e.log().matchAll(/"address":"([\d.]+:\d+)"[^\n]*"msg":"listening"/g)].map((m) => m[1]);
      expect(addresses.map((a) => a.split(':')[0])).toEqual(['127.0.0.1', '127.0.0.2']);
      for (const a of addresses) expect((await fetch(`http://${a}/healthz`)).status).toBe(200);
      const [one, two] = await Promise.all(addresses.map(async (a) => (await fetch(`http://${a}/metrics`)).text()));
      expect(one).toContain('bpf_map_exporter_inventory_up');
      expect(two).toContain('bpf_map_exporter_inventory_up');
    } finally {
      expect(await e.stop()).toBe(0);
    }
  });
});

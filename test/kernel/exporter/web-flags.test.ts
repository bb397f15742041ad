/**
 * The exporter flags Prometheus exporters share, on the real daemon: --web.telemetry-path and
 * --web.disable-exporter-metrics (process_* and nodejs_* left out, the exporter's own kept).
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
});

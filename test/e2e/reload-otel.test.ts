/**
 * A reload that changes the otel section: OTLP export keeps the settings it started with, and the
 * exporter says so in its log (once per such reload), rather than silently exporting to the old
 * collector. A reload that writes the same settings in another order says nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep, startExporter } from './support.js';

const WARNING = 'the otel section changed';

describe('reloading the otel section', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-reload-otel-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('warns that a changed otel section takes effect at the next start, and only when it changed', async () => {
    const config = join(dir, 'config.yaml');
    // A collector nobody listens on: the export fails quietly in the background, which is not tested here.
    writeFileSync(config, 'interval: 1s\nmaps: []\notel: { endpoint: http://127.0.0.1:9, timeout: 1s, interval: 60s }\n');
    const exporter = await startExporter(config);
    const reloaded = async (n: number) => {
      exporter.proc.kill('SIGHUP');
      for (let i = 0; i < 100 && exporter.log().split('config reloaded').length - 1 < n; i++) await sleep(50);
      expect(exporter.log().split('config reloaded').length - 1).toBe(n);
    };
    const warnings = () => exporter.log().split(WARNING).length - 1;
    try {
      // The same settings, in another order: nothing to say.
      writeFileSync(config, 'interval: 1s\nmaps: []\notel: { interval: 60s, timeout: 1s, endpoint: http://127.0.0.1:9 }\n');
      await reloaded(1);
      expect(warnings()).toBe(0);
      // Another endpoint: said once.
      writeFileSync(config, 'interval: 1s\nmaps: []\notel: { endpoint: http://127.0.0.1:10, timeout: 1s, interval: 60s }\n');
      await reloaded(2);
      expect(warnings()).toBe(1);
      expect(exporter.log()).toMatch(/"level":"warn".*OTLP export keeps the settings it started with until the exporter restarts/);
    } finally {
      expect(await exporter.stop()).toBe(0);
    }
  }, 60_000);
});

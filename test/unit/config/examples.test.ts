import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../../src/config/parse.js';

const examples = fileURLToPath(new URL('../../../config/examples/', import.meta.url));

describe('config/examples', () => {
  const files = readdirSync(examples).filter((f) => f.endsWith('.yaml'));

  it('has a .bpf.c beside every example config that loads an object of its own', () => {
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const config = loadConfig(`${examples}${f}`);
      for (const m of config.maps) {
        if (!('object' in m.source)) continue;
        const source = m.source.object.replace(/\.o$/, '.c');
        expect(readdirSync(examples).map((x) => `${examples}${x}`), `${f}: ${m.name}`).toContain(source);
      }
    }
  });

  it('parses every example, and config/default.yaml, without a problem', () => {
    for (const f of [...files.map((x) => `${examples}${x}`), fileURLToPath(new URL('../../../config/default.yaml', import.meta.url))]) {
      expect(() => loadConfig(f), f).not.toThrow();
    }
  });
});

describe('config/examples/all.yaml', () => {
  it('holds every example that needs no setting, each map exactly as in its own file', () => {
    const strip = (m: object) => JSON.parse(JSON.stringify(m, (k, v: unknown) => (k === 'at' || k === 'interval' ? undefined : v))) as unknown;
    const all = loadConfig(`${examples}all.yaml`);
    expect(all.inventory).toBe(true);
    const own = readdirSync(examples)
      .filter((f) => f.endsWith('.yaml') && f !== 'all.yaml')
      .flatMap((f) => loadConfig(`${examples}${f}`).maps)
      .filter((m) => !('object' in m.source && m.source.xdp !== undefined));
    expect(all.maps.map((m) => m.name).sort()).toEqual(own.map((m) => m.name).sort());
    for (const m of all.maps) expect(strip(m), m.name).toEqual(strip(own.find((o) => o.name === m.name)!));
  });
});

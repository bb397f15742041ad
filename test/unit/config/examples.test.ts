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

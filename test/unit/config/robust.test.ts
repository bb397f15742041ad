import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../../src/config/parse.js';
import { ConfigErrors } from '../../../src/yaml/errors.js';

const example = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'design-example.yaml'), 'utf8');

/** Parses, or fails with ConfigErrors whose every line is `c.yaml:LINE:COLUMN: ...` inside the text. */
function parsesOrExplains(text: string): void {
  try {
    parseConfig(text, 'c.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigErrors);
    const lines = text.split('\n').length;
    for (const err of (e as ConfigErrors).errors) {
      expect(err.message).toMatch(/^c\.yaml:\d+:\d+: [^\n]+$/);
      expect(err.line).toBeGreaterThanOrEqual(1);
      expect(err.line).toBeLessThanOrEqual(lines);
      expect(err.message).not.toContain('[object');
    }
  }
}

it('answers any text with a config or one-line problems, never another exception', () => {
  fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...'ab: -[]{},\n "\'#&*!|>0123456789.'.split('')) }), parsesOrExplains), { numRuns: 500 });
});

it('answers any value put anywhere in a valid config with a config or one-line problems', () => {
  const base = parse(example) as Record<string, unknown>;
  const paths: (string | number)[][] = [
    ['interval'], ['maps'], ['maps', 0], ['maps', 0, 'source'], ['maps', 0, 'source', 'id'], ['maps', 0, 'key'], ['maps', 0, 'key', 0, 'type'],
    ['maps', 0, 'metrics', 0], ['maps', 0, 'metrics', 0, 'labels', 1, 'decoder'], ['maps', 1, 'metrics', 0, 'buckets'],
    ['maps', 1, 'metrics', 0, 'buckets', 'kind'], ['maps', 1, 'metrics', 0, 'labels', 0, 'map'], ['maps', 0, 'metrics', 1, 'scale'],
  ];
  fc.assert(
    fc.property(fc.constantFrom(...paths), fc.jsonValue(), (path, value) => {
      const config = structuredClone(base);
      let node = config as Record<string | number, unknown>;
      for (const p of path.slice(0, -1)) node = node[p] as Record<string | number, unknown>;
      node[path[path.length - 1]] = value;
      parsesOrExplains(stringify(config));
    }),
    { numRuns: 500 },
  );
});

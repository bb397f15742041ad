import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA, REGENERATE_SCHEMA, renderJsonSchema } from '../../../src/config/schema.js';
import { parseDuration, type Shape } from '../../../src/yaml/shapes.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');

describe('config/schema.json', () => {
  it('is what renderJsonSchema() makes of src/config/schema.ts', () => {
    const committed = readFileSync(join(root, 'config/schema.json'), 'utf8');
    expect(committed === renderJsonSchema(), `config/schema.json is stale; regenerate it with:\n  ${REGENERATE_SCHEMA}`).toBe(true);
  });

  it('is draft 2020-12 and closed: unknown keys are refused as the parser refuses them', () => {
    const schema = JSON.parse(renderJsonSchema()) as { $schema: string; additionalProperties: boolean; properties: Record<string, unknown> };
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toEqual(Object.keys(CONFIG_SCHEMA.props));
    const objects: string[] = [];
    const visit = (s: Shape, path: string): void => {
      if (s.type === 'list') visit(s.items, `${path}[]`);
      if (s.type !== 'object') return;
      objects.push(path);
      for (const [k, p] of Object.entries(s.props)) visit(p.shape, `${path}.${k}`);
    };
    visit(CONFIG_SCHEMA, '');
    expect(objects).toEqual(['', '.maps[]', '.maps[].source', '.maps[].source.tc', '.maps[].source.perf_event', '.maps[].key[]', '.maps[].value[]', '.maps[].metrics[]', '.maps[].metrics[].labels[]', '.maps[].metrics[].buckets', '.maps[].seed', '.maps[].seed.entries[]', '.maps[].seed.cgroups', '.maps[].events', '.maps[].spans', '.maps[].spans.labels[]', '.otel']);
    expect(renderJsonSchema().match(/"additionalProperties": false/g)).toHaveLength(objects.length);
  });
});

describe('durations', () => {
  it('add up their parts, in milliseconds', () => {
    fc.assert(
      fc.property(fc.nat(100), fc.nat(100), fc.nat(100), fc.nat(1000), (h, m, s, ms) => {
        fc.pre(h + m + s + ms > 0);
        const text = `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}${ms > 0 ? `${ms}ms` : ''}`;
        expect(parseDuration(text)).toBe(((h * 60 + m) * 60 + s) * 1000 + ms);
      }),
    );
  });

  it('are refused without a unit, with units out of order, or at zero', () => {
    for (const t of ['15', 's', '5sec', '1s1m', '1m1h', '5 s', '-1s', '']) expect(parseDuration(t)).toMatch(/^invalid duration/);
    expect(parseDuration('0s')).toBe('duration "0s" is less than 1ms, expected at least 1ms');
  });
});

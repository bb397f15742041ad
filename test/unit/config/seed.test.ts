import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/parse.js';
import { problems } from './support.js';

const head = `maps:
  - name: filter
    source: { pinned: /sys/fs/bpf/filter }
    key: [ { name: pid, type: u32 } ]
    value: [ { name: on, type: u64 } ]
`;

describe('seed: entries a job writes into its map', () => {
  it('parses entries, flags, lock and cgroups, with defaults; a seeding job needs no metrics', () => {
    const c = parseConfig(`${head}    seed:
      entries:
        - { key: { pid: 1 }, value: { on: 1 } }
        - key: { pid: 0x10 }
      cgroups: { match: [ '^/system\\.slice/' ] }
`, 'c.yaml');
    const seed = c.maps[0].seed!;
    expect(seed.flags).toBe('any');
    expect(seed.lock).toBe(false);
    expect(seed.entries!.map((e) => [e.key, e.value])).toEqual([[{ pid: '1' }, { on: '1' }], [{ pid: '0x10' }, undefined]]);
    expect(seed.entries![1].at).toEqual({ file: 'c.yaml', line: 9, column: 11 });
    expect(seed.cgroups).toMatchObject({ match: ['^/system\\.slice/'], paths: 'relative' });
    expect(c.maps[0].metrics).toEqual([]);
  });

  it('refuses what cannot be seeded, one positioned line each', () => {
    expect(problems(`${head}    seed: { flags: never, entries: [ { value: { on: 1 } } ] }
    metrics: [ { name: m_total, type: counter, help: M, value: on } ]
`)).toEqual([
      'config.yaml:6:20: maps[0].seed.flags: unknown value "never", expected one of any, noexist, exist',
      'config.yaml:6:38: maps[0].seed.entries[0]: missing required key "key"',
    ]);
    expect(problems(`${head}    seed: { lock: true }
`)).toEqual(['config.yaml:6:11: maps[0].seed: a seed writes nothing, expected entries:, cgroups: or both']);
    expect(problems(`${head}    mode: drain
    seed: { entries: [ { key: { pid: 1 } } ] }
    metrics: [ { name: m_total, type: counter, help: M, value: on } ]
`)).toEqual(['config.yaml:7:11: maps[0].seed: a drained map loses its seeded entries at the first drain, expected mode: read (or no seed)']);
    expect(problems(head)).toEqual(['config.yaml:2:5: maps[0]: missing required key "metrics"']);
    expect(problems(`${head}    seed: { cgroups: { match: [ '(' ] } }
`)).toEqual(['config.yaml:6:33: maps[0].seed.cgroups.match[0]: invalid regular expression "(": Unterminated group, expected a JavaScript regular expression']);
  });
});

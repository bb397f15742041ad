import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../../src/config/parse.js';
import { ConfigError, ConfigErrors } from '../../../src/yaml/errors.js';
import type { Config } from '../../../src/config/types.js';
import { problems } from './support.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');

/** A value without its `at` positions and `where`, for comparing the data alone. */
function withoutPositions(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutPositions);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([k, v]) => k !== 'at' && typeof v !== 'function').map(([k, v]) => [k, withoutPositions(v)]));
}

const MINIMAL_MAP = `
maps:
  - name: m
    source: { pinned: /sys/fs/bpf/m }
    metrics:
      - { name: m_total, type: counter, help: M, value: v }
`;

describe('the DESIGN.md example config', () => {
  // A verbatim copy of the example in DESIGN.md's "The configuration".
  const file = join(here, 'design-example.yaml');
  const config = loadConfig(file);

  it('parses to the expected values, defaults applied and durations in milliseconds', () => {
    expect(withoutPositions(config)).toEqual({
      file,
      interval: 15_000,
      state_sync: 'cycle',
      max_series: 10_000,
      inventory: false,
      maps: [
        {
          name: 'syscalls',
          source: { pinned: '/sys/fs/bpf/syscall_counts' },
          mode: 'read',
          interval: 5000,
          batch_size: 4096,
          batch: true,
          key: [{ name: 'pid', type: 'u32' }, { name: 'nr', type: 'u32' }],
          value: [{ name: 'calls', type: 'u64' }, { name: 'ns', type: 'u64' }],
          metrics: [
            {
              name: 'syscalls_total',
              type: 'counter',
              help: 'System calls by process and syscall',
              value: 'calls',
              cpu: 'sum',
              scale: 1,
              labels: [{ name: 'pid', from: 'pid' }, { name: 'syscall', from: 'nr', decoder: 'syscall' }],
              max_series: 10_000,
            },
            {
              name: 'syscall_time_seconds_total',
              type: 'counter',
              help: 'Time spent in system calls',
              value: 'ns',
              cpu: 'sum',
              scale: 1e-9,
              labels: [{ name: 'syscall', from: 'nr', decoder: 'syscall' }],
              max_series: 10_000,
            },
          ],
        },
        {
          name: 'io',
          source: { pinned: '/sys/fs/bpf/io_latency' },
          mode: 'read',
          interval: 15_000,
          batch_size: 4096,
          batch: true,
          key: [{ name: 'op', type: 'u32' }, { name: 'slot', type: 'u32' }],
          value: [{ name: 'count', type: 'u64' }],
          metrics: [
            {
              name: 'io_latency_seconds',
              type: 'histogram',
              help: 'IO latency',
              value: 'count',
              cpu: 'sum',
              scale: 1,
              buckets: { from: 'slot', kind: 'exp2', min: 0, max: 27, multiplier: 1e-6 },
              labels: [{ name: 'op', from: 'op', decoder: 'static_map', map: { 0: 'read', 1: 'write' } }],
              max_series: 10_000,
            },
          ],
        },
      ],
    });
  });

  it('keeps where each part is written', () => {
    const [syscalls, io] = config.maps;
    expect(syscalls.at).toEqual({ file, line: 3, column: 5 });
    expect(syscalls.key?.[1].at).toEqual({ file, line: 12, column: 9 });
    expect(syscalls.metrics[1].at).toEqual({ file, line: 25, column: 9 });
    expect(syscalls.metrics[1].labels[0].at).toEqual({ file, line: 30, column: 19 });
    expect(io.value?.[0].at).toEqual({ file, line: 34, column: 14 });
    expect(io.metrics[0].buckets?.at).toEqual({ file, line: 40, column: 18 });
    expect(io.metrics[0].labels[0].at).toEqual({ file, line: 42, column: 13 });
  });
});

describe('defaults', () => {
  it('fills every default of a minimal map', () => {
    const c = parseConfig(MINIMAL_MAP, 'config.yaml');
    expect(withoutPositions(c)).toEqual({
      file: 'config.yaml',
      interval: 15_000,
      state_sync: 'cycle',
      max_series: 10_000,
      inventory: false,
      maps: [
        {
          name: 'm',
          source: { pinned: '/sys/fs/bpf/m' },
          mode: 'read',
          interval: 15_000,
          batch_size: 4096,
          batch: true,
          metrics: [{ name: 'm_total', type: 'counter', help: 'M', value: 'v', cpu: 'sum', scale: 1, labels: [], max_series: 10_000 }],
        },
      ],
    });
    // Key and value stay unset: the layout will come from BTF.
    expect(c.maps[0]).not.toHaveProperty('key');
    expect(c.maps[0]).not.toHaveProperty('value');
  });

  it('lets maps inherit the top-level interval and max_series, and override them', () => {
    const c = parseConfig(
      `
interval: 1m30s
max_series: 50
maps:
  - name: a
    source: { id: 7 }
    metrics: [ { name: a, type: gauge, help: A, value: v } ]
  - name: b
    source: { name: b_map }
    interval: 500ms
    metrics: [ { name: b, type: gauge, help: B, value: v, max_series: 3 } ]
`,
      'config.yaml',
    );
    expect(c.interval).toBe(90_000);
    expect(c.maps.map((m) => [m.interval, m.metrics[0].max_series])).toEqual([[90_000, 50], [500, 3]]);
  });

  it('reads an empty file, or one of comments only, as an inventory-only config', () => {
    for (const text of ['', '# nothing here\n']) {
      const c = parseConfig(text, 'empty.yaml');
      expect(withoutPositions(c)).toEqual({ file: 'empty.yaml', interval: 15_000, state_sync: 'cycle', max_series: 10_000, inventory: false, maps: [] });
    }
  });

  it('parses config/default.yaml, which lists no maps', () => {
    const c = loadConfig(join(root, 'config/default.yaml'));
    expect(c.maps).toEqual([]);
    expect(c.interval).toBe(15_000);
  });
});

describe('values', () => {
  it('resolves an object path and the state file relative to the config file', () => {
    const c = parseConfig(
      `
state_file: state/drain.json
maps:
  - name: m
    source: { object: ../bpf/syscalls.bpf.o, map: counts }
    mode: drain
    metrics: [ { name: m_total, type: counter, help: M, value: v } ]
  - name: abs
    source: { object: /opt/bpf/x.bpf.o, map: x }
    metrics: [ { name: x_total, type: counter, help: X, value: v } ]
`,
      '/etc/exporter/config.yaml',
    );
    expect(c.state_file).toBe('/etc/exporter/state/drain.json');
    expect(c.maps[0].source).toEqual({ object: '/etc/bpf/syscalls.bpf.o', map: 'counts' });
    expect(c.maps[0].mode).toBe('drain');
    expect(c.maps[1].source).toEqual({ object: '/opt/bpf/x.bpf.o', map: 'x' });
  });

  it('keeps static label values and static_map keys as text, hex keys as decimal', () => {
    const c = parseConfig(
      `
maps:
  - name: m
    source: { pinned: /sys/fs/bpf/m }
    metrics:
      - name: m_total
        type: counter
        help: M
        value: v
        labels:
          - { name: version, value: 1.0 }
          - { name: enabled, value: true }
          - { name: op, from: op, decoder: static_map, allow_unknown: true, map: { 0: read, 0x10: flush, -1: none, 18446744073709551615: max } }
          - { name: comm, from: comm, decoder: regexp, pattern: "^(nginx|envoy)$" }
`,
      'config.yaml',
    );
    expect(withoutPositions(c.maps[0].metrics[0].labels)).toEqual([
      { name: 'version', value: '1.0' },
      { name: 'enabled', value: 'true' },
      { name: 'op', from: 'op', decoder: 'static_map', allow_unknown: true, map: { 0: 'read', 16: 'flush', '-1': 'none', '18446744073709551615': 'max' } },
      { name: 'comm', from: 'comm', decoder: 'regexp', pattern: '^(nginx|envoy)$' },
    ]);
  });

  it('takes fixed buckets\' min and max from their values', () => {
    const c = parseConfig(
      `
maps:
  - name: m
    source: { pinned: /sys/fs/bpf/m }
    metrics:
      - { name: size_bytes, type: histogram, help: S, value: count, sum: total, buckets: { from: size, kind: fixed, values: [512, 4096, 65536] } }
`,
      'config.yaml',
    );
    expect(withoutPositions(c.maps[0].metrics[0].buckets)).toEqual({ from: 'size', kind: 'fixed', min: 512, max: 65536, multiplier: 1, values: [512, 4096, 65536] });
    expect(c.maps[0].metrics[0].sum).toBe('total');
  });

  it('accepts every field type, and cpu: label without a cpu label written', () => {
    const types = ['u8', 'u16', 'u32', 'u64', 's8', 's16', 's32', 's64', 'be16', 'be32', 'be64', 'char[16]', 'u8[6]', 'pad[3]'];
    const c = parseConfig(
      `
maps:
  - name: m
    source: { pinned: /sys/fs/bpf/m }
    key: [ ${types.map((t, i) => `{ name: f${i}, type: "${t}" }`).join(', ')} ]
    value: [ { name: v, type: u64 } ]
    metrics: [ { name: m_total, type: counter, help: M, value: v, cpu: label, labels: [ { name: f, from: f0 } ] } ]
`,
      'config.yaml',
    );
    expect(c.maps[0].key?.map((f) => f.type)).toEqual(types);
    expect(c.maps[0].metrics[0].cpu).toBe('label');
    expect(c.maps[0].metrics[0].labels.map((l) => l.name)).toEqual(['f']);
  });

  it('leaves references to fields for BTF to check when the layout is not written', () => {
    const c = parseConfig(
      `
maps:
  - name: m
    source: { pinned: /sys/fs/bpf/m }
    key: [ { name: pid, type: u32 } ]
    metrics: [ { name: m_total, type: counter, help: M, value: anything, labels: [ { name: x, from: from_btf } ] } ]
`,
      'config.yaml',
    );
    expect(c.maps[0].metrics[0].value).toBe('anything');
  });
});

describe('where()', () => {
  const text = `interval: 15s
maps:
  - name: m
    source: { pinned: /sys/fs/bpf/m }
    key:
      - { name: pid, type: u32 }
    metrics:
      - name: m_total
        type: counter
        help: M
        value: v
`;
  const c: Config = parseConfig(text, 'c.yaml');
  const at = (line: number, column: number) => ({ file: 'c.yaml', line, column });

  it('points at a scalar value itself', () => {
    expect(c.where(['interval'])).toEqual(at(1, 11));
    expect(c.where(['maps', 0, 'source', 'pinned'])).toEqual(at(4, 23));
    expect(c.where(['maps', 0, 'key', 0, 'type'])).toEqual(at(6, 28));
    expect(c.where(['maps', 0, 'metrics', 0, 'value'])).toEqual(at(11, 16));
  });

  it('points at the key of a list or mapping, and at a list item', () => {
    expect(c.where(['maps', 0, 'key'])).toEqual(at(5, 5));
    expect(c.where(['maps', 0, 'source'])).toEqual(at(4, 5));
    expect(c.where(['maps', 0])).toEqual(at(3, 5));
    expect(c.where(['maps', 0, 'metrics', 0])).toEqual(at(8, 9));
  });

  it('falls back to the nearest written parent', () => {
    expect(c.where(['maps', 0, 'value'])).toEqual(at(3, 5));
    expect(c.where(['maps', 0, 'metrics', 0, 'labels', 2, 'from'])).toEqual(at(8, 9));
    expect(c.where(['maps', 5])).toEqual(at(2, 1));
    expect(c.where([])).toEqual(at(1, 1));
  });
});

describe('errors', () => {
  it('reports every problem at once, in file order, one line each', () => {
    const lines = problems(readFileSync(join(here, 'broken/51-many-problems.yaml'), 'utf8'), 'many.yaml');
    expect(lines).toHaveLength(10);
    const positions = lines.map((l) => l.split(':').slice(1, 3).map(Number));
    expect(positions).toEqual([...positions].sort((a, b) => a[0] - b[0] || a[1] - b[1]));
    expect(lines[0]).toBe('many.yaml:1:11: interval: got the bare number 15, expected a duration: add a unit, e.g. 15s or 15ms');
    expect(lines[2]).toBe('many.yaml:5:11: maps[0].mode: unknown value "drian", expected one of read, drain');
    expect(lines[9]).toBe('many.yaml:19:9: maps[1].metrics[0]: missing required key "buckets", required when type is histogram');
    for (const l of lines) expect(l).not.toMatch(/\n|\[object |\bat .*\.ts:\d/);
  });

  it('carries code, file, position and path on each problem', () => {
    let caught: unknown;
    try {
      parseConfig(MINIMAL_MAP.replace('name: m\n', 'name: m\n    mode: drian\n'), 'config.yaml');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ConfigErrors);
    const all = caught as ConfigErrors;
    expect(all.code).toBe('ERR_CONFIG');
    expect(all.errors).toHaveLength(1);
    const [e] = all.errors;
    expect(e).toBeInstanceOf(ConfigError);
    expect({ code: e.code, file: e.file, line: e.line, column: e.column, path: e.path, detail: e.detail }).toEqual({
      code: 'ERR_CONFIG',
      file: 'config.yaml',
      line: 4,
      column: 11,
      path: 'maps[0].mode',
      detail: 'unknown value "drian", expected one of read, drain',
    });
    expect(all.message).toBe('config.yaml:4:11: maps[0].mode: unknown value "drian", expected one of read, drain');
  });

  it('reports the first YAML mistake alone, with a hint for a bare bracketed type in a flow collection', () => {
    // Two mistakes on two lines: the parser's errors after the first follow from it, so only it is shown.
    expect(problems('interval: 5s\nmaps: [ { name: a, key: [ { name: k, type: u8[4] } ] }\nvalue: [\n')).toEqual([
      'config.yaml:2:46: invalid YAML: Unexpected flow-seq-start at node end (inside { } or [ ], a value with brackets must be quoted: "u8[4]")',
    ]);
    // Quoted, or in block style, the same type is fine as YAML.
    const quoted = 'maps: [ { name: a, source: { id: 1 }, key: [ { name: k, type: "u8[4]" } ], value: [ { name: v, type: u64 } ], metrics: [ { name: a_total, type: counter, help: A, value: v } ] } ]\n';
    expect(problems(quoted)).toEqual([]);
    // No hint where there is nothing to quote.
    expect(problems('interval: 5s\ninterval: 6s\n')).toEqual(['config.yaml:2:1: invalid YAML: Map keys must be unique']);
  });

  it('reports a file it cannot read as one line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-'));
    try {
      const missing = join(dir, 'nope.yaml');
      expect(() => loadConfig(missing)).toThrow(ConfigErrors);
      expect(() => loadConfig(missing)).toThrow(new RegExp(`^${missing}: cannot read: ENOENT$`));
      expect(() => loadConfig(dir)).toThrow(/: cannot read: EISDIR$/);
      const ok = join(dir, 'ok.yaml');
      writeFileSync(ok, MINIMAL_MAP);
      expect(loadConfig(ok).maps[0].name).toBe('m');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses durations without a unit, and accepts each unit', () => {
    expect(problems('interval: 30\n')).toEqual(['config.yaml:1:11: interval: got the bare number 30, expected a duration: add a unit, e.g. 30s or 30ms']);
    const ms = (d: string) => parseConfig(`interval: ${d}\n`, 'c.yaml').interval;
    expect(['500ms', '5s', '1m', '1h', '1m30s', '1.5s', '2h0m1s'].map(ms)).toEqual([500, 5000, 60_000, 3_600_000, 90_000, 1500, 7_201_000]);
  });
});

describe('problem lines', () => {
  it('stay one line when the config quotes back text with control characters', () => {
    const lines = problems('"in\\nterval": 5s\nmaps:\n  - name: m\n    mode: "dr\\tain"\n');
    expect(lines).toEqual([
      'config.yaml:1:1: in\\nterval: unknown key, did you mean "interval"?',
      'config.yaml:3:5: maps[0]: missing required key "source"',
      'config.yaml:3:5: maps[0]: missing required key "metrics"',
      'config.yaml:4:11: maps[0].mode: unknown value "dr\\tain", expected one of read, drain',
    ]);
  });
});

describe('otel, inventory and keep_stale', () => {
  it('parse with durations in milliseconds and string-keyed headers', () => {
    const c = parseConfig(`inventory: true
otel:
  endpoint: http://collector:4318
  protocol: http/json
  headers: { Authorization: Bearer x, x-tenant: 7 }
  interval: 30s
  timeout: 5s
  temporality: delta
maps:
  - name: m
    source: { pinned: /sys/fs/bpf/m }
    keep_stale: 1m
    key: [ { name: k, type: u32 } ]
    value: [ { name: v, type: u64 } ]
    metrics: [ { name: m_total, type: counter, help: h, value: v } ]
`, 'o.yaml');
    expect(c.inventory).toBe(true);
    expect(c.otel).toEqual({ endpoint: 'http://collector:4318', protocol: 'http/json', headers: { Authorization: 'Bearer x', 'x-tenant': '7' }, interval: 30_000, timeout: 5_000, temporality: 'delta' });
    expect(c.maps[0].keep_stale).toBe(60_000);
  });

  it('refuse unknown protocols and keys with positions', () => {
    expect(() => parseConfig('otel: { protocol: udp, endpont: x }\n', 'o.yaml')).toThrow(
      'o.yaml:1:19: otel.protocol: unknown value "udp", expected one of http/protobuf, http/json, grpc\no.yaml:1:24: otel.endpont: unknown key, did you mean "endpoint"?',
    );
  });
});


describe('btf: false', () => {
  const map = (extra: string) => `
maps:
  - name: m
    source: { pinned: /sys/fs/bpf/m }
${extra}    metrics:
      - { name: m_total, type: counter, help: M, value: v }
`;

  it('is kept when the layout is written, and absent unless written', () => {
    const config = parseConfig(map('    btf: false\n    key: [ { name: k, type: u32 } ]\n    value: [ { name: v, type: u64 } ]\n'), 'c.yaml');
    expect(config.maps[0].btf).toBe(false);
    expect('btf' in parseConfig(MINIMAL_MAP, 'c.yaml').maps[0]).toBe(false);
  });

  it('needs key and value written, pointing at btf', () => {
    expect(problems(map('    btf: false\n    value: [ { name: v, type: u64 } ]\n'))).toEqual([
      'config.yaml:5:10: maps[0].btf: btf: false needs the layout written: key is missing, expected key: and value: fields',
    ]);
    expect(problems(map('    btf: false\n'))).toEqual([
      'config.yaml:5:10: maps[0].btf: btf: false needs the layout written: key and value are missing, expected key: and value: fields',
    ]);
  });
});

describe('spans', () => {
  const SPANS = `
maps:
  - name: exec
    source: { object: exec.bpf.o, map: exec_spans }
    interval: 100ms
    key:
      - { name: trace_id, type: "u8[16]" }
      - { name: span_id, type: "u8[8]" }
      - { name: comm, type: "char[16]" }
    spans:
      service: execs
      labels:
        - { name: trace_id, from: trace_id }
        - { name: span_id, from: span_id }
        - { name: comm, from: comm }
      attributes: { team: kernel }
`;

  it('reads a spans job: the name defaults to the job\'s, no value or metrics needed', () => {
    const m = parseConfig(SPANS, '/etc/x/config.yaml').maps[0];
    expect(withoutPositions(m.spans)).toEqual({
      name: 'exec',
      service: 'execs',
      labels: [
        { name: 'trace_id', from: 'trace_id' },
        { name: 'span_id', from: 'span_id' },
        { name: 'comm', from: 'comm' },
      ],
      attributes: { team: 'kernel' },
    });
    expect(m.metrics).toEqual([]);
    expect(m.value).toBeUndefined();
  });

  it('refuses what a ring buffer cannot do, each at its key', () => {
    const text = SPANS.replace('    interval: 100ms\n', '    interval: 100ms\n    mode: drain\n    events: {}\n')
      .replace('        - { name: comm, from: comm }\n', '        - { name: comm, from: comm }\n        - { name: comm, from: nope }\n');
    expect(problems(text)).toEqual([
      'config.yaml:6:11: maps[0].mode: events are counted as they come, not drained, expected mode: read',
      'config.yaml:6:11: maps[0].mode: a ring buffer\'s records are taken as they come, not drained, expected mode: read',
      'config.yaml:7:13: maps[0].events: a job sends its ring buffer\'s records as spans or counts them (events:), not both: a record is read once',
      'config.yaml:18:19: maps[0].spans.labels[3].name: label comm is listed twice, expected each name once',
      'config.yaml:18:31: maps[0].spans.labels[3].from: no key field named nope, expected one of: trace_id, span_id, comm',
    ]);
    expect(problems(SPANS.replace(/ {4}key:\n(?: {6}-.*\n)+/, ''))).toEqual(['config.yaml:7:7: maps[0].spans: spans needs the key written: the fields each record is read as']);
  });
});

describe('histograms of an event field (buckets.of)', () => {
  const EVENTS = `
maps:
  - name: calls
    source: { object: ev.bpf.o, map: ring_calls }
    events: {}
    key: [ { name: comm, type: "char[16]" }, { name: latency_ns, type: u64 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - name: call_latency_seconds
        type: histogram
        help: Latency
        value: n
        labels: [ { name: comm, from: comm } ]
        buckets: { of: latency_ns, kind: exp2, min: 10, max: 30, multiplier: 1.0e-9 }
`;

  it('reads of: as the field observed, a bucket key of its own', () => {
    const b = parseConfig(EVENTS, '/etc/x/config.yaml').maps[0].metrics[0].buckets;
    expect(withoutPositions(b)).toEqual({ from: 'latency_ns', observe: true, kind: 'exp2', min: 10, max: 30, multiplier: 1e-9 });
  });

  it('refuses of: outside an events job, beside from:, on a field that is not an integer, twice, or with a label or sum on it', () => {
    expect(problems(EVENTS.replace('    events: {}\n', ''))).toEqual([
      'config.yaml:13:24: maps[0].metrics[0].buckets.of: of observes one value an event, for jobs that count events (events:); a histogram of a map reads its bucket from a key field, expected from:',
    ]);
    expect(problems(EVENTS.replace('{ of: latency_ns,', '{ of: latency_ns, from: comm,'))).toEqual([
      'config.yaml:14:20: maps[0].metrics[0].buckets.of: conflicts with from, expected exactly one of from, of',
    ]);
    expect(problems(EVENTS.replace('{ of: latency_ns,', '{ of: comm,').replace('labels: [ { name: comm, from: comm } ]', 'labels: []'))).toEqual([
      'config.yaml:14:24: maps[0].metrics[0].buckets.of: field comm is a char[16], expected an integer field to observe',
    ]);
    expect(problems(EVENTS.replace('labels: [ { name: comm, from: comm } ]', 'labels: [ { name: l, from: latency_ns } ]'))).toEqual([
      'config.yaml:13:36: maps[0].metrics[0].labels[0].from: field latency_ns is observed by the histogram metrics[0], which turns it into a bucket as it counts, expected another field',
    ]);
    expect(problems(EVENTS.replace('        value: n\n', '        value: n\n        sum: n\n'))).toEqual([
      'config.yaml:13:14: maps[0].metrics[0].sum: a histogram of observed values sums them itself, expected no sum field',
    ]);
  });
});

/**
 * ebpf_exporter's config format: their YAML (and what their object holds) in, our Config and the
 * native YAML of `convert` out, exactly; and every refusal as one positioned line.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/parse.js';
import { ConfigErrors } from '../../../src/yaml/errors.js';
import { MapType } from '../../../src/bpf/map-types.js';
import type { ObjectContents } from '../../../src/bpf/object.js';
import { renderNative, splitNames, translate, wholeMatchBody, type CompatInput } from '../../../src/compat/ebpf-exporter.js';

/** A value without its `at` positions and `where`, for comparing the data alone. */
function withoutPositions(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutPositions);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([k, v]) => k !== 'at' && typeof v !== 'function').map(([k, v]) => [k, withoutPositions(v)]));
}

const map = (name: string, type: number, keySize: number, valueSize = 8) => ({ name, type, keySize, valueSize });

function input(name: string, text: string, maps: ObjectContents['maps'], programs: ObjectContents['programs'] = []): CompatInput {
  return { name, file: `ex/${name}.yaml`, text, object: `/abs/ex/${name}.bpf.o`, contents: { maps, programs } };
}

/** The lines a user sees for these configs, or [] when they translate. */
function problems(...inputs: CompatInput[]): string[] {
  try {
    translate(inputs);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigErrors)) throw e;
    return e.errors.map((x) => x.message);
  }
}

// Their biolatency.yaml, as they ship it (a u8 op read as 4 bytes with its padding).
const BIOLATENCY = `metrics:
  histograms:
    - name: bio_latency_seconds
      help: Block IO latency histogram
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 27
      bucket_multiplier: 0.000001 # microseconds to seconds
      labels:
        - name: device
          size: 4
          decoders:
            - name: majorminor
        - name: operation
          size: 4
          decoders:
            - name: uint
            - name: static_map
              static_map:
                0: read
                1: write
        - name: bucket
          size: 8
          decoders:
            - name: uint
`;

// Their percpu-softirq.yaml, shortened: the cpu label of a per-CPU map.
const PERCPU = `metrics:
  counters:
    - name: softirqs_total
      help: Total number of softirq calls per cpu
      labels:
        - name: vec
          size: 4
          decoders:
            - name: uint
            - name: static_map
              static_map:
                0: HI_SOFTIRQ
                1: TIMER_SOFTIRQ
        - name: cpu
          size: 2
          decoders:
            - name: uint
`;

// Counters with padding, strings, syscalls, hex, inet_ip, ksym, no labels, and a fixed and a linear histogram.
const MIXED = `metrics:
  counters:
    - name: syscalls_total
      help: Syscalls by comm and name
      labels:
        - name: comm
          size: 16
          decoders:
            - name: string
            - name: regexp
              regexps:
                - ^(bme.*)$
                - ^systemd-journal$
        - name: syscall
          size: 1
          padding: 7
          decoders:
            - name: uint
            - name: syscall
    - name: peers_total
      help: Peers
      labels:
        - name: addr
          size: 16
          decoders:
            - name: inet_ip
        - name: raw
          size: 4
          decoders:
            - name: hex
        - name: iface
          size: 4
          decoders:
            - name: ifname
        - name: fn
          size: 8
          decoders:
            - name: ksym
    - name: all_calls_total
      help: Every call
  histograms:
    - name: sizes_bytes
      help: Sizes
      bucket_type: fixed
      bucket_keys: [1, 10, 100]
      labels:
        - name: bucket
          size: 2
          padding: 2
          decoders:
            - name: uint
    - name: backlog
      help: Backlog
      bucket_type: linear
      bucket_max: 20
      bucket_multiplier: 50
      labels:
        - name: bucket
          size: 8
          decoders:
            - name: uint
`;

const MIXED_MAPS = [
  map('syscalls_total', MapType.hash, 24),
  map('peers_total', MapType.lru_hash, 32),
  map('all_calls_total', MapType.array, 4),
  map('sizes_bytes', MapType.hash, 4),
  map('backlog', MapType.percpu_hash, 8),
  map('.rodata', MapType.array, 4, 16),
];

describe('translation into our Config', () => {
  it('biolatency: a histogram whose labels read a u8 with its padding, the bucket last, btf: false', () => {
    const { config, notes } = translate([input('biolatency', BIOLATENCY, [map('bio_latency_seconds', MapType.hash, 16)])]);
    expect(notes).toEqual([]);
    expect(withoutPositions(config)).toEqual({
      file: 'ex/biolatency.yaml',
      interval: 5000,
      state_sync: 'cycle',
      max_series: 10000,
      inventory: false,
      maps: [
        {
          name: 'biolatency/bio_latency_seconds',
          source: { object: '/abs/ex/biolatency.bpf.o', map: 'bio_latency_seconds' },
          mode: 'read',
          interval: 5000,
          batch_size: 4096,
          batch: true,
          btf: false,
          key: [
            { name: 'device', type: 'u32' },
            { name: 'operation', type: 'u32' },
            { name: 'bucket', type: 'u64' },
          ],
          value: [{ name: 'value', type: 'u64' }],
          metrics: [
            {
              name: 'ebpf_exporter_bio_latency_seconds',
              type: 'histogram',
              help: 'Block IO latency histogram',
              value: 'value',
              cpu: 'sum',
              scale: 1,
              labels: [
                { name: 'device', from: 'device', decoder: 'majorminor', style: 'ebpf_exporter' },
                { name: 'operation', from: 'operation', decoder: 'static_map', map: { 0: 'read', 1: 'write' } },
              ],
              buckets: { from: 'bucket', kind: 'exp2', min: 0, max: 27, multiplier: 0.000001 },
              max_series: 10000,
            },
          ],
        },
      ],
    });
    // Positions point into their file: the metric, its labels.
    expect(config.where(['maps', 0, 'metrics', 0, 'labels', 1, 'decoder'])).toEqual({ file: 'ex/biolatency.yaml', line: 16, column: 11 });
    expect(config.where(['maps', 0, 'key', 2, 'type'])).toEqual({ file: 'ex/biolatency.yaml', line: 23, column: 17 });
  });

  it('percpu-softirq: the last label cpu of a per-CPU map is cpu: label and no key bytes', () => {
    const { config } = translate([input('percpu-softirq', PERCPU, [map('softirqs_total', MapType.percpu_array, 4)])]);
    const m = config.maps[0];
    expect(withoutPositions(m.key)).toEqual([{ name: 'vec', type: 'u32' }]);
    expect(withoutPositions(m.metrics[0])).toEqual({
      name: 'ebpf_exporter_softirqs_total',
      type: 'counter',
      help: 'Total number of softirq calls per cpu',
      value: 'value',
      cpu: 'label',
      scale: 1,
      labels: [{ name: 'vec', from: 'vec', decoder: 'static_map', map: { 0: 'HI_SOFTIRQ', 1: 'TIMER_SOFTIRQ' } }],
      max_series: 10000,
    });
  });

  it('a label named cpu on a map that is not per-CPU is key bytes like any other', () => {
    const llc = 'metrics:\n  counters:\n    - name: llc_references_total\n      help: LLC\n      labels:\n        - { name: cpu, size: 4, decoders: [ { name: uint } ] }\n';
    const { config } = translate([input('llcstat', llc, [map('llc_references_total', MapType.hash, 4)])]);
    expect(withoutPositions(config.maps[0].key)).toEqual([{ name: 'cpu', type: 'u32' }]);
    expect(config.maps[0].metrics[0].cpu).toBe('sum');
    expect(withoutPositions(config.maps[0].metrics[0].labels)).toEqual([{ name: 'cpu', from: 'cpu', decoder: 'uint' }]);
  });

  it('padding, strings through regexp, syscalls, hex, inet_ip, ifname, ksym, no labels, fixed and linear buckets', () => {
    const { config } = translate([input('mixed', MIXED, MIXED_MAPS)]);
    const byName = Object.fromEntries(config.maps.map((m) => [m.name, withoutPositions({ key: m.key, metric: m.metrics[0] })]));
    expect(Object.keys(byName)).toEqual(['mixed/syscalls_total', 'mixed/peers_total', 'mixed/all_calls_total', 'mixed/sizes_bytes', 'mixed/backlog']);
    expect(byName['mixed/syscalls_total']).toEqual({
      key: [
        { name: 'comm', type: 'char[16]' },
        { name: 'syscall', type: 'u8' },
        { name: '_pad0', type: 'pad[7]' },
      ],
      metric: {
        name: 'ebpf_exporter_syscalls_total',
        type: 'counter',
        help: 'Syscalls by comm and name',
        value: 'value',
        cpu: 'sum',
        scale: 1,
        labels: [
          { name: 'comm', from: 'comm', decoder: 'regexp', pattern: '^(?:bme.*|systemd-journal)$' },
          { name: 'syscall', from: 'syscall', decoder: 'syscall', style: 'ebpf_exporter' },
        ],
        max_series: 10000,
      },
    });
    expect(byName['mixed/peers_total']).toEqual({
      key: [
        { name: 'addr', type: 'u8[16]' },
        { name: 'raw', type: 'u8[4]' },
        { name: 'iface', type: 'u32' },
        { name: 'fn', type: 'u64' },
      ],
      metric: expect.objectContaining({
        labels: [
          { name: 'addr', from: 'addr', decoder: 'inet_ip', style: 'ebpf_exporter' },
          { name: 'raw', from: 'raw', decoder: 'hex' },
          { name: 'iface', from: 'iface', decoder: 'ifname', style: 'ebpf_exporter' },
          { name: 'fn', from: 'fn', decoder: 'ksym', style: 'ebpf_exporter' },
        ],
      }),
    });
    expect(byName['mixed/all_calls_total']).toEqual({
      key: [{ name: '_pad0', type: 'pad[4]' }],
      metric: { name: 'ebpf_exporter_all_calls_total', type: 'counter', help: 'Every call', value: 'value', cpu: 'sum', scale: 1, labels: [], max_series: 10000 },
    });
    expect(byName['mixed/sizes_bytes']).toEqual({
      key: [
        { name: 'bucket', type: 'u16' },
        { name: '_pad0', type: 'pad[2]' },
      ],
      metric: expect.objectContaining({ type: 'histogram', labels: [], buckets: { from: 'bucket', kind: 'fixed', min: 1, max: 100, multiplier: 1, values: [1, 10, 100] } }),
    });
    // A per-CPU histogram sums its CPUs, as theirs does when the last label is the bucket.
    expect(byName['mixed/backlog']).toEqual({
      key: [{ name: 'bucket', type: 'u64' }],
      metric: expect.objectContaining({ name: 'ebpf_exporter_backlog', cpu: 'sum', buckets: { from: 'bucket', kind: 'linear', min: 0, max: 20, multiplier: 50 } }),
    });
  });

  it('a counter not ending in _total keeps its name as a gauge, with a note; a static_map key uint never gives is left out, with a note', () => {
    const text = 'metrics:\n  counters:\n    - name: bpf_jit_pages_currently_allocated\n      help: Pages\n      labels:\n        - name: op\n          size: 4\n          decoders:\n            - name: uint\n            - name: static_map\n              static_map: { 1: one, 0x2: two, 03: three }\n';
    const { config, notes } = translate([input('jit', text, [map('bpf_jit_pages_currently_allocated', MapType.hash, 4)])]);
    expect(config.maps[0].metrics[0]).toMatchObject({ name: 'ebpf_exporter_bpf_jit_pages_currently_allocated', type: 'gauge', labels: [{ map: { 1: 'one' } }] });
    expect(notes.map((n) => `${n.at.file}:${n.at.line}:${n.at.column}: ${n.message}`)).toEqual([
      'ex/jit.yaml:3:13: metrics.counters[0].name: counter ebpf_exporter_bpf_jit_pages_currently_allocated does not end in _total, which this exporter keeps for counters: it is exported under the same name as a gauge (the same samples; only its TYPE line differs)',
      'ex/jit.yaml:11:37: metrics.counters[0].labels[0].decoders[1].static_map: key "0x2" never matches (uint gives decimal numbers without leading zeros), so it is left out',
      'ex/jit.yaml:11:47: metrics.counters[0].labels[0].decoders[1].static_map: key "03" never matches (uint gives decimal numbers without leading zeros), so it is left out',
    ]);
  });

  it('several configs become one, job names prefixed by the config', () => {
    const { config } = translate([input('biolatency', BIOLATENCY, [map('bio_latency_seconds', MapType.hash, 16)]), input('percpu-softirq', PERCPU, [map('softirqs_total', MapType.percpu_array, 4)])]);
    expect(config.maps.map((m) => m.name)).toEqual(['biolatency/bio_latency_seconds', 'percpu-softirq/softirqs_total']);
    expect(config.where(['maps', 1, 'metrics', 0, 'cpu'])).toEqual({ file: 'ex/percpu-softirq.yaml', line: 14, column: 11 });
  });
});

// Their kstack.yaml, pci.yaml and a DNS counter: the decoders that read stacks, PCI ids and DNS names.
const STACKS = `metrics:
  counters:
    - name: mark_page_accessed_total
      help: Total number of calls to mark_page_accessed by kstack
      labels:
        - name: kstack
          size: 160
          decoders:
            - name: kstack
    - name: pci_user_read_config_ops_total
      help: The number of operations reading pci configs
      labels:
        - name: pci_vendor
          size: 4
          decoders:
            - name: uint
            - name: pci_vendor
        - name: pci_device
          size: 4
          decoders:
            - name: uint
            - name: pci_device
        - name: pci_class
          size: 2
          decoders:
            - name: uint
            - name: pci_class
        - name: pci_subclass
          size: 2
          decoders:
            - name: uint
            - name: pci_subclass
    - name: dns_queries_total
      help: DNS queries by name
      labels:
        - name: qname
          size: 32
          decoders:
            - name: string
            - name: dname
        - name: raw_qname
          size: 16
          decoders:
            - name: dname
        - name: error
          size: 4
          decoders:
            - name: uint
            - name: errno
        - name: cgroup
          size: 8
          decoders:
            - name: uint
            - name: cgroup
`;
const STACKS_MAPS = [map('mark_page_accessed_total', MapType.lru_hash, 160), map('pci_user_read_config_ops_total', MapType.lru_hash, 12), map('dns_queries_total', MapType.hash, 60)];

describe('kstack, pci_*, dname: their decoders as ours, with their label values', () => {
  it('translates each chain to our decoder of that name with style: ebpf_exporter', () => {
    const { config } = translate([input('stacks', STACKS, STACKS_MAPS)]);
    const byName = Object.fromEntries(config.maps.map((m) => [m.name, withoutPositions({ key: m.key, labels: m.metrics[0].labels })]));
    expect(byName['stacks/mark_page_accessed_total']).toEqual({
      key: [{ name: 'kstack', type: 'u8[160]' }],
      labels: [{ name: 'kstack', from: 'kstack', decoder: 'kstack', style: 'ebpf_exporter' }],
    });
    expect(byName['stacks/pci_user_read_config_ops_total']).toEqual({
      key: [{ name: 'pci_vendor', type: 'u32' }, { name: 'pci_device', type: 'u32' }, { name: 'pci_class', type: 'u16' }, { name: 'pci_subclass', type: 'u16' }],
      labels: ['pci_vendor', 'pci_device', 'pci_class', 'pci_subclass'].map((n) => ({ name: n, from: n, decoder: n, style: 'ebpf_exporter' })),
    });
    expect(byName['stacks/dns_queries_total']).toEqual({
      key: [{ name: 'qname', type: 'char[32]' }, { name: 'raw_qname', type: 'u8[16]' }, { name: 'error', type: 'u32' }, { name: 'cgroup', type: 'u64' }],
      labels: [
        { name: 'qname', from: 'qname', decoder: 'dname', style: 'ebpf_exporter' },
        { name: 'raw_qname', from: 'raw_qname', decoder: 'dname', style: 'ebpf_exporter' },
        { name: 'error', from: 'error', decoder: 'errno', style: 'ebpf_exporter' },
        { name: 'cgroup', from: 'cgroup', decoder: 'cgroup', style: 'ebpf_exporter' },
      ],
    });
  });

  it('reads a cgroup id kept in 4 bytes (their cfs-throttling) as a u32, and refuses 2', () => {
    const text = (size: number) => `metrics:\n  counters:\n    - name: cg_total\n      help: h\n      labels:\n        - { name: cgroup, size: ${size}, decoders: [ { name: uint }, { name: cgroup } ] }\n`;
    const { config } = translate([input('cg', text(4), [map('cg_total', MapType.hash, 4)])]);
    expect(withoutPositions({ key: config.maps[0].key, labels: config.maps[0].metrics[0].labels })).toEqual({
      key: [{ name: 'cgroup', type: 'u32' }],
      labels: [{ name: 'cgroup', from: 'cgroup', decoder: 'cgroup', style: 'ebpf_exporter' }],
    });
    expect(() => translate([input('cg', text(2), [map('cg_total', MapType.hash, 2)])])).toThrow('the cgroup decoder reads a cgroup id from 8 bytes (or 4), got size 2');
  });

  it('converts to native YAML that carries the style and parses into the same config', () => {
    const result = translate([input('stacks', STACKS, STACKS_MAPS)]);
    const yaml = renderNative(result);
    expect(yaml).toContain('          - { name: kstack, from: kstack, decoder: kstack, style: ebpf_exporter }\n');
    expect(yaml).toContain('          - { name: qname, from: qname, decoder: dname, style: ebpf_exporter }\n');
    const native = parseConfig(yaml, '/tmp/converted.yaml');
    expect(withoutPositions({ ...native, file: '' })).toEqual(withoutPositions({ ...result.config, file: '' }));
  });
});

describe('convert: the native YAML', () => {
  it('is exactly this for biolatency and percpu-softirq', () => {
    const result = translate([input('biolatency', BIOLATENCY, [map('bio_latency_seconds', MapType.hash, 16)]), input('percpu-softirq', PERCPU, [map('softirqs_total', MapType.percpu_array, 4)])]);
    expect(renderNative(result, ['converted'])).toBe(`# converted
interval: 5s
maps:
  - name: biolatency/bio_latency_seconds
    source: { object: /abs/ex/biolatency.bpf.o, map: bio_latency_seconds }
    btf: false
    key:
      - { name: device, type: u32 }
      - { name: operation, type: u32 }
      - { name: bucket, type: u64 }
    value:
      - { name: value, type: u64 }
    metrics:
      - name: ebpf_exporter_bio_latency_seconds
        type: histogram
        help: Block IO latency histogram
        value: value
        labels:
          - { name: device, from: device, decoder: majorminor, style: ebpf_exporter }
          - { name: operation, from: operation, decoder: static_map, map: { "0": read, "1": write } }
        buckets: { from: bucket, kind: exp2, min: 0, max: 27, multiplier: 0.000001 }
  - name: percpu-softirq/softirqs_total
    source: { object: /abs/ex/percpu-softirq.bpf.o, map: softirqs_total }
    btf: false
    key:
      - { name: vec, type: u32 }
    value:
      - { name: value, type: u64 }
    metrics:
      - name: ebpf_exporter_softirqs_total
        type: counter
        help: Total number of softirq calls per cpu
        value: value
        cpu: label
        labels:
          - { name: vec, from: vec, decoder: static_map, map: { "0": HI_SOFTIRQ, "1": TIMER_SOFTIRQ } }
`);
  });

  it('parses with our own parser into the same config', () => {
    for (const inputs of [[input('mixed', MIXED, MIXED_MAPS)], [input('biolatency', BIOLATENCY, [map('bio_latency_seconds', MapType.hash, 16)]), input('percpu-softirq', PERCPU, [map('softirqs_total', MapType.percpu_array, 4)])]]) {
      const result = translate(inputs);
      const native = parseConfig(renderNative(result), '/tmp/converted.yaml');
      expect(withoutPositions({ ...native, file: '' })).toEqual(withoutPositions({ ...result.config, file: '' }));
    }
  });
});

describe('refusals, one positioned line each', () => {
  const one = (text: string, maps: ObjectContents['maps'], programs: ObjectContents['programs'] = []) => problems(input('c', text, maps, programs));
  const counter = (labels: string, mapName = 'x_total') => `metrics:\n  counters:\n    - name: ${mapName}\n      help: X\n      labels:\n${labels}`;
  const hash = (keySize: number, name = 'x_total') => [map(name, MapType.hash, keySize)];

  it('kstack, dname and pci_* chains that do not fit our decoders are refused at the decoder or the size', () => {
    expect(one(counter('        - name: stack\n          size: 20\n          decoders:\n            - name: kstack\n'), hash(20))).toEqual([
      'ex/c.yaml:7:17: metrics.counters[0].labels[0].size: kstack reads 8-byte frame addresses, got size 20, expected a multiple of 8 (8 x the stack depth)',
    ]);
    expect(one(counter('        - name: vendor\n          size: 4\n          decoders:\n            - name: pci_vendor\n'), hash(4))).toEqual([
      'ex/c.yaml:9:21: metrics.counters[0].labels[0].decoders[0].name: decoder pci_vendor reads the text another decoder gives, expected uint before it',
    ]);
    expect(one(counter('        - name: q\n          size: 64\n          decoders:\n            - name: string\n            - name: dname\n            - name: regexp\n              regexps: [ "^a" ]\n'), hash(64))).toEqual([
      'ex/c.yaml:11:21: metrics.counters[0].labels[0].decoders[2].name: decoder regexp after string, dname is not supported here, expected at most 2 decoders',
    ]);
    expect(one(counter('        - name: stack\n          size: 16\n          decoders:\n            - name: kstack\n            - name: regexp\n              regexps: [ "^a" ]\n'), hash(16))).toEqual([
      'ex/c.yaml:10:21: metrics.counters[0].labels[0].decoders[1].name: decoder regexp after kstack is not supported here, expected kstack alone',
    ]);
  });

  it('a regexp that rewrites the value runs as patterns with rewrite; more than one group is refused', () => {
    // Their regexp.yaml: ^(kswapd).*$ labels kswapd0 and kswapd1 both "kswapd".
    const text = counter('        - name: comm\n          size: 16\n          decoders:\n            - name: string\n            - name: regexp\n              regexps:\n                - ^(kswapd).*$\n                - ^systemd-journal$\n');
    const label = translate([input('c', text, hash(16))]).config.maps[0].metrics[0].labels[0];
    expect(withoutPositions(label)).toEqual({ name: 'comm', from: 'comm', decoder: 'regexp', patterns: ['^(kswapd).*$', '^systemd-journal$'], rewrite: true });
    expect(withoutPositions(parseConfig(renderNative(translate([input('c', text, hash(16))])), 'n.yaml').maps[0].metrics[0].labels[0])).toEqual(withoutPositions(label));
    expect(renderNative(translate([input('c', text, hash(16))]))).toContain('      labels:\n          - { name: comm, from: comm, decoder: regexp, patterns: [ ^(kswapd).*$, ^systemd-journal$ ], rewrite: true }\n');
    expect(one(counter('        - name: comm\n          size: 16\n          decoders:\n            - name: string\n            - name: regexp\n              regexps:\n                - ^(a)(b)$\n'), hash(16))).toEqual([
      'ex/c.yaml:12:19: metrics.counters[0].labels[0].decoders[1].regexps[0]: pattern "^(a)(b)$" has 2 groups: ebpf_exporter never labels a row with such a pattern (it takes a match with no group or one), so it only hides the patterns after it; expected at most one group (make the others (?:...))',
    ]);
    expect(one(counter('        - name: comm\n          size: 16\n          decoders:\n            - name: string\n            - name: regexp\n              regexps: [ "(?i)^a$" ]\n'), hash(16))).toEqual([
      'ex/c.yaml:11:26: metrics.counters[0].labels[0].decoders[1].regexps[0]: pattern "(?i)^a$" is not one this exporter can run (JavaScript syntax): Invalid group',
    ]);
  });

  it('unknown decoders and keys, with what was expected', () => {
    expect(one(counter('        - name: a\n          size: 4\n          decoders:\n            - name: unit\n'), hash(4))).toEqual([
      'ex/c.yaml:9:21: metrics.counters[0].labels[0].decoders[0].name: unknown value "unit", expected one of cgroup, dname, errno, hex, ifname, inet_ip, kstack, ksym, majorminor, pci_class, pci_device, pci_subclass, pci_vendor, regexp, static_map, string, syscall, uint',
    ]);
    expect(one('metrics:\n  histograms:\n    - name: h\n      help: H\n      bucket_type: exp2\n      bucket_multipler: 2\n      bucket_max: 3\n      labels: [ { name: bucket, size: 4, decoders: [ { name: uint } ] } ]\n', hash(4, 'h'))).toEqual([
      'ex/c.yaml:6:7: metrics.histograms[0].bucket_multipler: unknown key, did you mean "bucket_multiplier"?',
    ]);
  });

  it('labels whose sizes do not add up to the key, a missing map, values that are not u64', () => {
    expect(one(counter('        - name: a\n          size: 4\n          decoders: [ { name: uint } ]\n'), hash(8))).toEqual([
      'ex/c.yaml:5:7: metrics.counters[0].labels: the labels take 4 bytes (a 4) but map "x_total" has a 8-byte key, expected them to add up to 8',
    ]);
    expect(one(counter('        - name: a\n          size: 4\n          decoders: [ { name: uint } ]\n'), [map('y_total', MapType.hash, 4), map('.bss', MapType.array, 4, 4)])).toEqual([
      'ex/c.yaml:3:13: metrics.counters[0].name: c.bpf.o has no map named "x_total" (each metric reads the map of its name), expected one of: y_total',
    ]);
    expect(one(counter('        - name: a\n          size: 4\n          decoders: [ { name: uint } ]\n'), [map('x_total', MapType.hash, 4, 16)])).toEqual([
      'ex/c.yaml:3:13: metrics.counters[0].name: map "x_total" has 16-byte values, expected 8: ebpf_exporter reads every value as a u64',
    ]);
    expect(one(counter('        - name: a\n          size: 3\n          decoders: [ { name: uint } ]\n'), hash(3))).toEqual([
      'ex/c.yaml:7:17: metrics.counters[0].labels[0].size: uint reads 1, 2, 4 or 8 bytes, got size 3',
    ]);
  });

  it('the cpu label of a per-CPU map is 2 bytes decoded by uint', () => {
    expect(one(counter('        - { name: a, size: 4, decoders: [ { name: uint } ] }\n        - { name: cpu, size: 4, decoders: [ { name: uint } ] }\n'), [map('x_total', MapType.percpu_hash, 4)])).toEqual([
      'ex/c.yaml:7:30: metrics.counters[0].labels[1].size: the cpu label of a per-CPU map is the CPU number ebpf_exporter appends to the key, expected size: 2 and no padding',
    ]);
  });

  it('cgroup_id_map: a job that seeds the map with the cgroups whose full path matches, value 1, and no metrics', () => {
    const text = `${counter('        - { name: cgroup, size: 8, decoders: [ { name: uint }, { name: cgroup } ] }\n')}cgroup_id_map:\n  name: filter\n  type: hash\n  regexps:\n    - ^.*(system.slice/.*)$\n`;
    const result = translate([input('c', text, [map('x_total', MapType.hash, 8), map('filter', MapType.lru_hash, 8)])]);
    expect(withoutPositions(result.config.maps[1])).toEqual({
      name: 'c/filter',
      source: { object: '/abs/ex/c.bpf.o', map: 'filter' },
      mode: 'read',
      interval: 5000,
      batch_size: 4096,
      batch: true,
      key: [{ name: 'key', type: 'u64' }],
      value: [{ name: 'value', type: 'u64' }],
      metrics: [],
      btf: false,
      seed: { flags: 'any', lock: false, cgroups: { match: ['^.*(system.slice/.*)$'], paths: 'absolute', value: { value: '1' } } },
    });
    const native = renderNative(result);
    expect(native).toContain(`  - name: c/filter
    source: { object: /abs/ex/c.bpf.o, map: filter }
    btf: false
    key:
      - { name: key, type: u64 }
    value:
      - { name: value, type: u64 }
    seed:
      cgroups: { match: [ ^.*(system.slice/.*)$ ], paths: absolute, value: { value: "1" } }
`);
    // What convert prints is a config of ours that parses to the same seed.
    expect(withoutPositions(parseConfig(native, 'n.yaml').maps[1].seed)).toEqual(withoutPositions(result.config.maps[1].seed));

    const storage = (type: string, m: ReturnType<typeof map>) => one(`${counter('        - { name: a, size: 8, decoders: [ { name: uint } ] }\n')}cgroup_id_map: { name: filter, type: ${type}, regexps: [ x ] }\n`, [map('x_total', MapType.hash, 8), m]);
    expect(storage('cgrp_storage', map('filter', MapType.cgrp_storage, 4))).toEqual([]);
    expect(storage('hash', map('filter', MapType.cgrp_storage, 4))).toEqual([
      'ex/c.yaml:7:38: cgroup_id_map.type: map "filter" is a cgrp_storage map, expected a hash map for type: hash (or type: cgrp_storage for a cgrp_storage map)',
    ]);
    expect(storage('hash', map('filter', MapType.hash, 4))).toEqual(['ex/c.yaml:7:24: cgroup_id_map.name: map "filter" has a 4-byte key, expected 8 for type hash (a cgroup id)']);
    expect(storage('hash', map('filter', MapType.hash, 8, 4))).toEqual(['ex/c.yaml:7:24: cgroup_id_map.name: map "filter" has 4-byte values, expected 8 (ebpf_exporter writes the u64 1)']);
  });

  it('every part of their format is read, tracing too: an empty spans list is refused at its key', () => {
    const text = 'metrics:\n  counters:\n    - name: oom_kills_total\n      help: OOMs\n      perf_event_array: true\nkaddrs:\n  - bpf_jit_current\ncgroup_id_map:\n  name: m\n  type: hash\n  regexps: [ x ]\ntracing:\n  spans: []\n';
    const contents = [map('oom_kills_total', MapType.perf_event_array, 4, 4)];
    expect(problems({ ...input('c', text, contents), contents: { maps: contents, programs: [{ name: 'p', section: 'perf_event/type=0,config=0,frequency=99' }], variables: ['kaddr_bpf_jit_current'] } })).toEqual([
      'ex/c.yaml:13:10: tracing.spans: got an empty list, expected at least one item',
    ]);
  });

  it('tracing spans: a job reading the ring buffer, the labels cut as a key, each span carrying its config', () => {
    const label = (name: string, size: number, decoder: string, padding = '') => `        - name: ${name}\n          size: ${size}\n${padding}          decoders:\n            - name: ${decoder}\n`;
    const text =
      'tracing:\n  spans:\n    - name: exec\n      ringbuf: exec_spans\n      service: exec-trace\n      labels:\n' +
      label('trace_id', 16, 'hex') + label('span_id', 8, 'hex') + label('span_monotonic_timestamp_ns', 8, 'uint') + label('span_name', 16, 'string') + label('pid', 4, 'uint') + label('cpu.orig', 4, 'uint');
    const result = translate([input('c', text, [map('exec_spans', MapType.ringbuf, 0, 0)])]);
    const job = withoutPositions(result.config.maps[0]);
    expect(job).toEqual({
      name: 'c/exec_spans',
      source: { object: '/abs/ex/c.bpf.o', map: 'exec_spans' },
      mode: 'read',
      interval: 5000,
      batch_size: 4096,
      batch: true,
      btf: false,
      key: [
        { name: 'trace_id', type: 'u8[16]' },
        { name: 'span_id', type: 'u8[8]' },
        { name: 'span_monotonic_timestamp_ns', type: 'u64' },
        { name: 'span_name', type: 'char[16]' },
        { name: 'pid', type: 'u32' },
        { name: 'cpu.orig', type: 'u32' },
      ],
      value: [],
      metrics: [],
      spans: {
        name: 'exec',
        service: 'exec-trace',
        labels: [
          { name: 'trace_id', from: 'trace_id', decoder: 'hex' },
          { name: 'span_id', from: 'span_id', decoder: 'hex' },
          { name: 'span_monotonic_timestamp_ns', from: 'span_monotonic_timestamp_ns', decoder: 'uint' },
          { name: 'span_name', from: 'span_name', decoder: 'string' },
          { name: 'pid', from: 'pid', decoder: 'uint' },
          // An attribute name, which may be dotted (their sched-trace's cpu.orig), unlike a Prometheus label.
          { name: 'cpu.orig', from: 'cpu.orig', decoder: 'uint' },
        ],
        attributes: { 'ebpf_exporter.config': 'c' },
      },
    });
    // A map that is not a ring buffer, and one that is not there.
    expect(one(text, [map('exec_spans', MapType.hash, 4)])).toEqual(['ex/c.yaml:4:16: tracing.spans[0].ringbuf: map "exec_spans" is a hash map, expected a ringbuf the program sends its spans through']);
    expect(one(text, [map('other', MapType.ringbuf, 0, 0)])).toEqual(['ex/c.yaml:4:16: tracing.spans[0].ringbuf: c.bpf.o has no map named "exec_spans", expected one of its ring buffers: other']);
  });

  it('perf_event_array counters: a job counting the events by the labels cut from their bytes, read every second, flushed as flush_interval says', () => {
    const text = (extra: string) => `metrics:\n  counters:\n    - name: oom_kills_total\n      help: OOMs\n      perf_event_array: true\n${extra}      labels:\n        - name: cgroup_path\n          size: 8\n          decoders:\n            - name: uint\n            - name: cgroup\n`;
    const maps = [map('oom_kills_total', MapType.perf_event_array, 4, 4)];
    const result = translate([input('c', text(''), maps)]);
    const job = result.config.maps[0];
    expect(withoutPositions(job)).toEqual({
      name: 'c/oom_kills_total',
      source: { object: '/abs/ex/c.bpf.o', map: 'oom_kills_total' },
      mode: 'read',
      interval: 1000,
      batch_size: 4096,
      batch: true,
      btf: false,
      events: { flush: 3_600_000 },
      key: [{ name: 'cgroup_path', type: 'u64' }],
      value: [{ name: 'value', type: 'u64' }],
      metrics: [{ name: 'ebpf_exporter_oom_kills_total', type: 'counter', help: 'OOMs', value: 'value', cpu: 'sum', scale: 1, labels: [{ name: 'cgroup_path', from: 'cgroup_path', decoder: 'cgroup', style: 'ebpf_exporter' }], max_series: 10_000 }],
    });
    // The converted config runs the same.
    const native = parseConfig(renderNative(result), '/tmp/converted.yaml');
    expect(withoutPositions({ ...native, file: '' })).toEqual(withoutPositions({ ...result.config, file: '' }));
    expect(translate([input('c', text('      flush_interval: 90s\n'), maps)]).config.maps[0].events).toEqual({ flush: 90_000 });
    expect(problems(input('c', text('      flush_interval: soon\n'), maps))).toEqual([
      'ex/c.yaml:6:23: metrics.counters[0].flush_interval: invalid duration "soon", expected a number with a unit like 500ms, 5s, 1m, 1h or 1m30s (a Go duration such as 30s, 5m or 1h)',
    ]);
    expect(problems(input('c', text(''), [map('oom_kills_total', MapType.hash, 8)]))).toEqual([
      'ex/c.yaml:5:25: metrics.counters[0].perf_event_array: map "oom_kills_total" is a hash map, expected a perf_event_array for perf_event_array: true (the events the program sends through it are counted)',
    ]);
    // Without perf_event_array: true, a perf_event_array map is not read as counters; flush_interval is theirs to ignore.
    const plain = 'metrics:\n  counters:\n    - name: x_total\n      help: X\n      flush_interval: 1m\n';
    expect(translate([input('c', plain, [map('x_total', MapType.array, 4)])]).notes.map((n) => n.message)).toEqual([
      'metrics.counters[0].flush_interval: flush_interval is read only with perf_event_array: true, as ebpf_exporter does; it is ignored here',
    ]);
    expect(problems(input('c', text('').replace('      perf_event_array: true\n', ''), maps))).toEqual([
      'ex/c.yaml:3:13: metrics.counters[0].name: map "oom_kills_total" is a perf_event_array map: its events are counted only by a counter with perf_event_array: true',
    ]);
  });

  it('their section conventions: perf_event/... sections that do not parse name the object, program and section', () => {
    const text = 'metrics:\n  counters:\n    - name: x_total\n      help: X\n';
    const maps = [map('x_total', MapType.array, 4)];
    const sections = (...list: string[]) => problems(input('c', text, maps, list.map((section, i) => ({ name: `p${i}`, section }))));
    // What their parser takes, and xdp/IFNAME, translate.
    expect(sections('perf_event/type=1,config=0,frequency=99', 'perf_event/config=3,frequency=10,type=0', 'xdp/eth0', 'xdp/cpumap', 'perf_event/type=1,period=1000')).toEqual([]);
    expect(sections('perf_event/type=1,config=0', 'perf_event/type=1;config=0,frequency=9', 'perf_event/type=1,config=-1,frequency=9', 'perf_event/type=1,sample=3,frequency=9', 'perf_event/type=1,frequency=0')).toEqual([
      '/abs/ex/c.bpf.o: program p0 is in section perf_event/type=1,config=0, which does not read as ebpf_exporter\'s perf_event/type=N,config=N,frequency=N: no frequency=N (or period=N): the event would count without ever running the program',
      '/abs/ex/c.bpf.o: program p1 is in section perf_event/type=1;config=0,frequency=9, which does not read as ebpf_exporter\'s perf_event/type=N,config=N,frequency=N: type=1;config=0: "1;config=0" is not a whole number of at least 0',
      '/abs/ex/c.bpf.o: program p2 is in section perf_event/type=1,config=-1,frequency=9, which does not read as ebpf_exporter\'s perf_event/type=N,config=N,frequency=N: config=-1: "-1" is not a whole number of at least 0',
      '/abs/ex/c.bpf.o: program p3 is in section perf_event/type=1,sample=3,frequency=9, which does not read as ebpf_exporter\'s perf_event/type=N,config=N,frequency=N: unknown key "sample" in item "sample=3", expected type, config, frequency or period',
      '/abs/ex/c.bpf.o: program p4 is in section perf_event/type=1,frequency=0, which does not read as ebpf_exporter\'s perf_event/type=N,config=N,frequency=N: frequency=0: expected at least 1',
    ]);
  });

  it('kaddrs: the symbols go with every job of the object; a symbol without its kaddr_ variable, twice, or not a name is refused at its item', () => {
    const text = 'metrics:\n  counters:\n    - name: x_total\n      help: X\nkaddrs:\n  - schedule\n  - vfs_read\n';
    const maps = [map('x_total', MapType.array, 4)];
    const withVariables = (t: string, variables: string[]) => ({ ...input('c', t, maps), contents: { maps, programs: [], variables } });
    const result = translate([withVariables(text, ['kaddr_schedule', 'kaddr_vfs_read', 'other'])]);
    expect(result.config.maps.map((m) => m.source)).toEqual([{ object: '/abs/ex/c.bpf.o', map: 'x_total', kaddrs: ['schedule', 'vfs_read'] }]);
    // The converted config runs the same: kaddrs is a key of our object sources too.
    const native = parseConfig(renderNative(result), '/tmp/converted.yaml');
    expect(native.maps[0].source).toEqual({ object: '/abs/ex/c.bpf.o', map: 'x_total', kaddrs: ['schedule', 'vfs_read'] });
    expect(problems(withVariables(`${text}  - schedule\n  - "a b"\n`, ['kaddr_schedule']))).toEqual([
      'ex/c.yaml:7:5: kaddrs[1]: c.bpf.o has no global variable kaddr_vfs_read for the address of vfs_read, expected one declared as const volatile u64 kaddr_vfs_read',
      'ex/c.yaml:8:5: kaddrs[2]: symbol schedule is listed twice, expected each once',
      'ex/c.yaml:9:5: kaddrs[3]: "a b" is not a kernel symbol name (letters, digits, _, . and $), expected a name as /proc/kallsyms lists it',
    ]);
  });

  it('histograms: zero size, unordered fixed keys, a bucket that is not uint', () => {
    const hist = (extra: string, bucket = '[ { name: uint } ]') => `metrics:\n  histograms:\n    - name: h\n      help: H\n${extra}      labels: [ { name: bucket, size: 4, decoders: ${bucket} } ]\n`;
    expect(one(hist('      bucket_type: exp2\n      bucket_min: 3\n      bucket_max: 3\n'), hash(4, 'h'))).toEqual([
      'ex/c.yaml:7:19: metrics.histograms[0].bucket_max: bucket_max 3 is not above bucket_min 3: ebpf_exporter refuses a histogram of zero or negative size, expected bucket_max > bucket_min',
    ]);
    expect(one(hist('      bucket_type: fixed\n      bucket_keys: [ 1, 10, 5 ]\n'), hash(4, 'h'))).toEqual([
      'ex/c.yaml:6:29: metrics.histograms[0].bucket_keys[2]: 5 comes after 10, expected ascending keys without repeats',
    ]);
    expect(one(hist('      bucket_type: linear\n      bucket_max: 3\n', '[ { name: hex } ]'), hash(4, 'h'))).toEqual([
      'ex/c.yaml:7:42: metrics.histograms[0].labels[0].decoders: the last label of a histogram is its bucket key, expected decoders: [ { name: uint } ]',
    ]);
  });

  it('names clashing across configs, pointing into the second file', () => {
    const a = input('a', PERCPU, [map('softirqs_total', MapType.percpu_array, 4)]);
    const b = { ...input('b', PERCPU, [map('softirqs_total', MapType.percpu_array, 4)]) };
    expect(problems(a, b)).toEqual([
      'ex/b.yaml:3:13: metrics.counters[0].name: metric name "ebpf_exporter_softirqs_total" is already used by maps[0].metrics[0] (line 3), expected a unique name across the config',
    ]);
  });

  it('YAML errors and an empty config', () => {
    expect(one('metrics: [\n', [])).toEqual([expect.stringMatching(/^ex\/c\.yaml:2:1: invalid YAML: /)]);
    expect(one('metrics:\n  counters: []\n', [])).toEqual(['ex/c.yaml:1:1: metrics: no metrics: neither metrics.counters nor metrics.histograms lists any, nor tracing.spans, expected at least one']);
  });
});

describe('wholeMatchBody', () => {
  it('accepts patterns that can only match a whole value', () => {
    expect(wholeMatchBody('^.*$')).toBe('.*');
    expect(wholeMatchBody('^(systemd.*)$')).toBe('systemd.*');
    expect(wholeMatchBody('^a(?:b|c)[|)]$')).toBe('a(?:b|c)[|)]');
  });
  it('refuses rewrites, unanchored patterns, alternation outside groups and escaped anchors', () => {
    for (const p of ['^(kswapd).*$', 'kswapd', '^a|b$', '^a\\$', '^(a)(b)$', '^(?<n>a)b$']) expect(wholeMatchBody(p), p).toBeUndefined();
  });
});

describe('--config.names', () => {
  it('splits on commas, refusing empty and repeated names', () => {
    expect(splitNames('a,b')).toEqual(['a', 'b']);
    expect(splitNames('a,,b')).toBe('--config.names has an empty name in "a,,b", expected names separated by commas');
    expect(splitNames('a,a')).toBe('--config.names names a twice, expected each config once');
  });
});

/**
 * `dump` over real pinned maps of every type: the series must be exactly what a hand computation
 * gives, the same under batch reads, batch_size 1 (the ENOSPC path for hash buckets) and per-key
 * iteration (batch: false).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfMap, BPF_F_NO_PREALLOC } from '../../../src/bpf/map.js';
import { MapType } from '../../../src/bpf/map-types.js';
import { possibleCpus } from '../../../src/bpf/cpus.js';
import { BpfObject } from '../../../src/bpf/object.js';
import { dump, check, type DumpRow } from '../../../exporter/config-commands.js';
import { compileBpf, kernelDescribe, pinDir } from '../support.js';

const le = (bits: 32 | 64, ...xs: number[]): Buffer => {
  const b = Buffer.alloc((xs.length * bits) / 8);
  xs.forEach((x, i) => (bits === 32 ? b.writeUInt32LE(x, i * 4) : b.writeBigUInt64LE(BigInt(x), i * 8)));
  return b;
};

kernelDescribe('dump of real maps of every type', () => {
  let pins: string;
  let dir: string;
  let cpus: number;
  const maps: BpfMap[] = [];
  let obj: BpfObject | undefined;

  /** A per-CPU value: slot c holds base * (c + 1). */
  const perCpu = (base: number): Buffer => Buffer.concat(Array.from({ length: cpus }, (_, c) => le(64, base * (c + 1))));
  const cpuSum = (base: number): number => Array.from({ length: cpus }, (_, c) => base * (c + 1)).reduce((a, b) => a + b, 0);

  function make(name: string, o: Parameters<typeof BpfMap.create>[0], entries: [Buffer, Buffer][]): void {
    const m = BpfMap.create(o);
    for (const [k, v] of entries) m.update(k, v);
    m.pin(`${pins}/${name}`);
    maps.push(m);
  }

  beforeAll(() => {
    pins = pinDir('dump');
    dir = mkdtempSync(join(tmpdir(), 'bme-dump-'));
    cpus = possibleCpus().length;
    make('syscalls', { type: MapType.hash, keySize: 8, valueSize: 16, maxEntries: 64 }, [
      [le(32, 100, 0), le(64, 3, 3000)],
      [le(32, 100, 1), le(64, 5, 500)],
      [le(32, 200, 0), le(64, 7, 700)],
    ]);
    make('percpu', { type: MapType.percpu_hash, keySize: 4, valueSize: 8, maxEntries: 64 }, [[le(32, 1), perCpu(10)], [le(32, 2), perCpu(20)]]);
    make('lru', { type: MapType.lru_hash, keySize: 4, valueSize: 8, maxEntries: 64 }, [[le(32, 7), le(64, 70)], [le(32, 8), le(64, 80)]]);
    make('lru_percpu', { type: MapType.lru_percpu_hash, keySize: 4, valueSize: 8, maxEntries: 64 }, [[le(32, 5), perCpu(1)]]);
    make('array', { type: MapType.array, keySize: 4, valueSize: 8, maxEntries: 3 }, [[le(32, 0), le(64, 11)], [le(32, 2), le(64, 33)]]);
    make('percpu_array', { type: MapType.percpu_array, keySize: 4, valueSize: 8, maxEntries: 2 }, [[le(32, 1), perCpu(4)]]);
    make('lpm', { type: MapType.lpm_trie, keySize: 8, valueSize: 8, maxEntries: 16, flags: BPF_F_NO_PREALLOC }, [
      [Buffer.from([24, 0, 0, 0, 10, 1, 2, 0]), le(64, 240)],
      [Buffer.from([32, 0, 0, 0, 10, 1, 2, 3]), le(64, 320)],
    ]);
    const inner = BpfMap.create({ type: MapType.array, keySize: 4, valueSize: 4, maxEntries: 1 });
    maps.push(inner);
    make('outer', { type: MapType.hash_of_maps, keySize: 4, valueSize: 4, maxEntries: 4, innerMap: inner }, [[le(32, 9), le(32, inner.fd)]]);
    make('latency', { type: MapType.hash, keySize: 8, valueSize: 8, maxEntries: 64 }, [
      [le(32, 0, 0), le(64, 2)], [le(32, 0, 2), le(64, 3)], [le(32, 0, 4), le(64, 1000)], [le(32, 1, 1), le(64, 4)], [le(32, 1, 9), le(64, 1)],
    ]);
    // A map with BTF and no layout in the config.
    compileBpf(new URL('../../fixtures/bpf/percpu.bpf.c', import.meta.url).pathname, join(dir, 'percpu.bpf.o'));
    obj = BpfObject.load(join(dir, 'percpu.bpf.o'));
    obj.map('by_cpu').update(le(32, 3), perCpu(6));
    obj.map('by_cpu').pin(`${pins}/by_cpu`);
  });

  afterAll(() => {
    for (const m of maps) m.close();
    obj?.close();
    rmSync(pins, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  function config(extra: string): string {
    return `
maps:
  - name: syscalls
    source: { pinned: ${pins}/syscalls }
    ${extra}
    key: [ { name: pid, type: u32 }, { name: nr, type: u32 } ]
    value: [ { name: calls, type: u64 }, { name: ns, type: u64 } ]
    metrics:
      - name: syscalls_total
        type: counter
        help: System calls
        value: calls
        labels: [ { name: pid, from: pid }, { name: syscall, from: nr, decoder: syscall } ]
      - name: syscall_time_seconds_total
        type: counter
        help: Time in system calls
        value: ns
        scale: 1.0e-9
        labels: [ { name: syscall, from: nr, decoder: syscall } ]
  - name: percpu
    source: { pinned: ${pins}/percpu }
    ${extra}
    key: [ { name: id, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: percpu_total, type: counter, help: summed, value: n, labels: [ { name: id, from: id } ] }
      - { name: percpu_max, type: gauge, help: max, value: n, cpu: max, labels: [ { name: id, from: id } ] }
      - { name: percpu_by_cpu_total, type: counter, help: per cpu, value: n, cpu: label, labels: [ { name: id, from: id } ] }
  - name: lru
    source: { pinned: ${pins}/lru }
    ${extra}
    key: [ { name: id, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: lru_odd_total, type: counter, help: grouped, value: n, labels: [ { name: kind, from: id, decoder: static_map, map: { 7: seven } } ] }
  - name: lru_percpu
    source: { pinned: ${pins}/lru_percpu }
    ${extra}
    key: [ { name: id, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: lru_percpu_min, type: gauge, help: min, value: n, cpu: min, labels: [ { name: id, from: id } ] }
  - name: array
    source: { pinned: ${pins}/array }
    ${extra}
    key: [ { name: index, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: array_value, type: gauge, help: array, value: n, labels: [ { name: index, from: index } ] }
  - name: percpu_array
    source: { pinned: ${pins}/percpu_array }
    ${extra}
    key: [ { name: index, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: percpu_array_value, type: gauge, help: percpu array, value: n, labels: [ { name: index, from: index } ] }
  - name: lpm
    source: { pinned: ${pins}/lpm }
    ${extra}
    key: [ { name: prefixlen, type: u32 }, { name: addr, type: "u8[4]" } ]
    value: [ { name: bytes, type: u64 } ]
    metrics:
      - { name: lpm_bytes_total, type: counter, help: by prefix, value: bytes, labels: [ { name: net, from: addr, decoder: inet_ip }, { name: len, from: prefixlen } ] }
  - name: outer
    source: { pinned: ${pins}/outer }
    ${extra}
    key: [ { name: slot, type: u32 } ]
    value: [ { name: inner_id, type: u32 } ]
    metrics:
      - { name: inner_map_id, type: gauge, help: inner map ids, value: inner_id, labels: [ { name: slot, from: slot } ] }
  - name: latency
    source: { pinned: ${pins}/latency }
    ${extra}
    key: [ { name: op, type: u32 }, { name: slot, type: u32 } ]
    value: [ { name: count, type: u64 } ]
    metrics:
      - name: io_latency_seconds
        type: histogram
        help: IO latency
        value: count
        buckets: { from: slot, kind: exp2, min: 0, max: 3, multiplier: 1.0e-6 }
        labels: [ { name: op, from: op, decoder: static_map, map: { 0: read, 1: write } } ]
  - name: by_cpu
    source: { pinned: ${pins}/by_cpu }
    ${extra}
    metrics:
      - { name: btf_hits_total, type: counter, help: from BTF, value: value, labels: [ { name: cpu_key, from: key } ] }
`;
  }

  const sortRows = (rows: DumpRow[]) => [...rows].sort((a, b) => `${a.metric}${JSON.stringify(a.labels)}`.localeCompare(`${b.metric}${JSON.stringify(b.labels)}`));

  function expected(): DumpRow[] {
    const byCpu = (base: number) => Array.from({ length: cpus }, (_, c) => ({ cpu: String(possibleCpus()[c]), v: base * (c + 1) }));
    const rows: Omit<DumpRow, 'map'>[] = [
      { metric: 'syscalls_total', type: 'counter', labels: { pid: '100', syscall: 'read' }, value: 3 },
      { metric: 'syscalls_total', type: 'counter', labels: { pid: '100', syscall: 'write' }, value: 5 },
      { metric: 'syscalls_total', type: 'counter', labels: { pid: '200', syscall: 'read' }, value: 7 },
      { metric: 'syscall_time_seconds_total', type: 'counter', labels: { syscall: 'read' }, value: 3700 * 1e-9 },
      { metric: 'syscall_time_seconds_total', type: 'counter', labels: { syscall: 'write' }, value: 500 * 1e-9 },
      { metric: 'percpu_total', type: 'counter', labels: { id: '1' }, value: cpuSum(10) },
      { metric: 'percpu_total', type: 'counter', labels: { id: '2' }, value: cpuSum(20) },
      { metric: 'percpu_max', type: 'gauge', labels: { id: '1' }, value: 10 * cpus },
      { metric: 'percpu_max', type: 'gauge', labels: { id: '2' }, value: 20 * cpus },
      ...[1, 2].flatMap((id) => byCpu(id * 10).map(({ cpu, v }) => ({ metric: 'percpu_by_cpu_total', type: 'counter' as const, labels: { id: String(id), cpu }, value: v }))),
      { metric: 'lru_odd_total', type: 'counter', labels: { kind: 'seven' }, value: 70 },
      { metric: 'lru_odd_total', type: 'counter', labels: { kind: 'unknown:8' }, value: 80 },
      { metric: 'lru_percpu_min', type: 'gauge', labels: { id: '5' }, value: 1 },
      { metric: 'array_value', type: 'gauge', labels: { index: '0' }, value: 11 },
      { metric: 'array_value', type: 'gauge', labels: { index: '1' }, value: 0 },
      { metric: 'array_value', type: 'gauge', labels: { index: '2' }, value: 33 },
      { metric: 'percpu_array_value', type: 'gauge', labels: { index: '0' }, value: 0 },
      { metric: 'percpu_array_value', type: 'gauge', labels: { index: '1' }, value: cpuSum(4) },
      { metric: 'lpm_bytes_total', type: 'counter', labels: { net: '10.1.2.0', len: '24' }, value: 240 },
      { metric: 'lpm_bytes_total', type: 'counter', labels: { net: '10.1.2.3', len: '32' }, value: 320 },
      { metric: 'inner_map_id', type: 'gauge', labels: { slot: '9' }, value: maps.find((m) => m.info.type === MapType.array && m.info.maxEntries === 1)!.info.id },
      {
        metric: 'io_latency_seconds', type: 'histogram', labels: { op: 'read' },
        buckets: [{ le: 1e-6, count: 2 }, { le: 2e-6, count: 2 }, { le: 4e-6, count: 5 }, { le: 8e-6, count: 5 }, { le: '+Inf', count: 5 }], count: 5, sum: 1000e-6,
      },
      {
        metric: 'io_latency_seconds', type: 'histogram', labels: { op: 'write' },
        buckets: [{ le: 1e-6, count: 0 }, { le: 2e-6, count: 4 }, { le: 4e-6, count: 4 }, { le: 8e-6, count: 4 }, { le: '+Inf', count: 5 }], count: 5, sum: 0,
      },
      { metric: 'btf_hits_total', type: 'counter', labels: { cpu_key: '3' }, value: cpuSum(6) },
    ];
    return sortRows(rows as DumpRow[]);
  }

  for (const [name, extra] of [['batch', ''], ['batch_size 1', 'batch_size: 1'], ['per-key (batch: false)', 'batch: false']] as const) {
    it(`gives the hand-computed series under ${name}`, () => {
      const file = join(dir, `${name.replace(/\W+/g, '_')}.yaml`);
      writeFileSync(file, config(extra));
      expect(check(file)).toEqual({ out: [`${file}: ok (10 maps)`], err: [], code: 0 });
      const r = dump(file, { format: 'json' });
      expect(r.err).toEqual([]);
      expect(r.code).toBe(0);
      const rows = JSON.parse(r.out[0]) as DumpRow[];
      const got = sortRows(rows);
      const want = expected();
      expect(got.map((x) => [x.metric, x.labels])).toEqual(want.map((x) => [x.metric, x.labels]));
      got.forEach((g, i) => {
        const w = want[i];
        if (w.value !== undefined) expect(g.value, `${g.metric} ${JSON.stringify(g.labels)}`).toBeCloseTo(w.value, 15);
        else {
          expect(g.count).toBe(w.count);
          expect(g.sum).toBeCloseTo(w.sum!, 15);
          expect(g.buckets!.map((b) => b.count)).toEqual(w.buckets!.map((b) => b.count));
          g.buckets!.forEach((b, j) => (b.le === '+Inf' ? expect(w.buckets![j].le).toBe('+Inf') : expect(b.le).toBeCloseTo(w.buckets![j].le as number, 15)));
        }
      });
    });
  }

  it('runs as a command: dump --map prints JSON, check exits 2 with one line per problem', () => {
    const file = join(dir, 'cli.yaml');
    writeFileSync(file, config(''));
    const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', new URL('../../../exporter/main.ts', import.meta.url).pathname, ...args], { encoding: 'utf8' });
    const d = cli(['dump', '--config', file, '--map', 'lru', '--format', 'json']);
    expect(d.status).toBe(0);
    expect(sortRows(JSON.parse(d.stdout) as DumpRow[])).toEqual([
      { metric: 'lru_odd_total', type: 'counter', labels: { kind: 'seven' }, value: 70 },
      { metric: 'lru_odd_total', type: 'counter', labels: { kind: 'unknown:8' }, value: 80 },
    ]);
    const t = cli(['dump', '--config', file, '--map', 'lru', '--format', 'table']);
    expect(t.stdout).toMatch(/^METRIC\s+LABELS\s+VALUE\nlru_odd_total\s+\{kind="(seven|unknown:8)"\}\s+(70|80)\n/);

    const arrayDrain = join(dir, 'array-drain.yaml');
    writeFileSync(arrayDrain, `maps:\n  - name: a\n    source: { pinned: ${pins}/array }\n    mode: drain\n    key: [ { name: i, type: u32 } ]\n    value: [ { name: v, type: u64 } ]\n    metrics: [ { name: a_total, type: counter, help: a, value: v } ]\n`);
    const ad = cli(['check', '--config', arrayDrain]);
    expect(ad.status).toBe(2);
    expect(ad.stderr.trim()).toBe(`${arrayDrain}:4:11: maps[0].mode: array maps cannot be drained: every index always exists and none can be deleted; use mode: read`);

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, `maps:\n  - name: x\n    source: { pinned: ${pins}/nope }\n    key: [ { name: k, type: u32 } ]\n    value: [ { name: v, type: u64 } ]\n    metrics: [ { name: x_total, type: counter, help: x, value: v } ]\n  - name: y\n    source: { pinned: ${pins}/lru }\n    key: [ { name: k, type: u64 } ]\n    value: [ { name: v, type: u64 } ]\n    metrics: [ { name: y_total, type: counter, help: y, value: v } ]\n`);
    const c = cli(['check', '--config', bad]);
    expect(c.status).toBe(2);
    expect(c.stdout).toBe('');
    expect(c.stderr.trimEnd().split('\n')).toEqual([
      `${bad}:3:5: maps[0].source: map ${pins}/nope: open pinned map failed: ENOENT (no such map or pin)`,
      `${bad}:9:5: maps[1].key: the key fields add up to 8 bytes (k: u64) but the map's key_size is 4`,
    ]);
  });
});

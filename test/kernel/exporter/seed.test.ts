/**
 * Seeding on the real kernel: entries written into maps with bpf_map_update_batch (flags any) or
 * one update per entry (noexist, exist), per-CPU values on every CPU, values under a spin lock, the
 * entries of matching cgroups kept up to date as cgroups come and go, failures named per entry with
 * their position and errno; check never writes; the daemon seeds at start and again at a reload.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfMap } from '../../../src/bpf/map.js';
import { BatchReader } from '../../../src/bpf/batch.js';
import { BpfObject, type ObjectRegistry } from '../../../src/bpf/object.js';
import { MapType } from '../../../src/bpf/map-types.js';
import { parseConfig } from '../../../src/config/parse.js';
import { MapJob } from '../../../src/collect/job.js';
import { findCgroup2Root } from '../../../src/decode/cgroup.js';
import { check } from '../../../exporter/config-commands.js';
import { compileBpf, kernelDescribe, pinDir } from '../support.js';
import { sleep, startDaemon, stopDaemon } from './process.js';

const le32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const le64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};

kernelDescribe('seed: entries the exporter writes into maps', () => {
  let pins: string;
  let dir: string;
  let object: string;
  const open: BpfMap[] = [];

  beforeAll(() => {
    pins = pinDir('seed');
    dir = mkdtempSync(join(tmpdir(), 'bme-seed-'));
    object = join(dir, 'seed.bpf.o');
    compileBpf(new URL('../../fixtures/bpf/seed.bpf.c', import.meta.url).pathname, object);
  }, 60_000);

  afterAll(() => {
    for (const m of open) m.close();
    rmSync(pins, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh pinned hash map (u32 -> u64, 4 entries) and a config of one job seeding it. */
  function pinned(name: string, seed: string, type: number = MapType.hash): { map: BpfMap; job: MapJob; file: string } {
    const map = BpfMap.create({ type, keySize: 4, valueSize: 8, maxEntries: 4 });
    open.push(map);
    map.pin(`${pins}/${name}`);
    const file = join(dir, `${name}.yaml`);
    const text = `maps:
  - name: ${name}
    source: { pinned: ${pins}/${name} }
    key: [ { name: id, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    seed:
${seed}`;
    writeFileSync(file, text);
    return { map, job: new MapJob(parseConfig(text, file).maps[0], 0), file };
  }

  const value = (map: BpfMap, key: number) => map.lookup(le32(key))?.readBigUInt64LE(0);

  it('flags any: one batch writes every entry, replacing what is there', () => {
    const { map, job } = pinned('any', `      entries:
        - { key: { id: 1 }, value: { n: 10 } }
        - { key: { id: 2 }, value: { n: 0x20 } }
        - { key: { id: 3 } }
`);
    map.update(le32(1), le64(99n));
    expect(job.open({ seed: true })).toEqual([]);
    job.close();
    expect([1, 2, 3, 4].map((k) => value(map, k))).toEqual([10n, 32n, 0n, undefined]);
  });

  it('names the entry the kernel refuses, with its position, errno and what it means', () => {
    const full = pinned('full', `      entries:
${[1, 2, 3, 4, 5].map((k) => `        - { key: { id: ${k} }, value: { n: ${k} } }`).join('\n')}
`);
    expect(full.job.open({ seed: true })).toEqual([
      {
        path: ['maps', 0, 'seed', 'entries', 4],
        message: `${full.file}:12:11: maps[0].seed.entries[4]: seeding map ${pins}/full: entry 5 of 5 (key bytes 05000000) not written, after 4 written: update batch failed: E2BIG (the map is full (max_entries), or an array index is not below max_entries)`,
      },
    ]);

    const noexist = pinned('noexist', `      flags: noexist
      entries:
        - { key: { id: 1 }, value: { n: 1 } }
        - { key: { id: 2 }, value: { n: 2 } }
`);
    noexist.map.update(le32(2), le64(7n));
    expect(noexist.job.open({ seed: true })).toEqual([
      {
        path: ['maps', 0, 'seed', 'entries', 1],
        message: `${noexist.file}:10:11: maps[0].seed.entries[1]: seeding map ${pins}/noexist: entry 2 of 2 (key bytes 02000000) not written, after 1 written: update failed: EEXIST (the key is in the map already, and flags: noexist writes only new keys)`,
      },
    ]);
    expect([value(noexist.map, 1), value(noexist.map, 2)]).toEqual([1n, 7n]);

    const exist = pinned('exist', `      flags: exist
      entries:
        - { key: { id: 3 }, value: { n: 3 } }
`);
    expect(exist.job.open({ seed: true })).toEqual([
      {
        path: ['maps', 0, 'seed', 'entries', 0],
        message: `${exist.file}:9:11: maps[0].seed.entries[0]: seeding map ${pins}/exist: entry 1 of 1 (key bytes 03000000) not written: update failed: ENOENT (the key is not in the map, and flags: exist replaces only keys already there)`,
      },
    ]);
    exist.map.update(le32(3), le64(1n));
    expect(exist.job.open({ seed: true })).toEqual([]);
    exist.job.close();
    expect(value(exist.map, 3)).toBe(3n);

    const nolock = pinned('nolock', `      lock: true
      entries:
        - { key: { id: 1 } }
`);
    expect(nolock.job.open({ seed: true })).toEqual([
      {
        path: ['maps', 0, 'seed', 'entries'],
        message: `${nolock.file}:7:7: maps[0].seed.entries: seeding map ${pins}/nolock: the kernel refused the batch before writing any entry: update batch failed: EINVAL (lock: true needs a map whose value holds a bpf_spin_lock)`,
      },
    ]);
  });

  it('check reports values that do not fit, and never writes', () => {
    const { map, file } = pinned('checked', `      entries:
        - { key: { id: 1 }, value: { n: 5 } }
`);
    expect(check(file)).toEqual({ out: [`${file}: ok (1 map)`], err: [], code: 0 });
    expect(value(map, 1)).toBeUndefined();
    const bad = pinned('bad', `      entries:
        - { key: { id: -1, idx: 2 }, value: { n: 5 } }
`);
    expect(check(bad.file)).toEqual({
      out: [],
      err: [
        `${bad.file}:8:24: maps[0].seed.entries[0].key.id: -1 does not fit a u32, expected 0 to 4294967295`,
        `${bad.file}:8:33: maps[0].seed.entries[0].key.idx: no field named "idx" in the layout written, expected one of id`,
      ],
      code: 2,
    });
  });

  it('a per-CPU map gets the value on every CPU', () => {
    const { map, job } = pinned('percpu', `      entries:
        - { key: { id: 1 }, value: { n: 6 } }
`, MapType.percpu_hash);
    expect(job.open({ seed: true })).toEqual([]);
    job.close();
    const v = map.lookup(le32(1))!;
    expect(Array.from({ length: map.cpus }, (_, c) => v.readBigUInt64LE(c * 8))).toEqual(Array<bigint>(map.cpus).fill(6n));
  });

  it('lock: true writes a value under its bpf_spin_lock, laid out by BTF', () => {
    const text = `maps:
  - name: locked
    source: { object: ${object}, map: locked }
    seed:
      lock: true
      entries: [ { key: { key: 4 }, value: { n: 44 } } ]
`;
    const obj = BpfObject.load(object);
    try {
      const job = new MapJob(parseConfig(text, join(dir, 'locked.yaml')).maps[0], 0);
      // The registry's object is the one the daemon shares with its jobs; here one loaded by hand.
      const registry = { get: () => obj } as unknown as ObjectRegistry;
      expect(job.open({ seed: true, objects: registry })).toEqual([]);
      const v = obj.map('locked').lookup(le32(4), 4 /* BPF_F_LOCK */)!;
      expect(v.readBigUInt64LE(8)).toBe(44n);
      job.close();
    } finally {
      obj.close();
    }
  });

  it('cgroups: matching cgroups are written as they come, and deleted from a hash map as they go', () => {
    const root = findCgroup2Root();
    const top = join(root, `bme-seed-${process.pid}`);
    mkdirSync(join(top, 'keep-a'), { recursive: true });
    mkdirSync(join(top, 'skip'));
    const obj = BpfObject.load(object);
    const registry = { get: () => obj } as unknown as ObjectRegistry;
    const ino = (p: string) => statSync(p, { bigint: true }).ino;
    try {
      const text = `maps:
  - name: ids
    source: { object: ${object}, map: cgroup_ids }
    seed:
      cgroups: { match: [ '^/bme-seed-${process.pid}/keep' ], value: { value: 1 } }
  - name: storage
    source: { object: ${object}, map: cgroup_flags }
    seed:
      cgroups: { match: [ '^${root}/bme-seed-${process.pid}/keep' ], paths: absolute, value: { value: 7 } }
`;
      const specs = parseConfig(text, join(dir, 'cgroups.yaml')).maps;
      const ids = new MapJob(specs[0], 0);
      const storage = new MapJob(specs[1], 1);
      expect(ids.open({ seed: true, objects: registry, cgroupRoot: root })).toEqual([]);
      expect(storage.open({ seed: true, objects: registry, cgroupRoot: root })).toEqual([]);
      expect(ids.refreshSeed()).toEqual([]);
      expect(storage.refreshSeed()).toEqual([]);
      const idMap = obj.map('cgroup_ids');
      const keys = () => u64Keys(idMap);
      expect(keys()).toEqual([ino(join(top, 'keep-a'))]);
      expect(idMap.lookup(le64(ino(join(top, 'keep-a'))))!.readBigUInt64LE(0)).toBe(1n);
      const storageOf = (p: string) => {
        const fd = openSync(p, 'r');
        try {
          return obj.map('cgroup_flags').lookup(le32(fd))?.readBigUInt64LE(0);
        } finally {
          closeSync(fd);
        }
      };
      expect(storageOf(join(top, 'keep-a'))).toBe(7n);
      expect(storageOf(join(top, 'skip'))).toBeUndefined();

      // One comes, one goes.
      mkdirSync(join(top, 'keep-b'));
      rmdirSync(join(top, 'keep-a'));
      expect(ids.refreshSeed()).toEqual([]);
      expect(storage.refreshSeed()).toEqual([]);
      expect(keys()).toEqual([ino(join(top, 'keep-b'))]);
      expect(storageOf(join(top, 'keep-b'))).toBe(7n);
      ids.close();
      storage.close();
    } finally {
      obj.close();
      // A cgroup goes with rmdir (its files cannot be unlinked: Node 24's recursive rmSync tries and fails).
      for (const d of ['keep-a', 'keep-b', 'skip', '']) if (existsSync(join(top, d))) rmdirSync(join(top, d));
    }
  });

  it('the daemon seeds at start and again at every reload', async () => {
    const { map, file } = pinned('daemon', `      entries:
        - { key: { id: 1 }, value: { n: 11 } }
    metrics:
      - { name: seeded_n, type: gauge, help: Seeded values, value: n, labels: [ { name: id, from: id } ] }
`);
    const d = await startDaemon(file);
    try {
      expect(value(map, 1)).toBe(11n);
      map.update(le32(1), le64(5n));
      d.proc.kill('SIGHUP');
      for (let i = 0; i < 100 && value(map, 1) !== 11n; i++) await sleep(50);
      expect(value(map, 1)).toBe(11n);
    } finally {
      expect((await stopDaemon(d)).code).toBe(0);
    }
  }, 30_000);
});

/** The keys of a u64-keyed map, read in batches. */
function u64Keys(map: BpfMap): bigint[] {
  const out: bigint[] = [];
  for (const b of new BatchReader(map).batches('read')) {
    for (let i = 0; i < b.count; i++) out.push(Buffer.from(b.keys.buffer, b.keys.byteOffset + i * 8, 8).readBigUInt64LE(0));
  }
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfMap, mapIds, BPF_F_LOCK, BPF_NOEXIST } from '../../../src/bpf/map.js';
import { BatchReader } from '../../../src/bpf/batch.js';
import { MapType } from '../../../src/bpf/map-types.js';
import { BpfObject } from '../../../src/bpf/object.js';
import { BpfError } from '../../../src/bpf/errors.js';
import { mapBtf } from '../../../src/bpf/btf.js';
import { flattenFields } from '../../../src/layout/btf-fields.js';
import { logger } from '../../../src/log.js';
import { compileBpf, kernelDescribe, pinDir } from '../support.js';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

function errorOf(fn: () => unknown): BpfError {
  try {
    fn();
  } catch (e) {
    if (e instanceof BpfError) return e;
    throw e;
  }
  throw new Error('expected a BpfError');
}

kernelDescribe('opening maps', () => {
  it('opens by pin (read-only unless asked), by id, by name and from an fd, with exact info', () => {
    const dir = pinDir('open');
    const name = `bme_o${process.pid % 100000}`;
    const m = BpfMap.create({ type: MapType.lru_percpu_hash, name, keySize: 6, valueSize: 12, maxEntries: 33 });
    try {
      expect(m.info).toMatchObject({ type: MapType.lru_percpu_hash, typeName: 'lru_percpu_hash', name, keySize: 6, valueSize: 12, maxEntries: 33, btfId: 0 });
      expect(m.info.id).toBeGreaterThan(0);
      expect(m.cursorSize).toBe(6);
      expect(mapIds()).toContain(m.info.id);

      m.pin(`${dir}/m`);
      const byPin = BpfMap.openPinned(`${dir}/m`);
      const byPinRw = BpfMap.openPinned(`${dir}/m`, { write: true });
      const byId = BpfMap.openById(m.info.id);
      const byName = BpfMap.openByName(name);
      const byFd = BpfMap.fromFd(m.fd, { owned: false });
      for (const o of [byPin, byPinRw, byId, byName, byFd]) expect(o.info).toEqual(m.info);
      expect([byPin.readOnly, byPinRw.readOnly, byId.readOnly, byName.readOnly]).toEqual([true, false, true, true]);
      // The read-only fd refuses writes; the read-write one takes them.
      expect(errorOf(() => byPin.update(Buffer.alloc(6), byPin.allocValues())).errnoName).toBe('EPERM');
      byPinRw.update(Buffer.alloc(6), byPinRw.allocValues());
      expect(byId.lookup(Buffer.alloc(6))).toEqual(m.allocValues());
      byFd.close();
      expect(m.lookup(Buffer.alloc(6))).toBeDefined(); // a borrowed fd stays open
      for (const o of [byPin, byPinRw, byId, byName]) o.close();
    } finally {
      m.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says which maps share a name, and when none has it', () => {
    const name = `bme_d${process.pid % 100000}`;
    const a = BpfMap.create({ type: MapType.hash, name, keySize: 4, valueSize: 4, maxEntries: 1 });
    const b = BpfMap.create({ type: MapType.array, name, keySize: 4, valueSize: 4, maxEntries: 1 });
    try {
      expect(errorOf(() => BpfMap.openByName(name)).message).toBe(
        `map ${name}: open map by name failed: EEXIST (2 maps have that name: id ${a.info.id} (hash), id ${b.info.id} (array); choose one with source: { id: N } or a pin)`,
      );
      expect(errorOf(() => BpfMap.openByName('bme_no_such_map')).message).toBe(
        'map bme_no_such_map: open map by name failed: ENOENT (no map on this host has that name)',
      );
      expect(errorOf(() => BpfMap.openById(0x7ffffff0)).errnoName).toBe('ENOENT');
    } finally {
      a.close();
      b.close();
    }
  });
});

kernelDescribe('batch writes', () => {
  it('updates and deletes in batches, reporting how many were done', () => {
    const m = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 8 });
    try {
      const keys = Buffer.alloc(10 * 4);
      const values = Buffer.alloc(10 * 8);
      for (let i = 0; i < 10; i++) {
        keys.writeUInt32LE(i + 1, i * 4);
        values.writeBigUInt64LE(BigInt(i) * 1000n, i * 8);
      }
      expect(m.updateBatch(keys, values, 5)).toBe(5);
      // A full map: E2BIG after the 8th element, and done says how far it got.
      const full = errorOf(() => m.updateBatch(keys.subarray(20), values.subarray(40), 5));
      expect(full.errnoName).toBe('E2BIG');
      expect(full.done).toBe(3);
      expect(new BatchReader(m).forEach('read', () => {}).entries).toBe(8);

      // The kernel takes no BPF_NOEXIST/BPF_EXIST here; BPF_F_LOCK needs a spin lock in the value.
      expect(errorOf(() => m.updateBatch(keys, values, 1, { lock: true })).errnoName).toBe('EINVAL');
      expect(BPF_F_LOCK).toBe(4);
      expect(BPF_NOEXIST).toBe(1);

      expect(m.deleteBatch(keys, 2)).toBe(2);
      // Keys 1 and 2 are gone now: deleting 3, 4, 1 stops at 1 with done = 2.
      const again = Buffer.concat([keys.subarray(8, 16), keys.subarray(0, 4)]);
      const missing = errorOf(() => m.deleteBatch(again, 3));
      expect(missing.errnoName).toBe('ENOENT');
      expect(missing.done).toBe(2);
      expect(new BatchReader(m).forEach('read', () => {}).entries).toBe(4);
      expect(() => m.updateBatch(keys, values, 11)).toThrow(/buffers too small for 11 elements/);
    } finally {
      m.close();
    }
  });

  it('writes arrays in batches, and stops at an index out of range', () => {
    const m = BpfMap.create({ type: MapType.percpu_array, keySize: 4, valueSize: 4, maxEntries: 4 });
    try {
      const keys = Buffer.concat([0, 1, 2, 7].map(u32));
      const values = m.allocValues(4);
      for (let i = 0; i < 4 * m.cpus; i++) values.writeUInt32LE(i + 1, i * 8);
      const e = errorOf(() => m.updateBatch(keys, values, 4));
      expect(e.errnoName).toBe('E2BIG');
      expect(e.done).toBe(3);
      const got = m.lookup(u32(2))!;
      for (let c = 0; c < m.cpus; c++) expect(got.readUInt32LE(c * 8)).toBe(2 * m.cpus + c + 1);
    } finally {
      m.close();
    }
  });
});

kernelDescribe('maps of a clang-compiled object', () => {
  let dir: string;
  let obj: BpfObject;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-obj-'));
    compileBpf(new URL('../../fixtures/bpf/percpu.bpf.c', import.meta.url).pathname, join(dir, 'percpu.bpf.o'));
    obj = BpfObject.load(join(dir, 'percpu.bpf.o'));
  });
  afterAll(() => {
    obj?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds each CPU\'s value in its own slot', () => {
    const cpus = obj.map('hits').cpus;
    const runs = Array.from({ length: cpus }, (_, c) => c + 2); // CPU c runs the program c + 2 times
    runs.forEach((times, cpu) => {
      for (let i = 0; i < times; i++) obj.testRun('count', { cpu });
    });
    const hits = obj.map('hits');
    expect(hits.info.valueSize).toBe(12);
    expect(hits.valueStride).toBe(16 * cpus);
    let seen = 0;
    for (const b of new BatchReader(hits).batches()) {
      expect(b.count).toBe(1);
      for (let c = 0; c < cpus; c++) {
        expect(b.values.readBigUInt64LE(c * 16)).toBe(BigInt(runs[c]));
        expect(b.values.readUInt32LE(c * 16 + 8)).toBe(c);
      }
      seen++;
    }
    expect(seen).toBe(1);

    // by_cpu is keyed by the CPU the program ran on: only that CPU's slot counts.
    const byCpu = new Map<number, bigint[]>();
    for (const b of new BatchReader(obj.map('by_cpu'), { method: 'batch' }).batches()) {
      for (let i = 0; i < b.count; i++) {
        byCpu.set(b.keys.readUInt32LE(i * 4), Array.from({ length: cpus }, (_, c) => b.values.readBigUInt64LE(i * b.valueStride + c * 8)));
      }
    }
    expect(byCpu).toEqual(new Map(runs.map((times, cpu) => [cpu, runs.map((_, c) => (c === cpu ? BigInt(times) : 0n))])));
  });

  it('describes key and value from the map\'s BTF', () => {
    const pin = pinDir('btf');
    try {
      obj.map('hits').pin(`${pin}/hits`);
      const m = BpfMap.openPinned(`${pin}/hits`);
      const t = mapBtf(m)!;
      m.close();
      expect(t.key).toMatchObject({ kind: 'int', size: 4, signed: false });
      expect(t.value).toMatchObject({ kind: 'struct', name: 'hit', size: 12 });
      expect(flattenFields(t.value).map((f) => [f.path, f.offset, f.size])).toEqual([['hits', 0, 8], ['cpu', 8, 4]]);
      const plain = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 4, maxEntries: 1 });
      expect(mapBtf(plain)).toBeUndefined();
      plain.close();
    } finally {
      rmSync(pin, { recursive: true, force: true });
    }
  });

  it('says why the verifier refused a program, with the end of its log', () => {
    compileBpf(new URL('../../fixtures/bpf/rejected.bpf.c', import.meta.url).pathname, join(dir, 'rejected.bpf.o'));
    let err: BpfError | undefined;
    try {
      BpfObject.load(join(dir, 'rejected.bpf.o'));
    } catch (e) {
      err = e as BpfError;
    }
    expect(err).toBeInstanceOf(BpfError);
    expect(err!.message).toMatch(new RegExp(`^object ${join(dir, 'rejected.bpf.o')}: load BPF object failed: EACCES \\(libbpf said:\\n`));
    // The verifier's reason is in the excerpt, and the excerpt is bounded.
    expect(err!.message).toMatch(/invalid mem access 'map_value_or_null'/);
    expect(err!.message.split('\n').length).toBeLessThanOrEqual(32);
  });

  it('names an extern that nothing defines (clang left memcmp as a call), not a missing map', () => {
    compileBpf(new URL('../../fixtures/bpf/extern-memcmp.bpf.c', import.meta.url).pathname, join(dir, 'extern.bpf.o'));
    expect(() => BpfObject.load(join(dir, 'extern.bpf.o'))).toThrow(
      new RegExp(`^object ${join(dir, 'extern.bpf.o')}: open BPF object failed: ENOENT \\(the object needs memcmp, which neither the kernel nor the object defines: `),
    );
  });

  it('routes libbpf\'s own messages into the logger, not stderr', () => {
    const warn = vi.spyOn(logger, 'warn');
    try {
      expect(() => BpfObject.load(join(dir, 'missing.bpf.o'))).toThrow(`object ${join(dir, 'missing.bpf.o')}: open BPF object failed: ENOENT`);
      expect(warn).toHaveBeenCalledWith({ source: 'libbpf' }, expect.stringMatching(/^libbpf: .*missing\.bpf\.o/));
    } finally {
      warn.mockRestore();
    }
  });
});

kernelDescribe('inventory', () => {
  it('lists every map with entries, max_entries and memlock, and a removed map leaves it', async () => {
    const { inventory } = await import('../../../src/bpf/inventory.js');
    const name = `bme_i${process.pid % 100000}`;
    const m = BpfMap.create({ type: MapType.lru_hash, name, keySize: 4, valueSize: 8, maxEntries: 10 });
    const a = BpfMap.create({ type: MapType.percpu_array, name: `${name}a`, keySize: 4, valueSize: 8, maxEntries: 4 });
    for (let i = 0; i < 3; i++) m.update(u32(i), Buffer.alloc(8));
    const row = inventory().find((r) => r.id === m.info.id);
    expect(row).toMatchObject({ name, type: 'lru_hash', keySize: 4, valueSize: 8, maxEntries: 10, entries: 3, method: 'batch' });
    expect(row!.memlockBytes).toBeGreaterThan(0);
    expect(inventory().find((r) => r.id === a.info.id)).toMatchObject({ type: 'percpu_array', entries: 4, method: null });
    const id = m.info.id;
    m.close();
    a.close();
    // The kernel frees a map once its last fd is gone, asynchronously.
    for (let i = 0; i < 100 && inventory().some((r) => r.id === id); i++) await new Promise((r) => setTimeout(r, 20));
    expect(inventory().some((r) => r.id === id)).toBe(false);
  });

  it('gives the event loop turns while it lists many maps (the daemon\'s inventory), with the same rows as inventory()', async () => {
    const { inventory, inventoryAsync } = await import('../../../src/bpf/inventory.js');
    const many = Array.from({ length: 200 }, () => BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 4 }));
    try {
      let turns = 0;
      let done = false;
      const tick = (): void => {
        turns++;
        if (!done) setImmediate(tick);
      };
      setImmediate(tick);
      const rows = await inventoryAsync();
      done = true;
      // At least one turn per 50 maps listed; a synchronous inventory gives none.
      expect(turns).toBeGreaterThanOrEqual(Math.floor(rows.length / 50) - 1);
      expect(turns).toBeGreaterThanOrEqual(3);
      const ids = new Set(rows.map((r) => r.id));
      for (const m of many) expect(ids.has(m.info.id)).toBe(true);
      expect(rows.find((r) => r.id === many[0].info.id)).toEqual(inventory().find((r) => r.id === many[0].info.id));
    } finally {
      for (const m of many) m.close();
    }
  });
});

/**
 * BpfObject.inspect: an object's maps and programs read from its ELF, nothing loaded into the kernel.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfObject } from '../../../src/bpf/object.js';
import { MapType } from '../../../src/bpf/map-types.js';
import { BpfError } from '../../../src/bpf/errors.js';
import { compileBpf, kernelDescribe } from '../support.js';

kernelDescribe('BpfObject.inspect', () => {
  let dir: string;
  let obj: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-inspect-'));
    obj = join(dir, 'percpu.bpf.o');
    compileBpf(new URL('../../fixtures/bpf/percpu.bpf.c', import.meta.url).pathname, obj);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lists the maps with their type and sizes and the programs with their sections', () => {
    const contents = BpfObject.inspect(obj);
    expect(contents.maps).toEqual([
      // struct hit is 12 bytes, packed.
      { name: 'hits', type: MapType.percpu_array, keySize: 4, valueSize: 12 },
      { name: 'by_cpu', type: MapType.percpu_hash, keySize: 4, valueSize: 8 },
    ]);
    expect(contents.programs).toEqual([{ name: 'count', section: 'raw_tp' }]);
  });

  it('refuses a file that is not an object in one BpfError', () => {
    const bad = join(dir, 'not-an-object.bpf.o');
    writeFileSync(bad, 'hello');
    expect(() => BpfObject.inspect(bad)).toThrow(BpfError);
    expect(() => BpfObject.inspect(join(dir, 'missing.bpf.o'))).toThrow(/ENOENT/);
  });
});

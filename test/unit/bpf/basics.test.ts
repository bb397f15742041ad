import { describe, expect, it } from 'vitest';
import { parseCpuList } from '../../../src/bpf/cpus.js';
import { BpfError, errnoName } from '../../../src/bpf/errors.js';
import { isArrayLike, isHashFamily, isPerCpu, mapTypeName, MapType, perCpuSlotSize } from '../../../src/bpf/map-types.js';

describe('CPU lists', () => {
  it('parses ranges and sparse masks in ascending order', () => {
    expect(parseCpuList('0-3\n')).toEqual([0, 1, 2, 3]);
    expect(parseCpuList('0,2-3')).toEqual([0, 2, 3]);
    expect(parseCpuList('5')).toEqual([5]);
    expect(() => parseCpuList('0-x')).toThrow('cannot parse CPU list "0-x" at "0-x"');
  });
});

describe('map types', () => {
  it('names types as bpftool does and knows their families', () => {
    expect([1, 5, 9, 10, 11, 13, 27].map(mapTypeName)).toEqual(['hash', 'percpu_hash', 'lru_hash', 'lru_percpu_hash', 'lpm_trie', 'hash_of_maps', 'ringbuf']);
    expect(mapTypeName(999)).toBe('type_999');
    expect(MapType.percpu_array).toBe(6);
    expect(isPerCpu(MapType.lru_percpu_hash)).toBe(true);
    expect(isPerCpu(MapType.hash)).toBe(false);
    expect(isHashFamily(MapType.hash_of_maps)).toBe(true);
    expect(isHashFamily(MapType.lpm_trie)).toBe(false);
    expect(isArrayLike(MapType.percpu_array)).toBe(true);
    expect(isArrayLike(MapType.lru_hash)).toBe(false);
  });

  it('pads per-CPU slots to 8 bytes', () => {
    expect([1, 4, 8, 12, 16, 17].map(perCpuSlotSize)).toEqual([8, 8, 8, 16, 16, 24]);
  });
});

describe('errors', () => {
  it('names errnos, the kernel-internal ENOTSUPP included', () => {
    expect(errnoName(1)).toBe('EPERM');
    expect(errnoName(-28)).toBe('ENOSPC');
    expect(errnoName(524)).toBe('ENOTSUPP');
    expect(errnoName(4095)).toBe('E4095');
  });

  it('makes one line with the map, the operation, the errno name and its meaning', () => {
    const e = new BpfError('lookup batch', 1, { map: '/sys/fs/bpf/x' });
    expect(e.message).toBe('map /sys/fs/bpf/x: lookup batch failed: EPERM (not permitted: needs CAP_BPF, or CAP_SYS_ADMIN to list maps and to open maps or BTF by id; or the fd is read-only / the map is frozen)');
    expect(e.message).not.toContain('\n');
    expect(e).toMatchObject({ code: 'ERR_BPF', errno: 1, errnoName: 'EPERM', op: 'lookup batch', map: '/sys/fs/bpf/x' });
    expect(new BpfError('x', 75, { detail: 'why' }).message).toBe('x failed: EOVERFLOW (why)');
  });
});

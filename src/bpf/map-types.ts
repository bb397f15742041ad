/** enum bpf_map_type, named as bpftool names them. The index is the kernel's number. */
export const MAP_TYPE_NAMES = [
  'unspec', 'hash', 'array', 'prog_array', 'perf_event_array', 'percpu_hash', 'percpu_array',
  'stack_trace', 'cgroup_array', 'lru_hash', 'lru_percpu_hash', 'lpm_trie', 'array_of_maps',
  'hash_of_maps', 'devmap', 'sockmap', 'cpumap', 'xskmap', 'sockhash', 'cgroup_storage',
  'reuseport_sockarray', 'percpu_cgroup_storage', 'queue', 'stack', 'sk_storage', 'devmap_hash',
  'struct_ops', 'ringbuf', 'inode_storage', 'task_storage', 'bloom_filter', 'user_ringbuf',
  'cgrp_storage', 'arena',
] as const;

export type MapTypeName = (typeof MAP_TYPE_NAMES)[number];

export const MapType = Object.fromEntries(MAP_TYPE_NAMES.map((n, i) => [n, i])) as Record<MapTypeName, number>;

export function mapTypeName(type: number): string {
  return MAP_TYPE_NAMES[type] ?? `type_${type}`;
}

const PER_CPU = new Set<number>([MapType.percpu_hash, MapType.percpu_array, MapType.lru_percpu_hash, MapType.percpu_cgroup_storage]);
// These use the hash table's batch walk, whose cursor is a u32 bucket index whatever the key size.
const HASH_FAMILY = new Set<number>([MapType.hash, MapType.percpu_hash, MapType.lru_hash, MapType.lru_percpu_hash, MapType.hash_of_maps]);

export function isPerCpu(type: number): boolean {
  return PER_CPU.has(type);
}

export function isHashFamily(type: number): boolean {
  return HASH_FAMILY.has(type);
}

/** Bytes of one CPU's slot in a per-CPU value: the kernel pads each slot to 8 bytes. */
export function perCpuSlotSize(valueSize: number): number {
  return (valueSize + 7) & ~7;
}

// Index-addressed maps: every key from 0 to max_entries - 1 always exists and none can be deleted.
const ARRAY_LIKE = new Set<number>([MapType.array, MapType.percpu_array, MapType.array_of_maps, MapType.prog_array,
  MapType.perf_event_array, MapType.cgroup_array]);

export function isArrayLike(type: number): boolean {
  return ARRAY_LIKE.has(type);
}

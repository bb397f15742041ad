import { closeSync } from 'node:fs';
import { native } from './libbpf.js';
import { BpfError, Errno } from './errors.js';
import { isHashFamily, isPerCpu, mapTypeName, perCpuSlotSize } from './map-types.js';
import { possibleCpus } from './cpus.js';
import type { Btf } from './btf-parse.js';

export interface MapInfo {
  type: number;
  /** bpftool's name of the type: hash, percpu_hash, lru_hash, array, ... */
  typeName: string;
  id: number;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  ifindex: number;
  btfId: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
  mapExtra: bigint;
}

export interface OpenOptions {
  /** Open read-write. Reads need only a read-only fd, which also works on a 0644 pin without CAP_BPF. */
  write?: boolean;
}

export interface CreateOptions {
  type: number;
  name?: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  /** For map-in-map types: a map of the inner type. */
  innerMap?: BpfMap;
}

export const BPF_F_NO_PREALLOC = 1;
export const BPF_F_RDONLY = 8;
export const BPF_F_WRONLY = 16;
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
export const BPF_F_LOCK = 4;

const MAP_INFO_SIZE = 88; // struct bpf_map_info as libbpf 1.1.2 knows it; the kernel fills min(ours, its)
const MAP_NAME_MAX = 15; // BPF_OBJ_NAME_LEN - 1

function check(ret: number, op: string, map?: string, detail?: Partial<Record<number, string>>): number {
  if (ret < 0) throw new BpfError(op, -ret, { map, detail: detail?.[-ret] });
  return ret;
}

/** What EPERM means for the operations the kernel keeps for CAP_SYS_ADMIN (CAP_BPF is not enough). */
export const NEEDS_SYS_ADMIN = { [Errno.EPERM]: 'the kernel lets only CAP_SYS_ADMIN list BPF maps and open maps or BTF by id' };

function openOpts(flags: number): Buffer {
  // struct bpf_obj_get_opts / bpf_get_fd_by_id_opts: { size_t sz; __u32 flags; } = 16 bytes.
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(16n, 0);
  b.writeUInt32LE(flags, 8);
  return b;
}

export function readMapInfo(fd: number, label?: string): MapInfo {
  const buf = Buffer.alloc(MAP_INFO_SIZE);
  const len = new Uint32Array([MAP_INFO_SIZE]);
  check(native.objGetInfoByFd(fd, buf, len), 'get map info', label);
  const nameEnd = buf.indexOf(0, 24);
  const type = buf.readUInt32LE(0);
  return {
    type,
    typeName: mapTypeName(type),
    id: buf.readUInt32LE(4),
    keySize: buf.readUInt32LE(8),
    valueSize: buf.readUInt32LE(12),
    maxEntries: buf.readUInt32LE(16),
    flags: buf.readUInt32LE(20),
    name: buf.toString('latin1', 24, nameEnd < 0 || nameEnd > 40 ? 40 : nameEnd),
    ifindex: buf.readUInt32LE(40),
    btfId: buf.readUInt32LE(64),
    btfKeyTypeId: buf.readUInt32LE(68),
    btfValueTypeId: buf.readUInt32LE(72),
    mapExtra: buf.readBigUInt64LE(80),
  };
}

/**
 * Ids of every BPF object of a kind on the host, ascending, walked with its get-next-id call
 * (needs CAP_SYS_ADMIN: `detail` says so for EPERM).
 */
export function listIds(getNext: (start: number, next: Uint32Array) => number, op: string, detail: Partial<Record<number, string>>): number[] {
  const ids: number[] = [];
  const next = new Uint32Array(1);
  let id = 0;
  for (;;) {
    const ret = getNext(id, next);
    if (ret === -Errno.ENOENT) return ids;
    check(ret, op, undefined, detail);
    id = next[0];
    ids.push(id);
  }
}

/** Ids of every BPF map on the host, ascending (needs CAP_SYS_ADMIN). */
export function mapIds(): number[] {
  return listIds(native.mapGetNextId, 'list map ids', NEEDS_SYS_ADMIN);
}

/** A BPF map held by an fd we own (or borrow). The fd is closed by close(), never by a finalizer. */
export class BpfMap {
  readonly info: MapInfo;
  /** How errors name this map: its pin, its name or its id. */
  readonly label: string;
  /** True when the fd was opened read-only: drains, updates and deletes will get EPERM. */
  readonly readOnly: boolean;
  /** One slot per possible CPU for per-CPU maps; 1 otherwise. */
  readonly cpus: number;
  /** Bytes one element's value takes in lookup buffers: value_size, or round_up(value_size, 8) * possible CPUs. */
  readonly valueStride: number;
  /** Bytes of a batch cursor: hash maps use a 4-byte bucket index, the others a whole key. */
  readonly cursorSize: number;
  /**
   * The BTF of the object that created the map, when we loaded that object: the map's layout is read
   * from it without the id lookup that needs CAP_SYS_ADMIN.
   */
  readonly btf: Btf | undefined;
  private fdValue: number;
  private readonly owned: boolean;

  private constructor(fd: number, label: string, readOnly: boolean, owned: boolean, btf?: Btf) {
    this.fdValue = fd;
    this.btf = btf;
    this.owned = owned;
    this.readOnly = readOnly;
    try {
      this.info = readMapInfo(fd, label);
    } catch (e) {
      if (owned) closeSync(fd);
      throw e;
    }
    this.label = label;
    const perCpu = isPerCpu(this.info.type);
    this.cpus = perCpu ? possibleCpus().length : 1;
    this.valueStride = perCpu ? perCpuSlotSize(this.info.valueSize) * this.cpus : this.info.valueSize;
    this.cursorSize = Math.max(this.info.keySize, 4);
  }

  static openPinned(path: string, opts: OpenOptions = {}): BpfMap {
    const fd = check(native.objGetOpts(path, openOpts(opts.write === true ? 0 : BPF_F_RDONLY)), 'open pinned map', path);
    return new BpfMap(fd, path, opts.write !== true, true);
  }

  static openById(id: number, opts: OpenOptions = {}): BpfMap {
    const label = `id ${id}`;
    const fd = check(native.mapGetFdByIdOpts(id, openOpts(opts.write === true ? 0 : BPF_F_RDONLY)), 'open map by id', label, NEEDS_SYS_ADMIN);
    return new BpfMap(fd, label, opts.write !== true, true);
  }

  /**
   * The one map on the host with this name (the kernel keeps 15 characters of a name, so a longer
   * name is matched on its first 15). No match is ENOENT; several matches is an error listing them.
   * `exclude` skips ids (a caller looking for a newer map than the one it holds).
   */
  static openByName(name: string, opts: OpenOptions & { exclude?: readonly number[] } = {}): BpfMap {
    const want = name.slice(0, MAP_NAME_MAX);
    const found: BpfMap[] = [];
    for (const id of mapIds()) {
      if (opts.exclude?.includes(id) === true) continue;
      let m: BpfMap;
      try {
        m = BpfMap.openById(id, opts);
      } catch (e) {
        // A map can vanish between listing and opening.
        if (e instanceof BpfError && e.errno === Errno.ENOENT) continue;
        throw e;
      }
      if (m.info.name === want) found.push(m);
      else m.close();
    }
    if (found.length === 1) return found[0];
    for (const m of found) m.close();
    if (found.length === 0) throw new BpfError('open map by name', Errno.ENOENT, { map: name, detail: 'no map on this host has that name' });
    throw new BpfError('open map by name', Errno.EEXIST, {
      map: name,
      detail: `${found.length} maps have that name: ${found.map((m) => `id ${m.info.id} (${m.info.typeName})`).join(', ')}; choose one with source: { id: N } or a pin`,
    });
  }

  /** Wrap an fd obtained elsewhere. With owned: false the fd stays open after close(). */
  static fromFd(fd: number, opts: { owned?: boolean; readOnly?: boolean; label?: string; btf?: Btf } = {}): BpfMap {
    return new BpfMap(fd, opts.label ?? `fd ${fd}`, opts.readOnly ?? false, opts.owned ?? true, opts.btf);
  }

  /** Create a map (tests, benchmarks, pre-populated maps). The returned map is read-write. */
  static create(o: CreateOptions): BpfMap {
    // struct bpf_map_create_opts (libbpf 1.1): sz@0 btf_fd@8 btf_key_type_id@12 btf_value_type_id@16
    // btf_vmlinux_value_type_id@20 inner_map_fd@24 map_flags@28 map_extra@32 numa_node@40 map_ifindex@44.
    const opts = Buffer.alloc(48);
    opts.writeBigUInt64LE(48n, 0);
    if (o.innerMap !== undefined) opts.writeUInt32LE(o.innerMap.fd, 24);
    opts.writeUInt32LE(o.flags ?? 0, 28);
    const label = o.name ?? mapTypeName(o.type);
    const fd = check(native.mapCreate(o.type, o.name ?? null, o.keySize, o.valueSize, o.maxEntries, opts), 'create map', label);
    return new BpfMap(fd, label, false, true);
  }

  get fd(): number {
    if (this.fdValue < 0) throw new BpfError('use map', Errno.EBADF, { map: this.label, detail: 'the map was closed' });
    return this.fdValue;
  }

  get closed(): boolean {
    return this.fdValue < 0;
  }

  get perCpu(): boolean {
    return this.cpus > 1 || isPerCpu(this.info.type);
  }

  get hashFamily(): boolean {
    return isHashFamily(this.info.type);
  }

  close(): void {
    if (this.fdValue < 0) return;
    const fd = this.fdValue;
    this.fdValue = -1;
    if (this.owned) closeSync(fd);
  }

  /** Current kernel view of the map (max_entries and flags never change; ids do not either). */
  refreshInfo(): MapInfo {
    return readMapInfo(this.fd, this.label);
  }

  pin(path: string): void {
    check(native.objPin(this.fd, path), `pin to ${path}`, this.label);
  }

  freeze(): void {
    check(native.freeze(this.fd), 'freeze', this.label);
  }

  /** A buffer sized for `n` values of this map (per-CPU maps: all possible CPUs' slots). */
  allocValues(n = 1): Buffer {
    return Buffer.alloc(n * this.valueStride);
  }

  /** The value of `key`, or undefined when the key is absent. */
  lookup(key: Uint8Array, flags = 0): Buffer | undefined {
    const value = this.allocValues(1);
    const ret = native.lookupElemFlags(this.fd, key, value, flags);
    if (ret === -Errno.ENOENT) return undefined;
    check(ret, 'lookup', this.label);
    return value;
  }

  update(key: Uint8Array, value: Uint8Array, flags = BPF_ANY): void {
    check(native.updateElem(this.fd, key, value, flags), 'update', this.label);
  }

  /** Delete `key`; false when it was absent. */
  delete(key: Uint8Array): boolean {
    const ret = native.deleteElem(this.fd, key);
    if (ret === -Errno.ENOENT) return false;
    check(ret, 'delete', this.label);
    return true;
  }

  /**
   * Write `count` consecutive key/value pairs in one call. The kernel accepts only BPF_ANY semantics
   * here (BPF_NOEXIST/BPF_EXIST are refused with EINVAL), optionally under the value's spin lock.
   * Returns the number written; a failure throws a BpfError whose `done` says how many were written.
   */
  updateBatch(keys: Uint8Array, values: Uint8Array, count: number, opts: { lock?: boolean } = {}): number {
    if (count === 0) return 0;
    this.checkBatchBuffers('update batch', keys, values, count);
    const n = new Uint32Array([count]);
    const ret = native.updateBatch(this.fd, keys, values, n, batchOpts(opts.lock === true ? BPF_F_LOCK : 0));
    if (ret < 0) throw new BpfError('update batch', -ret, { map: this.label, done: ret === -Errno.EFAULT ? undefined : n[0] });
    return n[0];
  }

  /** Delete `count` consecutive keys in one call; stops at the first missing key (ENOENT, with `done`). */
  deleteBatch(keys: Uint8Array, count: number): number {
    if (count === 0) return 0;
    this.checkBatchBuffers('delete batch', keys, undefined, count);
    const n = new Uint32Array([count]);
    const ret = native.deleteBatch(this.fd, keys, n, batchOpts(0));
    if (ret < 0) throw new BpfError('delete batch', -ret, { map: this.label, done: ret === -Errno.EFAULT ? undefined : n[0] });
    return n[0];
  }

  private checkBatchBuffers(op: string, keys: Uint8Array, values: Uint8Array | undefined, count: number): void {
    const needKeys = count * this.info.keySize;
    const needValues = count * this.valueStride;
    if (keys.byteLength < needKeys || (values !== undefined && values.byteLength < needValues)) {
      // The kernel would write past our buffers; refuse before the call.
      throw new BpfError(op, Errno.EINVAL, {
        map: this.label,
        detail: `buffers too small for ${count} elements: keys ${keys.byteLength} < ${needKeys} or values ${values?.byteLength ?? 0} < ${needValues} bytes`,
      });
    }
  }
}

/** struct bpf_map_batch_opts: { size_t sz; __u64 elem_flags; __u64 flags; } = 24 bytes. */
export function batchOpts(elemFlags: number): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(24n, 0);
  b.writeBigUInt64LE(BigInt(elemFlags), 8);
  return b;
}

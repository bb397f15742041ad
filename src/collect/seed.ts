/**
 * Seeding: entries the exporter writes into a map when it opens it (at start, at every reload and
 * after the map was re-created), and the entries of matching cgroups, kept up to date every cycle.
 * Entries are encoded with the job's key and value layouts (written or from BTF) when the job is
 * planned, so `check` reports a value that does not fit its field; writing happens only in the
 * daemon. flags any is one bpf_map_update_batch call; noexist and exist, which the kernel's batch
 * update refuses (EINVAL), are one bpf_map_update_elem per entry. Every failure names its entry.
 */
import { closeSync, constants, openSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { MapSpec, SeedSpec } from '../config/types.js';
import { formatPath, type ConfigPath } from '../yaml/errors.js';
import { BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, type BpfMap } from '../bpf/map.js';
import { BpfError } from '../bpf/errors.js';
import { MapType, isHashFamily } from '../bpf/map-types.js';
import { findCgroup2Root } from '../decode/cgroup.js';
import { encodeFields } from '../layout/encode.js';
import type { Layout } from '../layout/types.js';
import type { MapShape } from '../aggregate/types.js';
import type { PlanProblem } from '../aggregate/plan.js';
import type { SourceRef } from '../yaml/locate.js';

const FLAGS = { any: BPF_ANY, noexist: BPF_NOEXIST, exist: BPF_EXIST } as const;

/** Directories a cgroup walk visits at most (a host with more is refused in the log, not walked forever). */
export const CGROUP_WALK_LIMIT = 100_000;
const CGROUP_WALK_DEPTH = 32;

/** A cgroup v2 directory: its id (the directory's inode number) and its path. */
export interface CgroupDir {
  id: bigint;
  /** Below the root: `/` for the root, `/system.slice/x.service`. */
  relative: string;
  /** With the mount point. */
  absolute: string;
}

/** Every cgroup under `root`, breadth first, at most CGROUP_WALK_LIMIT. Vanishing directories are skipped. */
export function walkCgroups(root: string): CgroupDir[] {
  const out: CgroupDir[] = [];
  const queue: { dir: string; relative: string; depth: number }[] = [{ dir: root, relative: '/', depth: 0 }];
  for (let i = 0; i < queue.length && out.length < CGROUP_WALK_LIMIT; i++) {
    const { dir, relative, depth } = queue[i];
    try {
      out.push({ id: statSync(dir, { bigint: true }).ino, relative, absolute: dir });
    } catch {
      continue;
    }
    if (depth >= CGROUP_WALK_DEPTH) continue;
    try {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) queue.push({ dir: join(dir, e.name), relative: relative === '/' ? `/${e.name}` : `${relative}/${e.name}`, depth: depth + 1 });
      }
    } catch {
      // removed or unreadable: its subtree is not seen this time
    }
  }
  return out;
}

/** What a seed writes, encoded for one opened map. */
export class Seeder {
  private readonly flags: number;
  private readonly lock: boolean;
  /** Cgroup ids (hash maps) written by this seeder and still there at the last refresh. */
  private readonly cgroupIds = new Set<bigint>();
  /** Cgroup directories (cgrp_storage maps) written by this seeder. */
  private readonly cgroupDirs = new Set<bigint>();

  private constructor(
    private readonly spec: SeedSpec,
    private readonly base: ConfigPath,
    private readonly shape: MapShape,
    private readonly mapType: number,
    private readonly entries: { keys: Buffer; values: Buffer; count: number },
    private readonly cgroupValue: Buffer | undefined,
    private readonly patterns: RegExp[],
    private readonly cgroupRoot: string | undefined,
  ) {
    this.flags = FLAGS[spec.flags] | (spec.lock ? BPF_F_LOCK : 0);
    this.lock = spec.lock;
  }

  /**
   * Encode the seed of `spec` for a map of this shape and type with these layouts. Problems name
   * the field written wrong (`maps[i].seed.entries[k].key.pid`).
   */
  static prepare(spec: MapSpec, index: number, layouts: { key: Layout; value: Layout }, shape: MapShape, mapType: number, opts: { cgroupRoot?: string } = {}): { seeder?: Seeder; problems: PlanProblem[] } {
    const seed = spec.seed!;
    const base: ConfigPath = ['maps', index, 'seed'];
    const problems: PlanProblem[] = [];
    const list = seed.entries ?? [];
    const keys = Buffer.alloc(list.length * shape.keySize);
    const values = Buffer.alloc(list.length * shape.valueStride);
    const slot = Buffer.alloc(shape.slotSize);
    list.forEach((entry, k) => {
      for (const p of encodeFields(layouts.key, entry.key, keys, k * shape.keySize)) problems.push({ path: [...base, 'entries', k, 'key', ...(p.field === undefined ? [] : [p.field])], message: p.message });
      slot.fill(0);
      for (const p of encodeFields(layouts.value, entry.value ?? {}, slot)) problems.push({ path: [...base, 'entries', k, 'value', ...(p.field === undefined ? [] : [p.field])], message: p.message });
      // Per-CPU maps take one slot per possible CPU: the same value on each.
      for (let c = 0; c < shape.cpus; c++) slot.copy(values, k * shape.valueStride + c * shape.slotSize);
    });
    let cgroupValue: Buffer | undefined;
    const patterns: RegExp[] = [];
    const cg = seed.cgroups;
    if (cg !== undefined) {
      const storage = mapType === MapType.cgrp_storage;
      if (!storage && !isHashFamily(mapType)) {
        problems.push({ path: [...base, 'cgroups'], message: `cgroup entries go into a hash map (keyed by cgroup id) or a cgrp_storage map, and this map is not one of them` });
      } else if (storage ? shape.keySize !== 4 : shape.keySize !== 8) {
        problems.push({ path: [...base, 'cgroups'], message: `the map has a ${shape.keySize}-byte key, expected ${storage ? '4 (a cgrp_storage map is keyed by a cgroup fd)' : '8 (a cgroup id, u64)'}` });
      }
      const one = Buffer.alloc(shape.slotSize);
      for (const p of encodeFields(layouts.value, cg.value ?? {}, one)) problems.push({ path: [...base, 'cgroups', 'value', ...(p.field === undefined ? [] : [p.field])], message: p.message });
      cgroupValue = Buffer.alloc(shape.valueStride);
      for (let c = 0; c < shape.cpus; c++) one.copy(cgroupValue, c * shape.slotSize);
      for (const m of cg.match) patterns.push(new RegExp(m));
    }
    if (problems.length > 0) return { problems };
    return { seeder: new Seeder(seed, base, shape, mapType, { keys, values, count: list.length }, cgroupValue, patterns, opts.cgroupRoot), problems };
  }

  /** A failure, positioned at what was written (run logs carry no other position). */
  private problem(path: ConfigPath, at: SourceRef, message: string): PlanProblem {
    return { path: [...path], message: `${at.file}:${at.line}:${at.column}: ${formatPath(path)}: ${message}` };
  }

  /** Write the entries; the first failure names its entry (its position, its number, its key bytes). */
  writeEntries(map: BpfMap): PlanProblem[] {
    const { keys, values, count } = this.entries;
    if (count === 0) return [];
    const ks = this.shape.keySize;
    const vs = this.shape.valueStride;
    const failed = (k: number, e: BpfError, how: string): PlanProblem[] => {
      const entry = this.spec.entries![k];
      const key = keys.subarray(k * ks, (k + 1) * ks).toString('hex');
      return [this.problem([...this.base, 'entries', k], entry.at, `seeding map ${map.label}: entry ${k + 1} of ${count} (key bytes ${key}) not written${how}: ${reason(e, this.spec.flags, this.lock)}`)];
    };
    if (this.spec.flags === 'any') {
      try {
        map.updateBatch(keys, values, count, { lock: this.lock });
        return [];
      } catch (e) {
        if (!(e instanceof BpfError)) throw e;
        // The kernel reports how many it wrote before the failing one; a refusal before the first
        // (bad flags, a batch the map type lacks) leaves the count as it was.
        const done = e.done ?? count;
        if (done < count) return failed(done, e, `, after ${done} written`);
        return [this.problem([...this.base, 'entries'], this.spec.at, `seeding map ${map.label}: the kernel refused the batch before writing any entry: ${reason(e, 'any', this.lock)}`)];
      }
    }
    for (let k = 0; k < count; k++) {
      try {
        map.update(keys.subarray(k * ks, (k + 1) * ks), values.subarray(k * vs, (k + 1) * vs), this.flags);
      } catch (e) {
        if (!(e instanceof BpfError)) throw e;
        return failed(k, e, k === 0 ? '' : `, after ${k} written`);
      }
    }
    return [];
  }

  /**
   * Bring the cgroup entries up to date: every matching cgroup not written yet is written, and on a
   * hash map the ids written before whose cgroup is gone are deleted. Returns the failures (the
   * rest is still done), each naming the cgroup.
   */
  refreshCgroups(map: BpfMap): PlanProblem[] {
    const cg = this.spec.cgroups;
    if (cg === undefined || this.cgroupValue === undefined) return [];
    const problems: PlanProblem[] = [];
    const at = [...this.base, 'cgroups'];
    const root = this.cgroupRoot ?? findCgroup2Root();
    const dirs = walkCgroups(root);
    const storage = this.mapType === MapType.cgrp_storage;
    const seen = new Set<bigint>();
    const key = Buffer.alloc(this.shape.keySize);
    for (const d of dirs) {
      seen.add(d.id);
      const path = cg.paths === 'absolute' ? d.absolute : d.relative;
      if (!this.patterns.some((re) => re.test(path))) continue;
      const known = storage ? this.cgroupDirs : this.cgroupIds;
      if (known.has(d.id)) continue;
      let fd = -1;
      try {
        if (storage) {
          // A cgrp_storage map is keyed by an fd of the cgroup's directory.
          fd = openSync(d.absolute, constants.O_RDONLY | constants.O_DIRECTORY);
          key.writeInt32LE(fd, 0);
        } else {
          key.writeBigUInt64LE(d.id, 0);
        }
        map.update(key, this.cgroupValue, this.flags);
        known.add(d.id);
      } catch (e) {
        if (e instanceof BpfError) problems.push(this.problem(at, cg.at, `seeding map ${map.label}: cgroup ${path} (id ${d.id}) not written: ${reason(e, this.spec.flags, this.lock)}`));
        else if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // a cgroup removed since the walk is no problem
      } finally {
        if (fd >= 0) closeSync(fd);
      }
    }
    if (storage) {
      // The kernel frees a cgroup's storage with the cgroup: only forget it.
      for (const id of this.cgroupDirs) if (!seen.has(id)) this.cgroupDirs.delete(id);
      return problems;
    }
    for (const id of this.cgroupIds) {
      if (seen.has(id)) continue;
      key.writeBigUInt64LE(id, 0);
      try {
        map.delete(key);
        this.cgroupIds.delete(id);
      } catch (e) {
        if (!(e instanceof BpfError)) throw e;
        problems.push(this.problem(at, cg.at, `seeding map ${map.label}: the entry of removed cgroup id ${id} not deleted: ${reason(e, this.spec.flags, this.lock)}`));
      }
    }
    return problems;
  }

  /** The entries written, and the cgroups written and still there at the last refresh. */
  get written(): number {
    return this.entries.count + this.cgroupIds.size + this.cgroupDirs.size;
  }
}

/**
 * The kernel's answer for a seeded entry: the operation, the errno name, and what it means here
 * where the errno alone would puzzle (else the binding's usual words).
 */
function reason(e: BpfError, flags: SeedSpec['flags'], lock: boolean): string {
  const own = e.message.replace(/^map [^:]*: /, '');
  const hint =
    e.errnoName === 'EEXIST' && flags === 'noexist' ? 'the key is in the map already, and flags: noexist writes only new keys'
    : e.errnoName === 'ENOENT' && flags === 'exist' ? 'the key is not in the map, and flags: exist replaces only keys already there'
    : e.errnoName === 'E2BIG' ? 'the map is full (max_entries), or an array index is not below max_entries'
    : e.errnoName === 'EINVAL' && lock ? 'lock: true needs a map whose value holds a bpf_spin_lock'
    : undefined;
  return hint === undefined ? own : `${e.op} failed: ${e.errnoName} (${hint})`;
}

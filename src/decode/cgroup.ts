import { readdirSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DecoderContext } from './types.js';
import { requireInt, type DecoderFactory } from './field.js';
import { intReader } from './int.js';
import { LruCache } from './lru.js';

/** A miss re-walks the hierarchy at most this often. */
export const CGROUP_REWALK_MS = 1000;
/** Deeper directories are not walked (Kubernetes pods sit at depth 4 to 6). */
export const CGROUP_MAX_DEPTH = 32;

const CGROUP2_SUPER_MAGIC = 0x63677270;

/**
 * cgroup: a cgroup v2 id (u64, what bpf_get_current_cgroup_id() returns, or a u32) -> the cgroup's path
 * below the hierarchy's root, e.g. `/system.slice/foo.service` (`/` for the root). A cgroup v2 id
 * is the inode number of the cgroup's directory, so the hierarchy is walked and stat'ed.
 * Unknown ids print as `unknown_cgroup_id:<id>`. With `style: ebpf_exporter` the path is the full
 * one, with the mount point, as theirs gives it: `/sys/fs/cgroup/system.slice/foo.service`
 * (`/sys/fs/cgroup` for the root).
 */
export const createCgroupDecoder: DecoderFactory = (field, spec, ctx) => {
  // A u32 holds the id as programs that keep kernfs ids in 32 bits store it (ebpf_exporter's
  // cfs-throttling): on a 64-bit kernel the id is the directory's inode number, which fits.
  const read = intReader(requireInt('cgroup', field, 'a 64-bit integer field (u64), or a u32', [4, 8]), false);
  const paths = cgroupPaths(ctx);
  const full = spec.style === 'ebpf_exporter';
  return {
    name: 'cgroup',
    decode(buf, offset) {
      const v = read(buf, offset);
      const id = typeof v === 'bigint' ? v : BigInt(v);
      const path = paths.lookup(id);
      if (path === undefined) return `unknown_cgroup_id:${id}`;
      return full ? paths.absolute(path) : path;
    },
    provisional: (label) => label.startsWith('unknown_cgroup_id:'),
  };
};

const caches = new WeakMap<DecoderContext, CgroupPaths>();

function cgroupPaths(ctx: DecoderContext): CgroupPaths {
  let paths = caches.get(ctx);
  if (paths === undefined) {
    paths = new CgroupPaths(ctx.cgroupRoot, ctx.cacheSize, ctx.now);
    caches.set(ctx, paths);
  }
  return paths;
}

/**
 * id -> path, an LRU of cacheSize entries filled by walks of the hierarchy. A walk runs on a miss,
 * at most every CGROUP_REWALK_MS, visits at most cacheSize directories (breadth first, so the
 * shallow ones come first) and merges into the cache instead of replacing it: the id of a cgroup
 * removed since (systemd re-creates units) still names its last path until evicted.
 */
export class CgroupPaths {
  readonly #cache: LruCache<bigint, string>;
  #root: string | undefined;
  #walkedAt = Number.NEGATIVE_INFINITY;

  constructor(
    root: string | undefined,
    private readonly cacheSize: number,
    private readonly now: () => number,
  ) {
    this.#root = root;
    this.#cache = new LruCache(cacheSize);
  }

  /** A path lookup() gave, with the mount point before it. */
  absolute(path: string): string {
    const root = (this.#root ??= findCgroup2Root());
    return path === '/' ? root : `${root}${path}`;
  }

  lookup(id: bigint): string | undefined {
    const hit = this.#cache.get(id);
    if (hit !== undefined || this.now() - this.#walkedAt < CGROUP_REWALK_MS) return hit;
    this.#walkedAt = this.now();
    this.#walk();
    return this.#cache.get(id);
  }

  #walk(): void {
    const root = (this.#root ??= findCgroup2Root());
    const queue: { dir: string; path: string; depth: number }[] = [{ dir: root, path: '/', depth: 0 }];
    // At most cacheSize directories are queued and visited: a walk never outgrows the cache.
    for (let i = 0; i < queue.length; i++) {
      const { dir, path, depth } = queue[i];
      try {
        this.#cache.set(statSync(dir, { bigint: true }).ino, path);
      } catch {
        continue; // removed while walking
      }
      if (depth >= CGROUP_MAX_DEPTH) continue;
      try {
        for (const entry of readdirSync(dir, { withFileTypes: true })) {
          if (queue.length >= this.cacheSize) break;
          if (entry.isDirectory()) queue.push({ dir: join(dir, entry.name), path: path === '/' ? `/${entry.name}` : `${path}/${entry.name}`, depth: depth + 1 });
        }
      } catch {
        // unreadable or removed: its subtree stays unknown
      }
    }
  }
}

/**
 * Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on unified systems, or
 * /sys/fs/cgroup/unified under systemd's hybrid layout, where /sys/fs/cgroup is a tmpfs of v1
 * hierarchies whose inode numbers are not cgroup ids. Falls back to /sys/fs/cgroup.
 */
export function findCgroup2Root(candidates: readonly string[] = ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']): string {
  for (const dir of candidates) {
    try {
      if (statfsSync(dir).type === CGROUP2_SUPER_MAGIC) return dir;
    } catch {
      // not there: try the next
    }
  }
  return candidates[0];
}

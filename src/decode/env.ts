import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { DecoderConfigError } from './errors.js';
import type { DecoderContext } from './types.js';
import { sysfsIfname } from './ifname.js';
import { PCI_IDS_PATHS } from './pci.js';

/** Injectable system sources, so tests need no real /proc, /sys or architecture. */
export interface DecoderEnv {
  /** The text of /proc/kallsyms. Default: read /proc/kallsyms. */
  kallsyms?: () => string;
  /** The text of /proc/partitions. Default: read /proc/partitions. */
  partitions?: () => string;
  /**
   * The cgroup v2 mount. Default: /sys/fs/cgroup when it is cgroup2, else /sys/fs/cgroup/unified
   * when that is (systemd's hybrid layout), else /sys/fs/cgroup.
   */
  cgroupRoot?: string;
  /** Interface name of an ifindex. Default: scan /sys/class/net/x/ifindex on a miss, cached. */
  ifname?: (index: number) => string | undefined;
  /** Which syscall table: x64 or arm64. Default: process.arch. */
  arch?: string;
  /** Where pci.ids may be, the first that exists is read. Default: PCI_IDS_PATHS. */
  pciIds?: readonly string[];
  /** Bound of every cache (entries). Default 10000. */
  cacheSize?: number;
}

export const DEFAULT_CACHE_SIZE = 10_000;

const contexts = new WeakMap<DecoderEnv, DecoderContext>();
let defaultContext: DecoderContext | undefined;

/** The shared context of an env object (or of "no env"). */
export function decoderContext(env?: DecoderEnv): DecoderContext {
  if (env === undefined) return (defaultContext ??= makeContext({}));
  let ctx = contexts.get(env);
  if (ctx === undefined) {
    ctx = makeContext(env);
    contexts.set(env, ctx);
  }
  return ctx;
}

/** A fresh context; `now` is injectable so tests can step the clock past the re-read limits. */
export function makeContext(env: DecoderEnv, now: () => number = () => performance.now()): DecoderContext {
  const cacheSize = env.cacheSize ?? DEFAULT_CACHE_SIZE;
  if (!Number.isSafeInteger(cacheSize) || cacheSize < 1) {
    throw new DecoderConfigError(`cacheSize must be a positive integer, got ${cacheSize}`, '', '');
  }
  return {
    kallsyms: env.kallsyms ?? (() => readFileSync('/proc/kallsyms', 'utf8')),
    partitions: env.partitions ?? (() => readFileSync('/proc/partitions', 'utf8')),
    cgroupRoot: env.cgroupRoot,
    ifname: env.ifname ?? sysfsIfname('/sys/class/net', cacheSize, now),
    arch: env.arch ?? process.arch,
    pciIds: env.pciIds ?? PCI_IDS_PATHS,
    cacheSize,
    now,
  };
}

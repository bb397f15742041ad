/** What both benchmarks share: the bpffs check, clean-up on exit, and the 1M-entry maps they read, filled alike. */
import { rmSync, statfsSync } from 'node:fs';
import os from 'node:os';
import { BpfMap } from '../src/bpf/map.js';
import { perCpuSlotSize } from '../src/bpf/map-types.js';

const BPF_FS_MAGIC = 0xcafe4a11;
const TWO_32 = 4294967296;
const FILL_CHUNK = 65536;

/** Throws a clear error unless `dir` is a mounted bpffs. */
export function checkBpffs(dir: string): void {
  let type = -1;
  try {
    type = statfsSync(dir).type;
  } catch {
    // reported below
  }
  if (type !== BPF_FS_MAGIC) {
    throw new Error(`${dir} is not a mounted bpffs; run through \`npm run bench\` (which mounts it) or: mount -t bpf bpf ${dir}`);
  }
}

/** The u64 written for key i on CPU slot c, as its two u32 halves (kept small enough that sums stay exact doubles). */
export function valueHalves(i: number, cpu: number): [lo: number, hi: number] {
  return [(i * 7 + cpu * 3) >>> 0, (i + cpu) & 1];
}

export interface Filled {
  map: BpfMap;
  /** The sum of every value written (every CPU slot), exact. */
  expectedSum: bigint;
  fillMs: number;
}

/**
 * A map with u32 keys 0..entries-1 and u64 values from valueHalves, filled with batch updates and
 * pinned at `pin`.
 */
export function createFilledMap(o: { type: number; name: string; pin: string; entries: number; maxEntries: number }): Filled {
  const t0 = performance.now();
  const map = BpfMap.create({ type: o.type, name: o.name, keySize: 4, valueSize: 8, maxEntries: o.maxEntries });
  try {
    const cpus = map.cpus;
    const slot = perCpuSlotSize(map.info.valueSize);
    const stride = map.valueStride;
    const keys = Buffer.alloc(FILL_CHUNK * 4);
    const values = Buffer.alloc(FILL_CHUNK * stride);
    let expected = 0n;
    for (let start = 0; start < o.entries; start += FILL_CHUNK) {
      const n = Math.min(FILL_CHUNK, o.entries - start);
      let chunkSum = 0;
      for (let j = 0; j < n; j++) {
        const i = start + j;
        keys.writeUInt32LE(i, j * 4);
        for (let c = 0; c < cpus; c++) {
          const [lo, hi] = valueHalves(i, c);
          const off = j * stride + c * slot;
          values.writeUInt32LE(lo, off);
          values.writeUInt32LE(hi, off + 4);
          chunkSum += lo + hi * TWO_32;
        }
      }
      if (!Number.isSafeInteger(chunkSum)) throw new Error('fill: chunk sum is not an exact double');
      expected += BigInt(chunkSum);
      const written = map.updateBatch(keys, values, n);
      if (written !== n) throw new Error(`fill ${o.name}: update batch wrote ${written} of ${n}`);
    }
    if (expected > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new Error(`the expected sum of ${o.name} (${expected}) is beyond 2**53: the JS sums would not be exact`);
    }
    map.pin(o.pin);
    return { map, expectedSum: expected, fillMs: performance.now() - t0 };
  } catch (e) {
    map.close();
    throw e;
  }
}

/** Run `cleanup` at exit and on SIGINT/SIGTERM/SIGHUP (then exit 128 + the signal's number). */
export function cleanupOnExit(cleanup: () => void): void {
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      cleanup();
      process.exit(128 + (os.constants.signals[sig] ?? 0));
    });
  }
}

/** Remove a folder of pins, saying so (without throwing) when it cannot. */
export function removePins(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    process.stderr.write(`bench: could not remove ${dir}: ${(e as Error).message}\n`);
  }
}

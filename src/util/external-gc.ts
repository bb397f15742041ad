import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * A full garbage collection whenever the memory held outside the JS heap has grown by `threshold`
 * since the last collection.
 *
 * Why: a cycle's big buffers (the /metrics text of each job, its gzip form, the snapshot's columns)
 * live outside V8's heap, and V8 starts collecting them only once that memory has grown by 64 MB
 * since its last full collection (its fixed external-memory soft limit): this exporter's heap
 * barely grows between cycles, so up to 64 MB of dead buffers sat in RSS at any time. At 100,000
 * series that was the difference between a peak of ~150 and ~200 MB. A collection at a lower
 * threshold costs a pause of 10-30 ms (a ~30 MB heap) about once a cycle at 100,000 series (BENCHMARKS.md, "Memory").
 *
 * Buffers of 128 KiB and more are in mappings of their own (setMmapThreshold), so what a collection
 * frees goes back to the system at once.
 *
 * The heap limit: above `maxHeapBytes` of live heap (a million series) a full collection pauses the
 * loop for hundreds of ms, and this leaves the timing to V8.
 *
 * `busy`: while it says so (a /metrics response is being written), the collection waits, checked
 * every few ms and for at most `maxWaitMs`: a pause between two scrapes delays none of them.
 */
export function startExternalGc(opts: { thresholdBytes?: number; everyMs?: number; maxHeapBytes?: number; busy?: () => boolean; maxWaitMs?: number } = {}): () => void {
  const gc = exposeGc();
  if (gc === undefined) return () => {};
  const threshold = opts.thresholdBytes ?? 16 * 1024 * 1024;
  const maxHeap = opts.maxHeapBytes ?? 96 * 1024 * 1024;
  const busy = opts.busy ?? (() => false);
  const maxWait = opts.maxWaitMs ?? 1000;
  // The bytes of every ArrayBuffer (Buffers, typed arrays), live or not yet collected: what a
  // collection brings down. (V8's heap statistics' external_memory is not brought down by one.)
  const buffers = (): number => process.memoryUsage().arrayBuffers;
  let after = buffers();
  let waiting: NodeJS.Timeout | undefined;
  const collect = (): void => {
    gc();
    after = buffers();
  };
  const timer = setInterval(() => {
    if (waiting !== undefined) return;
    const now = buffers();
    if (now < after) after = now; // V8 collected on its own
    if (now - after < threshold || getHeapStatistics().used_heap_size > maxHeap) return;
    if (!busy()) return collect();
    const since = Date.now();
    const retry = (): void => {
      if (busy() && Date.now() - since < maxWait) waiting = setTimeout(retry, 2).unref();
      else {
        waiting = undefined;
        collect();
      }
    };
    waiting = setTimeout(retry, 2).unref();
  }, opts.everyMs ?? 500);
  timer.unref();
  return () => {
    clearInterval(timer);
    clearTimeout(waiting);
  };
}

/** V8's gc(), without the --expose-gc flag on the command line. */
function exposeGc(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    return typeof fn === 'function' ? (fn as () => void) : undefined;
  } catch {
    return undefined;
  }
}

import { getHeapStatistics } from 'node:v8';

/**
 * A full garbage collection when the process holds much more memory outside the JS heap than after
 * the last one.
 *
 * Why: the big buffers of a cycle (the /metrics text of each job, its gzip form, an OTLP request)
 * live outside V8's heap. V8 collects the old ones only when that memory has grown by 64 MB since its
 * last full collection, or when the heap itself fills; this exporter's heap barely grows between
 * cycles, so at 100,000 series up to 64 MB of dead buffers sat in RSS. A collection at a lower
 * threshold keeps RSS near what is live, for a pause of ~10-20 ms every few cycles while the heap is
 * small (BENCHMARKS.md). Above maxHeapBytes of heap it is left to V8.
 *
 * It needs node's --expose-gc (the image, the systemd unit and `npm start` pass it); without it this
 * does nothing and V8's own rule applies.
 */
export function startExternalGc(opts: { thresholdBytes?: number; everyMs?: number; maxHeapBytes?: number } = {}): () => void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') return () => {};
  const threshold = opts.thresholdBytes ?? 24 * 1024 * 1024;
  const maxHeap = opts.maxHeapBytes ?? 128 * 1024 * 1024;
  let after = getHeapStatistics().external_memory;
  const timer = setInterval(() => {
    const heap = getHeapStatistics();
    // A forced collection is atomic: its pause grows with the heap (~0.5 s at a million series). Past
    // maxHeap, V8's own incremental collections and its 64 MB rule, small beside such a heap, apply.
    if (heap.external_memory - after < threshold || heap.used_heap_size > maxHeap) return;
    gc();
    after = getHeapStatistics().external_memory;
  }, opts.everyMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}

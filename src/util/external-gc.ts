import { getHeapStatistics } from 'node:v8';

/**
 * A full garbage collection when the process holds much more memory outside the JS heap than after
 * the last one.
 *
 * Why: the big buffers of a cycle (the /metrics text of each job, its gzip form, an OTLP request)
 * live outside V8's heap. V8 collects the old ones only when that memory has grown by 64 MB since its
 * last full collection, or when the heap itself fills; this exporter's heap barely grows between
 * cycles, so at 100,000 series up to 64 MB of dead buffers sat in RSS (measured: RSS 240 MB where
 * 160 MB is live). A collection at a lower threshold keeps RSS near what is live, for a pause of a
 * few tens of ms every few cycles (BENCHMARKS.md).
 *
 * It needs node's --expose-gc (the image, the systemd unit and `npm start` pass it); without it this
 * does nothing and V8's own rule applies.
 */
export function startExternalGc(opts: { thresholdBytes?: number; everyMs?: number } = {}): () => void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') return () => {};
  const threshold = opts.thresholdBytes ?? 24 * 1024 * 1024;
  let after = getHeapStatistics().external_memory;
  const timer = setInterval(() => {
    if (getHeapStatistics().external_memory - after < threshold) return;
    gc();
    after = getHeapStatistics().external_memory;
  }, opts.everyMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}

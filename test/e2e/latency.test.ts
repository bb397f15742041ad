/**
 * The bundled latency example end to end: built by `npm run build:bpf`, loaded and attached by the
 * exporter, a workload making exactly N rt_sigtimedwait calls that each wait at least a known
 * timeout, and the exact growth of that syscall's histogram on /metrics.
 *
 * Why a rare syscall and not a pid: the example is keyed by syscall alone, as a host-wide latency
 * histogram should be, and the exporter cannot set a `const volatile` pid filter before attaching.
 * So the workload uses a syscall that nothing else here makes: rt_sigtimedwait (a thread waiting for
 * signals with a timeout; runtimes and daemons use signalfd or sigsuspend instead). Traced over a
 * whole `npm test` run on this machine, no process called it. Should something start to, the exact
 * count below fails rather than passing by luck. The timeout also gives a bound the kernel
 * guarantees (a wait never ends before its timer), which checks the buckets' meaning, not only the
 * count.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelDescribe } from '../kernel/support.js';
import { buildExamples, loadedPrograms, programsHeldBy, root, sample, sleep, startExporter, stillLoaded } from './support.js';

const METRIC = 'syscall_latency_seconds';
const SYSCALL = 'rt_sigtimedwait';
const N = 200;
const TIMEOUT_US = 1500;
const TIMEOUT_S = TIMEOUT_US * 1e-6;
/** latency.yaml's buckets: exp2, min 0, max 30, multiplier 1e-9. */
const BOUNDS = Array.from({ length: 31 }, (_, k) => 2 ** k * 1e-9);

interface Histogram {
  /** Cumulative, in exposition order; the last one is +Inf. */
  buckets: { le: number; count: number }[];
  sum: number;
  count: number;
}

/**
 * Ids of the program called `name` among those process `pid` holds. By owner, not by name alone:
 * tests that run all.yaml load the same example alongside.
 */
function programIds(pid: number, name: string): number[] {
  const held = new Set(programsHeldBy(pid));
  return loadedPrograms().filter((p) => held.has(p.id) && p.name === name).map((p) => p.id);
}

/** The histogram of one syscall in a /metrics text, or undefined when it has no series (yet). */
function histogram(text: string, syscall: string): Histogram | undefined {
  const prefix = `${METRIC}_bucket{syscall="${syscall}",le="`;
  const buckets: Histogram['buckets'] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const m = /^([^"]+)"\} (\S+)$/.exec(line.slice(prefix.length));
    if (m === null) throw new Error(`unexpected bucket line: ${line}`);
    buckets.push({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), count: Number(m[2]) });
  }
  const sum = sample(text, `${METRIC}_sum{syscall="${syscall}"}`);
  const count = sample(text, `${METRIC}_count{syscall="${syscall}"}`);
  if (buckets.length === 0 && sum === undefined && count === undefined) return undefined;
  if (sum === undefined || count === undefined) throw new Error(`histogram ${syscall} lacks _sum or _count:\n${text}`);
  return { buckets, sum, count };
}

/** A histogram with no observations, the shape of the example's: what a syscall not yet seen is worth. */
const empty = (): Histogram => ({ buckets: [...BOUNDS, Infinity].map((le) => ({ le, count: 0 })), sum: 0, count: 0 });

kernelDescribe('the latency example', () => {
  let dir: string;
  let workload: string;

  beforeAll(() => {
    buildExamples();
    dir = mkdtempSync(join(tmpdir(), 'bme-e2e-'));
    workload = join(dir, 'sigtimedwait');
    execFileSync('cc', ['-O2', '-o', workload, join(root, 'test/fixtures/workload/sigtimedwait.c')]);
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('grows the histogram of a syscall by exactly the calls made, in the buckets their latency allows, and detaches on exit', async () => {
    // The example's config, read faster for the test.
    const config = join(dir, 'latency.yaml');
    writeFileSync(config, readFileSync(join(root, 'config/examples/latency.yaml'), 'utf8')
      .replace('interval: 5s', 'interval: 200ms')
      .replace('object: latency.bpf.o', `object: ${join(root, 'config/examples/latency.bpf.o')}`));
    const exporter = await startExporter(config);
    const scrape = async () => (await fetch(`${exporter.base}/metrics`)).text();
    const pid = exporter.proc.pid!;
    let ids: number[] = [];
    try {
      expect(programIds(pid, 'latency_enter')).toHaveLength(1);
      expect(programIds(pid, 'latency_exit')).toHaveLength(1);
      ids = [...programIds(pid, 'latency_enter'), ...programIds(pid, 'latency_exit')];

      // The reading before: once a cycle has published (the exporter's own calls are enough).
      let text = '';
      for (let i = 0; i < 100 && !text.includes(`${METRIC}_count{`); i++) {
        await sleep(100);
        text = await scrape();
      }
      expect(text).toContain(`${METRIC}_count{`);
      const before = histogram(text, SYSCALL) ?? empty();

      execFileSync(workload, [String(N), String(TIMEOUT_US)]);
      let after = histogram(text, SYSCALL);
      for (let i = 0; i < 100 && (after?.count ?? 0) < before.count + N; i++) {
        await sleep(100);
        text = await scrape();
        after = histogram(text, SYSCALL);
      }
      if (after === undefined) throw new Error(`no ${SYSCALL} histogram after the workload:\n${text}`);

      // Exactly N more calls, in _count and in +Inf.
      expect(after.count - before.count).toBe(N);
      expect(after.buckets.at(-1)).toEqual({ le: Infinity, count: after.count });

      // The example's buckets, 2^0 .. 2^30 ns in seconds and +Inf, cumulative.
      expect(after.buckets).toHaveLength(BOUNDS.length + 1);
      after.buckets.slice(0, -1).forEach((b, k) => expect(Math.abs(b.le - BOUNDS[k]) / BOUNDS[k], `le=${b.le}`).toBeLessThan(1e-12));
      for (let k = 1; k < after.buckets.length; k++) expect(after.buckets[k].count).toBeGreaterThanOrEqual(after.buckets[k - 1].count);

      // What the N calls added, bucket by bucket (cumulative).
      const grew = after.buckets.map((b, k) => b.count - before.buckets[k].count);
      // Every call waited at least the timeout: no bucket whose bound is below it grew.
      after.buckets.forEach((b, k) => {
        if (b.le < TIMEOUT_S) expect(grew[k], `le=${b.le}`).toBe(0);
      });
      // ...and none of these 1.5 ms waits took a second: all N are within the top finite bucket.
      expect(grew[BOUNDS.length - 1]).toBe(N);

      // _sum is the sum_ns field in seconds: at least N timeouts, and within what the buckets allow:
      // a call in bucket k took more than 2^(k-1) ns and at most 2^k ns.
      const sum = after.sum - before.sum;
      expect(sum).toBeGreaterThanOrEqual(N * TIMEOUT_S * (1 - 1e-9));
      let low = 0;
      let high = 0;
      for (let k = 0; k < BOUNDS.length; k++) {
        const calls = grew[k] - (k > 0 ? grew[k - 1] : 0);
        low += calls * (k > 0 ? BOUNDS[k - 1] : 0);
        high += calls * BOUNDS[k];
      }
      expect(sum).toBeGreaterThan(low * (1 - 1e-9));
      expect(sum).toBeLessThanOrEqual(high * (1 + 1e-9));
    } finally {
      expect(await exporter.stop()).toBe(0);
    }
    expect(await stillLoaded(ids)).toEqual([]);
  }, 120_000);
});

/**
 * Metrics from a ring buffer's records on the real kernel: a job with `events:` on a ringbuf map
 * counts each record by the labels cut from its bytes (test/fixtures/bpf/ring-events.bpf.c: a record
 * per getppid call of a workload whose comm is this run's own). A known number of calls in rounds is
 * counted exactly, and a histogram observing a field of each record (buckets.of) has every bucket
 * exact. A burst larger than the ring: the program counts the sends the full ring refused
 * (the kernel keeps no count for ring buffers), the exporter exports that count from its map, and
 * counted plus refused is every call; the exporter's own ringbuf_full_total saw the ring full.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onlineCpus } from '../../src/bpf/perf-event.js';
import { compileBpf, kernelDescribe } from '../kernel/support.js';
import { root, sample, sleep, startExporter } from './support.js';

kernelDescribe('metrics from a ring buffer\'s records (events: on a ringbuf map)', () => {
  let dir: string;
  let workload: string;
  let comm: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-ringev-'));
    comm = `bmerg${process.pid % 1_000_000}`;
    workload = join(dir, comm);
    execFileSync('cc', ['-O2', '-o', workload, join(root, 'test/fixtures/workload/getppid.c')]);
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A config over the fixture built with a ring of `ringBytes`. */
  function config(name: string, ringBytes: number): string {
    const object = join(dir, `${name}.bpf.o`);
    compileBpf(join(root, 'test/fixtures/bpf/ring-events.bpf.c'), object, [`-DONLY_COMM="${comm}"`, `-DRING_BYTES=${ringBytes}`]);
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, `
interval: 200ms
maps:
  - name: calls
    source: { object: ${object}, map: ring_calls }
    events: {}
    key: [ { name: comm, type: "char[16]" }, { name: nr, type: u32 }, { name: pad, type: "pad[4]" }, { name: nth, type: u64 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - name: ring_calls_total
        type: counter
        help: getppid calls, one record each
        value: n
        labels: [ { name: comm, from: comm }, { name: syscall, from: nr, decoder: syscall } ]
      - name: ring_call_nth
        type: histogram
        help: Each record's nth, observed
        value: n
        labels: [ { name: comm, from: comm } ]
        buckets: { of: nth, kind: exp2, min: 0, max: 12 }
  - name: refused
    source: { object: ${object}, map: ring_refused }
    metrics: [ { name: ring_refused_total, type: counter, help: Sends the full ring refused, value: value } ]
`);
    return file;
  }

  it('counts each record once, by its labels, across reads', async () => {
    const exporter = await startExporter(config('counted', 256 * 1024));
    const series = `ring_calls_total{comm="${comm}",syscall="getppid"}`;
    try {
      const N = 700;
      const ROUNDS = 3;
      execFileSync(workload, [String(N), String(ROUNDS), '300']);
      let text = '';
      for (let i = 0; i < 100 && sample(text, series) !== N * ROUNDS; i++) {
        await sleep(100);
        text = await (await fetch(`${exporter.base}/metrics`)).text();
      }
      expect(sample(text, series), exporter.log()).toBe(N * ROUNDS);
      await sleep(1000);
      text = await (await fetch(`${exporter.base}/metrics`)).text();
      expect(text.split('\n').filter((l) => l.startsWith('ring_calls_total{'))).toEqual([`${series} ${N * ROUNDS}`]);
      expect(sample(text, 'ring_refused_total')).toBe(0);
      expect(sample(text, 'bpf_map_exporter_ringbuf_records_total{map="calls"}')).toBe(N * ROUNDS);
      // The histogram of nth, 0 to N * ROUNDS - 1, one observation a record: le 2^k holds the 2^k + 1 values 0..2^k.
      const total = N * ROUNDS;
      const hist = text.split('\n').filter((l) => l.startsWith(`ring_call_nth_bucket{comm="${comm}",`));
      expect(hist).toEqual([...Array.from({ length: 13 }, (_, k) => `ring_call_nth_bucket{comm="${comm}",le="${2 ** k}"} ${Math.min(2 ** k + 1, total)}`), `ring_call_nth_bucket{comm="${comm}",le="+Inf"} ${total}`]);
      expect(sample(text, `ring_call_nth_sum{comm="${comm}"}`)).toBe((total * (total - 1)) / 2);
      expect(sample(text, `ring_call_nth_count{comm="${comm}"}`)).toBe(total);
      expect(text).toContain('bpf_map_exporter_map_read_method{map="calls",method="events"} 1');
    } finally {
      expect(await exporter.stop(), exporter.log()).toBe(0);
    }
  }, 120_000);

  it('a burst larger than the ring: counted plus refused is every call, and the full ring is seen', async () => {
    // 4 KiB hold 102 records of 40 bytes (32 and the header): a burst of calls on one CPU outruns any read.
    const exporter = await startExporter(config('burst', 4096));
    const series = `ring_calls_total{comm="${comm}",syscall="getppid"}`;
    try {
      const N = 100_000;
      execFileSync('taskset', ['-c', String(onlineCpus()[0]), workload, String(N)]);
      const total = (t: string) => (sample(t, series) ?? 0) + (sample(t, 'ring_refused_total') ?? 0);
      let text = '';
      for (let i = 0; i < 100 && total(text) !== N; i++) {
        await sleep(100);
        text = await (await fetch(`${exporter.base}/metrics`)).text();
      }
      expect({ total: total(text) }, exporter.log()).toEqual({ total: N });
      expect(sample(text, 'ring_refused_total')).toBeGreaterThan(0);
      expect(sample(text, series)).toBe(sample(text, 'bpf_map_exporter_ringbuf_records_total{map="calls"}'));
      expect(sample(text, 'bpf_map_exporter_ringbuf_full_total{map="calls"}')).toBeGreaterThan(0);
    } finally {
      expect(await exporter.stop(), exporter.log()).toBe(0);
    }
  }, 120_000);
});

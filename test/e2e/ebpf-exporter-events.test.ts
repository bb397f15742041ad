/**
 * ebpf_exporter's perf_event_array counters on the real kernel (their oomkill example's way): a
 * program of ours in their style (test/fixtures/ebpf-exporter/events.bpf.c, events.yaml) sends one
 * event per getppid call through a BPF_MAP_TYPE_PERF_EVENT_ARRAY; `run --config.dir DIR
 * --config.names events` counts the events by the labels cut from their bytes. A workload of a comm
 * unique to this run makes a known number of calls, in rounds: its series counts exactly those,
 * and no event is lost.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onlineCpus } from '../../src/bpf/perf-event.js';
import { compileBpf, kernelDescribe } from '../kernel/support.js';
import { loadedPrograms, programsHeldBy, root, sample, sleep, startExporter, stillLoaded } from './support.js';

/** The perf event fds a process holds (each shows as anon_inode:[perf_event]). */
function perfEventFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[perf_event]';
    } catch {
      return false;
    }
  }).length;
}

kernelDescribe('ebpf_exporter perf_event_array counters', () => {
  let dir: string;
  let workload: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-events-'));
    compileBpf(join(root, 'test/fixtures/ebpf-exporter/events.bpf.c'), join(dir, 'events.bpf.o'));
    copyFileSync(join(root, 'test/fixtures/ebpf-exporter/events.yaml'), join(dir, 'events.yaml'));
    // Its comm: unique to this run, within the kernel's 15 characters.
    workload = join(dir, `bmeev${process.pid % 1_000_000}`);
    execFileSync('cc', ['-O2', '-o', workload, join(root, 'test/fixtures/workload/getppid.c')]);
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('counts exactly the events the program sent, by their labels, and loses none', async () => {
    const exporter = await startExporter('', {}, [], ['--config.dir', dir, '--config.names', 'events']);
    const pid = exporter.proc.pid!;
    const scrape = async () => (await fetch(`${exporter.base}/metrics`)).text();
    let ids: number[] = [];
    try {
      const held = new Set(programsHeldBy(pid));
      ids = loadedPrograms().filter((p) => held.has(p.id) && p.name === 'on_getppid').map((p) => p.id);
      expect(ids, exporter.log()).toHaveLength(1);
      // A BPF output event per online CPU (the perf buffer's rings), and the tracepoint's own event.
      expect(perfEventFds(pid)).toBe(onlineCpus().length + 1);

      // 3 rounds of 700 calls, 300 ms apart: events that come across several reads are all counted.
      const N = 700;
      const ROUNDS = 3;
      execFileSync(workload, [String(N), String(ROUNDS), '300']);
      const comm = workload.slice(workload.lastIndexOf('/') + 1);
      const series = `ebpf_exporter_events_calls_total{comm="${comm}",syscall="getppid"}`;
      let text = '';
      for (let i = 0; i < 100 && sample(text, series) !== N * ROUNDS; i++) {
        await sleep(100);
        text = await scrape();
      }
      const mine = (t: string) => t.split('\n').filter((l) => l.startsWith('ebpf_exporter_events_calls_total{') && l.includes(`comm="${comm}"`));
      expect(mine(text)).toEqual([`${series} ${N * ROUNDS}`]);
      // Reads go on (every second): the count stays, nothing counted twice.
      await sleep(2500);
      text = await scrape();
      expect(mine(text)).toEqual([`${series} ${N * ROUNDS}`]);
      expect(text).toContain('# TYPE ebpf_exporter_events_calls_total counter');
      expect(text.split('\n').filter((l) => l.startsWith('bpf_map_exporter_perf_events_lost_total{'))).toEqual([]);
      expect(text).toContain('bpf_map_exporter_map_read_method{map="events/events_calls_total",method="events"} 1');
      expect(text).toContain('bpf_map_exporter_map_up{map="events/events_calls_total"} 1');
    } finally {
      expect(await exporter.stop(), exporter.log()).toBe(0);
    }
    expect(await stillLoaded(ids)).toEqual([]);
  }, 120_000);
});

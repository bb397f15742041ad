/**
 * ebpf_exporter's perf_event_array counters on the real kernel (their oomkill example's way): a
 * program of ours in their style (test/fixtures/ebpf-exporter/events.bpf.c, events.yaml) sends one
 * event per getppid call through a BPF_MAP_TYPE_PERF_EVENT_ARRAY; `run --config.dir DIR
 * --config.names events` counts the events by the labels cut from their bytes. A workload of a comm
 * unique to this run makes a known number of calls, in rounds: its series counts exactly those,
 * and no event is lost. A burst too large for the rings: what is counted and what is lost add up
 * to the calls made. flush_interval clears the counts.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
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

  it('convert prints a native config (events: { flush }) that check accepts against the real object', () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(root, 'exporter/main.ts'), ...args], { encoding: 'utf8', timeout: 60_000 });
    const converted = cli('convert', '--config.dir', dir, '--config.names', 'events');
    expect(converted.stderr).toBe('');
    expect(converted.stdout).toContain('    interval: 1s\n    events: { flush: 1h }\n');
    const native = join(dir, 'native-events.yaml');
    writeFileSync(native, converted.stdout);
    const checked = cli('check', '--config', native);
    expect(checked.stderr).toBe('');
    expect(checked.stdout).toBe(`${native}: ok (1 map)\n`);
  }, 60_000);

  /** A config NAME of the object built with -DONLY_COMM (the workload's events alone), flushed as `flush` says. */
  function onlyOurs(name: string, flush: string): string {
    const comm = workload.slice(workload.lastIndexOf('/') + 1);
    compileBpf(join(root, 'test/fixtures/ebpf-exporter/events.bpf.c'), join(dir, `${name}.bpf.o`), [`-DONLY_COMM="${comm}"`]);
    const yaml = readFileSync(join(root, 'test/fixtures/ebpf-exporter/events.yaml'), 'utf8');
    expect(yaml).toContain('flush_interval: 1h');
    writeFileSync(join(dir, `${name}.yaml`), yaml.replace('flush_interval: 1h', `flush_interval: ${flush}`));
    return `ebpf_exporter_events_calls_total{comm="${comm}",syscall="getppid"}`;
  }

  it('counts every event of a burst larger than the rings as counted or lost, exactly', async () => {
    const series = onlyOurs('burst', '1h');
    const exporter = await startExporter('', {}, [], ['--config.dir', dir, '--config.names', 'burst']);
    const lostSeries = 'bpf_map_exporter_perf_events_lost_total{map="burst/events_calls_total"}';
    try {
      // On one CPU, far more events than its 256 KiB ring holds between two reads (about 40 bytes each).
      const N = 200_000;
      const cpu = String(onlineCpus()[0]);
      execFileSync('taskset', ['-c', cpu, workload, String(N)]);
      let text = '';
      for (let i = 0; i < 100 && sample(text, series) === undefined; i++) {
        await sleep(100);
        text = await (await fetch(`${exporter.base}/metrics`)).text();
      }
      // The kernel writes its record of lost events into a CPU's ring with that CPU's next event
      // once there is room again: one more call, after a read emptied the ring, brings it.
      await sleep(1500);
      execFileSync('taskset', ['-c', cpu, workload, '1']);
      const total = (t: string) => (sample(t, series) ?? 0) + (sample(t, lostSeries) ?? 0);
      for (let i = 0; i < 100 && total(text) !== N + 1; i++) {
        await sleep(100);
        text = await (await fetch(`${exporter.base}/metrics`)).text();
      }
      expect({ counted: sample(text, series), lost: sample(text, lostSeries), total: total(text) }).toEqual({ counted: expect.any(Number), lost: expect.any(Number), total: N + 1 });
      expect(sample(text, lostSeries)).toBeGreaterThan(0);
    } finally {
      expect(await exporter.stop(), exporter.log()).toBe(0);
    }
  }, 120_000);

  it('clears the counts every flush_interval: the series goes', async () => {
    const series = onlyOurs('flushed', '3s');
    const exporter = await startExporter('', {}, [], ['--config.dir', dir, '--config.names', 'flushed']);
    try {
      const N = 50;
      execFileSync(workload, [String(N)]);
      let text = '';
      // Counted at the next read (every second), then cleared at a read 3 s after the last clear.
      for (let i = 0; i < 100 && sample(text, series) !== N; i++) {
        await sleep(100);
        text = await (await fetch(`${exporter.base}/metrics`)).text();
      }
      expect(sample(text, series)).toBe(N);
      for (let i = 0; i < 100 && sample(text, series) !== undefined; i++) {
        await sleep(100);
        text = await (await fetch(`${exporter.base}/metrics`)).text();
      }
      expect(sample(text, series)).toBeUndefined();
      expect(text).toContain('bpf_map_exporter_map_up{map="flushed/events_calls_total"} 1');
    } finally {
      expect(await exporter.stop(), exporter.log()).toBe(0);
    }
  }, 120_000);
});

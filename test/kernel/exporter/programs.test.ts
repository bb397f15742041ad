/**
 * The inventory of every BPF program on the host, and the metrics of the programs the exporter
 * loaded, against the real kernel: a fixture (test/fixtures/bpf/prog-stats.bpf.c) with a uprobe on
 * the workload's bme_getppid (it runs exactly once per call of that binary, which only this test
 * runs), a tracepoint on the getppid syscall (any process's getppid runs it too) and a program left
 * unattached. kernel.bpf_stats_enabled is turned on for the test and restored after it: the kernel
 * counts run time and runs only while it is on.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { BpfObject } from '../../../src/bpf/object.js';
import { programInfoById, readProgramInfo } from '../../../src/bpf/program.js';
import { programInventoryAsync } from '../../../src/bpf/inventory.js';
import { parseConfig } from '../../../src/config/parse.js';
import { Daemon } from '../../../src/collect/daemon.js';
import { ExpositionCache } from '../../../src/publish/prometheus.js';
import { SelfMetrics } from '../../../src/publish/self-metrics.js';
import { compileBpf, kernelDescribe } from '../support.js';

const STATS = '/proc/sys/kernel/bpf_stats_enabled';
const root = new URL('../../../', import.meta.url).pathname;

interface BpftoolProg { id: number; type: string | number; name?: string; tag: string; run_time_ns?: number; run_cnt?: number; recursion_misses?: number }
const bpftool = (id: number) => JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show', 'id', String(id)]).toString()) as BpftoolProg;

/** The value of the one sample `series` (labels as written in the exposition), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

kernelDescribe('the program inventory and the loaded programs\' metrics', () => {
  let dir: string;
  let workload: string;
  let object: string;
  let statsBefore: string;

  beforeAll(() => {
    statsBefore = readFileSync(STATS, 'utf8').trim();
    writeFileSync(STATS, '1');
    dir = mkdtempSync(join(tmpdir(), `bme-progs-${process.pid}-`));
    workload = join(dir, 'getppid');
    execFileSync('cc', ['-O2', '-o', workload, join(root, 'test/fixtures/workload/getppid.c')]);
    object = join(dir, 'prog-stats.bpf.o');
    compileBpf(join(root, 'test/fixtures/bpf/prog-stats.bpf.c'), object, [`-DWORKLOAD="${workload}"`]);
  }, 60_000);

  afterAll(() => {
    writeFileSync(STATS, statsBefore);
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists every program with bpftool\'s id, name, type and tag, and counts exactly the runs of the workload\'s calls while bpf_stats is on', async () => {
    const obj = BpfObject.load(object);
    try {
      obj.attach();
      const uprobe = readProgramInfo(obj.programFd('stats_uprobe')).id;
      const tp = readProgramInfo(obj.programFd('stats_tp')).id;
      const unused = readProgramInfo(obj.programFd('stats_unused')).id;
      const nested = readProgramInfo(obj.programFd('stats_nested')).id;
      const row = async (id: number) => (await programInventoryAsync()).find((r) => r.id === id);

      // Every program bpftool lists is in the inventory (a program may come or go in between: compare ids present in both listings).
      const listed = (JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show']).toString()) as BpftoolProg[]).map((p) => p.id);
      const ours = (await programInventoryAsync()).map((r) => r.id);
      expect(ours).toEqual([...ours].sort((a, b) => a - b));
      expect(ours).toEqual(expect.arrayContaining([uprobe, tp, unused]));
      expect(listed.filter((id) => !ours.includes(id) && programInfoById(id) !== undefined)).toEqual([]);

      expect((await row(uprobe))!.runCount).toBe(0n);
      const N = 1234;
      execFileSync(workload, [String(N)]);
      const u = (await row(uprobe))!;
      const t = (await row(tp))!;
      // The uprobe runs once per call of this binary's bme_getppid: exactly N.
      expect(u.runCount).toBe(BigInt(N));
      expect(u.runTimeNs).toBeGreaterThan(0n);
      // The tracepoint runs for every process's getppid: at least N.
      expect(t.runCount).toBeGreaterThanOrEqual(BigInt(N));
      expect((await row(unused))!.runCount).toBe(0n);
      // The program on bpf_printk's tracepoint ran once for each of the uprobe's N lines, and its own
      // line's nested run was skipped each time: N misses.
      expect((await row(nested))!.recursionMisses).toBe(BigInt(N));
      expect((await row(nested))!.runCount).toBe(BigInt(N));
      expect(u.recursionMisses).toBe(0n);

      for (const [id, r, type] of [[uprobe, u, 'kprobe'], [tp, t, 'tracepoint'], [unused, (await row(unused))!, 'raw_tracepoint']] as const) {
        const b = bpftool(id);
        expect({ id: r.id, name: r.name, type: r.typeName, tag: r.tag }).toEqual({ id: b.id, name: b.name, type: b.type, tag: b.tag });
        expect(r.typeName).toBe(type);
      }
      // bpftool reads the same counters: the uprobe's have not moved since.
      expect(bpftool(uprobe).run_cnt).toBe(N);
      expect(BigInt(bpftool(uprobe).run_time_ns!)).toBe(u.runTimeNs);
      expect(bpftool(nested).recursion_misses).toBe(N);

      // With bpf_stats off the kernel counts nothing more (and keeps what it counted).
      writeFileSync(STATS, '0');
      try {
        execFileSync(workload, ['100']);
        expect((await row(uprobe))!.runCount).toBe(BigInt(N));
      } finally {
        writeFileSync(STATS, '1');
      }
      execFileSync(workload, ['10']);
      expect((await row(uprobe))!.runCount).toBe(BigInt(N + 10));
    } finally {
      obj.close();
    }
  });

  it('the daemon publishes the inventory\'s program rows and the loaded object\'s programs: attached or not, exact runs', async () => {
    const config = parseConfig(
      `interval: 200ms
inventory: true
maps:
  - name: runs
    source: { object: ${object}, map: runs }
    key: [ { name: slot, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: fixture_runs_total, type: counter, help: runs by program, value: n, labels: [ { name: slot, from: slot } ] }
`,
      'programs.yaml',
    );
    const registry = new Registry();
    const exposition = new ExpositionCache(registry);
    const self = new SelfMetrics(registry, { version: 't', inventory: true });
    const daemon = new Daemon(config, { exposition, self });
    daemon.start();
    try {
      const text = async () => (await exposition.render('text', false)).toString();
      const N = 2500;
      let t = '';
      for (let i = 0; i < 100 && !/^bpf_map_exporter_program_attached\{/m.test(t); i++) {
        await new Promise((r) => setTimeout(r, 50));
        t = await text();
      }
      const attached = [...t.matchAll(/^bpf_map_exporter_program_attached\{id="(\d+)",object="([^"]+)",program="(\w+)",section="([^"]+)"\} (\d)$/gm)]
        .map((m) => ({ id: Number(m[1]), object: m[2], program: m[3], section: m[4], value: Number(m[5]) }));
      const ids = Object.fromEntries(attached.map((a) => [a.program, a.id]));
      expect(attached.map(({ id: _, ...a }) => a).sort((a, b) => (a.program < b.program ? -1 : 1))).toEqual([
        { object, program: 'stats_nested', section: 'raw_tp/bpf_trace_printk', value: 1 },
        { object, program: 'stats_tp', section: 'tp/syscalls/sys_enter_getppid', value: 1 },
        { object, program: 'stats_unused', section: 'raw_tp', value: 0 },
        { object, program: 'stats_uprobe', section: `uprobe/${workload}:bme_getppid`, value: 1 },
      ]);

      execFileSync(workload, [String(N)]);
      const own = `bpf_map_exporter_program_runs_total{id="${ids.stats_uprobe}",object="${object}",program="stats_uprobe"}`;
      const inv = `bpf_program_runs_total{id="${ids.stats_uprobe}",name="stats_uprobe",type="kprobe"}`;
      const missed = `bpf_map_exporter_program_recursion_misses_total{id="${ids.stats_nested}",object="${object}",program="stats_nested"}`;
      for (let i = 0; i < 100 && !(sample(t, own) === N && sample(t, inv) === N && sample(t, 'fixture_runs_total{slot="0"}') === N && sample(t, missed) === N); i++) {
        await new Promise((r) => setTimeout(r, 50));
        t = await text();
      }
      // The kernel's run count, the inventory's and the program's own count in its map agree: exactly N.
      expect(sample(t, own), t).toBe(N);
      expect(sample(t, inv)).toBe(N);
      expect(sample(t, 'fixture_runs_total{slot="0"}')).toBe(N);
      // Every line the uprobe wrote is a run of the nested program the kernel skipped, in both listings.
      expect(sample(t, missed)).toBe(N);
      expect(sample(t, `bpf_program_recursion_misses_total{id="${ids.stats_nested}",name="stats_nested",type="raw_tracepoint"}`)).toBe(N);
      expect(sample(t, `bpf_map_exporter_program_recursion_misses_total{id="${ids.stats_uprobe}",object="${object}",program="stats_uprobe"}`)).toBe(0);
      expect(sample(t, `bpf_map_exporter_program_runs_total{id="${ids.stats_unused}",object="${object}",program="stats_unused"}`)).toBe(0);
      expect(sample(t, `bpf_map_exporter_program_run_seconds_total{id="${ids.stats_uprobe}",object="${object}",program="stats_uprobe"}`)).toBeGreaterThan(0);
      expect(sample(t, `bpf_program_run_seconds_total{id="${ids.stats_uprobe}",name="stats_uprobe",type="kprobe"}`)).toBeGreaterThan(0);
      expect(sample(t, `bpf_program_runs_total{id="${ids.stats_tp}",name="stats_tp",type="tracepoint"}`)).toBeGreaterThanOrEqual(N);
      const tag = bpftool(ids.stats_uprobe).tag;
      expect(sample(t, `bpf_program_info{id="${ids.stats_uprobe}",name="stats_uprobe",tag="${tag}",type="kprobe"}`)).toBe(1);
    } finally {
      await daemon.stop();
    }
  });
});

/**
 * ebpf_exporter's kstack decoder on the real kernel: a program of ours in their style
 * (test/fixtures/ebpf-exporter/kstack.bpf.c, kstack.yaml) reads the kernel stack at each getppid
 * call of a workload with bpf_get_stack into a 20-frame key and counts it; `run --config.dir DIR
 * --config.names kstack` exports each stack as one label, a symbol a line, innermost first, as
 * theirs renders it. The workload's comm ("bmekstack") is the program's filter, so the counts are
 * the workload's N calls exactly. Stacks from the syscalls:sys_enter_getppid tracepoint start in
 * perf_syscall_enter, the kernel function that runs the tracepoint's BPF programs; stacks from the
 * sys_enter raw tracepoint start in the BPF program itself, which kallsyms lists in its [bpf]
 * module: theirs keeps the module in the label, `bpf_prog_<tag>_kstack_raw\t[bpf]`, and so does
 * compat mode.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileBpf, kernelDescribe } from '../kernel/support.js';
import { programsHeldBy, root, sleep, startExporter, stillLoaded } from './support.js';

const N = 23;
const ARCH = { x64: 'x86', arm64: 'arm64' }[process.arch as string] ?? 'unsupported';

/** The series of metric `name` in a /metrics text: label value (unescaped) -> sample value. */
function stacks(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  const prefix = `${name}{kstack="`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const end = line.lastIndexOf('"} ');
    const label = line.slice(prefix.length, end).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.set(label, Number(line.slice(end + 3)));
  }
  return out;
}

kernelDescribe('ebpf_exporter kstack decoder (--config.dir, --config.names)', () => {
  let dir: string;
  let workload: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-kstack-'));
    compileBpf(join(root, 'test/fixtures/ebpf-exporter/kstack.bpf.c'), join(dir, 'kstack.bpf.o'), [`-D__TARGET_ARCH_${ARCH}`]);
    copyFileSync(join(root, 'test/fixtures/ebpf-exporter/kstack.yaml'), join(dir, 'kstack.yaml'));
    workload = join(dir, 'bmekstack');
    execFileSync('cc', ['-O2', '-o', workload, join(root, 'test/fixtures/workload/compat.c')]);
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exports each kernel stack of the workload\'s getppid calls as their symbols, counted exactly', async () => {
    const exporter = await startExporter('', {}, [], ['--config.dir', dir, '--config.names', 'kstack']);
    const scrape = async () => (await fetch(`${exporter.base}/metrics`)).text();
    let ids: number[] = [];
    try {
      const held = new Set(programsHeldBy(exporter.proc.pid!));
      const progs = (JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show']).toString()) as { id: number; name?: string; tag: string }[]).filter((p) => held.has(p.id));
      const raw = progs.find((p) => p.name === 'kstack_raw');
      expect(raw).toBeDefined();
      ids = progs.filter((p) => p.name === 'kstack_tp' || p.name === 'kstack_raw').map((p) => p.id);
      expect(ids).toHaveLength(2);

      execFileSync(workload, [String(N)]);
      let text = '';
      for (let i = 0; i < 150; i++) {
        text = await scrape();
        const done = (m: string) => [...stacks(text, m).values()].reduce((a, b) => a + b, 0) === N;
        if (done('ebpf_exporter_kstack_getppid_total') && done('ebpf_exporter_kstack_raw_getppid_total')) break;
        await sleep(100);
      }
      const tp = [...stacks(text, 'ebpf_exporter_kstack_getppid_total')];
      const rawTp = [...stacks(text, 'ebpf_exporter_kstack_raw_getppid_total')];
      // One stack each, counted N times: the calls come from one place of the workload.
      expect(tp.map(([, v]) => v)).toEqual([N]);
      expect(rawTp.map(([, v]) => v)).toEqual([N]);
      const tpFrames = tp[0][0].split('\n');
      const rawFrames = rawTp[0][0].split('\n');

      // The top frame is what runs the program: the tracepoint's perf handler, or the program itself.
      expect(tpFrames[0]).toBe('perf_syscall_enter');
      expect(rawFrames[0]).toBe(`bpf_prog_${raw!.tag}_kstack_raw\t[bpf]`);
      expect(rawFrames[1]).toBe('bpf_trace_run2');
      // Below the tracepoint both stacks are the same syscall path, down to the syscall entry.
      expect(rawFrames.slice(-(tpFrames.length - 1))).toEqual(tpFrames.slice(1));
      expect(tpFrames.length).toBeGreaterThanOrEqual(3);
      // Every frame is a kernel symbol (no ??), each as kallsyms names it.
      const kallsyms = new Set(readFileSync('/proc/kallsyms', 'utf8').split('\n').map((l) => l.split(' ').slice(2).join(' ')));
      for (const frame of [...tpFrames, ...rawFrames]) expect(kallsyms.has(frame), frame).toBe(true);
    } finally {
      expect(await exporter.stop()).toBe(0);
    }
    expect(await stillLoaded(ids)).toEqual([]);
  }, 60_000);
});

/**
 * Programs of several kinds in one object, end to end: a fixture (test/fixtures/bpf/kinds.bpf.c)
 * with a raw tracepoint, a tracepoint, fentry and fexit, a kprobe and a kretprobe on the getppid
 * syscall, and a uprobe and a uretprobe on the function of the workload that makes it, each
 * counting into one map keyed by (tgid, kind). The exporter attaches them by their sections; a
 * workload making exactly N calls shows exactly N for every kind under its pid, and no program
 * is left after exit.
 *
 * Kernels differ in what they allow: this one may lack kprobes (CONFIG_KPROBES) or refuse tracing
 * programs (fentry/fexit). What the kernel allows is found apart from the exporter (sysfs, tracefs,
 * bpftool's feature probe); every allowed kind must count exactly, and every other kind must be
 * refused by the exporter with a one-line error saying what the kernel lacks.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectRegistry } from '../../src/bpf/object.js';
import { kernelDescribe } from '../kernel/support.js';
import { buildExamples, root, sample, sleep, startExporter } from './support.js';

const KINDS = ['raw_tracepoint', 'tracepoint', 'fentry', 'fexit', 'kprobe', 'kretprobe', 'uprobe', 'uretprobe'] as const;
type Kind = (typeof KINDS)[number];
const PROGRAMS: Record<Kind, string> = {
  raw_tracepoint: 'on_sys_enter',
  tracepoint: 'on_tracepoint',
  fentry: 'on_fentry',
  fexit: 'on_fexit',
  kprobe: 'on_kprobe',
  kretprobe: 'on_kretprobe',
  uprobe: 'on_uprobe',
  uretprobe: 'on_uretprobe',
};
const ARCH = { x64: 'x86', arm64: 'arm64' }[process.arch as string];
const SYSCALL_ENTRY = { x64: '__x64_sys_getppid', arm64: '__arm64_sys_getppid' }[process.arch as string];
const TRACEFS = '/sys/kernel/tracing';
const PMUS = '/sys/bus/event_source/devices';

/** What the kernel allows, found without the exporter. */
function allowed(): Record<Kind, boolean> {
  const probe = JSON.parse(execFileSync('bpftool', ['-j', 'feature', 'probe', 'kernel'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString()) as { program_types: Record<string, boolean> };
  const tracing = probe.program_types.have_tracing_prog_type === true;
  const kprobes = existsSync(`${PMUS}/kprobe`) || existsSync(`${TRACEFS}/kprobe_events`);
  const uprobes = existsSync(`${PMUS}/uprobe`) || existsSync(`${TRACEFS}/uprobe_events`);
  return {
    raw_tracepoint: true,
    tracepoint: existsSync(`${TRACEFS}/events/syscalls/sys_enter_getppid`),
    fentry: tracing,
    fexit: tracing,
    kprobe: kprobes,
    kretprobe: kprobes,
    uprobe: uprobes,
    uretprobe: uprobes,
  };
}

function programIds(): number[] {
  const names = new Set(Object.values(PROGRAMS));
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show']).toString()) as { id: number; name?: string }[];
  return progs.filter((p) => p.name !== undefined && names.has(p.name)).map((p) => p.id);
}

kernelDescribe('programs of every kind in one object', () => {
  let dir: string;
  let workload: string;
  let can: Record<Kind, boolean>;

  /** The fixture compiled with the programs of `kinds`, against this kernel's vmlinux.h. */
  function compile(name: string, kinds: readonly Kind[]): string {
    const out = join(dir, `${name}.bpf.o`);
    const defines = kinds.map((k) => `-DWITH_${k.toUpperCase()}`);
    execFileSync('clang', ['-g', '-O2', '-target', 'bpf', `-D__TARGET_ARCH_${ARCH}`, `-DWORKLOAD="${workload}"`, ...defines, `-I${join(root, 'build/bpf')}`, '-c', join(root, 'test/fixtures/bpf/kinds.bpf.c'), '-o', out], { stdio: 'pipe' });
    return out;
  }

  beforeAll(() => {
    buildExamples();
    dir = mkdtempSync(join(tmpdir(), 'bme-kinds-'));
    workload = join(dir, 'getppid');
    execFileSync('cc', ['-O2', '-o', workload, join(root, 'test/fixtures/workload/getppid.c')]);
    can = allowed();
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('counts exactly the N calls of a process in every kind the kernel allows, and detaches them all on exit', async () => {
    const kinds = KINDS.filter((k) => can[k]);
    // Raw tracepoints and uprobes need nothing beyond BPF: a kernel without them is not one this exporter supports.
    expect(kinds).toEqual(expect.arrayContaining(['raw_tracepoint', 'uprobe', 'uretprobe']));
    const object = compile('allowed', kinds);
    const config = join(dir, 'kinds.yaml');
    writeFileSync(
      config,
      `interval: 200ms
maps:
  - name: calls
    source: { object: ${object}, map: calls }
    metrics:
      - name: getppid_calls_total
        type: counter
        help: getppid calls by process, as each kind of program saw them
        value: value
        labels:
          - { name: pid, from: tgid }
          - { name: kind, from: kind }
`,
    );
    expect(programIds()).toEqual([]);
    const exporter = await startExporter(config);
    try {
      expect(programIds(), exporter.log()).toHaveLength(kinds.length);
      const N = 2345;
      const pid = execFileSync(workload, [String(N)]).toString().trim();
      const series = (k: Kind) => `getppid_calls_total{kind="${k}",pid="${pid}"}`;
      let text = '';
      for (let i = 0; i < 100 && !kinds.every((k) => sample(text, series(k)) === N); i++) {
        await sleep(100);
        text = await (await fetch(`${exporter.base}/metrics`)).text();
      }
      const mine = text.split('\n').filter((l) => l.startsWith('getppid_calls_total{') && l.includes(`pid="${pid}"`));
      // Every allowed kind, exactly N, and nothing else under the workload's pid.
      expect(mine.sort(), exporter.log()).toEqual(kinds.map((k) => `${series(k)} ${N}`).sort());
    } finally {
      expect(await exporter.stop(), exporter.log()).toBe(0);
    }
    // Links (tracepoints, probes) go with the exporter's exit; give the kernel a moment to free the programs (bounded).
    for (let i = 0; i < 50 && programIds().length > 0; i++) await sleep(100);
    expect(programIds()).toEqual([]);
  }, 120_000);

  it('refuses every kind the kernel does not allow with one line saying what the kernel lacks, leaving nothing loaded', () => {
    const refused = KINDS.filter((k) => !can[k]);
    for (const kind of refused) {
      const object = compile(kind, [kind]);
      const objects = new ObjectRegistry();
      let message = '';
      try {
        objects.get(object, {});
      } catch (e) {
        message = (e as Error).message;
      } finally {
        objects.closeAll();
      }
      const program = PROGRAMS[kind];
      if (kind === 'kprobe' || kind === 'kretprobe') {
        expect(message).toBe(
          `object ${object}: attach program ${program} (section ${kind}/${SYSCALL_ENTRY}) failed: ENOENT ` +
            '(this kernel has no kprobes: no kprobe PMU in /sys/bus/event_source/devices and no kprobe_events in tracefs (built without CONFIG_KPROBES))',
        );
      } else if (kind === 'fentry' || kind === 'fexit') {
        // The first line says it all; libbpf's own words follow it.
        expect(message.split('\n')[0]).toBe(
          `object ${object}: load BPF object failed: EPERM (the kernel refused program ${program} (section ${kind}/__do_sys_getppid): ` +
            `a kernel that does not allow ${kind} programs says EPERM even to root; \`bpftool feature probe kernel | grep tracing\` tells which tracing programs it allows; libbpf said:`,
        );
      } else {
        expect.fail(`the kernel lacks ${kind}, which this test has no expectation for: ${message}`);
      }
      expect(programIds()).toEqual([]);
    }
    // Every kind is either counted by the test above or refused here.
    expect(refused.length + KINDS.filter((k) => can[k]).length).toBe(KINDS.length);
  }, 120_000);
});

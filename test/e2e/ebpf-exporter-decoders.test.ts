/**
 * ebpf_exporter's decoders on the real kernel: a program of ours in their style
 * (test/fixtures/ebpf-exporter/decoders.bpf.c, decoders.yaml), run by `run --config.dir DIR
 * --config.names decoders`, and a workload (comm "bmedecoders", the program's filter) of N getppid
 * calls. At each call the program counts:
 * - the kernel stack, read with bpf_get_stack into a 20-frame key (their kstack example's way),
 *   from the syscalls:sys_enter_getppid tracepoint (the stack starts in perf_syscall_enter, the
 *   kernel function that runs the tracepoint's BPF programs) and from the sys_enter raw tracepoint
 *   (it starts in the BPF program itself, which kallsyms lists in its [bpf] module: theirs keeps
 *   the module in the label, `bpf_prog_<tag>_kstack_raw\t[bpf]`, and so does compat mode);
 * - fixed keys, known and unknown, for pci_*, dname, syscall, errno, ifname and majorminor, whose
 *   labels must be the values theirs gives.
 * A pci decoder without pci.ids (hidden in a mount namespace of the test's own) is one line naming
 * the files and the package.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileBpf, kernelDescribe } from '../kernel/support.js';
import { programsHeldBy, root, sleep, startExporter, stillLoaded } from './support.js';

const N = 23;
const ARCH = { x64: 'x86', arm64: 'arm64' }[process.arch as string] ?? 'unsupported';

/** The series of metric `name` in a /metrics text: the label set as written (values unescaped) -> sample value. */
function series(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const end = line.lastIndexOf('} ');
    const labels = line.slice(name.length + 1, end).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.set(labels, Number(line.slice(end + 2)));
  }
  return out;
}

/** The first disk of /proc/partitions: its name and its number as the kernel's new_encode_dev() gives it. */
function firstPartition(): { name: string; dev: number } {
  const row = readFileSync('/proc/partitions', 'utf8').split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f.length === 4 && /^\d+$/.test(f[0]));
  if (row === undefined) throw new Error('/proc/partitions lists no device');
  const [major, minor] = [Number(row[0]), Number(row[1])];
  return { name: row[3], dev: (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12) };
}

kernelDescribe('ebpf_exporter decoders: kstack, pci_*, dname and their label values (--config.dir, --config.names)', () => {
  let dir: string;
  let workload: string;
  const disk = firstPartition();
  const main = join(root, 'exporter/main.ts');

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-decoders-'));
    compileBpf(join(root, 'test/fixtures/ebpf-exporter/decoders.bpf.c'), join(dir, 'decoders.bpf.o'), [`-D__TARGET_ARCH_${ARCH}`, `-DDEV_KNOWN=${disk.dev}`]);
    copyFileSync(join(root, 'test/fixtures/ebpf-exporter/decoders.yaml'), join(dir, 'decoders.yaml'));
    workload = join(dir, 'bmedecoders');
    execFileSync('cc', ['-O2', '-o', workload, join(root, 'test/fixtures/workload/compat.c')]);
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exports kernel stacks as their symbols, and every label as theirs, counted exactly', async () => {
    const exporter = await startExporter('', {}, [], ['--config.dir', dir, '--config.names', 'decoders']);
    const scrape = async () => (await fetch(`${exporter.base}/metrics`)).text();
    const metrics = ['kstack_getppid_total', 'kstack_raw_getppid_total', 'decoders_pci_total', 'decoders_dns_total', 'decoders_sys_total'].map((m) => `ebpf_exporter_${m}`);
    const [TP, RAW, PCI, DNS, SYS] = metrics;
    let ids: number[] = [];
    try {
      const held = new Set(programsHeldBy(exporter.proc.pid!));
      const progs = (JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show']).toString()) as { id: number; name?: string; tag: string }[]).filter((p) => held.has(p.id));
      const raw = progs.find((p) => p.name === 'kstack_raw');
      expect(raw).toBeDefined();
      ids = progs.filter((p) => p.name === 'kstack_tp' || p.name === 'kstack_raw').map((p) => p.id);
      expect(ids).toHaveLength(2);

      execFileSync(workload, [String(N)]);
      // Each metric's series add up to N per key the program writes at a call.
      const perCall: Record<string, number> = { [TP]: 1, [RAW]: 1, [PCI]: 2, [DNS]: 1, [SYS]: 2 };
      let text = '';
      for (let i = 0; i < 150; i++) {
        text = await scrape();
        if (metrics.every((m) => [...series(text, m).values()].reduce((a, b) => a + b, 0) === N * perCall[m])) break;
        await sleep(100);
      }

      // Stacks: one each, counted N times (the calls come from one place of the workload).
      const tp = [...series(text, TP)];
      const rawTp = [...series(text, RAW)];
      expect(tp.map(([, v]) => v)).toEqual([N]);
      expect(rawTp.map(([, v]) => v)).toEqual([N]);
      const frames = (labels: string) => labels.slice('kstack="'.length, -1).split('\n');
      const tpFrames = frames(tp[0][0]);
      const rawFrames = frames(rawTp[0][0]);
      // The top frame is what runs the program: the tracepoint's perf handler, or the program itself.
      expect(tpFrames[0]).toBe('perf_syscall_enter');
      expect(rawFrames[0]).toBe(`bpf_prog_${raw!.tag}_kstack_raw\t[bpf]`);
      expect(rawFrames[1]).toBe('bpf_trace_run2');
      // Below the tracepoint both stacks are the same syscall path, down to the syscall entry.
      expect(tpFrames.length).toBeGreaterThanOrEqual(3);
      expect(rawFrames.slice(-(tpFrames.length - 1))).toEqual(tpFrames.slice(1));
      // Every frame is a kernel symbol (no ??), as kallsyms names it.
      const kallsyms = new Set(readFileSync('/proc/kallsyms', 'utf8').split('\n').map((l) => l.split(' ').slice(2).join(' ')));
      for (const frame of [...tpFrames, ...rawFrames]) expect(kallsyms.has(frame), frame).toBe(true);

      // The fixed keys, labelled as theirs labels them (the exposition sorts labels by name).
      expect([...series(text, PCI)].sort()).toEqual(
        [
          ['pci_class="Network controller",pci_device="82542 Gigabit Ethernet Controller (Fiber)",pci_subclass="Ethernet controller",pci_vendor="Intel Corporation"', N],
          ['pci_class="unknown pci class: 0xfd",pci_device="unknown pci device: 0xdeadbeef",pci_subclass="unknown pci subclass: 0x0b (class 0x01)",pci_vendor="unknown pci vendor: 0xbeef"', N],
        ].sort(),
      );
      expect([...series(text, DNS)]).toEqual([['qname="example.com",raw="example.com...."', N]]);
      expect([...series(text, SYS)].sort()).toEqual(
        [
          [`device="${disk.name}",errno="ENOENT",ifname="lo",syscall="poll_time64"`, N],
          ['device="unknown:250:7",errno="unknown:1000",ifname="unknown:2147483632",syscall="unknown_syscall:999"', N],
        ].sort(),
      );
    } finally {
      expect(await exporter.stop()).toBe(0);
    }
    expect(await stillLoaded(ids)).toEqual([]);
  }, 60_000);

  it('refuses a pci decoder without pci.ids, naming the files and the package (pci.ids hidden in a mount namespace of its own)', () => {
    const hidden = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs none /usr/share/misc && exec "$0" "$@"`, process.execPath, '--import', 'tsx', main, 'check', '--config.dir', dir, '--config.names', 'decoders'], { encoding: 'utf8' });
    const yaml = join(dir, 'decoders.yaml');
    // Each pci label's `decoders:` key, two lines below its `- name:` (size between).
    const text = readFileSync(yaml, 'utf8').split('\n');
    const decodersLine = (label: string) => text.indexOf(`        - name: ${label}`) + 3;
    const missing = 'needs the PCI ID database /usr/share/misc/pci.ids or /usr/share/hwdata/pci.ids, which is missing: install the package pci.ids (Debian, Ubuntu) or hwdata';
    expect(hidden.stderr.trimEnd().split('\n')).toEqual(
      ['pci_vendor', 'pci_device', 'pci_class', 'pci_subclass'].map((d, k) => `${yaml}:${decodersLine(d)}:11: metrics.counters[2].labels[${k}].decoders: decoder ${d} ${missing}`),
    );
    expect(hidden.status).toBe(2);
    // With the file where it is, the same config checks.
    const checked = spawnSync(process.execPath, ['--import', 'tsx', main, 'check', '--config.dir', dir, '--config.names', 'decoders'], { encoding: 'utf8' });
    expect(checked.stderr).toBe('');
    expect(checked.status).toBe(0);
  }, 60_000);
});

/**
 * ebpf_exporter's program-side conventions on the real kernel, run as their configs run (`run
 * --config.dir DIR --config.names progs`): an object of ours in their style
 * (test/fixtures/ebpf-exporter/progs.bpf.c, progs.yaml) whose programs attach by their sections
 * alone, with no option of ours:
 *
 * - two programs in sections perf_event/type=1,config=0,frequency=F and perf_event/type=1,config=1,
 *   frequency=F (cpu-clock and task-clock), each on every online CPU, counting a busy child's
 *   samples by event and comm: about its CPU time times F each;
 * - an XDP program in section xdp/IFNAME, IFNAME a veth the test makes (the object is compiled for
 *   it), counting exactly the pings sent to it from a namespace;
 * - their top-level kaddrs: the addresses of schedule and vfs_read, written into the object's
 *   kaddr_schedule and kaddr_vfs_read before load, read back by a tracepoint program into a map
 *   whose key holds them, compared with /proc/kallsyms.
 *
 * Everything is named after the test's pid (namespace, interfaces, the child's comm), so tests
 * running alongside do not add to the counts; on exit every program and event is gone.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectRegistry } from '../../src/bpf/object.js';
import { onlineCpus } from '../../src/bpf/perf-event.js';
import { compileBpf } from '../kernel/support.js';
import { hardwarePmu, loadedPrograms, perfEventFds, programsHeldBy, root, sleep, startExporter, stillLoaded } from './support.js';
import { ip, networkDescribe, ping, tryIp, vethPair, type Veth } from './network.js';

const FREQUENCY = 1000;
const PROGRAMS = ['on_cpu_clock', 'on_exec', 'on_packet', 'on_task_clock'];

/** The address /proc/kallsyms gives a kernel symbol (the last line of three fields naming it). */
function kallsyms(symbol: string): bigint {
  let addr: bigint | undefined;
  for (const line of readFileSync('/proc/kallsyms', 'utf8').split('\n')) {
    const parts = line.split(' ');
    if (parts.length === 3 && parts[2] === symbol) addr = BigInt(`0x${parts[0]}`);
  }
  if (addr === undefined) throw new Error(`/proc/kallsyms has no ${symbol}`);
  return addr;
}

/** A u64 as the hex decoder writes its bytes: in memory order (little-endian). */
function hexLe(v: bigint): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b.toString('hex');
}

/** The ebpf_exporter_progs_* samples of a /metrics text whose line matches `re`. */
function lines(text: string, re: RegExp): string[] {
  return text.split('\n').filter((l) => l.startsWith('ebpf_exporter_progs_') && re.test(l)).sort();
}

networkDescribe('ebpf_exporter program sections (perf_event/..., xdp/IFNAME) and kaddrs', () => {
  const ns = `bme-pr-${process.pid}`;
  const host = `bmeph${process.pid}`;
  const peer = `bmepn${process.pid}`;
  let veth: Veth | undefined;
  let dir: string;
  let spin: string;
  const main = join(root, 'exporter/main.ts');
  const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8', timeout: 60_000 });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-progs-'));
    veth = vethPair(ns, host, peer, 61);
    // The section xdp/IFNAME names the interface: the object is built for this run's veth.
    compileBpf(join(root, 'test/fixtures/ebpf-exporter/progs.bpf.c'), join(dir, 'progs.bpf.o'), [`-DIFNAME="${host}"`, `-DFREQUENCY=${FREQUENCY}`]);
    copyFileSync(join(root, 'test/fixtures/ebpf-exporter/progs.yaml'), join(dir, 'progs.yaml'));
    // The child's name is its comm: unique to this run, within the kernel's 15 characters.
    spin = join(dir, `bmepr${process.pid % 1_000_000}`);
    execFileSync('cc', ['-O2', '-o', spin, join(root, 'test/fixtures/workload/spin.c')]);
  }, 120_000);

  afterAll(() => {
    tryIp('netns', 'del', ns);
    tryIp('link', 'del', host);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('attaches every program by its section, counts pings and samples, reads back the kaddrs, and leaves nothing on exit', async () => {
    const exporter = await startExporter('', {}, [], ['--config.dir', dir, '--config.names', 'progs']);
    const pid = exporter.proc.pid!;
    const scrape = async () => (await fetch(`${exporter.base}/metrics`)).text();
    let ids: number[] = [];
    try {
      const held = new Set(programsHeldBy(pid));
      const ours = loadedPrograms().filter((p) => held.has(p.id) && PROGRAMS.includes(p.name ?? ''));
      ids = ours.map((p) => p.id);
      expect(ours.map((p) => p.name).sort(), exporter.log()).toEqual(PROGRAMS);
      // One event per online CPU for each perf_event program, and the tracepoint's own perf event
      // (libbpf attaches a tracepoint through perf_event_open).
      expect(perfEventFds(pid)).toBe(2 * onlineCpus().length + 1);
      // The XDP program is on the interface its section names.
      const xdp = (JSON.parse(ip('-j', 'link', 'show', 'dev', host)) as { xdp?: { prog?: { name: string } } }[])[0]?.xdp;
      expect(xdp?.prog?.name).toBe('on_packet');

      // kaddrs: the tracepoint runs at every exec; ours makes sure there is one.
      execFileSync('true');
      const kaddrs = [`ebpf_exporter_progs_kaddrs{addr="${hexLe(kallsyms('schedule'))}",symbol="schedule"} 1`, `ebpf_exporter_progs_kaddrs{addr="${hexLe(kallsyms('vfs_read'))}",symbol="vfs_read"} 1`].sort();
      let text = '';
      for (let i = 0; i < 100 && JSON.stringify(lines(text, /^ebpf_exporter_progs_kaddrs\{/)) !== JSON.stringify(kaddrs); i++) {
        await sleep(100);
        text = await scrape();
      }
      expect(lines(text, /^ebpf_exporter_progs_kaddrs\{/)).toEqual(kaddrs);

      // xdp/IFNAME: exactly N echo requests (ICMP type 8) arrive on the host end.
      const N = 23;
      const sent = ping(ns, veth!.hostAddr, N);
      expect(sent.transmitted, sent.output).toBe(N);
      const icmp = [`ebpf_exporter_progs_icmp_packets_total{type="8"} ${N}`];
      const nonZeroIcmp = (t: string) => lines(t, /^ebpf_exporter_progs_icmp_packets_total\{/).filter((l) => !l.endsWith(' 0'));
      for (let i = 0; i < 100 && JSON.stringify(nonZeroIcmp(text)) !== JSON.stringify(icmp); i++) {
        await sleep(100);
        text = await scrape();
      }
      // Every type of the array is a series; only type 8 has counts.
      expect(lines(text, /^ebpf_exporter_progs_icmp_packets_total\{/)).toHaveLength(256);
      expect(nonZeroIcmp(text)).toEqual(icmp);

      // perf_event/...: a busy child that used a known CPU time, sampled by both events.
      const CPU_MS = 1000;
      const [, usedNs, wallNs] = execFileSync(spin, [String(CPU_MS)]).toString().trim().split('\n').map(Number);
      const comm = spin.slice(spin.lastIndexOf('/') + 1);
      // As in cpu-samples.test.ts: one sample per period of the child's CPU time (5%), and never
      // more than one per period of its wall time (a VM's steal time runs the timers on).
      const expected = (usedNs / 1e9) * FREQUENCY;
      const low = Math.floor(expected * 0.95);
      const high = Math.ceil(Math.max(expected * 1.05, (wallNs / 1e9) * FREQUENCY + 1));
      const series = (event: string) => `ebpf_exporter_progs_samples_total{comm="${comm}",event="${event}"}`;
      const mine = (t: string) => lines(t, new RegExp(`comm="${comm}"`));
      // Their maps are read every 5 s: wait for a read that has the child's samples (bounded), then
      // for one more read, which must give the same (the child is gone: nothing more to count).
      const counts = (t: string) => mine(t).map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
      for (let i = 0; i < 150 && !(counts(text).length === 2 && counts(text).every((n) => n >= low)); i++) {
        await sleep(200);
        text = await scrape();
      }
      const first = mine(text);
      await sleep(5500);
      text = await scrape();
      expect(mine(text)).toEqual(first);
      const got = mine(text);
      expect(got.map((l) => l.slice(0, l.lastIndexOf(' ')))).toEqual([series('cpu-clock'), series('task-clock')]);
      for (const l of got) {
        const n = Number(l.slice(l.lastIndexOf(' ') + 1));
        expect(n, `${l}: expected ${low}..${high} for ${usedNs / 1e6} ms of CPU in ${wallNs / 1e6} ms`).toBeGreaterThanOrEqual(low);
        expect(n, `${l}: expected ${low}..${high} for ${usedNs / 1e6} ms of CPU in ${wallNs / 1e6} ms`).toBeLessThanOrEqual(high);
      }
    } finally {
      expect(await exporter.stop(), exporter.log()).toBe(0);
    }
    // Links destroyed (events closed with them), programs unloaded, the interface free again.
    expect(await stillLoaded(ids)).toEqual([]);
    expect((JSON.parse(ip('-j', 'link', 'show', 'dev', host)) as { xdp?: unknown }[])[0]?.xdp).toBeUndefined();
  }, 120_000);

  it('closes every event of the section programs when the object is closed; a hardware event of a section fails in one line where no PMU counts it', () => {
    const object = join(dir, 'hw.bpf.o');
    compileBpf(join(root, 'test/fixtures/ebpf-exporter/progs.bpf.c'), object, [`-DIFNAME="${host}"`, '-DHW_EVENT']);
    const objects = new ObjectRegistry();
    const before = perfEventFds('self');
    const held = () => new Set(programsHeldBy('self'));
    let ids: number[] = [];
    try {
      if (hardwarePmu()) {
        objects.get(object, { kaddrs: ['schedule', 'vfs_read'] });
        // Three perf_event programs on every CPU, and the tracepoint's event.
        expect(perfEventFds('self') - before).toBe(3 * onlineCpus().length + 1);
      } else {
        expect(() => objects.get(object, { kaddrs: ['schedule', 'vfs_read'] })).toThrow(
          `object ${object}: attach perf_event program on_cache_miss to type=0,config=3 (cache-misses) at 99 Hz on CPU ${onlineCpus()[0]} failed: ENOENT ` +
            '(no PMU of this machine counts type=0,config=3 (cache-misses): hardware events are often missing in a VM; a software event such as cpu-clock samples everywhere)',
        );
        // Nothing stays attached after a failed attach: the other programs' events are closed too.
        expect(perfEventFds('self')).toBe(before);
        // The config's perf_event: wins over the sections: every perf_event program samples cpu-clock.
        objects.get(object, { kaddrs: ['schedule', 'vfs_read'], perf_event: { event: 'cpu-clock', frequency: 99 } });
        expect(perfEventFds('self') - before).toBe(3 * onlineCpus().length + 1);
      }
      const h = held();
      ids = loadedPrograms().filter((p) => h.has(p.id) && ['on_cache_miss', ...PROGRAMS].includes(p.name ?? '')).map((p) => p.id);
      expect(ids).toHaveLength(5);
    } finally {
      objects.closeAll();
    }
    expect(perfEventFds('self')).toBe(before);
    const h = held();
    expect(ids.filter((id) => h.has(id))).toEqual([]);
  }, 60_000);

  it('convert prints a native config (kaddrs on the source) that check accepts against the real object', () => {
    const converted = cli('convert', '--config.dir', dir, '--config.names', 'progs');
    expect(converted.stderr).toBe('');
    expect(converted.stdout).toContain(`source: { object: ${join(dir, 'progs.bpf.o')}, map: progs_kaddrs, kaddrs: [ schedule, vfs_read ] }`);
    const native = join(dir, 'native-progs.yaml');
    writeFileSync(native, converted.stdout);
    const checked = cli('check', '--config', native);
    expect(checked.stderr).toBe('');
    expect(checked.stdout).toBe(`${native}: ok (3 maps)\n`);
  }, 60_000);

  it('check refuses, in a line naming the object, a kaddr whose symbol the kernel lacks and an xdp/IFNAME interface that does not exist', () => {
    const missing = `bme_no_such_symbol_${process.pid}`;
    const variants: [string, string[], string, string][] = [
      // [config, clang args, yaml text, the line]
      [
        'nosym',
        [`-DIFNAME="${host}"`, `-Dkaddr_vfs_read=kaddr_${missing}`],
        readFileSync(join(root, 'test/fixtures/ebpf-exporter/progs.yaml'), 'utf8').replace('  - vfs_read', `  - ${missing}`),
        `write the address of kernel symbol ${missing} into kaddr_${missing} failed: ENOENT (/proc/kallsyms has no kernel symbol ${missing})`,
      ],
      [
        'noif',
        [`-DIFNAME="bmeq${process.pid}"`],
        readFileSync(join(root, 'test/fixtures/ebpf-exporter/progs.yaml'), 'utf8'),
        `attach XDP program on_packet to interface bmeq${process.pid} failed: ENOENT (no network interface named bmeq${process.pid} in this network namespace)`,
      ],
    ];
    for (const [name, args, yaml, line] of variants) {
      compileBpf(join(root, 'test/fixtures/ebpf-exporter/progs.bpf.c'), join(dir, `${name}.bpf.o`), args);
      writeFileSync(join(dir, `${name}.yaml`), yaml);
      const r = cli('check', '--config.dir', dir, '--config.names', name);
      // Said once, at the first job of the object, though every job of it loads the object.
      expect(r.stderr.trimEnd().split('\n'), r.stderr).toEqual([`${join(dir, `${name}.yaml`)}:5:13: metrics.counters[0].name: object ${join(dir, `${name}.bpf.o`)}: ${line}`]);
      expect(r.status).toBe(2);
    }
  }, 120_000);
});

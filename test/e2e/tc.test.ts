/**
 * tc programs end to end, on a network the test owns (a namespace and veth pairs, see network.ts):
 * the exporter attaches a fixture's two tc programs (sections tc and classifier) to a clsact hook,
 * exactly N pings give exactly N on /metrics for each, and on exit the filters go, with the clsact
 * qdisc when the exporter created it and without it when it was there before. An interface that
 * does not exist yet fails the job every cycle (up 0, ENOENT counted) without reloading the object,
 * and is attached to as soon as it appears.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectRegistry } from '../../src/bpf/object.js';
import { buildExamples, root, sample, sleep, startExporter, stillLoaded, type Exporter } from './support.js';
import { networkDescribe, ping, programs, tryIp, vethPair, type Veth } from './network.js';

// As tc lists the filters: the kernel keeps 15 characters of a program's name (bpftool finds the
// whole name in the program's BTF).
const PROGRAMS = ['count_classifie', 'count_tc'];
const FULL_NAMES = ['count_classifier', 'count_tc'];
const ARCH = { x64: 'x86', arm64: 'arm64' }[process.arch as string];

function tc(...args: string[]): string {
  return execFileSync('tc', args, { stdio: 'pipe' }).toString();
}

function qdiscKinds(dev: string): string[] {
  return (JSON.parse(tc('-j', 'qdisc', 'show', 'dev', dev)) as { kind: string }[]).map((q) => q.kind);
}

/** The BPF filters at a hook of `dev`, by program name (tc shows "name:[id]"), sorted. */
function bpfFilters(dev: string, direction: 'ingress' | 'egress'): string[] {
  const out = spawnSync('tc', ['-j', 'filter', 'show', 'dev', dev, direction], { stdio: 'pipe' });
  // Without a clsact qdisc there is no hook to list: tc says so and prints nothing.
  if (out.status !== 0 || out.stdout.toString().trim() === '') return [];
  const filters = JSON.parse(out.stdout.toString()) as { kind?: string; options?: { bpf_name?: string } }[];
  return filters.flatMap((f) => (f.options?.bpf_name === undefined ? [] : [f.options.bpf_name.replace(/:\[\d+\]$/, '')])).sort();
}

function ourPrograms(): { id: number; name?: string }[] {
  return programs().filter((p) => p.name !== undefined && FULL_NAMES.includes(p.name));
}

/**
 * Our programs once the kernel has let go of them: a filter drops its program after an RCU grace
 * period, so the last reference may go a moment after the exporter has exited (bounded: 5 s).
 */
async function ourProgramsSettled(): Promise<{ id: number; name?: string }[]> {
  let left = ourPrograms();
  for (let i = 0; i < 50 && left.length > 0; i++) {
    await sleep(100);
    left = ourPrograms();
  }
  return left;
}

networkDescribe('tc programs', () => {
  const ns = `bme-t-${process.pid}`;
  let net: Veth;
  let dir: string;
  let object: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-tc-'));
    // build:bpf makes build/bpf/vmlinux.h, which the fixture is compiled against.
    buildExamples();
    object = join(dir, 'tc-count.bpf.o');
    execFileSync('clang', ['-g', '-O2', '-target', 'bpf', `-D__TARGET_ARCH_${ARCH}`, `-I${join(root, 'build/bpf')}`, '-c', join(root, 'test/fixtures/bpf/tc-count.bpf.c'), '-o', object], { stdio: 'pipe' });
    net = vethPair(ns, `bmth${process.pid}`, `bmtn${process.pid}`, 101);
  }, 120_000);

  afterAll(() => {
    // Deleting the namespace deletes the peers, and with them the host ends; the explicit deletes
    // cover a setup that failed before a pair was whole.
    tryIp('netns', 'del', ns);
    tryIp('link', 'del', `bmth${process.pid}`);
    tryIp('link', 'del', `bmtl${process.pid}`);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  function writeConfig(name: string, dev: string, direction: 'ingress' | 'egress'): string {
    const config = join(dir, `${name}.yaml`);
    writeFileSync(
      config,
      `interval: 200ms
maps:
  - name: echo
    source: { object: ${object}, map: echo_requests, tc: { interface: ${dev}, direction: ${direction} } }
    metrics:
      - name: tc_echo_requests_total
        type: counter
        help: ICMP echo requests seen by each tc program, by source address
        value: value
        labels:
          - { name: source, from: source, decoder: inet_ip }
          - { name: program, from: program }
`,
    );
    return config;
  }

  /** Scrape until every series has its value (bounded: 100 tries 100 ms apart), and return the last scrape. */
  async function waitFor(exporter: Exporter, want: Record<string, number>): Promise<string> {
    let text = '';
    for (let i = 0; i < 100 && !Object.entries(want).every(([s, v]) => sample(text, s) === v); i++) {
      await sleep(100);
      text = await (await fetch(`${exporter.base}/metrics`)).text();
    }
    return text;
  }

  const ours = (text: string) => text.split('\n').filter((l) => l.startsWith('tc_echo_requests_total{'));

  it('counts exactly the pings at ingress in both programs, and removes the clsact qdisc it created', async () => {
    expect(ourPrograms()).toEqual([]);
    expect(qdiscKinds(net.host)).not.toContain('clsact');
    const exporter = await startExporter(writeConfig('ingress', net.host, 'ingress'));
    try {
      // Ready means the first cycle ran: the object is loaded and its filters are in place.
      expect(qdiscKinds(net.host), exporter.log()).toContain('clsact');
      expect(bpfFilters(net.host, 'ingress')).toEqual(PROGRAMS);
      expect(bpfFilters(net.host, 'egress')).toEqual([]);

      const N = 23;
      const sent = ping(net.ns, net.hostAddr, N);
      expect(sent.transmitted, sent.output).toBe(N);
      const want = { [`tc_echo_requests_total{program="tc_section",source="${net.peerAddr}"}`]: N, [`tc_echo_requests_total{program="classifier_section",source="${net.peerAddr}"}`]: N };
      let text = await waitFor(exporter, want);
      expect(ours(text).sort(), exporter.log()).toEqual(Object.entries(want).map(([s, v]) => `${s} ${v}`).sort());
      // A few more cycles: nothing else is counted (ARP and IPv6 are no echo requests; the replies leave by egress).
      await sleep(1000);
      text = await (await fetch(`${exporter.base}/metrics`)).text();
      expect(ours(text).sort()).toEqual(Object.entries(want).map(([s, v]) => `${s} ${v}`).sort());
    } finally {
      expect(await exporter.stop(), exporter.log()).toBe(0);
    }
    expect(qdiscKinds(net.host)).not.toContain('clsact');
    expect(await ourProgramsSettled()).toEqual([]);
  }, 120_000);

  it('counts at egress on a clsact qdisc that was there before, and leaves that qdisc in place', async () => {
    tc('qdisc', 'add', 'dev', net.host, 'clsact');
    try {
      const exporter = await startExporter(writeConfig('egress', net.host, 'egress'));
      try {
        expect(bpfFilters(net.host, 'egress'), exporter.log()).toEqual(PROGRAMS);
        expect(bpfFilters(net.host, 'ingress')).toEqual([]);
        // From this namespace to the peer: the echo requests leave through the host end's egress.
        const N = 17;
        const sent = ping(undefined, net.peerAddr, N);
        expect(sent.transmitted, sent.output).toBe(N);
        const want = { [`tc_echo_requests_total{program="tc_section",source="${net.hostAddr}"}`]: N, [`tc_echo_requests_total{program="classifier_section",source="${net.hostAddr}"}`]: N };
        const text = await waitFor(exporter, want);
        expect(ours(text).sort(), exporter.log()).toEqual(Object.entries(want).map(([s, v]) => `${s} ${v}`).sort());
      } finally {
        expect(await exporter.stop(), exporter.log()).toBe(0);
      }
      // Our filters are gone; the qdisc, which was not ours, is still there.
      expect(qdiscKinds(net.host)).toContain('clsact');
      expect(bpfFilters(net.host, 'egress')).toEqual([]);
      expect(await ourProgramsSettled()).toEqual([]);
    } finally {
      spawnSync('tc', ['qdisc', 'del', 'dev', net.host, 'clsact'], { stdio: 'ignore' });
    }
  }, 120_000);

  it('shares a clsact qdisc it created between objects: it goes with the last of their filters', async () => {
    // Two registries load the object twice: two objects, four filters, one qdisc.
    const first = new ObjectRegistry();
    const second = new ObjectRegistry();
    const held: number[] = [];
    try {
      expect(qdiscKinds(net.host)).not.toContain('clsact');
      first.get(object, { tc: { interface: net.host, direction: 'ingress' } });
      second.get(object, { tc: { interface: net.host, direction: 'ingress' } });
      held.push(...ourPrograms().map((p) => p.id));
      expect(held).toHaveLength(4);
      expect(bpfFilters(net.host, 'ingress')).toEqual([...PROGRAMS, ...PROGRAMS].sort());
      // The object that created the qdisc goes first: the other's filters, and so the qdisc, stay.
      first.closeAll();
      expect(qdiscKinds(net.host)).toContain('clsact');
      expect(bpfFilters(net.host, 'ingress')).toEqual(PROGRAMS);
      second.closeAll();
      expect(qdiscKinds(net.host)).not.toContain('clsact');
    } finally {
      first.closeAll();
      second.closeAll();
    }
    expect(await stillLoaded(held)).toEqual([]);
  });

  it('reports a missing interface every cycle without reloading the object, and attaches once it appears', async () => {
    const dev = `bmtl${process.pid}`;
    const exporter = await startExporter(writeConfig('later', dev, 'ingress'));
    try {
      const up = 'bpf_map_exporter_map_up{map="echo"}';
      const errors = 'bpf_map_exporter_map_read_errors_total{errno="ENOENT",map="echo"}';
      let text = '';
      for (let i = 0; i < 100 && !((sample(text, errors) ?? 0) >= 3); i++) {
        await sleep(100);
        text = await (await fetch(`${exporter.base}/metrics`)).text();
      }
      expect(sample(text, up)).toBe(0);
      expect(sample(text, errors), text.split('\n').filter((l) => l.includes('map="echo"')).join('\n')).toBeGreaterThanOrEqual(3);
      expect(exporter.log()).toContain(`attach tc program count_tc to interface ${dev} ingress failed: ENOENT (no network interface named ${dev} in this network namespace)`);
      // Loaded once and kept: the same two programs (same ids) across cycles, never attached.
      const loaded = ourPrograms().map((p) => p.id).sort();
      expect(loaded).toHaveLength(2);
      await sleep(600);
      expect(ourPrograms().map((p) => p.id).sort()).toEqual(loaded);

      const later = vethPair(ns, dev, `bmtm${process.pid}`, 151);
      for (let i = 0; i < 100 && sample(text, up) !== 1; i++) {
        await sleep(100);
        text = await (await fetch(`${exporter.base}/metrics`)).text();
      }
      expect(sample(text, up), exporter.log()).toBe(1);
      expect(bpfFilters(dev, 'ingress')).toEqual(PROGRAMS);
      expect(ourPrograms().map((p) => p.id).sort()).toEqual(loaded);
      const N = 11;
      const sent = ping(ns, later.hostAddr, N);
      expect(sent.transmitted, sent.output).toBe(N);
      const want = { [`tc_echo_requests_total{program="tc_section",source="${later.peerAddr}"}`]: N, [`tc_echo_requests_total{program="classifier_section",source="${later.peerAddr}"}`]: N };
      text = await waitFor(exporter, want);
      expect(ours(text).sort()).toEqual(Object.entries(want).map(([s, v]) => `${s} ${v}`).sort());
    } finally {
      expect(await exporter.stop(), exporter.log()).toBe(0);
    }
    expect(qdiscKinds(dev)).not.toContain('clsact');
    expect(await ourProgramsSettled()).toEqual([]);
  }, 120_000);
});

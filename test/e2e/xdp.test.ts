/**
 * The bundled XDP example end to end, on a network the test owns: a namespace and a veth pair (one
 * end in the namespace) with addresses from 10.200.X.0/24 on them alone. The exporter attaches the
 * example's XDP program to the host-side veth; exactly N pings from the namespace give exact packet
 * and byte counts on /metrics, the map is drained empty, and SIGTERM leaves no program behind.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfError } from '../../src/bpf/errors.js';
import { ObjectRegistry } from '../../src/bpf/object.js';
import { buildExamples, root, sample, sleep, startExporter } from './support.js';
import { freeSubnet, ip, networkDescribe, programs, tryIp } from './network.js';

const PROGRAM = 'count_packets';
const object = join(root, 'config/examples/xdp-packets.bpf.o');

interface LinkXdp {
  mode: number;
  prog?: { id: number; name: string };
}

function linkXdp(ifname: string): LinkXdp | undefined {
  return (JSON.parse(ip('-j', 'link', 'show', 'dev', ifname)) as { xdp?: LinkXdp }[])[0]?.xdp;
}

networkDescribe('the XDP example', () => {
  // Unique per run, and interface names within the kernel's 15 characters.
  const ns = `bme-a-${process.pid}`;
  const host = `bmeh${process.pid}`;
  const peer = `bmen${process.pid}`;
  let subnet: number;
  let hostAddr: string;
  let peerAddr: string;
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-xdp-'));
    buildExamples();
    subnet = freeSubnet();
    hostAddr = `10.200.${subnet}.1`;
    peerAddr = `10.200.${subnet}.2`;
    ip('netns', 'add', ns);
    // The peer is created inside the namespace: no moment where both ends are on the host.
    ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer, 'netns', ns);
    ip('addr', 'add', `${hostAddr}/24`, 'dev', host);
    ip('link', 'set', host, 'up');
    ip('-n', ns, 'addr', 'add', `${peerAddr}/24`, 'dev', peer);
    ip('-n', ns, 'link', 'set', peer, 'up');
  }, 120_000);

  afterAll(() => {
    // Deleting the namespace deletes the peer, and with it the host end; the explicit delete covers a
    // setup that failed before the pair was whole.
    tryIp('netns', 'del', ns);
    tryIp('link', 'del', host);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('counts exactly the pings sent to the veth, drains the map, and detaches on SIGTERM', async () => {
    expect(programs().filter((p) => p.name === PROGRAM)).toEqual([]);
    const config = join(dir, 'xdp-packets.yaml');
    let text = readFileSync(join(root, 'config/examples/xdp-packets.yaml'), 'utf8');
    for (const [from, to] of [['interval: 5s', 'interval: 200ms'], ['object: xdp-packets.bpf.o', `object: ${object}`], ['xdp: veth-bme0', `xdp: ${host}`]]) {
      // A drifted example would otherwise run unchanged and test something else.
      expect(text, `the example has no "${from}"`).toContain(from);
      text = text.replace(from, to);
    }
    writeFileSync(config, `state_file: ${join(dir, 'state.json')}\n${text}`);

    const exporter = await startExporter(config);
    let progId: number | undefined;
    try {
      // Ready means the first cycle ran, which opened the job, which loaded and attached the object.
      const xdp = linkXdp(host);
      expect(xdp?.prog?.name, exporter.log()).toBe(PROGRAM);
      // veth implements XDP, so the kernel chose native (driver) mode: XDP_ATTACHED_DRV is 1.
      expect(xdp?.mode).toBe(1);
      progId = xdp!.prog!.id;

      // N echo requests from the namespace, 10 ms apart, each waited for 1 s at most.
      const N = 37;
      const ping = spawnSync('ip', ['netns', 'exec', ns, 'ping', '-c', String(N), '-i', '0.01', '-W', '1', '-q', hostAddr], { timeout: 30_000 });
      const summary = ping.stdout.toString();
      expect(/(\d+) packets transmitted/.exec(summary)?.[1], `${summary}${ping.stderr.toString()}`).toBe(String(N));

      // Every echo request is one untagged IPv4 frame: 14 (Ethernet) + 20 (IPv4) + 8 (ICMP) + 56 (ping's payload).
      const FRAME = 14 + 20 + 8 + 56;
      const packets = `xdp_packets_total{source="${peerAddr}"}`;
      const bytes = `xdp_bytes_total{source="${peerAddr}"}`;
      const scrape = async () => (await fetch(`${exporter.base}/metrics`)).text();
      let metrics = '';
      for (let i = 0; i < 100 && (sample(metrics, packets) !== N || sample(metrics, bytes) !== N * FRAME); i++) {
        await sleep(100);
        metrics = await scrape();
      }
      const ours = (t: string) => t.split('\n').filter((l) => l.startsWith('xdp_')).join('\n');
      expect(sample(metrics, packets), ours(metrics)).toBe(N);
      expect(sample(metrics, bytes), ours(metrics)).toBe(N * FRAME);
      // A few more cycles: nothing more is counted (ARP and IPv6 are not IPv4), and no other source shows up.
      await sleep(1000);
      metrics = await scrape();
      expect(ours(metrics).split('\n').filter((l) => !l.startsWith('#'))).toEqual([`${packets} ${N}`, `${bytes} ${N * FRAME}`]);

      // Drained: the totals live in the exporter, the map is empty.
      const mapIds = programs().find((p) => p.id === progId)?.map_ids ?? [];
      const maps = mapIds.map((id) => JSON.parse(execFileSync('bpftool', ['-j', 'map', 'show', 'id', String(id)]).toString()) as { id: number; name: string });
      const map = maps.find((m) => m.name === 'packets');
      expect(map, JSON.stringify(maps)).toBeDefined();
      expect(JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'id', String(map!.id)]).toString())).toEqual([]);
    } finally {
      expect(await exporter.stop(), exporter.log()).toBe(0);
    }
    expect(linkXdp(host)).toBeUndefined();
    expect(programs().filter((p) => p.id === progId || p.name === PROGRAM)).toEqual([]);
  }, 120_000);

  it('refuses, in one line naming it, an interface that does not exist, and leaves nothing loaded', () => {
    const missing = `bmex${process.pid}`;
    const objects = new ObjectRegistry();
    let err: unknown;
    try {
      objects.get(object, { xdp: missing });
    } catch (e) {
      err = e;
    }
    objects.closeAll();
    expect(err).toBeInstanceOf(BpfError);
    const message = (err as BpfError).message;
    expect(message).toBe(`object ${object}: attach XDP program ${PROGRAM} to interface ${missing} failed: ENOENT (no network interface named ${missing} in this network namespace)`);
    expect(programs().filter((p) => p.name === PROGRAM)).toEqual([]);
  });

  it('refuses a second XDP program on the interface, re-attaches when the interface changes, and wants an XDP program', () => {
    const first = new ObjectRegistry();
    const second = new ObjectRegistry();
    try {
      const obj = first.get(object, { xdp: host });
      const id = linkXdp(host)?.prog?.id;
      expect(linkXdp(host)?.prog?.name).toBe(PROGRAM);
      // The kernel allows one XDP program per mode on an interface.
      expect(() => second.get(object, { xdp: host })).toThrow(
        `object ${object}: attach XDP program ${PROGRAM} to interface ${host} failed: EBUSY (interface ${host} already has an XDP program; see ip link show ${host})`,
      );
      expect(linkXdp(host)?.prog?.id).toBe(id);
      // A reload that drops xdp detaches the program, keeping the object (and its maps); one that adds it back re-attaches.
      expect(first.get(object, {})).toBe(obj);
      expect(linkXdp(host)).toBeUndefined();
      expect(first.get(object, { xdp: host })).toBe(obj);
      expect(linkXdp(host)?.prog?.id).toBe(id);
      // xdp on an object without XDP programs is a config naming the wrong object.
      const syscalls = join(root, 'config/examples/syscalls.bpf.o');
      expect(() => second.get(syscalls, { xdp: host })).toThrow(`object ${syscalls}: attach XDP programs to interface ${host} failed: ENOENT (the object has no program in an xdp section)`);
    } finally {
      first.closeAll();
      second.closeAll();
    }
    expect(linkXdp(host)).toBeUndefined();
    expect(programs().filter((p) => p.name === PROGRAM)).toEqual([]);
  });
});

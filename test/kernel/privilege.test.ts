/**
 * Least privilege, measured: the exporter as a non-root uid (65534) holding only the capabilities a
 * feature needs (setpriv: inheritable, ambient and bounding sets, as the systemd unit grants them),
 * reading real maps. Each feature also fails, with one clear line, once its capability is taken away.
 * Map fds of read-mode jobs are read-only, checked in the running process's /proc fdinfo.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfMap } from '../../src/bpf/map.js';
import { MapType } from '../../src/bpf/map-types.js';
import { ensureTracefs } from '../../src/bpf/object.js';
import { kernelDescribe, pinDir } from './support.js';
import { buildExamples, root, sample, sleep, startExporter, type Exporter } from '../e2e/support.js';

const NOBODY = 65534;

/** setpriv: uid/gid 65534, no supplementary groups, exactly `caps` (e.g. ['bpf', 'perfmon']) in every set. */
function as(caps: readonly string[]): string[] {
  const set = ['-all', ...caps.map((c) => `+${c}`)].join(',');
  return ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', `--inh-caps=${set}`, `--ambient-caps=${set}`, `--bounding-set=${set}`];
}

const le32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const le64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };

/** The access mode (O_RDONLY 0, O_WRONLY 1, O_RDWR 2) of every BPF map fd the process holds, by map id. */
function mapFdModes(pid: number): Map<number, number[]> {
  const modes = new Map<number, number[]>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let info: string;
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    const id = /^map_id:\s+(\d+)$/m.exec(info);
    const flags = /^flags:\s+([0-7]+)$/m.exec(info);
    if (id === null || flags === null) continue;
    modes.set(Number(id[1]), [...(modes.get(Number(id[1])) ?? []), parseInt(flags[1], 8) & 3]);
  }
  return modes;
}

async function scrape(e: Exporter): Promise<string> {
  return (await fetch(`${e.base}/metrics`)).text();
}

/** Poll /metrics until `pred` holds (at most 5 s). */
async function until(e: Exporter, pred: (text: string) => boolean): Promise<string> {
  let text = '';
  for (let i = 0; i < 100; i++) {
    text = await scrape(e);
    if (pred(text)) return text;
    await sleep(50);
  }
  return text;
}

kernelDescribe('least privilege', () => {
  let dir: string;
  let pins: string;
  let counts: BpfMap;
  let events: BpfMap;
  const started: Exporter[] = [];

  async function start(config: string, caps: readonly string[]): Promise<Exporter> {
    const path = join(dir, `config-${started.length}.yaml`);
    writeFileSync(path, config);
    const e = await startExporter(path, {}, as(caps));
    started.push(e);
    return e;
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-privilege-'));
    chmodSync(dir, 0o755);
    pins = pinDir('privilege');
    // A map to read, pinned readable by everyone (bpf_obj_pin makes pins 0600, root's).
    counts = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 64, name: 'priv_counts' });
    counts.updateBatch(Buffer.concat([le32(1), le32(2)]), Buffer.concat([le64(10), le64(20)]), 2);
    counts.pin(join(pins, 'counts'));
    chmodSync(join(pins, 'counts'), 0o644);
    // A map to drain, pinned for uid 65534 alone: drains need a writable fd, which the pin's mode grants.
    events = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 64, name: 'priv_events' });
    events.updateBatch(le32(7), le64(5), 1);
    events.pin(join(pins, 'events'));
    chownSync(join(pins, 'events'), NOBODY, NOBODY);
  });

  afterAll(async () => {
    for (const e of started) await e.stop();
    counts?.close();
    events?.close();
    rmSync(pins, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads a pinned map through a read-only fd and drains another, as uid 65534 with no capability at all', async () => {
    const state = join(dir, 'state');
    execFileSync('install', ['-d', '-o', String(NOBODY), '-g', String(NOBODY), state]);
    const e = await start(`interval: 200ms
state_file: ${join(state, 'drains.json')}
maps:
  - name: counts
    source: { pinned: ${join(pins, 'counts')} }
    key: [ { name: k, type: u32 } ]
    value: [ { name: v, type: u64 } ]
    metrics: [ { name: priv_value, type: gauge, help: Counts, value: v, labels: [ { name: k, from: k } ] } ]
  - name: events
    source: { pinned: ${join(pins, 'events')} }
    mode: drain
    key: [ { name: k, type: u32 } ]
    value: [ { name: v, type: u64 } ]
    metrics: [ { name: priv_events_total, type: counter, help: Events, value: v, labels: [ { name: k, from: k } ] } ]
`, []);
    const status = readFileSync(`/proc/${e.proc.pid}/status`, 'utf8');
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(NOBODY));
    expect(/^CapEff:\s+(\w+)/m.exec(status)?.[1]).toBe('0000000000000000');

    const text = await until(e, (t) => sample(t, 'priv_events_total{k="7"}') === 5);
    expect(sample(text, 'priv_value{k="1"}')).toBe(10);
    expect(sample(text, 'priv_value{k="2"}')).toBe(20);
    expect(sample(text, 'priv_events_total{k="7"}')).toBe(5);
    expect(sample(text, 'bpf_map_exporter_map_up{map="counts"}')).toBe(1);
    expect(sample(text, 'bpf_map_exporter_map_up{map="events"}')).toBe(1);
    // The drained map is empty; the read one untouched.
    expect(events.lookup(le32(7))).toBeUndefined();
    expect(counts.lookup(le32(1))?.readBigUInt64LE(0)).toBe(10n);

    const modes = mapFdModes(e.proc.pid!);
    expect(modes.get(counts.info.id)).toEqual([0]); // O_RDONLY: a read job cannot change the map
    expect(modes.get(events.info.id)).toEqual([2]); // O_RDWR: the drain job deletes what it reads
  });

  it('lists every map of the host as uid 65534 with CAP_SYS_ADMIN alone, and says so without it', async () => {
    const config = 'interval: 200ms\nmaps: []\n';
    const withCap = await start(config, ['sys_admin']);
    const l = `{id="${counts.info.id}",name="priv_counts",type="hash"}`;
    const text = await until(withCap, (t) => sample(t, `bpf_map_entries${l}`) === 2);
    expect(sample(text, `bpf_map_entries${l}`)).toBe(2);
    expect(sample(text, `bpf_map_max_entries${l}`)).toBe(64);
    expect(sample(text, 'bpf_map_exporter_inventory_up')).toBe(1);

    const without = await start(config, ['bpf']);
    const refused = await until(without, (t) => sample(t, 'bpf_map_exporter_inventory_errors_total{errno="EPERM"}') !== undefined);
    expect(sample(refused, 'bpf_map_exporter_inventory_up')).toBe(0);
    expect(refused).not.toMatch(/^bpf_map_entries/m);
    expect(without.log()).toContain('list map ids failed: EPERM (the kernel lets only CAP_SYS_ADMIN list BPF maps and open maps or BTF by id)');
  });

  it('loads, attaches and exports the syscalls example as uid 65534 with CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH', async () => {
    buildExamples();
    ensureTracefs();
    const workload = join(dir, 'getppid');
    execFileSync('cc', ['-O2', '-o', workload, join(root, 'test/fixtures/workload/getppid.c')]);
    const config = readFileSync(join(root, 'config/examples/syscalls.yaml'), 'utf8')
      .replace('interval: 5s', 'interval: 200ms')
      .replace('object: syscalls.bpf.o', `object: ${join(root, 'config/examples/syscalls.bpf.o')}`);

    const e = await start(config, ['bpf', 'perfmon', 'dac_read_search']);
    const N = 1234;
    const pid = execFileSync(workload, [String(N)]).toString().trim();
    const series = `syscalls_total{pid="${pid}",syscall="getppid"}`;
    const text = await until(e, (t) => sample(t, series) === N);
    expect(sample(text, series)).toBe(N);

    // Each capability is needed: without CAP_PERFMON the tracing program is refused; without
    // CAP_DAC_READ_SEARCH root's tracefs cannot be read to find the tracepoint.
    for (const [caps, line] of [
      [['bpf', 'dac_read_search'], /load BPF object failed: EPERM/],
      [['bpf', 'perfmon'], /tracefs at \/sys\/kernel\/tracing is not readable by this process/],
    ] as const) {
      const refused = await start(config, caps);
      const t = await until(refused, (x) => sample(x, 'bpf_map_exporter_map_up{map="syscalls"}') === 0);
      expect(sample(t, 'bpf_map_exporter_map_up{map="syscalls"}'), caps.join(',')).toBe(0);
      expect(refused.log(), caps.join(',')).toMatch(line);
    }
  });
});

/**
 * The capability sets of the deployments, measured on this kernel (needs root and BPF, as the kernel
 * tests): the exporter runs under setpriv with exactly the capabilities of a rendered manifest or of
 * the systemd unit, as the uid that deployment uses (uid 0 in Kubernetes; a non-root uid with ambient
 * capabilities under systemd), with the config that variant ships, and every job and the inventory
 * must come up. Controls show the rows of the docs' table: no capability still reads and drains
 * pinned maps, and the inventory fails with EPERM without CAP_SYS_ADMIN (CAP_BPF alone included).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfMap } from '../../src/bpf/map.js';
import { MapType } from '../../src/bpf/map-types.js';
import { kernelDescribe, pinDir } from '../kernel/support.js';
import { buildExamples, startExporter, type Exporter } from '../e2e/support.js';
import { deploymentCapabilities, featureCapabilities, render, root, type K8sObject } from './support.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NOBODY = 65534;

/** setpriv arguments for `caps` (CAP_ names): as uid 0 the bounding set alone; as another uid, ambient capabilities. */
function privileges(uid: number, caps: readonly string[]): string[] {
  const list = `-all${caps.map((c) => `,+${c.replace(/^CAP_/, '').toLowerCase()}`).join('')}`;
  if (uid === 0) return [`--bounding-set=${list}`, '--inh-caps=-all'];
  return ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', `--inh-caps=${list}`, `--ambient-caps=${list}`, `--bounding-set=${list}`];
}

function start(config: string, uid: number, caps: readonly string[], tsxCache: string): Promise<Exporter> {
  return startExporter(config, { TMPDIR: tsxCache }, ['setpriv', ...privileges(uid, caps)]);
}

/** Poll /metrics (bounded) until every job named has run once, then the text. */
/** /metrics once every job has been read (and the inventory, unless `inventory` is false: then it has no up gauge). */
async function settled(run: Exporter, jobs: readonly string[], inventory = true): Promise<string> {
  let text = '';
  const done = (t: string) => jobs.every((j) => new RegExp(`^bpf_map_exporter_map_up\\{map="${j}"\\} [01]$`, 'm').test(t)) && (!inventory || /^bpf_map_exporter_inventory_up [01]$/m.test(t));
  for (let i = 0; i < 300 && !done(text); i++) {
    text = await (await fetch(`${run.base}/metrics`)).text();
    if (!done(text)) await sleep(50);
  }
  expect(done(text), `${text}\n${run.log()}`).toBe(true);
  return text;
}

async function stop(run: Exporter): Promise<void> {
  expect(await run.stop(), run.log()).toBe(0);
}

/** The access mode (O_RDONLY 0, O_WRONLY 1, O_RDWR 2) of every BPF map fd a process holds, by map id. */
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

const configMap = (variant: string) => (render(variant).find((o) => o.kind === 'ConfigMap') as K8sObject & { data: Record<string, string> }).data['config.yaml'];
const capsOf = (variant: string) => {
  const ds = render(variant).find((o) => o.kind === 'DaemonSet') as K8sObject & { spec: { template: { spec: { containers: { securityContext: { capabilities: { add: string[] } } }[] } } } };
  return ds.spec.template.spec.containers[0].securityContext.capabilities.add.map((c) => `CAP_${c}`);
};
const jobNames = (config: string) => [...config.matchAll(/^ {2}- name: (\S+)$/gm)].map((m) => m[1]);

kernelDescribe('the deployments\' capability sets, measured', () => {
  let pins: string;
  let dir: string;
  let cache: string;
  const maps: BpfMap[] = [];

  /**
   * The base ConfigMap's config with its commented pinned-map and drain jobs (and `inventory: true`)
   * uncommented, the pins under this test's folder, the state file in `stateDir`.
   */
  const baseWithPins = (stateDir: string) => {
    const text = configMap('base');
    const jobs = text.split('\n').filter((l) => /^# {3}\S|^# {5}/.test(l)).map((l) => l.slice(2));
    return text
      .replace('# inventory: true', 'inventory: true')
      .replace('state_file: /var/lib/bpf-map-exporter/state.json', `state_file: ${stateDir}/state.json`)
      .replace(/^maps: \[\]$/m, `maps:\n${jobs.join('\n')}`)
      .replaceAll('/sys/fs/bpf/', `${pins}/`);
  };
  /**
   * For the controls: the syscalls example alone. Its end-to-end test finds its programs by the
   * exporter holding them; the latency and tcp-states tests count programs by name host-wide, so the
   * whole of all.yaml is loaded only in the two runs that measure the shipped variants.
   */
  const syscallsOnly = (stateDir: string) => `state_file: ${stateDir}/state.json\n${readFileSync(join(root, 'config/examples/syscalls.yaml'), 'utf8')
    .replace('object: syscalls.bpf.o', `object: ${root}config/examples/syscalls.bpf.o`)}`;
  const programs = (stateDir: string) => configMap('overlays/programs')
    .replace('state_file: /var/lib/bpf-map-exporter/state.json', `state_file: ${stateDir}/state.json`)
    .replaceAll('/opt/bpf-map-exporter/config/examples/', `${root}config/examples/`);

  /** A folder for one run, owned by its uid, with the config in it. */
  const runDir = (uid: number, config: (state: string) => string) => {
    const d = mkdtempSync(join(dir, 'run-'));
    chmodSync(d, 0o755);
    chownSync(d, uid, uid);
    writeFileSync(join(d, 'config.yaml'), config(d), { mode: 0o644 });
    return join(d, 'config.yaml');
  };

  beforeAll(() => {
    buildExamples();
    pins = pinDir('caps');
    dir = mkdtempSync(join(tmpdir(), 'bme-caps-'));
    chmodSync(dir, 0o755);
    cache = mkdtempSync(join(tmpdir(), 'bme-caps-tsx-'));
    chmodSync(cache, 0o1777);
    // The layouts of the ConfigMap's commented jobs: syscall_counts {u32 pid, u32 nr} -> u64 calls; events u32 -> u64.
    const counts = BpfMap.create({ type: MapType.hash, keySize: 8, valueSize: 8, maxEntries: 64 });
    const k = Buffer.alloc(8);
    k.writeUInt32LE(1, 0);
    k.writeUInt32LE(39, 4);
    counts.update(k, Buffer.from([9, 0, 0, 0, 0, 0, 0, 0]));
    counts.pin(`${pins}/syscall_counts`);
    const events = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 64 });
    events.pin(`${pins}/events`);
    maps.push(counts, events);
  }, 180_000);

  afterAll(() => {
    for (const m of maps) m.close();
    rmSync(pins, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  });

  /** The pins owned by `uid`, mode 0600: only the file mode lets that uid read and drain them. */
  const ownPins = (uid: number) => {
    for (const p of ['syscall_counts', 'events']) chownSync(`${pins}/${p}`, uid, uid);
  };

  it('Kubernetes base (uid 0, its capabilities): the inventory, a pinned map and a drain all come up', async () => {
    const caps = capsOf('base');
    expect(caps.sort()).toEqual(deploymentCapabilities().get('kubernetes/base')!.capabilities.slice().sort());
    ownPins(0);
    const config = runDir(0, baseWithPins);
    const run = await start(config, 0, caps, cache);
    const text = await settled(run, ['syscalls', 'events']);
    expect(text).toMatch(/^bpf_map_exporter_inventory_up 1$/m);
    expect(text).toMatch(/^bpf_map_exporter_map_up\{map="syscalls"\} 1$/m);
    expect(text).toMatch(/^bpf_map_exporter_map_up\{map="events"\} 1$/m);
    expect(text).toMatch(/^syscalls_total\{pid="1",syscall="\w+"\} 9$/m);
    await stop(run);
  }, 120_000);

  it('Kubernetes programs overlay (uid 0, its capabilities): every bundled example and the inventory come up', async () => {
    const caps = capsOf('overlays/programs');
    expect(caps.sort()).toEqual(deploymentCapabilities().get('kubernetes/overlays/programs')!.capabilities.slice().sort());
    const config = runDir(0, programs);
    const run = await start(config, 0, caps, cache);
    const jobs = jobNames(readFileSync(config, 'utf8'));
    expect(jobs.length).toBeGreaterThanOrEqual(4);
    const text = await settled(run, jobs);
    expect(text).toMatch(/^bpf_map_exporter_inventory_up 1$/m);
    for (const j of jobs) expect(text, `${j}\n${run.log()}`).toMatch(new RegExp(`^bpf_map_exporter_map_up\\{map="${j}"\\} 1$`, 'm'));
    await stop(run);
  }, 120_000);

  it('systemd unit (a non-root uid, ambient capabilities): the inventory, and pinned maps readable by their file mode', async () => {
    const caps = deploymentCapabilities().get('systemd')!.capabilities;
    ownPins(NOBODY);
    const config = runDir(NOBODY, baseWithPins);
    const run = await start(config, NOBODY, caps, cache);
    const text = await settled(run, ['syscalls', 'events']);
    expect(text).toMatch(/^bpf_map_exporter_inventory_up 1$/m);
    expect(text).toMatch(/^bpf_map_exporter_map_up\{map="syscalls"\} 1$/m);
    expect(text).toMatch(/^bpf_map_exporter_map_up\{map="events"\} 1$/m);
    await stop(run);
    ownPins(0);
  }, 120_000);

  it('systemd unit with programs.conf (a non-root uid, ambient capabilities): every bundled example comes up', async () => {
    const caps = deploymentCapabilities().get('systemd+programs.conf')!.capabilities;
    const config = runDir(NOBODY, programs);
    const run = await start(config, NOBODY, caps, cache);
    const jobs = jobNames(readFileSync(config, 'utf8'));
    const text = await settled(run, jobs);
    expect(text).toMatch(/^bpf_map_exporter_inventory_up 1$/m);
    for (const j of jobs) expect(text, `${j}\n${run.log()}`).toMatch(new RegExp(`^bpf_map_exporter_map_up\\{map="${j}"\\} 1$`, 'm'));
    await stop(run);
  }, 120_000);

  it('controls: without capabilities pinned maps are still read and drained; the inventory needs CAP_SYS_ADMIN, and CAP_BPF alone gets EPERM', async () => {
    ownPins(0);
    for (const caps of [[], ['CAP_BPF']]) {
      const config = runDir(0, baseWithPins);
      const run = await start(config, 0, caps, cache);
      const text = await settled(run, ['syscalls', 'events']);
      expect(text, `caps ${caps.join(' ')}`).toMatch(/^bpf_map_exporter_map_up\{map="syscalls"\} 1$/m);
      expect(text).toMatch(/^bpf_map_exporter_map_up\{map="events"\} 1$/m);
      expect(text).toMatch(/^bpf_map_exporter_inventory_up 0$/m);
      expect(text).toMatch(/^bpf_map_exporter_inventory_errors_total\{errno="EPERM"\} [1-9]/m);
      expect(run.log()).toContain('list map ids failed: EPERM (the kernel lets only CAP_SYS_ADMIN list BPF maps and open maps or BTF by id)');
      // A read job holds a read-only fd (it cannot change the map); the drain job a read-write one.
      const modes = mapFdModes(run.proc.pid!);
      expect(modes.get(maps[0].info.id)).toEqual([0]);
      expect(modes.get(maps[1].info.id)).toEqual([2]);
      await stop(run);
    }
  }, 120_000);

  it('control: an example loads with CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN alone (no CAP_SYS_ADMIN), while the inventory then fails', async () => {
    const features = featureCapabilities();
    const caps = ['load', 'trace', 'net'].flatMap((f) => features.get(f)!);
    expect(caps).not.toContain('CAP_SYS_ADMIN');
    const config = runDir(0, (d) => `inventory: true\n${syscallsOnly(d)}`);
    const run = await start(config, 0, caps, cache);
    const jobs = jobNames(readFileSync(config, 'utf8'));
    const text = await settled(run, jobs);
    for (const j of jobs) expect(text, `${j}\n${run.log()}`).toMatch(new RegExp(`^bpf_map_exporter_map_up\\{map="${j}"\\} 1$`, 'm'));
    expect(text).toMatch(/^bpf_map_exporter_inventory_up 0$/m);
    await stop(run);

    // Without CAP_PERFMON the kernel refuses the tracing program at load.
    const refused = await start(runDir(0, syscallsOnly), 0, caps.filter((c) => c !== 'CAP_PERFMON'), cache);
    const refusedText = await settled(refused, ['syscalls'], false);
    expect(refusedText).toMatch(/^bpf_map_exporter_map_up\{map="syscalls"\} 0$/m);
    // The config does not ask for the inventory: no inventory_up at all (it used to say 0, a failure).
    expect(refusedText).not.toMatch(/^bpf_map_exporter_inventory_up /m);
    expect(refused.log()).toMatch(/load BPF object failed: EPERM/);
    await stop(refused);
  }, 120_000);

  it('the ksym row: kernel symbols are named with CAP_SYSLOG, and only addresses without it', async () => {
    expect(featureCapabilities().get('ksym')).toEqual(['CAP_SYSLOG']);
    // A text symbol whose address no other symbol shares, read as root (with CAP_SYSLOG).
    const seen = new Map<string, string[]>();
    for (const line of readFileSync('/proc/kallsyms', 'utf8').split('\n')) {
      const [addr, type, name, mod] = line.split(/\s+/);
      if (mod !== undefined || addr === undefined || /^0+$/.test(addr)) continue;
      seen.set(addr, [...(seen.get(addr) ?? []), type === 'T' || type === 't' ? name : '']);
    }
    const [addr, names] = [...seen].find(([, n]) => n.length === 1 && /^[a-z_]\w+$/.test(n[0]))!;
    const m = BpfMap.create({ type: MapType.hash, keySize: 8, valueSize: 8, maxEntries: 4 });
    maps.push(m);
    const key = Buffer.alloc(8);
    key.writeBigUInt64LE(BigInt(`0x${addr}`));
    m.update(key, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
    m.pin(`${pins}/ksyms`);
    const config = (state: string) => `interval: 200ms\nstate_file: ${state}/state.json\nmaps:\n  - name: ksyms\n    source: { pinned: ${pins}/ksyms }\n`
      + '    key: [ { name: addr, type: u64 } ]\n    value: [ { name: n, type: u64 } ]\n'
      + '    metrics:\n      - { name: deploy_ksym, type: gauge, help: Kernel symbols, value: n, labels: [ { name: sym, from: addr, decoder: ksym } ] }\n';
    for (const [caps, label] of [[[], `unknown_addr:0x${BigInt(`0x${addr}`).toString(16)}`], [['CAP_SYSLOG'], names[0]]] as const) {
      const run = await start(runDir(0, config), 0, caps, cache);
      let text = '';
      for (let i = 0; i < 200 && !/^deploy_ksym\{/m.test(text); i++) {
        text = await (await fetch(`${run.base}/metrics`)).text();
        if (!/^deploy_ksym\{/m.test(text)) await sleep(50);
      }
      expect(text, `caps ${caps.join(' ')}`).toMatch(new RegExp(`^deploy_ksym\\{sym="${label}"\\} 1$`, 'm'));
      await stop(run);
    }
  }, 120_000);

  it('control: a non-root uid loading tracing programs without CAP_DAC_READ_SEARCH cannot attach (tracefs is root\'s)', async () => {
    const caps = deploymentCapabilities().get('systemd+programs.conf')!.capabilities.filter((c) => c !== 'CAP_DAC_READ_SEARCH');
    const config = runDir(NOBODY, (d) => `inventory: true\n${syscallsOnly(d)}`);
    const run = await start(config, NOBODY, caps, cache);
    const text = await settled(run, ['syscalls']);
    expect(text).toMatch(/^bpf_map_exporter_map_up\{map="syscalls"\} 0$/m);
    expect(run.log()).toContain('tracefs');
    await stop(run);
  }, 120_000);
});

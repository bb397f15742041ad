/**
 * The exporter run the way the image and the DaemonSet run it (needs BPF and root): the image's
 * runtime layout (package.json, dist/ built by tsc, config/, production node_modules only) started
 * by the Dockerfile's ENTRYPOINT, as uid 0 with only the base DaemonSet's capabilities, in a private
 * mount namespace where every file system is read-only, bpffs and the image included, but for a
 * tmpfs standing in for the state volume. With an inventory, a pinned map read, a pinned map drained
 * and a pin that is missing, its real /metrics must hold every metric that the PrometheusRule and
 * the Grafana dashboard query; the probes answer on their paths; the drain empties the map through
 * the read-only mount; the state file is written in its volume and nowhere else can be.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfMap } from '../../src/bpf/map.js';
import { MapType } from '../../src/bpf/map-types.js';
import { BpfObject } from '../../src/bpf/object.js';
import { compileBpf, kernelDescribe, pinDir } from '../kernel/support.js';
import { IMAGE_HOME, imageCommand, imageLayout, metricNames, render, root, type K8sObject } from './support.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const le32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const le64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };

/** Counters that get a sample only once their event happens (an overrun, a truncated walk, a drain's EFAULT, a failed inventory). */
const ONLY_ON_EVENT = new Set([
  'bpf_map_exporter_map_read_overruns_total', 'bpf_map_exporter_map_iterations_truncated_total',
  'bpf_map_exporter_drain_possible_loss_total', 'bpf_map_exporter_inventory_errors_total',
]);

/**
 * Metrics of the programs the exporter loaded itself: the base DaemonSet loads no object (the
 * programs overlay does; test/kernel/exporter/programs.test.ts has their samples).
 */
const ONLY_WITH_OBJECTS = new Set(['bpf_map_exporter_program_attached', 'bpf_map_exporter_program_run_seconds_total', 'bpf_map_exporter_program_runs_total', 'bpf_map_exporter_program_recursion_misses_total']);

/** Metrics of jobs that count a perf_event_array's events: the base DaemonSet has none (test/e2e/ebpf-exporter-events.test.ts has their samples). */
const ONLY_WITH_EVENTS = new Set([
  'bpf_map_exporter_perf_events_lost_total',
  // Ring buffer jobs (test/e2e/ring-events.test.ts and ebpf-exporter-tracing.test.ts have their samples).
  'bpf_map_exporter_ringbuf_records_total', 'bpf_map_exporter_ringbuf_discarded_total', 'bpf_map_exporter_ringbuf_full_total',
  'bpf_map_exporter_span_records_dropped_total', 'bpf_map_exporter_spans_total',
]);

/** Every metric name the PrometheusRule and the dashboard query, but Prometheus's own `up`. */
function queriedMetrics(): string[] {
  const rule = render('.').find((o) => o.kind === 'PrometheusRule') as K8sObject & { spec: { groups: { rules: { expr: string }[] }[] } };
  const dashboard = JSON.parse(readFileSync(join(root, 'deploy/grafana/bpf-map-exporter.json'), 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
  const exprs = [...rule.spec.groups.flatMap((g) => g.rules.map((r) => r.expr)), ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr))];
  return [...new Set(exprs.flatMap(metricNames))].filter((m) => m !== 'up').sort();
}

kernelDescribe('the exporter under the DaemonSet\'s file system constraints', () => {
  let pins: string;
  let dir: string;
  const maps: BpfMap[] = [];
  let program: BpfObject | undefined;
  let proc: ChildProcess | undefined;
  let log = '';
  let exited: Promise<number | null>;
  let home: string;

  beforeAll(() => {
    pins = pinDir('deploy');
    dir = mkdtempSync(join(tmpdir(), 'bme-deploy-'));
    mkdirSync(join(dir, 'state'));
    home = imageLayout(join(dir, 'image'));
    const counts = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 16 });
    counts.update(le32(3), le64(42));
    counts.pin(`${pins}/counts`);
    const events = BpfMap.create({ type: MapType.hash, keySize: 4, valueSize: 8, maxEntries: 16 });
    events.update(le32(1), le64(7));
    events.update(le32(2), le64(5));
    events.pin(`${pins}/events`);
    maps.push(counts, events);
    // A program on the host (loaded, not attached), so that the program inventory has a row to show.
    compileBpf(join(root, 'test/fixtures/bpf/percpu.bpf.c'), join(dir, 'percpu.bpf.o'));
    program = BpfObject.load(join(dir, 'percpu.bpf.o'));
    writeFileSync(join(dir, 'config.yaml'), `
interval: 200ms
inventory: true
state_file: ${dir}/state/state.json
maps:
  - name: counts
    source: { pinned: ${pins}/counts }
    key: [ { name: id, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: deploy_value, type: gauge, help: A pinned map read, value: n, labels: [ { name: id, from: id } ] }
  - name: events
    source: { pinned: ${pins}/events }
    mode: drain
    key: [ { name: kind, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: deploy_events_total, type: counter, help: A pinned map drained, value: n, labels: [ { name: kind, from: kind } ] }
  - name: missing
    source: { pinned: ${pins}/missing }
    key: [ { name: id, type: u32 } ]
    value: [ { name: n, type: u64 } ]
    metrics:
      - { name: deploy_missing, type: gauge, help: A pin that does not exist, value: n }
`);
  }, 120_000);

  afterAll(async () => {
    if (proc !== undefined && proc.exitCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
    for (const m of maps) m.close();
    program?.close();
    rmSync(pins, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves every metric the rules and the dashboard query, drains through a read-only bpffs, and writes only its state volume', async () => {
    const state = join(dir, 'state');
    // The image's command: ENTRYPOINT (its paths under the layout), then the DaemonSet's arguments
    // with this test's config and a loopback address.
    const { entrypoint } = imageCommand();
    expect(entrypoint[0]).toBe('node');
    const command = [process.execPath, ...entrypoint.slice(1).map((a) => a.replace(IMAGE_HOME, home)), '--config', join(dir, 'config.yaml'), '--web.listen-address', '127.0.0.1:0'];
    const caps = (render('base').find((o) => o.kind === 'DaemonSet') as K8sObject & { spec: { template: { spec: { containers: { securityContext: { capabilities: { add: string[] } } }[] } } } })
      .spec.template.spec.containers[0].securityContext.capabilities.add;
    const bounding = `-all${caps.map((c) => `,+${c.toLowerCase()}`).join('')}`;
    // In the private namespace: the tmpfs volume, then every other mount read-only (but /proc and
    // /dev, as in a container), then proof that the root, the checkout, the image and bpffs refuse
    // writes; then the exporter as uid 0 with the DaemonSet's capabilities only.
    const script = `
set -e
mount --make-rprivate /
mount -t tmpfs -o size=16m,mode=0700 bme-state "$STATE"
for m in $(awk '{print $5}' /proc/self/mountinfo | sort -u); do
  case "$m" in /proc|/proc/*|/dev|/dev/*|"$STATE") ;; *) mount -o remount,bind,ro "$m" 2>/dev/null || true ;; esac
done
for p in /bme-probe "$ROOT/bme-probe" "$PINS/bme-probe" "$CONFIG_DIR/bme-probe" "$HOME_DIR/bme-probe"; do
  if touch "$p" 2>/dev/null; then rm -f "$p"; echo "PROBE: $p is writable" >&2; exit 97; fi
done
echo "PROBE: read-only" >&2
setpriv --bounding-set="$BOUNDING" --inh-caps=-all "$@" &
pid=$!
trap 'kill -TERM $pid' TERM
set +e
wait $pid; wait $pid; rc=$?
echo "STATE FILES: $(ls -A "$STATE" | tr '\\n' ' ')" >&2
echo "JOURNAL BYTES: $(stat -c %s "$STATE/state.json.journal")" >&2
echo "STATE: $(cat "$STATE/state.json")" >&2
exit $rc
`;
    proc = spawn('unshare', ['--mount', 'sh', '-c', script, 'sh', ...command], {
      cwd: '/',
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info', STATE: state, ROOT: root.replace(/\/$/, ''), PINS: pins, CONFIG_DIR: dir, HOME_DIR: home, BOUNDING: bounding },
    });
    proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    // 'close', not 'exit': the lines the script writes last must be read before the test looks.
    exited = new Promise((r) => proc!.once('close', (c) => r(c)));

    let base: string | undefined;
    for (let i = 0; i < 400 && base === undefined && proc.exitCode === null; i++) {
      const m = /"address":"127\.0\.0\.1:(\d+)"/.exec(log);
      if (m !== null) base = `http://127.0.0.1:${m[1]}`;
      else await sleep(50);
    }
    expect(base, log).toBeDefined();
    expect(log).toContain('PROBE: read-only');

    // The probes' paths; readiness once every job and the inventory have run.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    let ready = 0;
    for (let i = 0; i < 200 && ready !== 200; i++) {
      ready = (await fetch(`${base}/readyz`)).status;
      if (ready !== 200) await sleep(50);
    }
    expect(ready, log).toBe(200);

    // Wait (bounded) for the drained totals, the missing pin's error and a good checkpoint.
    let text = '';
    const done = (t: string) => t.includes('deploy_events_total{kind="1"} 7') && t.includes('deploy_events_total{kind="2"} 5')
      && /bpf_map_exporter_map_read_errors_total\{errno="ENOENT",map="missing"\} [1-9]/.test(t) && /^bpf_map_info\{/m.test(t);
    for (let i = 0; i < 200 && !done(text); i++) {
      text = await (await fetch(`${base}/metrics`)).text();
      if (!done(text)) await sleep(50);
    }
    expect(done(text), text).toBe(true);
    expect(text).toContain('deploy_value{id="3"} 42');
    // The drain took the entries out of the map, through the read-only bind mount of bpffs.
    expect(maps[1].lookup(le32(1))).toBeUndefined();
    expect(maps[1].lookup(le32(2))).toBeUndefined();
    expect(text).toMatch(/^bpf_map_exporter_checkpoint_errors_total 0$/m);
    expect(text).toMatch(/^bpf_map_exporter_inventory_up 1$/m);
    // The version is found from the image's package.json.
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    expect(text).toMatch(new RegExp(`^bpf_map_exporter_build_info\\{nodejs="[^"]+",version="${version.replaceAll('.', '\\.')}"\\} 1$`, 'm'));

    // Every metric the rules and the dashboard query is declared, and has samples unless it only
    // gets one on an event.
    const queried = queriedMetrics();
    expect(queried.length).toBeGreaterThan(15);
    for (const m of queried) {
      expect(text, `# TYPE ${m}`).toMatch(new RegExp(`^# TYPE ${m} (gauge|counter)$`, 'm'));
      if (!ONLY_ON_EVENT.has(m) && !ONLY_WITH_OBJECTS.has(m) && !ONLY_WITH_EVENTS.has(m)) expect(text, `a sample of ${m}`).toMatch(new RegExp(`^${m}(\\{[^}]*\\})? \\S+$`, 'm'));
    }
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (lint.error === undefined) expect(lint.stdout + lint.stderr).toBe('');

    // SIGTERM: a final drain and checkpoint, exit 0; the state file and its drain journal (emptied
    // by that checkpoint) are the only things in its volume.
    proc.kill('SIGTERM');
    expect(await exited, log).toBe(0);
    expect(log).toContain('STATE FILES: state.json state.json.journal \n');
    expect(log).toContain('JOURNAL BYTES: 0\n');
    const saved = JSON.parse(/^STATE: (.*)$/m.exec(log)![1]) as { version: number; jobs: Record<string, unknown> };
    expect(saved.version).toBe(1);
    expect(Object.keys(saved.jobs)).toEqual(['events']);
  }, 120_000);
});

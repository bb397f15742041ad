/**
 * A real Prometheus (Debian's package) scrapes the exporter running the syscalls example every
 * second; its query API must return the workload's exact count and a positive rate.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelDescribe } from '../kernel/support.js';
import { buildExamples, PROMETHEUS, root, sleep, startExporter, startPrometheus, type Exporter, type Prometheus } from './support.js';

kernelDescribe('a real Prometheus scraping the exporter', () => {
  let dir: string;
  let workload: string;
  let exporter: Exporter | undefined;
  let prom: Prometheus | undefined;

  beforeAll(() => {
    if (!existsSync(PROMETHEUS)) {
      if (process.env.REQUIRE_BPF === '1') throw new Error(`${PROMETHEUS} is missing: scripts/setup.sh installs Debian's prometheus package`);
      console.warn(`SKIPPING the Prometheus end-to-end test: ${PROMETHEUS} is missing (scripts/setup.sh installs it)`);
    }
    buildExamples();
    dir = mkdtempSync(join(tmpdir(), 'bme-prom-'));
    workload = join(dir, 'getppid');
    execFileSync('cc', ['-O2', '-o', workload, join(root, 'test/fixtures/workload/getppid.c')]);
  }, 120_000);

  afterAll(async () => {
    prom?.stop();
    await exporter?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it.runIf(existsSync(PROMETHEUS) || process.env.REQUIRE_BPF === '1')('answers queries with the exact count and rate() > 0, and promtool passes the exposition', async () => {
    // What `npm start` runs: the examples and the inventory of every map.
    const config = join(dir, 'all.yaml');
    writeFileSync(config, readFileSync(join(root, 'config/examples/all.yaml'), 'utf8')
      .replace('interval: 15s', 'interval: 200ms')
      .replaceAll(/object: (\S+?\.bpf\.o)/g, (_, o: string) => `object: ${join(root, 'config/examples', o)}`));
    exporter = await startExporter(config);
    const target = exporter.base.replace('http://', '');

    prom = await startPrometheus(dir, `  - job_name: bpf\n    static_configs: [ { targets: ['${target}'] } ]\n`);
    const query = (q: string) => prom!.query(q);
    // Prometheus is up and has scraped the exporter once.
    const up = await prom.until('up{job="bpf"} == 1', (r) => r.length > 0);
    expect(up, prom.log()).toHaveLength(1);

    // Two rounds of exactly N getppid calls, 2.5 s apart: Prometheus sees the counter grow.
    const N = 5000;
    const child = spawn(workload, [String(N), '2', '2500'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = await new Promise<string>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
    await new Promise((r) => child.once('exit', r));

    const series = `syscalls_total{job="bpf",pid="${pid}",syscall="getppid"}`;
    let value: number | undefined;
    for (let i = 0; i < 100 && value !== 2 * N; i++) {
      await sleep(200);
      const r = await query(series);
      value = r.length === 1 ? Number(r[0].value[1]) : undefined;
    }
    expect(value).toBe(2 * N);
    const rate = await query(`rate(${series}[30s])`);
    expect(rate).toHaveLength(1);
    expect(Number(rate[0].value[1])).toBeGreaterThan(0);

    // The inventory lists the example's map with its type, entries, fill ratio and memory.
    const info = await query('bpf_map_info{job="bpf",name="syscall_counts"}');
    expect(info).toHaveLength(1);
    expect(info[0].metric).toMatchObject({ type: 'percpu_hash', key_size: '8', value_size: '8' });
    const id = info[0].metric.id;
    for (const m of ['bpf_map_entries', 'bpf_map_max_entries', 'bpf_map_fill_ratio', 'bpf_map_memlock_bytes']) {
      const r = await query(`${m}{job="bpf",id="${id}"}`);
      expect(r, m).toHaveLength(1);
      expect(Number(r[0].value[1]), m).toBeGreaterThan(0);
    }
    expect(Number((await query(`bpf_map_max_entries{job="bpf",id="${id}"}`))[0].value[1])).toBe(65536);

    const text = await (await fetch(`${exporter.base}/metrics`)).text();
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
    expect(await exporter.stop()).toBe(0);
  }, 120_000);
});

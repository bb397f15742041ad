/**
 * ebpf_exporter's cgroup_id_map on the real kernel: a program in their style (cgid.bpf.c) counts
 * the workload's getppid calls by cgroup, apart for cgroups the exporter wrote into its filter map
 * because their full path matches the config's regexps. Cgroups made before the start are written
 * at load; one made later is written by the periodic refresh, and deleted once it is removed.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findCgroup2Root } from '../../src/decode/cgroup.js';
import { compileBpf, kernelDescribe } from '../kernel/support.js';
import { root, sample, sleep, startExporter } from './support.js';

kernelDescribe('ebpf_exporter cgroup_id_map (--config.dir, --config.names)', () => {
  let dir: string;
  let workload: string;
  const top = join(findCgroup2Root(), `bme-cgid-${process.pid}`);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-cgid-'));
    compileBpf(join(root, 'test/fixtures/ebpf-exporter/cgid.bpf.c'), join(dir, 'cgid.bpf.o'));
    copyFileSync(join(root, 'test/fixtures/ebpf-exporter/cgid.yaml'), join(dir, 'cgid.yaml'));
    workload = join(dir, 'bmecompat');
    execFileSync('cc', ['-O2', '-o', workload, join(root, 'test/fixtures/workload/compat.c')]);
    for (const d of ['in', 'out']) mkdirSync(join(top, d), { recursive: true });
  }, 120_000);

  afterAll(() => {
    // A cgroup goes with rmdir (its files cannot be unlinked: Node 24's recursive rmSync tries and fails).
    for (const d of ['in', 'in2', 'out', '']) if (existsSync(join(top, d))) rmdirSync(join(top, d));
    rmSync(dir, { recursive: true, force: true });
  });

  /** The workload's getppid calls, made from inside cgroup `cg`. */
  const runIn = (cg: string, n: number) => execFileSync('sh', ['-c', `echo $$ > ${join(top, cg)}/cgroup.procs && exec ${workload} ${n}`]);

  it('writes matching cgroups at load and as they come, deletes them as they go; the program sees the filter', async () => {
    const exporter = await startExporter('', {}, [], ['--config.dir', dir, '--config.names', 'cgid']);
    const scrape = async () => (await fetch(`${exporter.base}/metrics`)).text();
    const entries = 'bpf_map_exporter_map_entries{map="cgid/cgid_filter"}';
    const waitFor = async (pred: (t: string) => boolean, tries = 150): Promise<string> => {
      let t = '';
      for (let i = 0; i < tries; i++) {
        t = await scrape();
        if (pred(t)) return t;
        await sleep(100);
      }
      throw new Error(`condition not met; last /metrics:\n${t}`);
    };
    try {
      let t = await waitFor((x) => sample(x, entries) === 1);
      expect(sample(t, 'bpf_map_exporter_map_up{map="cgid/cgid_filter"}')).toBe(1);
      runIn('in', 5);
      runIn('out', 3);
      t = await waitFor((x) => x.includes(`ebpf_exporter_cgid_unmatched_total{cgroup="${top}/out"}`) && x.includes('ebpf_exporter_cgid_matched_total{'));
      expect(t.split('\n').filter((l) => l.startsWith('ebpf_exporter_cgid_')).sort()).toEqual([`ebpf_exporter_cgid_matched_total{cgroup="${top}/in"} 5`, `ebpf_exporter_cgid_unmatched_total{cgroup="${top}/out"} 3`]);

      // A cgroup made after the start: written by the next refresh (every 5 s), then counted as matched.
      mkdirSync(join(top, 'in2'));
      await waitFor((x) => sample(x, entries) === 2, 150);
      runIn('in2', 4);
      t = await waitFor((x) => x.includes(`ebpf_exporter_cgid_matched_total{cgroup="${top}/in2"}`));
      expect(sample(t, `ebpf_exporter_cgid_matched_total{cgroup="${top}/in2"}`)).toBe(4);

      // Removed: its id leaves the filter map.
      rmdirSync(join(top, 'in2'));
      await waitFor((x) => sample(x, entries) === 1, 150);
    } finally {
      expect(await exporter.stop()).toBe(0);
    }
  }, 90_000);
});

/**
 * The bundled syscalls example end to end: built by `npm run build:bpf`, loaded and attached by the
 * exporter, a workload making exactly N getppid calls, the exact count on /metrics, and the program
 * gone once the exporter exits.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelDescribe } from '../kernel/support.js';
import { buildExamples, loadedPrograms, programsHeldBy, root, sample, sleep, startExporter, stillLoaded } from './support.js';

/**
 * Ids of the example's program among those process `pid` holds. By owner, not by name alone: the
 * Prometheus test runs all.yaml, which loads the same example, alongside.
 */
function ourPrograms(pid: number): number[] {
  const held = new Set(programsHeldBy(pid));
  return loadedPrograms().filter((p) => held.has(p.id) && p.name === 'count_syscall').map((p) => p.id);
}

kernelDescribe('the syscalls example', () => {
  let dir: string;
  let workload: string;

  beforeAll(() => {
    buildExamples();
    dir = mkdtempSync(join(tmpdir(), 'bme-e2e-'));
    workload = join(dir, 'getppid');
    execFileSync('cc', ['-O2', '-o', workload, join(root, 'test/fixtures/workload/getppid.c')]);
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('counts exactly the getppid calls of a process, and detaches its program on reload and exit', async () => {
    // The example's config, read faster for the test.
    const config = join(dir, 'syscalls.yaml');
    writeFileSync(config, readFileSync(join(root, 'config/examples/syscalls.yaml'), 'utf8')
      .replace('interval: 5s', 'interval: 200ms')
      .replace('object: syscalls.bpf.o', `object: ${join(root, 'config/examples/syscalls.bpf.o')}`));

    const exporter = await startExporter(config);
    const exporterPid = exporter.proc.pid!;
    let ids: number[] = [];
    try {
      ids = ourPrograms(exporterPid);
      expect(ids).toHaveLength(1);
      const N = 4321;
      const pid = execFileSync(workload, [String(N)]).toString().trim();
      let text = '';
      for (let i = 0; i < 100 && sample(text, `syscalls_total{pid="${pid}",syscall="getppid"}`) !== N; i++) {
        await sleep(100);
        text = await (await fetch(`${exporter.base}/metrics`)).text();
      }
      expect(sample(text, `syscalls_total{pid="${pid}",syscall="getppid"}`), text.split('\n').filter((l) => l.includes(`pid="${pid}"`)).join('\n')).toBe(N);
      // The same process made other system calls too, counted apart.
      expect(sample(text, `syscalls_total{pid="${pid}",syscall="exit_group"}`)).toBe(1);

      // A reload to a config without the object detaches its program while the exporter runs on.
      writeFileSync(config, 'interval: 200ms\nmaps: []\n');
      exporter.proc.kill('SIGHUP');
      for (let i = 0; i < 100 && ourPrograms(exporterPid).length > 0; i++) await sleep(50);
      expect(ourPrograms(exporterPid)).toEqual([]);
      expect(await stillLoaded(ids)).toEqual([]);
      expect((await fetch(`${exporter.base}/healthz`)).status).toBe(200);
    } finally {
      expect(await exporter.stop()).toBe(0);
    }
    expect(await stillLoaded(ids)).toEqual([]);
  }, 120_000);
});

/**
 * The bundled syscalls example end to end: built by `npm run build:bpf`, loaded and attached by the
 * exporter, a workload making exactly N getppid calls, the exact count on /metrics, and the program
 * gone once the exporter exits.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernelDescribe } from '../kernel/support.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function programIds(name: string): number[] {
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show']).toString()) as { id: number; name?: string }[];
  return progs.filter((p) => p.name === name).map((p) => p.id);
}

kernelDescribe('the syscalls example', () => {
  let dir: string;
  let workload: string;

  beforeAll(() => {
    execFileSync(process.execPath, [join(root, 'scripts/build-bpf.mjs')], { stdio: 'pipe' });
    dir = mkdtempSync(join(tmpdir(), 'bme-e2e-'));
    workload = join(dir, 'getppid');
    execFileSync('cc', ['-O2', '-o', workload, join(root, 'test/fixtures/workload/getppid.c')]);
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('counts exactly the getppid calls of a process, and detaches its program on exit', async () => {
    // The example's config, read faster for the test.
    const config = join(dir, 'syscalls.yaml');
    const example = readFileSync(join(root, 'config/examples/syscalls.yaml'), 'utf8');
    writeFileSync(config, example.replace('interval: 5s', 'interval: 200ms').replace('object: syscalls.bpf.o', `object: ${join(root, 'config/examples/syscalls.bpf.o')}`));
    expect(programIds('count_syscall')).toEqual([]);

    const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'exporter/main.ts'), 'run', '--config', config, '--web.listen-address', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
    let log = '';
    proc.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    try {
      let base = '';
      for (let i = 0; i < 200 && base === ''; i++) {
        const m = /"address":"127\.0\.0\.1:(\d+)"/.exec(log);
        if (m !== null) base = `http://127.0.0.1:${m[1]}`;
        else await sleep(50);
      }
      expect(base, log).not.toBe('');
      for (let i = 0; i < 100 && (await fetch(`${base}/readyz`)).status !== 200; i++) await sleep(50);
      expect(programIds('count_syscall')).toHaveLength(1);

      const N = 4321;
      const pid = execFileSync(workload, [String(N)]).toString().trim();
      const series = `syscalls_total{pid="${pid}",syscall="getppid"}`;
      let text = '';
      let value: number | undefined;
      for (let i = 0; i < 100 && value !== N; i++) {
        await sleep(100);
        text = await (await fetch(`${base}/metrics`)).text();
        const line = text.split('\n').find((l) => l.startsWith(`${series} `));
        value = line === undefined ? undefined : Number(line.slice(series.length + 1));
      }
      expect(value, text.split('\n').filter((l) => l.includes(`pid="${pid}"`)).join('\n')).toBe(N);
      // The same process made other system calls too (exit_group, write), counted apart.
      expect(text).toContain(`syscalls_total{pid="${pid}",syscall="exit_group"} 1`);
    } finally {
      proc.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(programIds('count_syscall')).toEqual([]);
  }, 120_000);
});

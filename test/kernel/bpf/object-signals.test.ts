/**
 * Loading an object while signals keep coming: the verifier gives up with EAGAIN whenever the
 * loading thread has a signal pending, and libbpf retries only five times. A CPU profiler sends its
 * SIGPROF to the main thread every interval, so under `node --cpu-prof --cpu-prof-interval 50` loads
 * of latency.bpf.o (two programs) failed, all 8 of a run here, before the loader blocked signals
 * around the load.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelDescribe } from '../support.js';
import { buildExamples } from '../../e2e/support.js';

const root = new URL('../../../', import.meta.url).pathname;
const LOADS = 8;

kernelDescribe('loading an object under a CPU profiler', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-sigload-'));
    buildExamples();
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads every time, with SIGPROF arriving every 50 µs', () => {
    const script = join(dir, 'load.mts');
    writeFileSync(
      script,
      `import { BpfObject } from ${JSON.stringify(join(root, 'src/bpf/object.ts'))};
let ok = 0;
const errors = [];
for (let i = 0; i < ${LOADS}; i++) {
  try { BpfObject.load(${JSON.stringify(join(root, 'config/examples/latency.bpf.o'))}).close(); ok++; } catch (e) { errors.push(e.message.split('\\n')[0]); }
}
process.stdout.write(JSON.stringify({ ok, errors }));
`,
    );
    const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-interval', '50', '--cpu-prof-dir', dir, '--import', 'tsx', script], { cwd: root, encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'fatal' } });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ok: LOADS, errors: [] });
  }, 60_000);
});

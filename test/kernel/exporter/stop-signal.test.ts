/**
 * A SIGTERM as start-up ends gets the clean stop (final drain, checkpoint, exit 0), not the default
 * action. The signal handlers used to be installed after the `listening` line: a supervisor that
 * sent SIGTERM on seeing it could kill the process if the loop was preempted between the two
 * (it happened in a loaded CI run).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { kernelDescribe } from '../support.js';

const main = fileURLToPath(new URL('../../../exporter/main.ts', import.meta.url));
const preload = fileURLToPath(new URL('./sigterm-on-listening.mjs', import.meta.url));

kernelDescribe('stop signal', () => {
  it('a SIGTERM that arrives right after the listening line stops the exporter cleanly', async () => {
    const proc = spawn(process.execPath, ['--import', 'tsx', '--import', preload, main, 'run', '--web.listen-address', '127.0.0.1:0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info', LOG_FORMAT: 'json' },
    });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const killer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => proc.once('exit', (c, s) => r([c, s])));
    clearTimeout(killer);
    expect({ code, signal }, err).toEqual({ code: 0, signal: null });
    const msgs = err.trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs).toEqual(['listening', 'stopping: final drain, checkpoint, OTLP flush']);
  }, 30_000);
});

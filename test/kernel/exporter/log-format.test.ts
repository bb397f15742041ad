/**
 * The exporter's log lines as a person and as a collector read them: logfmt with --log.format logfmt
 * and by default at a terminal, JSON lines with level names when stderr is a pipe.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { kernelDescribe } from '../support.js';
import { sleep } from './process.js';

const main = fileURLToPath(new URL('../../../exporter/main.ts', import.meta.url));
const running: ChildProcess[] = [];
afterEach(() => {
  for (const p of running.splice(0)) p.kill('SIGKILL');
});

/** `run` (the inventory alone) with `args`; its output until `listening` appears, then SIGTERM and the rest. */
async function runUntilListening(command: string, args: string[], env: Record<string, string> = {}): Promise<{ out: string; code: number | null }> {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info', ...env } });
  running.push(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  for (let i = 0; i < 300 && !/listening/.test(out) && proc.exitCode === null; i++) await sleep(50);
  expect(out).toContain('listening');
  proc.kill('SIGTERM');
  return { out, code: await exited };
}

const exporterArgs = ['--import', 'tsx', main, 'run', '--web.listen-address', '127.0.0.1:0'];
const LOGFMT_LINE = /^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(debug|info|warn|error) msg=("(?:[^"\\]|\\.)*"|\S+)( [a-zA-Z_][\w.]*=("(?:[^"\\]|\\.)*"|\S+))*$/;

kernelDescribe('log format', () => {
  it('--log.format logfmt: every line is logfmt, the listening line carries the address', async () => {
    const { out, code } = await runUntilListening(process.execPath, [...exporterArgs, '--log.format', 'logfmt']);
    expect(code, out).toBe(0);
    const lines = out.trim().split('\n');
    for (const line of lines) expect(line).toMatch(LOGFMT_LINE);
    expect(lines.find((l) => l.includes('msg=listening'))).toMatch(/ address=127\.0\.0\.1:\d+ /);
  });

  it('a pipe gets JSON lines with level names', async () => {
    const { out, code } = await runUntilListening(process.execPath, exporterArgs);
    expect(code, out).toBe(0);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { level: unknown; msg: string });
    expect(lines.find((l) => l.msg === 'listening')?.level).toBe('info');
    for (const l of lines) expect(['debug', 'info', 'warn', 'error']).toContain(l.level);
  });

  it('a terminal gets logfmt (script(1) gives the exporter one)', async () => {
    const cmd = [process.execPath, ...exporterArgs].map((a) => `'${a}'`).join(' ');
    const { out } = await runUntilListening('script', ['-qfec', cmd, '/dev/null']);
    const listening = out.split(/\r?\n/).find((l) => l.includes('msg=listening'));
    expect(listening).toMatch(LOGFMT_LINE);
  });
});

/** The exporter as a child process: started from its CLI, found on its port, polled, stopped. */
import { spawn, type ChildProcess } from 'node:child_process';

const main = new URL('../../../exporter/main.ts', import.meta.url).pathname;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Daemon { proc: ChildProcess; base: string; stderr: () => string; exited: Promise<number | null> }

/** Start `run --config FILE` on a free port; resolves once /readyz answers (or, with `ready: false`, once it listens). */
export async function startDaemon(config: string, env: Record<string, string> = {}, opts: { ready?: boolean } = {}): Promise<Daemon> {
  const proc = spawn(process.execPath, ['--import', 'tsx', main, 'run', '--config', config, '--web.listen-address', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info', ...env } });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  for (let i = 0; i < 200; i++) {
    const m = /"address":"127\.0\.0\.1:(\d+)"/.exec(err);
    if (m !== null) {
      const base = `http://127.0.0.1:${m[1]}`;
      if (opts.ready === false) return { proc, base, stderr: () => err, exited };
      for (let j = 0; j < 100; j++) {
        if ((await fetch(`${base}/readyz`)).status === 200) return { proc, base, stderr: () => err, exited };
        await sleep(50);
      }
    }
    if (proc.exitCode !== null) break;
    await sleep(50);
  }
  proc.kill('SIGKILL');
  throw new Error(`daemon did not become ready: ${err}`);
}

export async function stopDaemon(d: Daemon, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; ms: number }> {
  const t = Date.now();
  d.proc.kill(signal);
  const code = await d.exited;
  return { code, ms: Date.now() - t };
}

export const metrics = async (d: Daemon) => (await fetch(`${d.base}/metrics`)).text();

/** The value of the one sample `name{labels}` (labels written as in the exposition), or undefined. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Poll /metrics until `pred` holds (bounded: `tries` x 50 ms). */
export async function until(d: Daemon, pred: (t: string) => boolean, tries = 100): Promise<string> {
  let t = '';
  for (let i = 0; i < tries; i++) {
    t = await metrics(d);
    if (pred(t)) return t;
    await sleep(50);
  }
  throw new Error(`condition not met; last /metrics:\n${t}`);
}

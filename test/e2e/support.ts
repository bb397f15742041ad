import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Exporter {
  proc: ChildProcess;
  base: string;
  log(): string;
  /** SIGTERM and the exit code. */
  stop(): Promise<number | null>;
}

/**
 * The exporter as a process on a free loopback port, once /readyz says ready; `wrap` is a command the
 * exporter runs under (e.g. setpriv with another uid and capabilities).
 */
export async function startExporter(config: string, env: Record<string, string> = {}, wrap: string[] = []): Promise<Exporter> {
  const [cmd, ...args] = [...wrap, process.execPath, '--import', 'tsx', join(root, 'exporter/main.ts'), 'run', '--config', config, '--web.listen-address', '127.0.0.1:0'];
  const proc = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
  });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    return exited;
  };
  for (let i = 0; i < 200; i++) {
    const m = /"address":"127\.0\.0\.1:(\d+)"/.exec(log);
    if (m !== null) {
      const base = `http://127.0.0.1:${m[1]}`;
      for (let j = 0; j < 200; j++) {
        if ((await fetch(`${base}/readyz`)).status === 200) return { proc, base, log: () => log, stop };
        await sleep(50);
      }
    }
    if (proc.exitCode !== null) break;
    await sleep(50);
  }
  proc.kill('SIGKILL');
  throw new Error(`the exporter did not become ready:\n${log}`);
}

/** Build the examples (npm run build:bpf). */
export function buildExamples(): void {
  execFileSync(process.execPath, [join(root, 'scripts/build-bpf.mjs')], { stdio: 'pipe' });
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** The value of the one sample `series` (written as in the exposition) in a /metrics text. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/**
 * The exporter as a process with a web config, on a free loopback port, and clients for it:
 * Node's https/http (agent-less, every request a new connection) and curl.
 */
import { execFile, spawnSync } from 'node:child_process';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { fileURLToPath } from 'node:url';
import type { TLSSocket } from 'node:tls';
import { sleep, spawnExporter, type Exporter } from '../e2e/support.js';

export const main = fileURLToPath(new URL('../../exporter/main.ts', import.meta.url));

export type Running = Exporter & { port: number };

/** Start `run` with a config and a web config; resolves once the log says it listens. */
export function startWithWeb(config: string, webConfig: string): Promise<Running> {
  return spawnExporter(config, { args: ['--web.config.file', webConfig] });
}

export interface Answer {
  status?: number;
  headers?: IncomingHttpHeaders;
  body?: string;
  /** The TLS peer certificate's SHA-256 fingerprint, for HTTPS. */
  fingerprint?: string;
  /** The error's code when the request failed (a refused certificate, a reset). */
  error?: string;
}

export interface ClientOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** user:password for basic auth. */
  auth?: string;
  headers?: Record<string, string>;
}

/** One GET on a new connection; never rejects (failures are `error`), bounded by a 5 s timeout. */
export function get(url: string, opts: ClientOptions = {}): Promise<Answer> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'GET',
        agent: false,
        timeout: 5000,
        headers: { ...(opts.auth === undefined ? {} : { Authorization: `Basic ${Buffer.from(opts.auth).toString('base64')}` }), ...opts.headers },
        ...(u.protocol === 'https:' ? { ca: opts.ca, cert: opts.cert, key: opts.key } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          const peer = u.protocol === 'https:' ? (res.socket as TLSSocket).getPeerCertificate?.() : undefined;
          resolve({ status: res.statusCode, headers: res.headers, body, ...(peer?.fingerprint256 === undefined ? {} : { fingerprint: peer.fingerprint256 }) });
        });
        res.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end();
  });
}

/** curl's exit code, HTTP status and version (`%{http_code} %{http_version}`), and stderr. */
export function curl(args: string[]): { code: number | null; status: string; version: string; stderr: string } {
  const r = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', '--max-time', '5', ...args], { encoding: 'utf8', timeout: 10_000 });
  const [status, version] = r.stdout.trim().split(' ');
  return { code: r.status, status: status ?? '', version: version ?? '', stderr: r.stderr };
}

/** curl without blocking this process: for servers that run in the test's own event loop. */
export function curlAsync(args: string[]): Promise<{ code: number | null; status: string; version: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', '--max-time', '5', ...args], { encoding: 'utf8', timeout: 10_000 }, (err, stdout, stderr) => {
      const [status, version] = stdout.trim().split(' ');
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, status: status ?? '', version: version ?? '', stderr });
    });
  });
}

/** Poll (bounded) until `pred` holds for an answer; returns the last answer. */
export async function until(ask: () => Promise<Answer>, pred: (a: Answer) => boolean, tries = 100, everyMs = 100): Promise<Answer> {
  let a: Answer = {};
  for (let i = 0; i < tries; i++) {
    a = await ask();
    if (pred(a)) return a;
    await sleep(everyMs);
  }
  return a;
}

/**
 * The cap on connections, with real sockets on loopback: the rule that derives it from the fd
 * limit, idle connections closed to make room (never one whose request is being answered) over
 * HTTP, HTTPS and HTTP/2, and connections that send nothing closed within seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect as connectH2 } from 'node:http2';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExpositionCache } from '../../../src/publish/prometheus.js';
import { ConnectionLimiter, connectionCap, fdSoftLimit, MAX_CONNECTIONS, MIN_CONNECTIONS, processFdLimit } from '../../../src/server/connections.js';
import { createExporterServer, IDLE_MS, type ExporterServer } from '../../../src/server/http.js';
import { LiveWeb, loadWeb } from '../../../src/server/live-web.js';
import { get, type Answer } from '../../server/support.js';
import { Certs } from './certs.js';
import { heldExposition } from './held-exposition.js';

let dir: string;
let ca: Buffer;
const open: ExporterServer[] = [];
const clients: Socket[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bme-conns-'));
  const certs = new Certs(dir);
  ca = readFileSync(certs.ca);
  certs.server('server');
});

afterAll(() => {
  for (const c of clients) c.destroy();
  for (const s of open) s.close();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Kind = 'http' | 'https' | 'h2';

async function serve(kind: Kind, exposition: ExpositionCache, maxConnections?: number): Promise<{ s: ExporterServer; base: string; port: number }> {
  let web: LiveWeb | undefined;
  if (kind !== 'http') {
    const file = join(dir, `${kind}.yml`);
    writeFileSync(file, `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n${kind === 'https' ? 'http_server_config:\n  http2: false\n' : ''}`);
    web = new LiveWeb(file, loadWeb(file));
  }
  const s = createExporterServer({ exposition, notReady: () => undefined, version: 'test', web, maxConnections });
  open.push(s);
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
  const port = (s.server.address() as AddressInfo).port;
  return { s, base: `${s.scheme}://127.0.0.1:${port}`, port };
}

/** `n` TCP connections that never send a byte; resolves once each has connected or failed. */
async function idle(port: number, n: number): Promise<{ sockets: Socket[]; closed: () => number }> {
  let closed = 0;
  const sockets = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<Socket>((resolve) => {
        const c = connect(port, '127.0.0.1');
        clients.push(c);
        c.on('error', () => {});
        c.once('close', () => closed++);
        c.once('connect', () => resolve(c));
        c.once('error', () => resolve(c));
      }),
    ),
  );
  return { sockets, closed: () => closed };
}

/** GET /metrics over HTTP/2. */
function getH2(base: string): Promise<Answer> {
  return new Promise((resolve) => {
    const session = connectH2(base, { ca });
    session.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    const req = session.request({ ':path': '/metrics' });
    let body = '';
    let status: number | undefined;
    req.setEncoding('utf8');
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
  });
}

describe('the connection cap rule', () => {
  it('reads the soft limit on open files from /proc/PID/limits', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units     \nMax processes             63432                63432                processes \nMax open files            256                  4096                 files     \n';
    expect(fdSoftLimit(text)).toBe(256);
    expect(fdSoftLimit(text.replace('256 ', 'unlimited'))).toBe(Infinity);
    expect(fdSoftLimit('nothing here')).toBeUndefined();
    const mine = fdSoftLimit(readFileSync('/proc/self/limits', 'utf8'));
    expect(mine).toBeGreaterThan(0);
    expect(processFdLimit()).toBe(mine);
  });

  it('gives connections half of the descriptors the daemon does not hold, from 16 to 1024', () => {
    expect([MIN_CONNECTIONS, MAX_CONNECTIONS]).toEqual([16, 1024]);
    expect(connectionCap(256, 25)).toBe(115);
    expect(connectionCap(1024, 40)).toBe(492);
    // A daemon holding many descriptors (perf events on every CPU) leaves fewer for connections.
    expect(connectionCap(1024, 600)).toBe(212);
    expect(connectionCap(64, 40)).toBe(16);
    expect(connectionCap(1_048_576, 40)).toBe(1024);
    expect(connectionCap(Infinity, 40)).toBe(1024);
  });

  it('splits the derived cap between the servers of several listen addresses, not a fixed one', () => {
    const server = () => ({ maxConnections: 0 });
    expect(new ConnectionLimiter(server(), { fdLimit: 1_048_576 }).cap).toBe(1024);
    expect(new ConnectionLimiter(server(), { fdLimit: 1_048_576, share: 2 }).cap).toBe(512);
    expect(new ConnectionLimiter(server(), { fdLimit: 1_048_576, share: 3 }).cap).toBe(341);
    expect(new ConnectionLimiter(server(), { fdLimit: 1_048_576, share: 1000 }).cap).toBe(MIN_CONNECTIONS);
    expect(new ConnectionLimiter(server(), { fixed: 100, share: 2 }).cap).toBe(100);
  });
});

describe('the HTTP server under a flood of idle connections', () => {
  for (const kind of ['http', 'https', 'h2'] as const) {
    it(`${kind}: holds them at the cap by closing the least recently used idle ones, never a request in progress, and answers probes`, async () => {
      const held = heldExposition();
      const { s, base, port } = await serve(kind, held.exposition, 8);
      expect(s.connections.cap).toBe(8);
      // A scrape whose answer is being made while the flood comes.
      const scrape = kind === 'h2' ? getH2(base) : get(`${base}/metrics`, { ca });
      await held.entered;
      const flood = await idle(port, 40);
      for (let i = 0; i < 50 && flood.closed() < 40 - 8; i++) await sleep(20);
      // The cap: the scrape's connection and the most recent idle ones.
      expect(s.connections.size).toBeLessThanOrEqual(8);
      expect(flood.closed()).toBeGreaterThanOrEqual(40 - 8);
      const probe = await get(`${base}/healthz`, { ca });
      expect(probe.status).toBe(200);
      held.release();
      const answer = await scrape;
      expect(answer.status).toBe(200);
      expect(answer.body).toBe('held_metric 1\n');
      expect(s.connections.size).toBeLessThanOrEqual(8);
    });
  }

  it('closes connections of the address that holds the most first: one that has not sent its request yet outlasts a flood from elsewhere', async () => {
    const { s, base, port } = await serve('http', heldExposition().exposition, 8);
    // Connected before the flood, its request not sent yet: the least recently used of all.
    const early = connect(port, '127.0.0.1');
    clients.push(early);
    let earlyClosed = false;
    early.once('close', () => (earlyClosed = true));
    await new Promise((r) => early.once('connect', r));
    let closed = 0;
    await Promise.all(
      Array.from({ length: 40 }, () =>
        new Promise<void>((resolve) => {
          const c = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
          clients.push(c);
          c.on('error', () => {});
          c.once('close', () => closed++);
          c.once('connect', () => resolve());
        }),
      ),
    );
    for (let i = 0; i < 50 && closed < 40 - 7; i++) await sleep(20);
    expect(s.connections.size).toBeLessThanOrEqual(8);
    expect(closed).toBe(40 - 7);
    expect(earlyClosed).toBe(false);
    // Its request, sent now, is answered.
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      early.setEncoding('utf8');
      early.on('data', (d: string) => (text += d));
      early.once('end', () => resolve(text));
      early.write(`GET /healthz HTTP/1.1\r\nHost: ${new URL(base).host}\r\nConnection: close\r\n\r\n`);
    });
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
  });

  it('keeps a keep-alive connection that has been answered through a flood of connections that never send', async () => {
    const { s, base, port } = await serve('http', heldExposition().exposition, 8);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ask = () =>
      new Promise<{ status?: number; reused: boolean; error?: string }>((resolve) => {
        const req = request(`${base}/healthz`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode, reused: req.reusedSocket }));
        });
        req.on('error', (e: NodeJS.ErrnoException) => resolve({ reused: req.reusedSocket, error: e.code }));
        req.end();
      });
    try {
      expect(await ask()).toEqual({ status: 200, reused: false });
      const flood = await idle(port, 40);
      for (let i = 0; i < 50 && flood.closed() < 40 - 7; i++) await sleep(20);
      expect(s.connections.size).toBeLessThanOrEqual(8);
      // Its next request goes on the same connection, which the flood did not take.
      expect(await ask()).toEqual({ status: 200, reused: true });
    } finally {
      agent.destroy();
    }
  });

  it('closes connections that send nothing (no TLS handshake, no request head) or half a request head within seconds, not at a 30 s sweep', async () => {
    const plain = await serve('http', heldExposition().exposition);
    const https = await serve('https', heldExposition().exposition);
    const h2 = await serve('h2', heldExposition().exposition);
    const started = Date.now();
    const lifetime = (port: number, send?: string) =>
      new Promise<number>((resolve) => {
        const c = connect(port, '127.0.0.1');
        clients.push(c);
        c.on('error', () => {});
        // Read what the server says (a 408), or its end is never seen.
        c.resume();
        if (send !== undefined) c.write(send);
        c.once('close', () => resolve(Date.now() - started));
      });
    const lifetimes = await Promise.all([
      lifetime(plain.port),
      lifetime(plain.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n'),
      lifetime(https.port),
      lifetime(h2.port),
    ]);
    for (const ms of lifetimes) {
      expect(ms).toBeGreaterThanOrEqual(IDLE_MS - 100);
      // The timeout, plus the 1 s sweep that enforces it for a request head.
      expect(ms).toBeLessThan(IDLE_MS + 2_000);
    }
  }, 15_000);
});

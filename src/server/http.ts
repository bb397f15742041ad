import { createServer as createHttpServer, type IncomingHttpHeaders, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { ExpositionCache } from '../publish/prometheus.js';
import type { JobStatus } from '../publish/self-metrics.js';
import { negotiate, wantsGzip } from '../publish/negotiate.js';
import { logger } from '../log.js';
import { responseBegun } from '../util/slices.js';
import type { LiveWeb } from './live-web.js';
import { clientCertRefusal, type TlsMaterial } from './tls.js';
import { ConnectionLimiter } from './connections.js';
import { DEFAULT_MAX_REQUESTS } from './paths.js';

export interface ServerOptions {
  exposition: ExpositionCache;
  /** Why the exporter is not ready (every map read once, drain state saved), or undefined when it is. */
  notReady: () => string | undefined;
  version: string;
  /** TLS, headers and basic auth from a web config file; absent: plain HTTP, open to all. */
  web?: LiveWeb;
  /** The most connections kept open (--web.max-connections); absent: derived from the fd limit. */
  maxConnections?: number;
  /** Servers listening side by side (one per --web.listen-address), which share the fd limit. Default 1. */
  listeners?: number;
  /** Where the metrics are served (--web.telemetry-path). Default /metrics. */
  telemetryPath?: string;
  /**
   * The scrapes answered at once (--web.max-requests): one gate for every server of the process.
   * Default: a gate of its own, DEFAULT_MAX_REQUESTS wide.
   */
  scrapes?: ScrapeGate;
  /** Each map job's state, for the landing page. */
  status?: () => readonly JobStatus[];
}

export interface ExporterServer {
  /** The listening socket's server: listen(), address(), 'error'. */
  readonly server: NetServer;
  readonly scheme: 'http' | 'https';
  /** The open connections and their cap. */
  readonly connections: ConnectionLimiter;
  /** Stop listening and end every open connection. */
  close(): void;
}

/** How long a connection may sit idle: before its request head, its TLS handshake, or between keep-alive requests. */
export const IDLE_MS = 5_000;

/**
 * Paths answered without basic auth or rate limit: Kubernetes probes cannot easily send credentials,
 * they tell nothing, and a probe refused for the rate would get a healthy pod restarted.
 */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

/** What the handler needs of a request and a response: met by HTTP/1.1's and HTTP/2's compatibility objects alike. */
interface Req {
  method?: string;
  url?: string;
  headers: IncomingHttpHeaders;
  readonly socket: Socket;
}
interface Res {
  readonly headersSent: boolean;
  once(event: 'close', listener: () => void): unknown;
  setHeader(name: string, value: string): unknown;
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: Buffer): unknown;
  end(): unknown;
  end(body: Buffer): unknown;
  destroy(): unknown;
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** How long ago `at` was, in words a person reads at a glance. */
function ago(at: number, now: number): string {
  const s = Math.max(0, Math.round((now - at) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

function jobRow(j: JobStatus, now: number): string {
  const cells = [
    `<th scope="row">${escapeHtml(j.map)}</th>`,
    `<td class="${j.up ? 'up' : 'down'}">${j.up ? 'up' : 'down'}</td>`,
    `<td>${j.entries === undefined ? '' : `${j.entries}${j.maxEntries === undefined ? '' : ` / ${j.maxEntries}`}`}</td>`,
    `<td>${j.lastRead === undefined ? 'never' : `<time datetime="${new Date(j.lastRead).toISOString()}">${ago(j.lastRead, now)}</time>`}</td>`,
    `<td>${j.reads}</td>`,
    `<td>${j.errors}</td>`,
    `<td>${j.lastError === undefined ? '' : `<code>${escapeHtml(j.lastError.errno)}</code> ${escapeHtml(j.lastError.message)}`}</td>`,
  ];
  return `<tr>${cells.join('')}</tr>`;
}

/** The page a person opening the exporter's address sees: its links, and each map job's state. */
function landing(version: string, telemetryPath: string, jobs: readonly JobStatus[]): string {
  const now = Date.now();
  const table =
    jobs.length === 0
      ? '<p>No map jobs: this exporter shows the inventory of the host\'s BPF maps and programs.</p>'
      : `<table>
<caption>Map jobs</caption>
<thead><tr><th scope="col">map</th><th scope="col">state</th><th scope="col">entries</th><th scope="col">last read</th><th scope="col">reads</th><th scope="col">errors</th><th scope="col">last error</th></tr></thead>
<tbody>
${jobs.map((j) => jobRow(j, now)).join('\n')}
</tbody>
</table>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bpf-map-exporter</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin-top: 1rem; }
caption { text-align: left; font-weight: bold; padding-bottom: .5rem; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }
td.up { background: #d9f2d9; }
td.down { background: #f8d7da; font-weight: bold; }
code { background: #f3f3f3; padding: 0 .2rem; }
</style></head>
<body><h1>bpf-map-exporter ${escapeHtml(version)}</h1>
<p>Numbers out of BPF maps.</p>
<ul><li><a href="${escapeHtml(telemetryPath.slice(1))}">${escapeHtml(telemetryPath)}</a></li><li><a href="healthz">/healthz</a></li><li><a href="readyz">/readyz</a></li></ul>
${table}
</body></html>
`;
}

/**
 * The HTTP face of the exporter: /metrics served from the exposition cache (a scrape never reads a
 * map), /healthz, /readyz and a landing page; GET and HEAD only. With a web config: HTTPS (HTTP/2
 * offered by ALPN unless turned off), certificates that follow their files, client certificate
 * policies, extra headers and basic auth on every path but the probes.
 */
export function createExporterServer(opts: ServerOptions): ExporterServer {
  const scrapes = opts.scrapes ?? new ScrapeGate(DEFAULT_MAX_REQUESTS);
  const onRequest = (req: Req, res: Res) => {
    // The connection is busy until the response is done (or the connection gone): never closed to make room.
    const done = limiter.begin(req.socket);
    if (done !== undefined) res.once('close', done);
    respond(req, res, opts, scrapes).catch((err: unknown) => {
      logger.error({ err, url: req.url }, 'request failed');
      if (!res.headersSent) send(res, req, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  };
  const web = opts.web;
  const tls = web?.current.tls;
  let server: NetServer;
  if (web === undefined || tls === undefined) {
    server = createHttpServer(onRequest);
  } else if (web.current.config.http2) {
    const h2: Http2SecureServer = createSecureServer(
      { ...tls.options, allowHTTP1: true, requestCert: tls.requestCert, rejectUnauthorized: tls.rejectUnauthorized, handshakeTimeout: IDLE_MS },
      onRequest,
    );
    // Idle HTTP/2 sessions (and HTTP/1.1 connections on this server) are closed after this long.
    h2.setTimeout(IDLE_MS);
    server = h2;
  } else {
    server = createHttpsServer({ ...tls.options, requestCert: tls.requestCert, rejectUnauthorized: tls.rejectUnauthorized, handshakeTimeout: IDLE_MS }, onRequest);
  }
  // Bounded waits: a slow, stuck or idle client cannot hold a connection open for long.
  // - handshakeTimeout (above): a TLS handshake not done within IDLE_MS (Node's default waits 120 s);
  // - headersTimeout, requestTimeout: a request head (from the connection's start: this closes one
  //   that sends nothing at all too) or a whole request not received in time, checked every second
  //   (Node's default sweep runs every 30 s, which let idle connections pile up);
  // - keepAliveTimeout: a keep-alive connection idle between requests.
  // (HTTP/1.1 on an HTTP/2 server is served by the same code and reads the same fields;
  // connectionsCheckingInterval is read when the server starts listening, and @types/node lacks it.)
  const h1 = server as HttpServer & HttpsServer & { connectionsCheckingInterval: number };
  h1.headersTimeout = IDLE_MS;
  h1.requestTimeout = 15_000;
  h1.keepAliveTimeout = IDLE_MS;
  h1.connectionsCheckingInterval = 1_000;

  // A cap on open connections, from the fd limit: see ConnectionLimiter.
  const limiter = new ConnectionLimiter(server, { fixed: opts.maxConnections, share: opts.listeners });
  server.on('drop', () => limiter.dropped());
  server.once('listening', () => limiter.start());
  // Prepended: it runs before Node wraps the socket in TLS, so a certificate replaced on disk is
  // already in the context this very connection gets.
  server.prependListener('connection', (socket: Socket) => {
    limiter.add(socket);
    web?.refresh();
  });
  if (tls !== undefined && web !== undefined) {
    // Every server on this web config (one per --web.listen-address) takes new certificates.
    const others = web.onTls;
    web.onTls = (next) => {
      others?.(next);
      applyTls(server, next);
    };
    server.on('secureConnection', (socket: TLSSocket) => {
      let why: string | undefined;
      try {
        const t = web.current.tls;
        why = t === undefined ? undefined : clientCertRefusal(socket, t);
      } catch (err) {
        why = `client certificate unreadable: ${(err as Error).message}`;
      }
      if (why === undefined) return;
      logger.warn({ remote: socket.remoteAddress, reason: why }, 'TLS connection refused by client_auth_type');
      socket.destroy();
    });
    server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      logger.debug({ remote: socket.remoteAddress, code: err.code, err: err.message }, 'TLS handshake failed');
    });
  }
  return {
    server,
    scheme: tls === undefined ? 'http' : 'https',
    connections: limiter,
    close: () => {
      server.close();
      limiter.stop();
      limiter.closeAll();
    },
  };
}

/** Put new TLS material into a running server: new connections get it, open ones keep theirs. */
function applyTls(server: NetServer, tls: TlsMaterial): void {
  const s = server as TlsServer & { requestCert?: boolean; rejectUnauthorized?: boolean };
  s.setSecureContext(tls.options);
  // Read by Node for every new connection.
  s.requestCert = tls.requestCert;
  s.rejectUnauthorized = tls.rejectUnauthorized;
}

/** A response of one body, or of several buffers sent one after the other (a /metrics document in parts). */
function send(res: Res, req: Req, status: number, type: string, body: string | Buffer | readonly Buffer[], headers: Record<string, string> = {}): void {
  const chunks = typeof body === 'string' ? [Buffer.from(body)] : Buffer.isBuffer(body) ? [body] : body;
  const length = chunks.reduce((n, c) => n + c.length, 0);
  // Work in slices waits for it (see nextSlice): a large body goes out in several turns of the loop.
  res.once('close', responseBegun());
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(length), ...headers });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  for (let i = 0; i < chunks.length - 1; i++) res.write(chunks[i]);
  res.end(chunks[chunks.length - 1]);
}

/** The path of a request target, or undefined when it is not one. */
function pathOf(url: string | undefined): string | undefined {
  try {
    return new URL(url ?? '/', 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

/** Scrapes being answered, at most `max` at once (0: no limit); more get 503. */
export class ScrapeGate {
  private running = 0;
  constructor(private readonly max: number) {}

  /** A slot for a scrape, released on the response's close; false when every slot is taken. */
  enter(res: Res): boolean {
    if (this.max > 0 && this.running >= this.max) return false;
    this.running++;
    res.once('close', () => this.running--);
    return true;
  }
}

async function respond(req: Req, res: Res, opts: ServerOptions, scrapes: ScrapeGate): Promise<void> {
  const web = opts.web;
  web?.refresh();
  const state = web?.current;
  if (state !== undefined) for (const [name, value] of Object.entries(state.config.headers)) res.setHeader(name, value);
  const path = pathOf(req.url);
  if (path === undefined) {
    // A request target no URL parser accepts (`GET http://[ HTTP/1.1`): the client's mistake, answered
    // before authentication, so it must cost one response and no log line.
    send(res, req, 400, 'text/plain; charset=utf-8', 'bad request target\n');
    return;
  }
  if (state?.limiter !== undefined && !OPEN_PATHS.has(path) && !state.limiter.allow()) {
    send(res, req, 429, 'text/plain; charset=utf-8', 'too many requests\n', { 'Retry-After': '1' });
    return;
  }
  if (state?.auth !== undefined && !OPEN_PATHS.has(path)) {
    const auth = await state.auth.check(req.headers.authorization);
    if (auth === 'busy') {
      send(res, req, 503, 'text/plain; charset=utf-8', 'too many authentication attempts at once\n', { 'Retry-After': '1' });
      return;
    }
    if (auth === 'denied') {
      send(res, req, 401, 'text/plain; charset=utf-8', 'unauthorized\n', { 'WWW-Authenticate': 'Basic' });
      return;
    }
  }
  await handle(req, res, opts, path, scrapes);
}

async function handle(req: Req, res: Res, opts: ServerOptions, path: string, scrapes: ScrapeGate): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, req, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
    return;
  }
  const telemetryPath = opts.telemetryPath ?? '/metrics';
  if (path === telemetryPath) {
    if (!scrapes.enter(res)) {
      send(res, req, 503, 'text/plain; charset=utf-8', 'too many scrapes at once (--web.max-requests)\n', { 'Retry-After': '1' });
      return;
    }
    const { format, contentType } = negotiate(req.headers.accept);
    const gzip = wantsGzip(req.headers['accept-encoding']);
    const body = await opts.exposition.renderChunks(format, gzip);
    send(res, req, 200, contentType, body, { Vary: 'Accept, Accept-Encoding', ...(gzip ? { 'Content-Encoding': 'gzip' } : {}) });
    return;
  }
  switch (path) {
    case '/healthz':
      send(res, req, 200, 'text/plain; charset=utf-8', 'ok\n');
      return;
    case '/readyz': {
      const why = opts.notReady();
      if (why === undefined) send(res, req, 200, 'text/plain; charset=utf-8', 'ready\n');
      else send(res, req, 503, 'text/plain; charset=utf-8', `not ready: ${why}\n`);
      return;
    }
    case '/':
      send(res, req, 200, 'text/html; charset=utf-8', landing(opts.version, telemetryPath, opts.status?.() ?? []));
      return;
    default:
      send(res, req, 404, 'text/plain; charset=utf-8', 'not found\n');
  }
}

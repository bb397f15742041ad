import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ExpositionCache } from '../publish/prometheus.js';
import { negotiate, wantsGzip } from '../publish/negotiate.js';
import { logger } from '../log.js';

export interface ServerOptions {
  exposition: ExpositionCache;
  /** Ready once every map job has finished its first cycle. */
  ready: () => boolean;
  version: string;
}

const LANDING = (version: string) => `<!doctype html>
<html><head><meta charset="utf-8"><title>bpf-map-exporter</title></head>
<body><h1>bpf-map-exporter ${version}</h1>
<p>Numbers out of BPF maps.</p>
<ul><li><a href="metrics">/metrics</a></li><li><a href="healthz">/healthz</a></li><li><a href="readyz">/readyz</a></li></ul>
</body></html>
`;

/**
 * The HTTP face of the exporter: /metrics served from the exposition cache (a scrape never reads a
 * map), /healthz, /readyz and a landing page; GET and HEAD only.
 */
export function createExporterServer(opts: ServerOptions): Server {
  const server = createServer((req, res) => {
    handle(req, res, opts).catch((err: unknown) => {
      logger.error({ err, url: req.url }, 'request failed');
      if (!res.headersSent) send(res, req, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  // Bounded waits: a slow or stuck client cannot hold a connection open.
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.keepAliveTimeout = 5_000;
  return server;
}

function send(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(buf.length), ...headers });
  res.end(req.method === 'HEAD' ? undefined : buf);
}

async function handle(req: IncomingMessage, res: ServerResponse, opts: ServerOptions): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, req, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
    return;
  }
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  switch (path) {
    case '/metrics': {
      const { format, contentType } = negotiate(req.headers.accept);
      const gzip = wantsGzip(req.headers['accept-encoding']);
      const body = await opts.exposition.render(format, gzip);
      send(res, req, 200, contentType, body, { Vary: 'Accept, Accept-Encoding', ...(gzip ? { 'Content-Encoding': 'gzip' } : {}) });
      return;
    }
    case '/healthz':
      send(res, req, 200, 'text/plain; charset=utf-8', 'ok\n');
      return;
    case '/readyz':
      if (opts.ready()) send(res, req, 200, 'text/plain; charset=utf-8', 'ready\n');
      else send(res, req, 503, 'text/plain; charset=utf-8', 'not ready: maps not read yet\n');
      return;
    case '/':
      send(res, req, 200, 'text/html; charset=utf-8', LANDING(opts.version));
      return;
    default:
      send(res, req, 404, 'text/plain; charset=utf-8', 'not found\n');
  }
}

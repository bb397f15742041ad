/**
 * The floor for /metrics latency in bench/series.ts: plain Node serving two fixed bodies (a /metrics
 * document and its gzip form, as the daemon last served them) with nothing else to do. Run by the
 * bench after the daemon has exited, scraped by the same client at the same rate: what is left of a
 * scrape's latency on this machine once the exporter does no work at all.
 *
 *   node bench/static-server.mjs <plain file> <gzip file>     # prints {"port":N} when listening
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';

const plain = readFileSync(process.argv[2]);
const gzip = readFileSync(process.argv[3]);
const server = http.createServer((req, res) => {
  const gz = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
  const body = gz ? gzip : plain;
  res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': String(body.length), ...(gz ? { 'Content-Encoding': 'gzip' } : {}) });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));

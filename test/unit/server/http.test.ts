/**
 * The HTTP server in this process with a web config, against real TLS clients on loopback: the
 * client certificate policies Node leaves to the server (checked after the handshake), SAN
 * matching, HTTP/2 turned off, and the exporter's own behaviour behind basic auth (HEAD, 405).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { ExpositionCache } from '../../../src/publish/prometheus.js';
import { createExporterServer, type ExporterServer } from '../../../src/server/http.js';
import { LiveWeb, loadWeb } from '../../../src/server/live-web.js';
import { curlAsync as curl, get } from '../../server/support.js';
import { Certs, type Pair } from './certs.js';

let dir: string;
let certs: Certs;
let ca: Buffer;
let signed: Pair;
let other: Pair;
let stranger: Pair;
const open: ExporterServer[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bme-http-'));
  certs = new Certs(dir);
  ca = readFileSync(certs.ca);
  certs.server('server');
  signed = certs.issue('prometheus', { san: 'DNS:prometheus.example' });
  other = certs.issue('grafana', { san: 'DNS:grafana.example' });
  stranger = certs.issue('stranger', { selfSigned: true });
});

afterAll(() => {
  for (const s of open) s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A server for a web config; its https:// or http:// base. */
async function serve(name: string, yaml: string): Promise<string> {
  const file = join(dir, name);
  writeFileSync(file, yaml);
  const web = new LiveWeb(file, loadWeb(file));
  const s = createExporterServer({ exposition: new ExpositionCache(), notReady: () => undefined, version: 'test', web });
  open.push(s);
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
  return `${s.scheme}://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
}

const tlsWith = (extra: string) => `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n${extra}`;
const client = (p: Pair) => certs.read(p);

describe('the HTTP server with a web config', () => {
  it('RequireAnyClientCert takes any certificate, verified or not, and no connection without one', async () => {
    const base = await serve('any.yml', tlsWith('  client_auth_type: RequireAnyClientCert\n'));
    expect((await get(`${base}/healthz`, { ca, ...client(stranger) })).status).toBe(200);
    expect((await get(`${base}/healthz`, { ca, ...client(signed) })).status).toBe(200);
    expect((await get(`${base}/healthz`, { ca })).status).toBeUndefined();
    expect((await curl(['--cacert', certs.ca, `${base}/healthz`])).status).toBe('000');
    expect((await curl(['--cacert', certs.ca, '--cert', stranger.cert, '--key', stranger.key, `${base}/healthz`])).status).toBe('200');
  });

  it('VerifyClientCertIfGiven lets clients without a certificate in, and verifies one that is given', async () => {
    const base = await serve('ifgiven.yml', tlsWith('  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n'));
    expect((await get(`${base}/healthz`, { ca })).status).toBe(200);
    expect((await get(`${base}/healthz`, { ca, ...client(signed) })).status).toBe(200);
    expect((await get(`${base}/healthz`, { ca, ...client(stranger) })).status).toBeUndefined();
  });

  it('client_allowed_sans keeps out a verified client whose names are not listed', async () => {
    const base = await serve('sans.yml', tlsWith('  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus.example]\n'));
    expect((await get(`${base}/healthz`, { ca, ...client(signed) })).status).toBe(200);
    expect((await get(`${base}/healthz`, { ca, ...client(other) })).status).toBeUndefined();
  });

  it('speaks HTTP/1.1 only when http2 is off, and honours min_version', async () => {
    const base = await serve('h1.yml', `${tlsWith('  min_version: TLS13\n')}http_server_config:\n  http2: false\n`);
    const c = await curl(['--cacert', certs.ca, `${base}/healthz`]);
    expect([c.status, c.version]).toEqual(['200', '1.1']);
    expect((await curl(['--cacert', certs.ca, '--tls-max', '1.2', `${base}/healthz`])).status).toBe('000');
  });

  it('answers 429 beyond rate_limit, but never to the probes', async () => {
    const base = await serve('rate.yml', 'rate_limit:\n  interval: 1h\n  burst: 2\n');
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await get(`${base}/metrics`)).status);
    expect(codes).toEqual([200, 200, 429]);
    const limited = await get(`${base}/`);
    expect([limited.status, limited.headers!['retry-after']]).toEqual([429, '1']);
    for (let i = 0; i < 3; i++) expect((await get(`${base}/healthz`)).status).toBe(200);
  });

  it('answers HEAD and refuses other methods only once the password is right', async () => {
    const base = await serve('auth.yml', `basic_auth_users:\n  alice: ${bcrypt.hashSync('pw', 4)}\n`);
    expect((await curl(['-I', '-u', 'alice:pw', `${base}/metrics`])).status).toBe('200');
    expect((await curl(['-X', 'POST', `${base}/metrics`])).status).toBe('401');
    expect((await curl(['-X', 'POST', '-u', 'alice:pw', `${base}/metrics`])).status).toBe('405');
    expect((await curl(['-X', 'POST', `${base}/healthz`])).status).toBe('405');
  });
});

describe('the HTTP server and malformed requests', () => {
  it('answers a request target no URL parser accepts with 400 and logs nothing, before any authentication', async () => {
    const { logger } = await import('../../../src/log.js');
    const { connect } = await import('node:net');
    const base = await serve('auth-malformed.yml', `basic_auth_users:\n  prometheus: ${bcrypt.hashSync('secret', 4)}\n`);
    const port = Number(new URL(base).port);
    const errors: unknown[] = [];
    const spy = (...a: unknown[]) => void errors.push(a);
    const original = logger.error.bind(logger);
    logger.error = spy as typeof logger.error;
    try {
      for (let i = 0; i < 3; i++) {
        const answer = await new Promise<string>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => s.write('GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
          let got = '';
          s.on('data', (c: Buffer) => (got += c.toString()));
          s.on('end', () => resolve(got));
          s.on('error', reject);
        });
        expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
        expect(answer).toContain('bad request target');
      }
    } finally {
      logger.error = original;
    }
    expect(errors).toEqual([]);
  });
});

/**
 * `run --web.config.file` as a process, with real clients on loopback: HTTPS verified against a
 * test CA (Node and curl, HTTP/2 and HTTP/1.1), an expired certificate refused and then replaced
 * on disk under the running exporter, client certificates required and verified, basic auth, and
 * broken web configs refused with exit 2 before anything listens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { Certs, EXPIRED, type Pair } from '../unit/server/certs.js';
import { curl, get, main, startWithWeb, until, type Running } from './support.js';

let dir: string;
let certs: Certs;
let ca: Buffer;
let server: Pair;
let client: Pair;
let stranger: Pair;
let config: string;
const running: Running[] = [];

/** A web config file in the temp folder. */
function web(name: string, yaml: string): string {
  const file = join(dir, name);
  writeFileSync(file, yaml);
  return file;
}

async function start(webConfig: string): Promise<Running> {
  const r = await startWithWeb(config, webConfig);
  running.push(r);
  return r;
}

/** Replace a file as deployments do: written aside, renamed over. */
function replace(path: string, from: string): void {
  copyFileSync(from, `${path}.new`);
  renameSync(`${path}.new`, path);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bme-web-'));
  certs = new Certs(dir);
  ca = readFileSync(certs.ca);
  server = certs.server('server');
  client = certs.issue('prometheus', { san: 'DNS:prometheus.example' });
  stranger = certs.issue('stranger', { selfSigned: true });
  config = join(dir, 'config.yaml');
  writeFileSync(config, 'maps: []\n');
});

afterAll(async () => {
  await Promise.all(running.map((r) => r.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe('run --web.config.file', () => {
  it('serves HTTPS to clients that trust its CA, over HTTP/2 and HTTP/1.1, and not to one that does not', async () => {
    const r = await start(web('tls.yml', `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n`));
    const base = `https://127.0.0.1:${r.port}`;
    const ok = await get(`${base}/metrics`, { ca });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('bpf_map_exporter_build_info');
    expect(ok.fingerprint).toBe(new X509Certificate(readFileSync(server.cert)).fingerprint256);
    expect((await get(`${base}/metrics`)).error).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const h2 = curl(['--cacert', certs.ca, `${base}/metrics`]);
    expect([h2.code, h2.status, h2.version]).toEqual([0, '200', '2']);
    const h1 = curl(['--http1.1', '--cacert', certs.ca, `${base}/healthz`]);
    expect([h1.code, h1.status, h1.version]).toEqual([0, '200', '1.1']);
    // curl's own exit code for a certificate it cannot verify.
    expect(curl([`${base}/metrics`]).code).toBe(60);
    expect(r.log()).toContain('"scheme":"https"');
  });

  it('serves an expired certificate that clients refuse, then the fresh one its files are replaced with, without a restart', async () => {
    certs.server('expired', EXPIRED);
    certs.server('fresh');
    const cert = join(dir, 'live.crt');
    const key = join(dir, 'live.key');
    copyFileSync(join(dir, 'expired.crt'), cert);
    copyFileSync(join(dir, 'expired.key'), key);
    const r = await start(web('rotate.yml', `tls_server_config:\n  cert_file: live.crt\n  key_file: live.key\n`));
    const base = `https://127.0.0.1:${r.port}`;
    expect(r.log()).toContain('the TLS certificate has expired');
    expect((await get(`${base}/healthz`, { ca })).error).toBe('CERT_HAS_EXPIRED');
    expect(curl(['--cacert', certs.ca, `${base}/healthz`]).code).toBe(60);

    // Rotation as cert-manager does it: key and certificate replaced (for a moment they do not match).
    replace(key, join(dir, 'fresh.key'));
    replace(cert, join(dir, 'fresh.crt'));
    const fresh = new X509Certificate(readFileSync(join(dir, 'fresh.crt'))).fingerprint256;
    const a = await until(() => get(`${base}/healthz`, { ca }), (x) => x.status === 200, 50);
    expect(a.status).toBe(200);
    expect(a.fingerprint).toBe(fresh);
    const c = curl(['--cacert', certs.ca, `${base}/metrics`]);
    expect([c.code, c.status]).toEqual([0, '200']);
    // The same process all along.
    expect(r.proc.exitCode).toBeNull();
    expect(r.log().match(/"msg":"listening"/g)).toHaveLength(1);
    expect(r.log()).toContain('web config reloaded');
    expect(await r.stop()).toBe(0);
  });

  it('with RequireAndVerifyClientCert, refuses clients without a certificate or with one its CA did not sign', async () => {
    const r = await start(web('mtls.yml', `tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
`));
    const base = `https://127.0.0.1:${r.port}`;
    const mine = certs.read(client);
    const theirs = certs.read(stranger);
    expect((await get(`${base}/metrics`, { ca, ...mine })).status).toBe(200);
    const none = await get(`${base}/metrics`, { ca });
    expect(none.status).toBeUndefined();
    // Refused in the handshake itself (TLS 1.3's certificate_required alert).
    expect(none.error).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    const unknown = await get(`${base}/metrics`, { ca, ...theirs });
    expect(unknown.status).toBeUndefined();
    expect(unknown.error).toBeDefined();
    const c = curl(['--cacert', certs.ca, '--cert', client.cert, '--key', client.key, `${base}/metrics`]);
    expect([c.code, c.status]).toEqual([0, '200']);
    expect(curl(['--cacert', certs.ca, `${base}/metrics`]).status).toBe('000');
    expect(curl(['--cacert', certs.ca, '--cert', stranger.cert, '--key', stranger.key, `${base}/metrics`]).status).toBe('000');
  });

  it('asks for basic auth on every path but the probes, and follows password changes in the file', async () => {
    const file = web('auth.yml', `basic_auth_users:
  alice: ${bcrypt.hashSync('wonderland', 4)}
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
`);
    const r = await start(file);
    const base = `http://127.0.0.1:${r.port}`;
    const right = await get(`${base}/metrics`, { auth: 'alice:wonderland' });
    expect(right.status).toBe(200);
    expect(right.headers!['x-content-type-options']).toBe('nosniff');
    for (const auth of ['alice:wrong', 'mallory:wonderland', undefined]) {
      const a = await get(`${base}/metrics`, auth === undefined ? {} : { auth });
      expect(a.status, String(auth)).toBe(401);
      expect(a.headers!['www-authenticate']).toBe('Basic');
      expect(a.headers!['x-content-type-options']).toBe('nosniff');
    }
    expect((await get(`${base}/`)).status).toBe(401);
    expect((await get(`${base}/nope`)).status).toBe(401);
    expect((await get(`${base}/healthz`)).status).toBe(200);
    // Ready once the first inventory is done: polled, but never behind a password.
    expect((await until(() => get(`${base}/readyz`), (x) => x.status === 200, 50)).status).toBe(200);
    expect(curl(['-u', 'alice:wonderland', `${base}/metrics`]).status).toBe('200');
    expect(curl(['-u', 'alice:wrong', `${base}/metrics`]).status).toBe('401');
    expect(curl([`${base}/metrics`]).status).toBe('401');

    // A new password in the file takes over without a restart.
    writeFileSync(file, `basic_auth_users:\n  alice: ${bcrypt.hashSync('looking-glass', 4)}\n`);
    const a = await until(() => get(`${base}/metrics`, { auth: 'alice:looking-glass' }), (x) => x.status === 200, 50);
    expect(a.status).toBe(200);
    expect((await get(`${base}/metrics`, { auth: 'alice:wonderland' })).status).toBe(401);
  });

  it('exits 2 with one positioned line for a broken web config or a certificate file it cannot read, before listening', () => {
    const cases: [string, string, string][] = [
      ['typo.yml', 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth: RequireAndVerifyClientCert\n', 'typo.yml:4:3: tls_server_config.client_auth: unknown key, expected one of cert, key, client_ca, cert_file, key_file, client_auth_type, client_ca_file, client_allowed_sans, min_version, max_version, cipher_suites, prefer_server_cipher_suites, curve_preferences'],
      ['missing.yml', 'tls_server_config:\n  cert_file: gone.crt\n  key_file: server.key\n', `missing.yml:2:14: tls_server_config.cert_file: cannot read ${join(dir, 'gone.crt')}: ENOENT`],
      ['near.yml', 'tls_server_config:\n  cert_file: server.crt\n  key_flie: server.key\n', 'near.yml:3:3: tls_server_config.key_flie: unknown key, did you mean "key_file"?'],
      ['type.yml', 'basic_auth_users: [alice]\n', 'type.yml:1:19: basic_auth_users: got a list, expected a mapping of names to values'],
    ];
    for (const [name, yaml, line] of cases) {
      const file = web(name, yaml);
      const r = spawnSync(process.execPath, ['--import', 'tsx', main, 'run', '--config', config, '--web.listen-address', '127.0.0.1:0', '--web.config.file', file], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, LOG_LEVEL: 'info' } });
      expect(r.status, name).toBe(2);
      expect(r.stderr, name).toBe(`${join(dir, line)}\n`);
      expect(r.stdout, name).toBe('');
    }
    // check says the same without starting anything, and what a good file sets up.
    const checked = spawnSync(process.execPath, ['--import', 'tsx', main, 'check', '--web.config.file', join(dir, 'missing.yml')], { encoding: 'utf8', timeout: 30_000 });
    expect([checked.status, checked.stderr]).toEqual([2, `${join(dir, 'missing.yml')}:2:14: tls_server_config.cert_file: cannot read ${join(dir, 'gone.crt')}: ENOENT\n`]);
    const good = web('good.yml', `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: ${bcrypt.hashSync('x', 4)}\n`);
    const ok = spawnSync(process.execPath, ['--import', 'tsx', main, 'check', '--config', config, '--web.config.file', good], { encoding: 'utf8', timeout: 30_000 });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`${good}: ok \\(TLS, NoClientCert, certificate valid until .* GMT; 1 basic auth user\\)\n$`));
    const gone = spawnSync(process.execPath, ['--import', 'tsx', main, 'run', '--config', config, '--web.config.file', join(dir, 'absent.yml')], { encoding: 'utf8', timeout: 30_000 });
    expect(gone.status).toBe(2);
    expect(gone.stderr).toBe(`${join(dir, 'absent.yml')}: cannot read: ENOENT\n`);
  });
});

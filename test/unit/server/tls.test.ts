import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigErrors } from '../../../src/yaml/errors.js';
import { clientCertRefusal, loadTlsMaterial, subjectAltNames } from '../../../src/server/tls.js';
import { parseWebConfig } from '../../../src/server/web-config.js';
import { Certs, type Pair } from './certs.js';

let dir: string;
let certs: Certs;
let server: Pair;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bme-tls-'));
  certs = new Certs(dir);
  server = certs.server('server');
  certs.server('other');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Write a web config into the temp folder and load its TLS material. */
function load(yaml: string) {
  const file = join(dir, 'web.yml');
  writeFileSync(file, yaml);
  const web = parseWebConfig(yaml, file);
  return loadTlsMaterial(web.tls!, web);
}

function problems(yaml: string): string[] {
  try {
    load(yaml);
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => x.message.replace(dir, 'DIR').replace(dir, 'DIR'));
    throw e;
  }
  throw new Error('no problems');
}

describe('TLS material from a web config', () => {
  it('loads a certificate and key into Node options, mapping Go names to OpenSSL\'s', () => {
    const t = load(`tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: VerifyClientCertIfGiven
  client_ca_file: ca.crt
  min_version: TLS13
  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256]
  curve_preferences: [X25519, CurveP384]
  prefer_server_cipher_suites: false
`);
    expect(t.options.minVersion).toBe('TLSv1.3');
    expect(t.options.maxVersion).toBe('TLSv1.3');
    // TLS 1.3 suites are kept at their defaults: cipher_suites is about TLS 1.2 and lower, as in Go.
    expect(t.options.ciphers).toBe('ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256');
    expect(t.options.ecdhCurve).toBe('X25519:P-384');
    expect(t.options.honorCipherOrder).toBe(false);
    expect(t.requestCert).toBe(true);
    expect(t.rejectUnauthorized).toBe(false);
    expect(t.files).toEqual([server.cert, server.key, certs.ca]);
    expect(Date.parse(t.validTo)).toBeGreaterThan(Date.now());
  });

  it('names the key that gave a file that cannot be read, is not PEM, or does not belong', () => {
    writeFileSync(join(dir, 'junk.pem'), 'not a certificate\n');
    expect(problems('tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n')).toEqual([
      'DIR/web.yml:2:14: tls_server_config.cert_file: cannot read DIR/missing.crt: ENOENT',
    ]);
    expect(problems('tls_server_config:\n  cert_file: junk.pem\n  key_file: junk.pem\n')).toEqual([
      'DIR/web.yml:2:14: tls_server_config.cert_file: no PEM certificate (-----BEGIN CERTIFICATE-----) in DIR/junk.pem',
      expect.stringMatching(/^DIR\/web\.yml:3:13: tls_server_config\.key_file: no private key: /),
    ]);
    expect(problems('tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n')).toEqual([
      'DIR/web.yml:3:13: tls_server_config.key_file: the key does not belong to the certificate in DIR/server.crt',
    ]);
    expect(problems('tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: junk.pem\n')).toEqual([
      'DIR/web.yml:5:19: tls_server_config.client_ca_file: no PEM certificate (-----BEGIN CERTIFICATE-----) in DIR/junk.pem',
    ]);
  });

  it('refuses an encrypted key with a line that says so', () => {
    const enc = join(dir, 'enc.key');
    // An encrypted PKCS#8 copy of the server key.
    execFileSync('openssl', ['pkcs8', '-topk8', '-in', server.key, '-out', enc, '-passout', 'pass:x', '-v2', 'aes-128-cbc']);
    expect(problems('tls_server_config:\n  cert_file: server.crt\n  key_file: enc.key\n')).toEqual([
      'DIR/web.yml:3:13: tls_server_config.key_file: the key is encrypted, expected an unencrypted PEM key',
    ]);
  });

  it('reads subject alternative names as Node writes them', () => {
    expect(subjectAltNames('DNS:a.example, IP Address:127.0.0.1, email:x@y, URI:spiffe://cluster/ns/x')).toEqual(['a.example', '127.0.0.1', 'x@y', 'spiffe://cluster/ns/x']);
    expect(subjectAltNames('URI:"http://x/a,b"')).toEqual(['http://x/a,b']);
    expect(subjectAltNames('')).toEqual([]);
  });

  it('enforces the client auth policies Node leaves to the server', () => {
    const none = { getPeerCertificate: () => ({}) as never, authorized: false, authorizationError: new Error('UNSPECIFIED') };
    const bad = { getPeerCertificate: () => ({ subject: { CN: 'x' }, subjectaltname: 'DNS:x' }) as never, authorized: false, authorizationError: new Error('UNABLE_TO_VERIFY_LEAF_SIGNATURE') };
    const good = { getPeerCertificate: () => ({ subject: { CN: 'p' }, subjectaltname: 'DNS:prometheus.example' }) as never, authorized: true, authorizationError: undefined as unknown as Error };
    const policy = (clientAuthType: Parameters<typeof clientCertRefusal>[1]['clientAuthType'], sans?: string[]) => ({ clientAuthType, ...(sans === undefined ? {} : { clientAllowedSans: sans }) });
    expect(clientCertRefusal(none, policy('NoClientCert'))).toBeUndefined();
    expect(clientCertRefusal(bad, policy('RequestClientCert'))).toBeUndefined();
    expect(clientCertRefusal(none, policy('RequireAnyClientCert'))).toBe('no client certificate');
    expect(clientCertRefusal(bad, policy('RequireAnyClientCert'))).toBeUndefined();
    expect(clientCertRefusal(none, policy('VerifyClientCertIfGiven'))).toBeUndefined();
    expect(clientCertRefusal(bad, policy('VerifyClientCertIfGiven'))).toBe('client certificate not verified: Error: UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(clientCertRefusal(good, policy('VerifyClientCertIfGiven'))).toBeUndefined();
    expect(clientCertRefusal(none, policy('RequireAndVerifyClientCert'))).toBe('no client certificate');
    expect(clientCertRefusal(good, policy('RequireAndVerifyClientCert', ['prometheus.example']))).toBeUndefined();
    expect(clientCertRefusal(good, policy('RequireAndVerifyClientCert', ['other.example']))).toBe('client certificate names prometheus.example, none of them allowed');
  });
});

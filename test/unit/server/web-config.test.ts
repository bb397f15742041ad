import { describe, expect, it } from 'vitest';
import { ConfigErrors } from '../../../src/yaml/errors.js';
import { parseWebConfig } from '../../../src/server/web-config.js';

const HASH = '$2y$10$X1xnSFZXU7g5OwQWwyu43uZUAqStjcwq5r5lqlhuYCeZ0LgP8BQ7y';

/** The lines a broken web config gives. */
function problems(text: string): string[] {
  try {
    parseWebConfig(text, 'web.yml');
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => x.message);
    throw e;
  }
  throw new Error('no problems found');
}

describe('the web config', () => {
  it('reads the exporter-toolkit format with its defaults, paths taken from the file\'s folder', () => {
    const c = parseWebConfig(
      `tls_server_config:
  cert_file: tls/server.crt
  key_file: /etc/keys/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  client_allowed_sans: [prometheus.example]
  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
  curve_preferences: [X25519, CurveP256]
http_server_config:
  http2: false
  headers:
    X-Frame-Options: deny
    Content-Security-Policy: ""
    Strict-Transport-Security: max-age=31536000
basic_auth_users:
  alice: ${HASH}
  bob: ${HASH}
`,
      '/srv/exporter/web.yml',
    );
    expect(c.tls).toEqual({
      certFile: '/srv/exporter/tls/server.crt',
      keyFile: '/etc/keys/server.key',
      clientCaFile: '/srv/exporter/ca.crt',
      clientAuthType: 'RequireAndVerifyClientCert',
      clientAllowedSans: ['prometheus.example'],
      minVersion: 'TLS12',
      maxVersion: 'TLS13',
      cipherSuites: ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'],
      preferServerCipherSuites: true,
      curvePreferences: ['X25519', 'CurveP256'],
    });
    expect(c.http2).toBe(false);
    // A blank header is unset, as exporter-toolkit documents.
    expect(c.headers).toEqual({ 'X-Frame-Options': 'deny', 'Strict-Transport-Security': 'max-age=31536000' });
    expect([...c.users]).toEqual([['alice', HASH], ['bob', HASH]]);
    expect(c.where(['tls_server_config', 'key_file'])).toEqual({ file: '/srv/exporter/web.yml', line: 3, column: 13 });
  });

  it('takes an empty file, or sections with nothing in them, as plain HTTP open to all', () => {
    for (const text of ['', '# nothing\n', 'tls_server_config:\nbasic_auth_users:\nhttp_server_config:\n']) {
      const c = parseWebConfig(text, 'web.yml');
      expect(c.tls).toBeUndefined();
      expect(c.users.size).toBe(0);
      expect(c.http2).toBe(true);
    }
  });

  it('accepts inline PEM text instead of files', () => {
    const c = parseWebConfig('tls_server_config:\n  cert: "-----BEGIN CERTIFICATE-----"\n  key: "k"\n', 'web.yml');
    expect(c.tls?.cert).toBe('-----BEGIN CERTIFICATE-----');
    expect(c.tls?.key).toBe('k');
    expect(c.tls?.certFile).toBeUndefined();
  });

  it('gives one positioned line per problem', () => {
    expect(problems('tls_server_config:\n  cert_fil: a.crt\n  key_file: a.key\n')).toEqual(['web.yml:2:3: tls_server_config.cert_fil: unknown key, did you mean "cert_file"?']);
    expect(problems('basic_auth_user:\n  a: b\n')).toEqual(['web.yml:1:1: basic_auth_user: unknown key, did you mean "basic_auth_users"?']);
    expect(problems('http_server_config:\n  http2: yes please\n')).toEqual(['web.yml:2:10: http_server_config.http2: got the string "yes please", expected true or false']);
    expect(problems('tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Required\n')).toEqual([
      'web.yml:4:21: tls_server_config.client_auth_type: unknown value "Required", expected one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert',
    ]);
    expect(problems('tls_server_config:\n  key_file: b\n')).toEqual(['web.yml:1:1: tls_server_config: missing required key "cert_file" (or "cert" with the PEM text)']);
    expect(problems('tls_server_config:\n  cert: x\n  cert_file: a\n  key_file: b\n')).toEqual(['web.yml:2:3: tls_server_config.cert: conflicts with cert_file, expected one of cert or cert_file']);
    expect(problems('tls_server_config:\n  cert_file: [a\n')[0]).toMatch(/^web\.yml:3:1: invalid YAML: /);
    expect(problems('basic_auth_users:\n  a: x\n  a: y\n')).toEqual(['web.yml:3:3: invalid YAML: Map keys must be unique']);
  });

  it('refuses client auth settings that cannot work', () => {
    expect(problems('tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca\n')).toEqual([
      'web.yml:4:3: tls_server_config.client_ca_file: client CAs are given but client_auth_type is NoClientCert, expected a client_auth_type that asks for client certificates (RequireAndVerifyClientCert)',
    ]);
    expect(problems('tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n')).toEqual([
      'web.yml:4:21: tls_server_config.client_auth_type: RequireAndVerifyClientCert needs client_ca_file (or client_ca), the CAs client certificates are verified against',
    ]);
    expect(problems('tls_server_config:\n  cert_file: a\n  key_file: b\n  client_allowed_sans: [x]\n')).toEqual([
      'web.yml:4:3: tls_server_config.client_allowed_sans: needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert (a client without a certificate has no names to match), not NoClientCert',
    ]);
    expect(problems('tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n')).toEqual(['web.yml:5:16: tls_server_config.max_version: TLS12 is lower than min_version TLS13']);
    expect(problems('tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n  max_version: TLS11\n')).toEqual([
      'web.yml:5:16: tls_server_config.max_version: TLS11 cannot work: OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level, expected TLS12 or TLS13',
    ]);
  });

  it('knows Go\'s cipher suite and curve names, and only those', () => {
    expect(problems('tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n  curve_preferences: [X448]\n')).toEqual([
      'web.yml:4:19: tls_server_config.cipher_suites[0]: unknown cipher suite "TLS_RSA_WITH_RC4_128_SHA", expected a name from docs/web-config.md like TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
      'web.yml:5:23: tls_server_config.curve_preferences[0]: unknown curve "X448", expected one of CurveP256, CurveP384, CurveP521, X25519',
    ]);
  });

  it('allows exporter-toolkit\'s headers with their fixed values, and no others', () => {
    expect(problems('http_server_config:\n  headers:\n    Server: x\n    X-Frame-Options: allow\n    X-Content-Type-Options: nosniff\n')).toEqual([
      'web.yml:3:5: http_server_config.headers.Server: header "Server" cannot be configured, expected one of Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, Content-Security-Policy',
      'web.yml:4:22: http_server_config.headers.X-Frame-Options: "allow" is not allowed, expected one of deny, sameorigin',
    ]);
  });

  it('wants bcrypt hashes and user names basic auth can carry', () => {
    expect(problems(`basic_auth_users:\n  alice: secret\n  "a:b": ${HASH}\n  carol: $2y$03$X1xnSFZXU7g5OwQWwyu43uZUAqStjcwq5r5lqlhuYCeZ0LgP8BQ7y\n`)).toEqual([
      'web.yml:2:10: basic_auth_users.alice: not a bcrypt hash, expected one like $2y$10$ followed by 53 characters (make one with htpasswd -nBC 10 USER)',
      'web.yml:3:3: basic_auth_users.a:b: a user name cannot contain ":" (basic auth splits user and password at the first one)',
      'web.yml:4:10: basic_auth_users.carol: bcrypt cost 03 is out of range, expected 04 to 31',
    ]);
  });

  it('reads rate_limit as exporter-toolkit does: an interval between requests and a burst, 0 for off', () => {
    expect(parseWebConfig('rate_limit:\n  interval: 500ms\n  burst: 20\n', 'web.yml').rateLimit).toEqual({ intervalMs: 500, burst: 20 });
    expect(parseWebConfig('rate_limit:\n  interval: 0\n  burst: 20\n', 'web.yml').rateLimit).toBeUndefined();
    expect(parseWebConfig('rate_limit:\n', 'web.yml').rateLimit).toBeUndefined();
    expect(problems('rate_limit:\n  interval: 1\n  burst: 5\n')).toEqual(['web.yml:2:13: rate_limit.interval: invalid duration "1", expected a number with a unit like 500ms, 5s, 1m, 1h or 1m30s']);
    expect(problems('rate_limit:\n  interval: 1s\n')).toEqual(['web.yml:1:1: rate_limit: burst 0 would refuse every request, expected at least 1 when interval is set']);
    expect(problems('rate_limit:\n  interval: 1s\n  burst: -1\n')[0]).toBe('web.yml:3:10: rate_limit.burst: -1 is out of range, expected an integer of at least 0');
    expect(problems('rate_limit:\n  interval: 1s\n  brust: 3\n')[0]).toBe('web.yml:3:3: rate_limit.brust: unknown key, did you mean "burst"?');
  });
});

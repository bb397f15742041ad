/**
 * TLS from a web config: the certificate, key and client CAs read and checked (each problem named
 * at the key that gave the file), turned into Node's SecureContextOptions, and the client
 * certificate policies Node cannot enforce in the handshake checked once it is done.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { ConfigError, ConfigErrors, formatPath, type ConfigPath } from '../yaml/errors.js';
import { CIPHER_SUITES, CURVES, TLS_VERSIONS, type ClientAuthType, type TlsServerSettings, type WebConfig } from './web-config.js';

/** What a TLS server needs from a web config, loaded and checked. */
export interface TlsMaterial {
  options: SecureContextOptions;
  /** Node's server options that go with it: whether to ask for a client certificate and whether Node rejects a bad one. */
  requestCert: boolean;
  rejectUnauthorized: boolean;
  clientAuthType: ClientAuthType;
  clientAllowedSans?: readonly string[];
  /** The files read, to notice when they change. */
  files: string[];
  /** The server certificate's validity, for logs. */
  validFrom: string;
  validTo: string;
  fingerprint: string;
}

/** OpenSSL's default TLS 1.3 suites: cipher_suites, as in Go, is about TLS 1.2 and lower. */
const TLS13_DEFAULT = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Read and check the TLS settings' files; every problem is a ConfigError at the key that named the file. */
export function loadTlsMaterial(t: TlsServerSettings, web: Pick<WebConfig, 'file' | 'where'>): TlsMaterial {
  const problems: ConfigError[] = [];
  const problem = (path: ConfigPath, message: string) => problems.push(new ConfigError(web.where(path), formatPath(path), message));
  const files: string[] = [];
  const read = (key: string, path: string | undefined, inline: string | undefined): { pem: string; key: string } | undefined => {
    if (path === undefined) return inline === undefined ? undefined : { pem: inline, key: key.replace(/_file$/, '') };
    files.push(path);
    try {
      return { pem: readFileSync(path, 'utf8'), key };
    } catch (e) {
      problem(['tls_server_config', key], `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return undefined;
    }
  };
  const base = 'tls_server_config';

  const certText = read('cert_file', t.certFile, t.cert);
  let cert: X509Certificate | undefined;
  if (certText !== undefined) {
    const first = certText.pem.match(PEM_CERT)?.[0];
    if (first === undefined) problem([base, certText.key], `no PEM certificate (-----BEGIN CERTIFICATE-----) in ${t.certFile ?? 'the text'}`);
    else {
      try {
        cert = new X509Certificate(first);
      } catch (e) {
        problem([base, certText.key], `the certificate does not parse: ${opensslReason(e)}`);
      }
    }
  }
  const keyText = read('key_file', t.keyFile, t.key);
  let key: KeyObject | undefined;
  if (keyText !== undefined) {
    try {
      key = createPrivateKey(keyText.pem);
    } catch (e) {
      const encrypted = (e as { code?: string }).code === 'ERR_MISSING_PASSPHRASE' || /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(keyText.pem);
      problem([base, keyText.key], encrypted ? 'the key is encrypted, expected an unencrypted PEM key' : `no private key: ${opensslReason(e)}`);
    }
  }
  if (cert !== undefined && key !== undefined && !cert.checkPrivateKey(key)) {
    problem([base, keyText!.key], `the key does not belong to the certificate in ${t.certFile ?? 'cert'}`);
  }
  let ca: string | undefined;
  const caText = read('client_ca_file', t.clientCaFile, t.clientCa);
  if (caText !== undefined) {
    const blocks = caText.pem.match(PEM_CERT) ?? [];
    if (blocks.length === 0) problem([base, caText.key], `no PEM certificate (-----BEGIN CERTIFICATE-----) in ${t.clientCaFile ?? 'the text'}`);
    for (const [i, b] of blocks.entries()) {
      try {
        new X509Certificate(b);
      } catch (e) {
        problem([base, caText.key], `certificate ${i + 1} does not parse: ${opensslReason(e)}`);
      }
    }
    ca = caText.pem;
  }
  if (problems.length > 0 || cert === undefined || certText === undefined || keyText === undefined) throw new ConfigErrors(problems);

  const options: SecureContextOptions = {
    cert: certText.pem,
    key: keyText.pem,
    ...(ca === undefined ? {} : { ca }),
    minVersion: TLS_VERSIONS[t.minVersion],
    maxVersion: TLS_VERSIONS[t.maxVersion],
    honorCipherOrder: t.preferServerCipherSuites,
  };
  if (t.cipherSuites !== undefined) {
    const names = t.cipherSuites.map((c) => CIPHER_SUITES[c]);
    // Node reads TLS 1.3 suites from the same list, and none there would turn TLS 1.3 off.
    options.ciphers = [...names, ...(names.some((n) => n.startsWith('TLS_')) ? [] : [TLS13_DEFAULT])].join(':');
  }
  if (t.curvePreferences !== undefined) options.ecdhCurve = t.curvePreferences.map((c) => CURVES[c]).join(':');
  try {
    createSecureContext(options);
  } catch (e) {
    const at: ConfigPath = t.cipherSuites !== undefined && /cipher/i.test(String((e as Error).message)) ? [base, 'cipher_suites'] : [base];
    throw new ConfigErrors([new ConfigError(web.where(at), formatPath(at), `OpenSSL refuses these settings: ${opensslReason(e)}`)]);
  }
  const auth = t.clientAuthType;
  return {
    options,
    requestCert: auth !== 'NoClientCert',
    // Node verifies the chain itself only when it may reject; the other policies are checked after the handshake.
    rejectUnauthorized: auth === 'RequireAndVerifyClientCert',
    clientAuthType: auth,
    ...(t.clientAllowedSans === undefined ? {} : { clientAllowedSans: t.clientAllowedSans }),
    files,
    validFrom: cert.validFrom,
    validTo: cert.validTo,
    fingerprint: cert.fingerprint256,
  };
}

/** OpenSSL's reason without its numeric prefix (`error:0480006C:PEM routines::no start line` -> `no start line`). */
function opensslReason(e: unknown): string {
  const err = e as { reason?: string; message?: string };
  if (typeof err.reason === 'string' && err.reason !== '') return err.reason;
  const message = String(err.message ?? e);
  return message.replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/, '').split('\n')[0];
}

/**
 * Why a connection that finished its handshake must be closed under the client auth policy, or
 * undefined. Node enforces RequireAndVerifyClientCert itself (rejectUnauthorized); requiring any
 * certificate, verifying one only when given, and the allowed SANs are checked here.
 */
export function clientCertRefusal(socket: Pick<TLSSocket, 'getPeerCertificate' | 'authorized' | 'authorizationError'>, tls: Pick<TlsMaterial, 'clientAuthType' | 'clientAllowedSans'>): string | undefined {
  if (tls.clientAuthType === 'NoClientCert' || tls.clientAuthType === 'RequestClientCert') return undefined;
  const peer = socket.getPeerCertificate();
  const given = peer !== null && peer !== undefined && Object.keys(peer).length > 0;
  if (!given) return tls.clientAuthType === 'VerifyClientCertIfGiven' ? undefined : 'no client certificate';
  if ((tls.clientAuthType === 'VerifyClientCertIfGiven' || tls.clientAuthType === 'RequireAndVerifyClientCert') && !socket.authorized) {
    return `client certificate not verified: ${String(socket.authorizationError)}`;
  }
  if (tls.clientAllowedSans !== undefined) {
    const sans = subjectAltNames(peer.subjectaltname ?? '');
    if (!sans.some((s) => tls.clientAllowedSans!.includes(s))) return `client certificate names ${sans.length === 0 ? 'no SAN' : sans.join(', ')}, none of them allowed`;
  }
  return undefined;
}

/** Node quotes names with commas or quotes as JSON strings. */
function unquote(v: string): string {
  try {
    return JSON.parse(v) as string;
  } catch {
    return v;
  }
}

/** Node's `DNS:a, IP Address:1.2.3.4, URI:"x,y"` -> `['a', '1.2.3.4', 'x,y']`. */
export function subjectAltNames(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|, )(?:DNS|IP Address|email|URI|othername|DirName|Registered ID):("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const v = m[1];
    out.push(v.startsWith('"') ? unquote(v) : v);
  }
  return out;
}

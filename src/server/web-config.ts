/**
 * The web config file (`--web.config.file`): TLS, HTTP headers and basic auth for the exporter's
 * HTTP server, in the format of the Prometheus exporter-toolkit, so that what Prometheus users
 * already write for node_exporter works here. Parsed with positions like the main config: every
 * problem is one `FILE:LINE:COLUMN: path: what is wrong` line (a ConfigErrors).
 */
import { dirname, resolve } from 'node:path';
import { isScalar, YAMLMap } from 'yaml';
import { ConfigError, ConfigErrors, formatPath, type ConfigPath } from '../yaml/errors.js';
import { Locator } from '../yaml/locate.js';
import { parseYaml, readConfigText } from '../yaml/parse.js';
import { type ObjectShape, parseDuration } from '../yaml/shapes.js';
import type { SourceRef } from '../yaml/locate.js';
import { Validator } from '../yaml/validate.js';

export const CLIENT_AUTH_TYPES = ['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert'] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

/** exporter-toolkit's version names and Node's (tls.SecureVersion). */
export const TLS_VERSIONS = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' } as const;
export type TlsVersionName = keyof typeof TLS_VERSIONS;

/**
 * Cipher suites by the names Go (and so exporter-toolkit) accepts, with OpenSSL's name for each.
 * Go's list of secure suites plus its CBC/RSA-key-exchange ones that OpenSSL still offers; RC4 and
 * 3DES are not here (Go refuses them too). The TLS 1.3 suites keep their names in OpenSSL.
 */
export const CIPHER_SUITES: Readonly<Record<string, string>> = {
  TLS_AES_128_GCM_SHA256: 'TLS_AES_128_GCM_SHA256',
  TLS_AES_256_GCM_SHA384: 'TLS_AES_256_GCM_SHA384',
  TLS_CHACHA20_POLY1305_SHA256: 'TLS_CHACHA20_POLY1305_SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: 'ECDHE-ECDSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: 'ECDHE-RSA-AES128-SHA256',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_CBC_SHA256: 'AES128-SHA256',
};

/** Go's curve names and OpenSSL's. */
export const CURVES: Readonly<Record<string, string>> = { CurveP256: 'P-256', CurveP384: 'P-384', CurveP521: 'P-521', X25519: 'X25519' };

/**
 * Headers a web config may add to every response, and the values allowed where the header has a
 * fixed set (exporter-toolkit keeps this list closed so exporters behave alike).
 */
export const EXTRA_HEADERS: Readonly<Record<string, readonly string[] | undefined>> = {
  'Strict-Transport-Security': undefined,
  'X-Content-Type-Options': ['nosniff'],
  'X-Frame-Options': ['deny', 'sameorigin'],
  'X-XSS-Protection': undefined,
  'Content-Security-Policy': undefined,
};

export interface TlsServerSettings {
  /** Absolute paths (relative ones are taken from the web config file's folder), or inline PEM. */
  certFile?: string;
  cert?: string;
  keyFile?: string;
  key?: string;
  clientAuthType: ClientAuthType;
  clientCaFile?: string;
  clientCa?: string;
  clientAllowedSans?: readonly string[];
  minVersion: TlsVersionName;
  maxVersion: TlsVersionName;
  /** Go names, as written. */
  cipherSuites?: readonly string[];
  preferServerCipherSuites: boolean;
  curvePreferences?: readonly string[];
}

export interface WebConfig {
  file: string;
  /** Absent: plain HTTP. */
  tls?: TlsServerSettings;
  /** HTTP/2 over TLS (ALPN h2, HTTP/1.1 still served); ignored without TLS. */
  http2: boolean;
  /** Extra response headers (blank ones dropped). */
  headers: Readonly<Record<string, string>>;
  /** user -> bcrypt hash; empty: no basic auth. */
  users: ReadonlyMap<string, string>;
  /** A token bucket: one request per `intervalMs`, bursts of `burst`; absent: no limit. */
  rateLimit?: { intervalMs: number; burst: number };
  /** Where a key path is written, for problems found later (a certificate that does not load). */
  where(path: ConfigPath): SourceRef;
}

const str = (description: string) => ({ shape: { type: 'string' as const, nonEmpty: true }, description });
const names = (known: readonly string[], what: string) => ({
  type: 'list' as const,
  minItems: 1,
  items: {
    type: 'string' as const,
    check: (v: string) => (known.includes(v) ? undefined : known.length > 8 ? `unknown ${what} "${v}", expected a name from docs/web-config.md like ${known[5]}` : `unknown ${what} "${v}", expected one of ${known.join(', ')}`),
  },
});

const TLS_SHAPE: ObjectShape = {
  type: 'object',
  props: {
    cert: str('The server certificate as PEM text (instead of cert_file).'),
    key: str('The server key as PEM text (instead of key_file).'),
    client_ca: str('CA certificates for client certificates as PEM text (instead of client_ca_file).'),
    cert_file: str('The server certificate (PEM; a chain may follow it), relative to the web config file.'),
    key_file: str('The server key (PEM, unencrypted), relative to the web config file.'),
    client_auth_type: { shape: { type: 'string', enum: CLIENT_AUTH_TYPES }, default: 'NoClientCert', description: 'Whether clients must present a certificate, and whether it is verified.' },
    client_ca_file: str('CA certificates that client certificates are verified against.'),
    client_allowed_sans: { shape: { type: 'list', minItems: 1, items: { type: 'string', nonEmpty: true } }, description: 'A client certificate must carry one of these subject alternative names.' },
    min_version: { shape: { type: 'string', enum: Object.keys(TLS_VERSIONS) }, default: 'TLS12', description: 'Lowest TLS version accepted.' },
    max_version: { shape: { type: 'string', enum: Object.keys(TLS_VERSIONS) }, default: 'TLS13', description: 'Highest TLS version accepted.' },
    cipher_suites: { shape: names(Object.keys(CIPHER_SUITES), 'cipher suite'), description: 'Cipher suites for TLS 1.2 and lower, by their Go names.' },
    prefer_server_cipher_suites: { shape: { type: 'boolean' }, default: true, description: 'The server picks the suite by its own order.' },
    curve_preferences: { shape: names(Object.keys(CURVES), 'curve'), description: 'Key exchange curves, in order of preference.' },
  },
};

const WEB_CONFIG_SHAPE: ObjectShape = {
  type: 'object',
  props: {
    tls_server_config: { shape: TLS_SHAPE, description: 'Serve HTTPS.' },
    http_server_config: {
      shape: {
        type: 'object',
        props: {
          http2: { shape: { type: 'boolean' }, default: true, description: 'Offer HTTP/2 over TLS. Needs a restart to change.' },
          headers: { shape: { type: 'dict', keys: 'string' }, description: 'Extra response headers.' },
        },
      },
      description: 'HTTP settings.',
    },
    basic_auth_users: { shape: { type: 'dict', keys: 'string' }, description: 'User names and their bcrypt hashes.' },
    rate_limit: {
      shape: {
        type: 'object',
        props: {
          interval: { shape: { type: 'text' }, description: 'Time between two requests, as a duration (500ms, 1s); 0 turns the limit off.' },
          burst: { shape: { type: 'integer', min: 0 }, description: 'Requests allowed at once after a quiet time.' },
        },
      },
      description: 'Limit the request rate (429 beyond it).',
    },
  },
};

/** `$2a$`, `$2b$` or `$2y$`, a two-digit cost, then 22 characters of salt and 31 of hash. */
const BCRYPT = /^\$2[aby]?\$(\d\d)\$[./A-Za-z0-9]{53}$/;
/** What Node lets a header value be (no CR, LF or other control characters). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

interface RawTls {
  cert?: string; key?: string; client_ca?: string; cert_file?: string; key_file?: string;
  client_auth_type: ClientAuthType; client_ca_file?: string; client_allowed_sans?: string[];
  min_version: TlsVersionName; max_version: TlsVersionName; cipher_suites?: string[];
  prefer_server_cipher_suites: boolean; curve_preferences?: string[];
}
interface RawWeb {
  tls_server_config?: RawTls;
  http_server_config?: { http2: boolean; headers?: Record<string, string> };
  basic_auth_users?: Record<string, string>;
  rate_limit?: { interval?: string; burst?: number };
}

/** Parse and validate a web config; `file` names it in messages and anchors relative paths. */
export function parseWebConfig(text: string, file: string): WebConfig {
  // Duplicate keys are YAML problems too (the yaml package's uniqueKeys, on by default).
  const { doc, lines } = parseYaml(text, file);
  // A key written with nothing after it means what leaving it out means (no TLS, no users), as in exporter-toolkit.
  for (const path of [['tls_server_config'], ['http_server_config', 'headers'], ['http_server_config'], ['basic_auth_users'], ['rate_limit']]) {
    const node = doc.getIn(path, true);
    if (node === null || (isScalar(node) && node.value === null)) doc.deleteIn(path);
  }
  const loc = new Locator(doc, lines, file);
  const validator = new Validator(loc);
  const raw = validator.document(WEB_CONFIG_SHAPE, doc.contents ?? new YAMLMap()) as RawWeb | undefined;
  const report = (path: ConfigPath, message: string, at: 'key' | 'value' = 'value') => {
    const f = loc.find(path);
    validator.report(at === 'key' && f.key !== null ? loc.pos(f.key) : loc.valuePos(f), path, message);
  };

  const rateLimit = raw?.rate_limit === undefined || validator.problems.some((p) => p.path[0] === 'rate_limit') ? undefined : checkRateLimit(raw.rate_limit, report);
  // Rules across TLS keys are judged once the keys themselves are right (a misspelt cert_file is not also missing).
  if (raw?.tls_server_config !== undefined && !validator.problems.some((p) => p.path[0] === 'tls_server_config')) checkTls(raw.tls_server_config, report);
  if (raw?.http_server_config?.headers !== undefined) checkHeaders(raw.http_server_config.headers, report);
  if (raw?.basic_auth_users !== undefined) checkUsers(raw.basic_auth_users, report);

  if (validator.problems.length > 0 || raw === undefined) {
    throw new ConfigErrors(validator.problems.map((p) => new ConfigError(p.at, formatPath(p.path), p.message)));
  }
  const folder = dirname(file);
  const abs = (p: string | undefined) => (p === undefined ? undefined : resolve(folder, p));
  const t = raw.tls_server_config;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw.http_server_config?.headers ?? {})) if (v.trim() !== '') headers[k] = v;
  return {
    file,
    ...(t === undefined
      ? {}
      : {
          tls: {
            ...(t.cert_file === undefined ? { cert: t.cert } : { certFile: abs(t.cert_file) }),
            ...(t.key_file === undefined ? { key: t.key } : { keyFile: abs(t.key_file) }),
            ...(t.client_ca_file !== undefined ? { clientCaFile: abs(t.client_ca_file) } : t.client_ca !== undefined ? { clientCa: t.client_ca } : {}),
            clientAuthType: t.client_auth_type,
            ...(t.client_allowed_sans === undefined ? {} : { clientAllowedSans: t.client_allowed_sans }),
            minVersion: t.min_version,
            maxVersion: t.max_version,
            ...(t.cipher_suites === undefined ? {} : { cipherSuites: t.cipher_suites }),
            preferServerCipherSuites: t.prefer_server_cipher_suites,
            ...(t.curve_preferences === undefined ? {} : { curvePreferences: t.curve_preferences }),
          },
        }),
    http2: raw.http_server_config?.http2 ?? true,
    headers,
    users: new Map(Object.entries(raw.basic_auth_users ?? {})),
    ...(rateLimit === undefined ? {} : { rateLimit }),
    where: (path) => loc.where(path),
  };
}

/** Read and parse a web config file. */
export function loadWebConfig(path: string): WebConfig {
  return parseWebConfig(readConfigText(path), path);
}

type Report = (path: ConfigPath, message: string, at?: 'key' | 'value') => void;

function checkTls(t: RawTls, report: Report): void {
  const base = ['tls_server_config'];
  const pair = (inline: 'cert' | 'key', fileKey: 'cert_file' | 'key_file') => {
    if (t[inline] !== undefined && t[fileKey] !== undefined) report([...base, inline], `conflicts with ${fileKey}, expected one of ${inline} or ${fileKey}`, 'key');
    else if (t[inline] === undefined && t[fileKey] === undefined) report(base, `missing required key "${fileKey}" (or "${inline}" with the PEM text)`, 'key');
  };
  pair('cert', 'cert_file');
  pair('key', 'key_file');
  if (t.client_ca !== undefined && t.client_ca_file !== undefined) report([...base, 'client_ca'], 'conflicts with client_ca_file, expected one of client_ca or client_ca_file', 'key');
  const ca = t.client_ca_file !== undefined ? 'client_ca_file' : t.client_ca !== undefined ? 'client_ca' : undefined;
  const auth = t.client_auth_type;
  if (ca !== undefined && auth === 'NoClientCert') {
    report([...base, ca], 'client CAs are given but client_auth_type is NoClientCert, expected a client_auth_type that asks for client certificates (RequireAndVerifyClientCert)', 'key');
  }
  if (ca === undefined && (auth === 'VerifyClientCertIfGiven' || auth === 'RequireAndVerifyClientCert')) {
    // Node would verify against its bundle of public CAs, which is almost never what is meant.
    report([...base, 'client_auth_type'], `${auth} needs client_ca_file (or client_ca), the CAs client certificates are verified against`);
  }
  if (t.client_allowed_sans !== undefined && auth !== 'RequireAnyClientCert' && auth !== 'RequireAndVerifyClientCert') {
    report([...base, 'client_allowed_sans'], `needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert (a client without a certificate has no names to match), not ${auth}`, 'key');
  }
  const order = Object.keys(TLS_VERSIONS);
  if (order.indexOf(t.min_version) > order.indexOf(t.max_version)) report([...base, 'max_version'], `${t.max_version} is lower than min_version ${t.min_version}`);
  else if (t.max_version === 'TLS10' || t.max_version === 'TLS11') {
    // Accepted as a minimum (TLS 1.2 and 1.3 still work), but as the maximum no client could connect.
    report([...base, 'max_version'], `${t.max_version} cannot work: OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level, expected TLS12 or TLS13`);
  }
}

/** Go's time.Duration text as the toolkit reads it: a duration with units, or 0 for off. */
function checkRateLimit(r: { interval?: string; burst?: number }, report: Report): { intervalMs: number; burst: number } | undefined {
  const text = (r.interval ?? '0').trim();
  if (/^0+(?:\.0+)?(?:h|m|s|ms)?$/.test(text)) return undefined;
  const ms = parseDuration(text);
  if (typeof ms === 'string') {
    report(['rate_limit', 'interval'], ms);
    return undefined;
  }
  const burst = r.burst ?? 0;
  if (burst < 1) {
    report(r.burst === undefined ? ['rate_limit'] : ['rate_limit', 'burst'], `burst ${burst} would refuse every request, expected at least 1 when interval is set`, r.burst === undefined ? 'key' : 'value');
    return undefined;
  }
  return { intervalMs: ms, burst };
}

function checkHeaders(headers: Record<string, string>, report: Report): void {
  for (const [name, value] of Object.entries(headers)) {
    const path = ['http_server_config', 'headers', name];
    if (!Object.hasOwn(EXTRA_HEADERS, name)) {
      report(path, `header "${name}" cannot be configured, expected one of ${Object.keys(EXTRA_HEADERS).join(', ')}`, 'key');
      continue;
    }
    const allowed = EXTRA_HEADERS[name];
    if (value.trim() === '') continue;
    if (!HEADER_VALUE.test(value)) report(path, 'the value has control characters, which a header cannot carry');
    else if (allowed !== undefined && !allowed.includes(value)) report(path, `"${value}" is not allowed, expected one of ${allowed.join(', ')}`);
  }
}

function checkUsers(users: Record<string, string>, report: Report): void {
  for (const [user, hash] of Object.entries(users)) {
    const path = ['basic_auth_users', user];
    if (user.includes(':')) report(path, 'a user name cannot contain ":" (basic auth splits user and password at the first one)', 'key');
    else if (user === '') report(path, 'a user name cannot be empty', 'key');
    const m = BCRYPT.exec(hash);
    if (m === null) report(path, 'not a bcrypt hash, expected one like $2y$10$ followed by 53 characters (make one with htpasswd -nBC 10 USER)');
    else if (Number(m[1]) < 4 || Number(m[1]) > 31) report(path, `bcrypt cost ${m[1]} is out of range, expected 04 to 31`);
  }
}

/**
 * The web config as it is on disk now. Its file and the certificate, key and client CA files it
 * names are looked at (stat: mtime, size, inode) at most once a second, when a connection or a
 * request comes; when one changed, everything is loaded again and, if it is good, takes effect for
 * new connections (TLS) and requests (users, headers). A bad new state keeps the old one and is
 * logged once, until the files change again. Nothing here throws: callers are connection and
 * request handlers.
 */
import { statSync } from 'node:fs';
import { ConfigErrors } from '../yaml/errors.js';
import { logger } from '../log.js';
import { BasicAuth } from './auth.js';
import { RateLimiter } from './rate-limit.js';
import { loadTlsMaterial, type TlsMaterial } from './tls.js';
import { loadWebConfig, type WebConfig } from './web-config.js';

export interface LoadedWeb {
  config: WebConfig;
  tls?: TlsMaterial;
  auth?: BasicAuth;
  limiter?: RateLimiter;
  /** The stamps of the files this state was read from, in a fixed order. */
  stamps: string;
}

/** mtime, size and inode of a file (following links, as Kubernetes' secret volumes need), or why it has none. */
function stamp(path: string): string {
  try {
    const s = statSync(path, { bigint: true });
    return `${path}@${s.mtimeNs}:${s.size}:${s.ino}:${s.dev}`;
  } catch (e) {
    return `${path}@${(e as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}

function stamps(file: string, tlsFiles: readonly string[]): string {
  return [file, ...tlsFiles].map(stamp).join('\n');
}

/** Load a web config and everything it names; throws ConfigErrors. */
export function loadWeb(file: string): LoadedWeb {
  // Stamped before reading: a file changed in between is read again at the next look.
  const own = stamp(file);
  const config = loadWebConfig(file);
  const tlsFiles = [config.tls?.certFile, config.tls?.keyFile, config.tls?.clientCaFile].filter((f): f is string => f !== undefined);
  const theirs = tlsFiles.map(stamp);
  const tls = config.tls === undefined ? undefined : loadTlsMaterial(config.tls, config);
  return {
    config,
    ...(tls === undefined ? {} : { tls }),
    ...(config.users.size === 0 ? {} : { auth: new BasicAuth(config.users) }),
    ...(config.rateLimit === undefined ? {} : { limiter: new RateLimiter(config.rateLimit.intervalMs, config.rateLimit.burst) }),
    stamps: [own, ...theirs].join('\n'),
  };
}

/** A short description of a loaded state for logs. */
export function describeWeb(w: LoadedWeb): Record<string, unknown> {
  return {
    webConfig: w.config.file,
    tls: w.tls !== undefined,
    ...(w.tls === undefined ? {} : { http2: w.config.http2, clientAuth: w.tls.clientAuthType, certificateValidTo: w.tls.validTo, certificateSha256: w.tls.fingerprint }),
    basicAuthUsers: w.config.users.size,
    ...(w.config.rateLimit === undefined ? {} : { rateLimit: w.config.rateLimit }),
  };
}

/** Warn about a certificate that clients will refuse (it is served all the same: replacing it is the fix). */
export function warnValidity(w: LoadedWeb, now = Date.now()): void {
  if (w.tls === undefined) return;
  if (Date.parse(w.tls.validTo) < now) logger.warn({ certificateValidTo: w.tls.validTo, file: w.config.tls?.certFile }, 'the TLS certificate has expired; clients will refuse it until cert_file is replaced');
  else if (Date.parse(w.tls.validFrom) > now) logger.warn({ certificateValidFrom: w.tls.validFrom, file: w.config.tls?.certFile }, 'the TLS certificate is not valid yet');
}

export interface LiveWebOptions {
  /** How long between looks at the files. */
  intervalMs?: number;
  now?: () => number;
}

export class LiveWeb {
  private state: LoadedWeb;
  private lastLook: number;
  /** Stamps of a state that failed to load: not tried (nor logged) again until something changes. */
  private failed: string | undefined;
  private readonly intervalMs: number;
  private readonly now: () => number;
  /** Puts new TLS material into the server (set by the server); new connections get it. */
  onTls: ((tls: TlsMaterial) => void) | undefined;

  constructor(
    readonly file: string,
    initial: LoadedWeb,
    opts: LiveWebOptions = {},
  ) {
    this.state = initial;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.now = opts.now ?? Date.now;
    this.lastLook = this.now();
  }

  get current(): LoadedWeb {
    return this.state;
  }

  /** Look at the files if the last look is old enough (or `now` is asked for), and reload what changed. Never throws. */
  refresh(at: 'when-due' | 'now' = 'when-due'): void {
    const now = this.now();
    if (at === 'when-due' && now - this.lastLook < this.intervalMs) return;
    this.lastLook = now;
    try {
      this.reloadIfChanged();
    } catch (err) {
      logger.error({ err, webConfig: this.file }, 'web config reload failed; the old one stays in effect');
    }
  }

  private reloadIfChanged(): void {
    const old = this.state;
    const seen = stamps(this.file, old.tls?.files ?? []);
    if (seen === old.stamps || seen === this.failed) return;
    let next: LoadedWeb;
    try {
      next = loadWeb(this.file);
    } catch (e) {
      if (!(e instanceof ConfigErrors)) throw e;
      this.failed = seen;
      logger.error({ webConfig: this.file, problems: e.errors.map((x) => x.message) }, 'web config reload refused: the new files have problems; the old ones stay in effect');
      return;
    }
    const restart = (old.tls === undefined) !== (next.tls === undefined) ? 'turning TLS on or off' : old.tls !== undefined && old.config.http2 !== next.config.http2 ? 'changing http2' : undefined;
    if (restart !== undefined) {
      this.failed = seen;
      logger.error({ webConfig: this.file }, `web config reload refused: ${restart} needs a restart; the old web config stays in effect`);
      return;
    }
    // Unchanged parts keep their state: the remembered passwords, the rate limiter's bucket.
    if (old.auth !== undefined && sameEntries(old.config.users, next.config.users)) next.auth = old.auth;
    const [a, b] = [old.config.rateLimit, next.config.rateLimit];
    if (old.limiter !== undefined && a !== undefined && b !== undefined && a.intervalMs === b.intervalMs && a.burst === b.burst) next.limiter = old.limiter;
    if (next.tls !== undefined) this.onTls?.(next.tls);
    this.state = next;
    this.failed = undefined;
    logger.info(describeWeb(next), 'web config reloaded');
    warnValidity(next);
  }
}

function sameEntries(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

/**
 * Basic auth against bcrypt hashes (the web config's basic_auth_users).
 *
 * bcrypt is slow on purpose (a cost of 10 is ~60 ms of CPU in bcryptjs), and Prometheus sends the
 * same credentials on every scrape, so a verified (user, hash, password) is remembered. Only
 * successes are remembered: a wrong password always costs a full bcrypt, so the time of an answer
 * does not tell a wrong password that was tried before from one that was not, and a flood of wrong
 * passwords cannot push the scraper's entry out of the cache. The cache holds an HMAC under a key
 * made at start, never a password. User names are compared in constant time, and an unknown user
 * costs the same bcrypt as a known one (against a configured hash, with the result discarded).
 * Verifications run one at a time (each yields to the event loop, so /metrics of a cached scraper
 * and the probes are not held up), with a bounded queue behind them.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';

export type AuthResult = 'ok' | 'denied' | 'busy';

/** Remembered successes; oldest dropped first. */
const CACHE_MAX = 256;
/** Verifications waiting for the one running; beyond this a request is answered 503 at once. */
const QUEUE_MAX = 32;

export class BasicAuth {
  private readonly users: { digest: Buffer; hash: string }[];
  private readonly cache = new Map<string, true>();
  private readonly secret = randomBytes(32);
  private queue: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  /** `users`: user name -> bcrypt hash; must not be empty. */
  constructor(users: ReadonlyMap<string, string>) {
    if (users.size === 0) throw new Error('BasicAuth needs at least one user');
    this.users = [...users].map(([user, hash]) => ({ digest: digest(user), hash }));
  }

  /** Check an Authorization header. */
  async check(header: string | undefined): Promise<AuthResult> {
    const creds = parseBasic(header);
    if (creds === undefined) return 'denied';
    // Every configured user is compared, with no early exit: the time does not depend on which matched.
    const given = digest(creds.user);
    let found: { hash: string } | undefined;
    for (const u of this.users) if (timingSafeEqual(u.digest, given) && found === undefined) found = u;
    const hash = found?.hash ?? this.users[0].hash;
    const key = createHmac('sha256', this.secret).update(creds.user).update('\0').update(hash).update('\0').update(creds.password).digest('base64');
    if (found !== undefined && this.cache.has(key)) return 'ok';
    if (this.waiting >= QUEUE_MAX) return 'busy';
    this.waiting++;
    const run = this.queue.then(() => bcrypt.compare(creds.password, hash));
    this.queue = run.catch(() => undefined);
    let match: boolean;
    try {
      match = await run;
    } catch {
      match = false;
    } finally {
      this.waiting--;
    }
    if (!match || found === undefined) return 'denied';
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, true);
    return 'ok';
  }
}

/** SHA-256 of a user name: equal lengths for timingSafeEqual whatever the names. */
function digest(user: string): Buffer {
  return createHash('sha256').update(user, 'utf8').digest();
}

/** `Basic base64(user:password)` -> the pair; anything else is undefined. */
export function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (header === undefined) return undefined;
  const m = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header);
  if (m === null) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

import { ConfigErrors } from '../src/yaml/errors.js';
import { loadWeb } from '../src/server/live-web.js';

/** `check --web.config.file`: the web config parses and its certificate, key and CA files load. */
export function checkWeb(file: string): { out: string[]; err: string[]; code: number } {
  try {
    const w = loadWeb(file);
    const what = [
      w.tls === undefined ? 'plain HTTP' : `TLS, ${w.tls.clientAuthType}, certificate valid until ${w.tls.validTo}`,
      `${w.config.users.size} basic auth user${w.config.users.size === 1 ? '' : 's'}`,
      ...(w.config.rateLimit === undefined ? [] : [`rate limit ${w.config.rateLimit.burst} per ${w.config.rateLimit.intervalMs} ms`]),
    ];
    const expired = w.tls !== undefined && Date.parse(w.tls.validTo) < Date.now();
    return { out: [`${file}: ok (${what.join('; ')})`], err: expired ? [`${file}: warning: the certificate expired on ${w.tls!.validTo}`] : [], code: 0 };
  } catch (e) {
    if (e instanceof ConfigErrors) return { out: [], err: e.errors.map((x) => x.message), code: 2 };
    throw e;
  }
}

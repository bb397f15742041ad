/**
 * Certificates for tests, made by the openssl command line into a folder: a CA, server and client
 * certificates it signs (the server's for 127.0.0.1 and localhost), an expired one with explicit
 * dates (`openssl ca -startdate/-enddate`, which OpenSSL 3.0 has; `x509 -not_after` came in 3.4),
 * and a self-signed client that no CA vouches for.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pair {
  cert: string;
  key: string;
}

export class Certs {
  constructor(readonly dir: string) {
    writeFileSync(join(dir, 'ca.cnf'), ['[ ca ]', 'default_ca = d', '[ d ]', 'database = index.txt', 'new_certs_dir = .', 'certificate = ca.crt', 'private_key = ca.key',
      'serial = serial', 'default_md = sha256', 'policy = p', 'unique_subject = no', '[ p ]', 'commonName = supplied', ''].join('\n'));
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'serial'), '1000\n');
    this.openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=test-ca', '-keyout', 'ca.key', '-out', 'ca.crt']);
  }

  /** The CA's certificate file. */
  get ca(): string {
    return join(this.dir, 'ca.crt');
  }

  private openssl(args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: 'pipe' });
  }

  /**
   * A key and a certificate signed by the CA, named `name`.crt/.key. `dates`: explicit validity as
   * YYYYMMDDHHMMSSZ; otherwise valid from now for a day. `san` for server certificates.
   */
  issue(name: string, opts: { cn?: string; san?: string; dates?: { start: string; end: string }; selfSigned?: boolean } = {}): Pair {
    const cert = join(this.dir, `${name}.crt`);
    const key = join(this.dir, `${name}.key`);
    const subj = `/CN=${opts.cn ?? name}`;
    if (opts.selfSigned === true) {
      this.openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', subj, '-keyout', key, '-out', cert]);
      return { cert, key };
    }
    this.openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', subj, '-keyout', key, '-out', `${name}.csr`]);
    const ext = join(this.dir, `${name}.ext`);
    writeFileSync(ext, opts.san === undefined ? 'basicConstraints=CA:FALSE\n' : `basicConstraints=CA:FALSE\nsubjectAltName=${opts.san}\n`);
    const dates = opts.dates ?? { start: stamp(Date.now() - 60_000), end: stamp(Date.now() + 86_400_000) };
    this.openssl(['ca', '-batch', '-config', 'ca.cnf', '-in', `${name}.csr`, '-out', cert, '-startdate', dates.start, '-enddate', dates.end, '-extfile', ext, '-notext']);
    return { cert, key };
  }

  /** A server certificate for 127.0.0.1 and localhost. */
  server(name: string, dates?: { start: string; end: string }): Pair {
    return this.issue(name, { cn: 'localhost', san: 'IP:127.0.0.1,DNS:localhost', ...(dates === undefined ? {} : { dates }) });
  }

  read(p: Pair): { cert: Buffer; key: Buffer } {
    return { cert: readFileSync(p.cert), key: readFileSync(p.key) };
  }
}

/** A time as openssl ca wants it: YYYYMMDDHHMMSSZ. */
export function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Validity that ended long ago. */
export const EXPIRED = { start: '20200101000000Z', end: '20200102000000Z' };

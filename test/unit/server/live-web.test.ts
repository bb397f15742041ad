import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { logger } from '../../../src/log.js';
import { LiveWeb, loadWeb } from '../../../src/server/live-web.js';
import type { TlsMaterial } from '../../../src/server/tls.js';
import { Certs, type Pair } from './certs.js';

let dir: string;
let certs: Certs;
let first: Pair;
let second: Pair;
const hash = (pw: string) => bcrypt.hashSync(pw, 4);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bme-reload-'));
  certs = new Certs(dir);
  first = certs.server('first');
  second = certs.server('second');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Replace a file the way deployments do: write aside, rename over. */
function replace(path: string, text: string | Buffer): void {
  writeFileSync(`${path}.new`, text);
  renameSync(`${path}.new`, path);
}

/** A LiveWeb on a clock the test moves. */
function live(file: string) {
  let now = 0;
  const web = new LiveWeb(file, loadWeb(file), { now: () => now });
  const applied: TlsMaterial[] = [];
  web.onTls = (t) => applied.push(t);
  return { web, applied, tick: (ms = 1000) => (now += ms) };
}

describe('the live web config', () => {
  it('applies new users and headers, looking at most once an interval', () => {
    const file = join(dir, 'users.yml');
    writeFileSync(file, `basic_auth_users:\n  alice: ${hash('a')}\n`);
    const { web, tick } = live(file);
    const before = web.current;
    replace(file, `basic_auth_users:\n  bob: ${hash('b')}\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n`);
    tick(500);
    web.refresh();
    expect(web.current).toBe(before);
    web.refresh('now');
    expect([...web.current.config.users.keys()]).toEqual(['bob']);
    expect(web.current.config.headers).toEqual({ 'X-Content-Type-Options': 'nosniff' });
    const after = web.current;
    tick();
    web.refresh();
    expect(web.current).toBe(after);
    // A change elsewhere keeps the users' state (remembered passwords) when the users are the same.
    replace(file, `basic_auth_users:\n  bob: ${[...after.config.users.values()][0]}\n`);
    tick();
    web.refresh();
    expect(web.current).not.toBe(after);
    expect(web.current.auth).toBe(after.auth);
  });

  it('keeps the old state when the new file is broken, logging once until it changes again', () => {
    const file = join(dir, 'broken.yml');
    writeFileSync(file, `basic_auth_users:\n  alice: ${hash('a')}\n`);
    const { web, tick } = live(file);
    const errors = vi.spyOn(logger, 'error');
    replace(file, 'basic_auth_users:\n  alice: plaintext\n');
    for (let i = 0; i < 3; i++) {
      tick();
      web.refresh();
    }
    expect([...web.current.config.users.keys()]).toEqual(['alice']);
    expect(errors).toHaveBeenCalledTimes(1);
    expect(errors.mock.calls[0][0]).toEqual({ webConfig: file, problems: [`${file}:2:10: basic_auth_users.alice: not a bcrypt hash, expected one like $2y$10$ followed by 53 characters (make one with htpasswd -nBC 10 USER)`] });
    replace(file, `basic_auth_users:\n  carol: ${hash('c')}\n`);
    tick();
    web.refresh();
    expect([...web.current.config.users.keys()]).toEqual(['carol']);
    expect(errors).toHaveBeenCalledTimes(1);
    errors.mockRestore();
  });

  it('loads a replaced certificate for new connections, and keeps the old one while the pair does not match', () => {
    const cert = join(dir, 'live.crt');
    const key = join(dir, 'live.key');
    copyFileSync(first.cert, cert);
    copyFileSync(first.key, key);
    const file = join(dir, 'tls.yml');
    writeFileSync(file, 'tls_server_config:\n  cert_file: live.crt\n  key_file: live.key\n');
    const { web, applied, tick } = live(file);
    const fingerprint = web.current.tls!.fingerprint;
    const errors = vi.spyOn(logger, 'error');
    // Half-way through a rotation: the new certificate, the old key.
    replace(cert, certs.read(second).cert);
    tick();
    web.refresh();
    expect(applied).toHaveLength(0);
    expect(web.current.tls!.fingerprint).toBe(fingerprint);
    expect(errors).toHaveBeenCalledTimes(1);
    expect(JSON.stringify(errors.mock.calls[0][0])).toContain('the key does not belong to the certificate');
    replace(key, certs.read(second).key);
    tick();
    web.refresh();
    expect(applied).toHaveLength(1);
    expect(applied[0].fingerprint).not.toBe(fingerprint);
    expect(web.current.tls!.fingerprint).toBe(applied[0].fingerprint);
    errors.mockRestore();
  });

  it('refuses a change that needs a restart (TLS on or off, http2)', () => {
    const file = join(dir, 'toggle.yml');
    writeFileSync(file, `tls_server_config:\n  cert_file: first.crt\n  key_file: first.key\n`);
    const { web, applied, tick } = live(file);
    const errors = vi.spyOn(logger, 'error');
    replace(file, `basic_auth_users:\n  alice: ${hash('a')}\n`);
    tick();
    web.refresh();
    replace(file, `tls_server_config:\n  cert_file: first.crt\n  key_file: first.key\nhttp_server_config:\n  http2: false\n`);
    tick();
    web.refresh();
    expect(applied).toHaveLength(0);
    expect(web.current.config.users.size).toBe(0);
    expect(errors.mock.calls.map((c) => c[1])).toEqual([
      'web config reload refused: turning TLS on or off needs a restart; the old web config stays in effect',
      'web config reload refused: changing http2 needs a restart; the old web config stays in effect',
    ]);
    errors.mockRestore();
  });
});

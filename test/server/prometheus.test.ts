/**
 * What a Prometheus user writes works as they know it: a real Prometheus (Debian's package) scrapes
 * the exporter over HTTPS with basic auth, configured the usual way (scheme: https, tls_config with
 * the CA, basic_auth), while a job with a wrong password and a job over plain HTTP are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { Certs } from '../unit/server/certs.js';
import { PROMETHEUS, startPrometheus, type Prometheus } from '../e2e/support.js';
import { startWithWeb, type Running } from './support.js';

describe('a real Prometheus scraping the exporter over TLS with basic auth', () => {
  let dir: string;
  let exporter: Running | undefined;
  let prom: Prometheus | undefined;

  beforeAll(() => {
    if (!existsSync(PROMETHEUS)) {
      if (process.env.REQUIRE_BPF === '1') throw new Error(`${PROMETHEUS} is missing: scripts/setup.sh installs Debian's prometheus package`);
      console.warn(`SKIPPING the Prometheus TLS test: ${PROMETHEUS} is missing (scripts/setup.sh installs it)`);
    }
    dir = mkdtempSync(join(tmpdir(), 'bme-prom-tls-'));
  });

  afterAll(async () => {
    prom?.stop();
    await exporter?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it.runIf(existsSync(PROMETHEUS) || process.env.REQUIRE_BPF === '1')('scrapes with the right password and the CA, and fails the wrong password and plain HTTP', async () => {
    const certs = new Certs(dir);
    const server = certs.server('server');
    writeFileSync(join(dir, 'config.yaml'), 'interval: 1s\nmaps: []\n');
    writeFileSync(join(dir, 'web.yml'), `tls_server_config:\n  cert_file: ${server.cert}\n  key_file: ${server.key}\nbasic_auth_users:\n  prometheus: ${bcrypt.hashSync('s3cret', 4)}\n`);
    exporter = await startWithWeb(join(dir, 'config.yaml'), join(dir, 'web.yml'));
    const target = `127.0.0.1:${exporter.port}`;
    const job = (name: string, extra: string) => `  - job_name: ${name}\n    static_configs: [ { targets: ['${target}'] } ]\n${extra}`;
    prom = await startPrometheus(dir, [
      job('tls', `    scheme: https\n    tls_config: { ca_file: ${certs.ca} }\n    basic_auth: { username: prometheus, password: s3cret }\n`),
      job('wrong_password', `    scheme: https\n    tls_config: { ca_file: ${certs.ca} }\n    basic_auth: { username: prometheus, password: guess }\n`),
      job('plain_http', ''),
    ].join(''));

    const up = await prom.until('up', (r) => r.length === 3);
    expect(up.map((s) => [s.metric.job, s.value[1]]).sort(), prom.log()).toEqual([['plain_http', '0'], ['tls', '1'], ['wrong_password', '0']]);
    const info = await prom.until('bpf_map_exporter_build_info{job="tls"}', (r) => r.length === 1);
    expect(info).toHaveLength(1);
    expect(await prom.query('bpf_map_exporter_build_info{job!="tls"}')).toEqual([]);
    // The refusals are the exporter's: 401 for the password (bcrypt checked, not cached), and a
    // TLS-only server for plain HTTP.
    const targets = (await (await fetch(`${prom.base}/api/v1/targets`)).json()) as { data: { activeTargets: { labels: { job: string }; lastError: string }[] } };
    const errors = Object.fromEntries(targets.data.activeTargets.map((t) => [t.labels.job, t.lastError]));
    expect(errors.tls).toBe('');
    expect(errors.wrong_password).toContain('HTTP status 401 Unauthorized');
    expect(errors.plain_http).toMatch(/EOF|malformed HTTP response/);
    expect(await exporter.stop()).toBe(0);
  }, 120_000);
});

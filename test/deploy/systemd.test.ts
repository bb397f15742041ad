/**
 * deploy/systemd: `systemd-analyze verify` accepts the unit alone and with the programs drop-in; the
 * unit runs as the dedicated non-root user that the sysusers file creates, with exactly the ambient
 * and bounding capabilities docs/deployment.md lists, hardened, with its state directory; its
 * ExecStart is accepted by the real CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliParses, deploymentCapabilities, root, words } from './support.js';

const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const hasAnalyze = existsSync(SYSTEMD_ANALYZE);
const SYSUSERS = '/usr/bin/systemd-sysusers';
const dir = join(root, 'deploy/systemd');
const unitText = readFileSync(join(dir, 'bpf-map-exporter.service'), 'utf8');
const dropinText = readFileSync(join(dir, 'programs.conf'), 'utf8');

/** `[Section] Key=value` pairs in order (a key may repeat), comments dropped. */
function directives(text: string): { section: string; key: string; value: string }[] {
  let section = '';
  const out: { section: string; key: string; value: string }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s !== null) section = s[1];
    else {
      const i = line.indexOf('=');
      out.push({ section, key: line.slice(0, i), value: line.slice(i + 1) });
    }
  }
  return out;
}
const service = (text: string) => directives(text).filter((d) => d.section === 'Service');
const values = (text: string, key: string) => service(text).filter((d) => d.key === key).map((d) => d.value);
const one = (text: string, key: string) => {
  const v = values(text, key);
  expect(v, key).toHaveLength(1);
  return v[0];
};
/** Capability lists as systemd merges them (drop-ins add to the unit's). */
const caps = (key: string, ...texts: string[]) => texts.flatMap((t) => values(t, key)).flatMap((v) => v.split(/\s+/)).filter((c) => c !== '').sort();

describe('deploy/systemd', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'bme-systemd-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  const verify = (withDropin: boolean, dropin = dropinText) => {
    const unitDir = mkdtempSync(join(tmp, 'unit-'));
    mkdirSync(join(unitDir, 'bpf-map-exporter.service.d'), { recursive: true });
    // verify checks that ExecStart's program exists: where node is not /usr/bin/node, this node.
    const text = existsSync('/usr/bin/node') ? unitText : unitText.replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `);
    writeFileSync(join(unitDir, 'bpf-map-exporter.service'), text);
    if (withDropin) writeFileSync(join(unitDir, 'bpf-map-exporter.service.d/programs.conf'), dropin);
    return spawnSync(SYSTEMD_ANALYZE, ['verify', join(unitDir, 'bpf-map-exporter.service')], {
      encoding: 'utf8', env: { ...process.env, SYSTEMD_UNIT_PATH: `${unitDir}:`, SYSTEMD_LOG_LEVEL: 'notice' },
    });
  };

  it.runIf(hasAnalyze)('passes systemd-analyze verify with no warning, alone and with programs.conf', () => {
    for (const withDropin of [false, true]) {
      const r = verify(withDropin);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout + r.stderr, withDropin ? 'with programs.conf' : 'alone').toBe('');
    }
  });

  it.runIf(hasAnalyze)('would catch a misspelt directive in the drop-in (verify reads it)', () => {
    // A scratch copy of the drop-in with one key misspelt; the repository's files are untouched.
    const r = verify(true, dropinText.replace('AmbientCapabilities=', 'AmbientCapability='));
    expect(r.stderr).toContain("Unknown key 'AmbientCapability'");
  });
  if (!hasAnalyze) console.warn(`SKIPPING systemd-analyze verify: ${SYSTEMD_ANALYZE} is missing (Debian package systemd)`);
  // scripts/setup.sh installs it: in CI (REQUIRE_BPF=1) its absence is a failure, not a skip.
  if (!hasAnalyze && process.env.REQUIRE_BPF === '1') {
    it('has systemd-analyze (REQUIRE_BPF=1)', () => {
      throw new Error(`${SYSTEMD_ANALYZE} is missing; install with: apt-get install systemd`);
    });
  }

  it('grants exactly the capabilities docs/deployment.md lists, as ambient and bounding sets', () => {
    const docs = deploymentCapabilities();
    const alone = docs.get('systemd')!.capabilities.slice().sort();
    const programs = docs.get('systemd+programs.conf')!.capabilities.slice().sort();
    expect(caps('AmbientCapabilities', unitText)).toEqual(alone);
    expect(caps('CapabilityBoundingSet', unitText)).toEqual(alone);
    expect(caps('AmbientCapabilities', unitText, dropinText)).toEqual(programs);
    expect(caps('CapabilityBoundingSet', unitText, dropinText)).toEqual(programs);
    // The drop-in only adds: it never resets the unit's lists (an empty assignment would).
    for (const k of ['AmbientCapabilities', 'CapabilityBoundingSet']) expect(values(dropinText, k).every((v) => v !== '' && !v.startsWith('~'))).toBe(true);
  });

  it('runs as the dedicated non-root user that the sysusers file creates, hardened, with its state directory', () => {
    const user = one(unitText, 'User');
    expect(user).toBe('bpf-map-exporter');
    expect(['root', '0']).not.toContain(user);
    expect(values(unitText, 'DynamicUser')).toEqual([]);
    expect(one(unitText, 'NoNewPrivileges')).toBe('yes');
    expect(one(unitText, 'ProtectSystem')).toBe('strict');
    expect(one(unitText, 'StateDirectory')).toBe('bpf-map-exporter');
    expect(values(unitText, 'ReadWritePaths')).toEqual(['/var/lib/bpf-map-exporter']);
    for (const k of ['ProtectHome', 'PrivateTmp', 'PrivateDevices', 'ProtectKernelModules', 'ProtectControlGroups', 'RestrictSUIDSGID', 'LockPersonality']) expect(one(unitText, k), k).toBe('yes');
    expect(values(dropinText, 'User')).toEqual([]);
    const sysusers = readFileSync(join(dir, 'bpf-map-exporter.sysusers'), 'utf8').split('\n').filter((l) => /^u\s/.test(l));
    expect(sysusers.map((l) => l.split(/\s+/)[1])).toEqual([user]);
  });

  it.runIf(existsSync(SYSUSERS))('has a sysusers file that systemd-sysusers applies (into a scratch root)', () => {
    const scratch = join(tmp, 'root');
    mkdirSync(join(scratch, 'etc'), { recursive: true });
    const r = spawnSync(SYSUSERS, [`--root=${scratch}`, join(dir, 'bpf-map-exporter.sysusers')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const passwd = readFileSync(join(scratch, 'etc/passwd'), 'utf8');
    expect(passwd).toMatch(/^bpf-map-exporter:x:(\d+):\d+:[^:]*:\/var\/lib\/bpf-map-exporter:\/usr\/sbin\/nologin$/m);
    const uid = Number(/^bpf-map-exporter:x:(\d+):/m.exec(passwd)![1]);
    expect(uid).toBeGreaterThan(0);
  });

  it('starts the exporter with a config in its configuration directory and a state file it may write, and the CLI accepts the arguments', () => {
    const exec = words(one(unitText, 'ExecStart'));
    expect(exec.slice(0, 3)).toEqual(['/usr/bin/node', '/opt/bpf-map-exporter/dist/exporter/main.js', 'run']);
    const args = exec.slice(3);
    expect(args[args.indexOf('--config') + 1]).toBe(`/etc/${one(unitText, 'ConfigurationDirectory')}/config.yaml`);
    const r = cliParses(['run', ...args]);
    expect(r.status, r.output).toBe(0);
    expect(one(unitText, 'ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one(dropinText, 'LimitMEMLOCK')).toBe('infinity');
  });
});

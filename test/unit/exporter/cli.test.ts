import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnExporter } from '../../e2e/support.js';

const main = fileURLToPath(new URL('../../../exporter/main.ts', import.meta.url));
const broken = fileURLToPath(new URL('../config/broken/', import.meta.url));
const cli = (args: string[], cwd?: string) => spawnSync(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8', cwd });

describe('the command line', () => {
  it('prints its version and refuses unknown commands and options with exit 2', () => {
    const v = cli(['--version']);
    expect(v.status).toBe(0);
    expect(v.stdout.trim()).toBe(JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version);
    const u = cli(['frobnicate']);
    expect(u.status).toBe(2);
    expect(u.stderr.split('\n')[0]).toBe('bpf-map-exporter: unknown command "frobnicate"');
    const o = cli(['check', '--nope']);
    expect(o.status).toBe(2);
    expect(o.stderr.trim().split('\n')).toHaveLength(1);
    expect(cli(['check']).stderr.split('\n')[0]).toBe('bpf-map-exporter: check needs --config FILE (or --config.dir DIR --config.names A,B)');
    for (const [args, message] of [
      [['run', '--web.telemetry-path', 'metrics'], '--web.telemetry-path must be a path of its own such as /metrics (not /, /healthz or /readyz), not "metrics"'],
      [['run', '--web.telemetry-path=/healthz'], '--web.telemetry-path must be a path of its own such as /metrics (not /, /healthz or /readyz), not "/healthz"'],
      [['run', '--web.max-requests=-1'], '--web.max-requests must be a whole number, 0 for no limit, not "-1"'],
      [['run', '--web.max-requests=lots'], '--web.max-requests must be a whole number, 0 for no limit, not "lots"'],
    ] as const) {
      const f = cli([...args]);
      expect(f.status).toBe(2);
      expect(f.stderr).toBe(`bpf-map-exporter: ${message}\n`);
    }
    for (const args of [['run', '--log.format', 'yaml'], ['run', '--log.format=JSON'], ['run', '--log.format']]) {
      const f = cli(args);
      expect(f.status).toBe(2);
      expect(f.stderr).toMatch(/^bpf-map-exporter: --log.format must be logfmt or json, not "(yaml|JSON|)"\n$/);
    }
  });

  it('takes ebpf_exporter\'s --config.dir and --config.names together, and not with --config', () => {
    const first = (args: string[]) => {
      const r = cli(args);
      return [r.status, r.stderr.split('\n')[0]];
    };
    expect(first(['convert'])).toEqual([2, 'bpf-map-exporter: convert needs --config.dir DIR --config.names A,B']);
    expect(first(['run', '--config.dir', '/tmp'])).toEqual([2, 'bpf-map-exporter: --config.dir and --config.names go together (ebpf_exporter\'s configs), --config.names is missing']);
    expect(first(['check', '--config.names=a', '--config', 'x.yaml', '--config.dir=/tmp'])).toEqual([2, 'bpf-map-exporter: --config names our config, --config.dir and --config.names ebpf_exporter\'s: give one or the other']);
    expect(first(['convert', '--config.dir=/tmp', '--config.names=a,,b'])).toEqual([2, '/tmp: --config.names has an empty name in "a,,b", expected names separated by commas']);
  });

  it('refuses every broken config of the corpus with exit 2 and exactly its expected lines, never a stack trace', () => {
    const files = readdirSync(broken).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(30);
    for (const f of files) {
      const r = cli(['check', '--config', f], broken);
      const want = readFileSync(`${broken}${f.replace(/\.yaml$/, '.expected')}`, 'utf8').trimEnd().split('\n');
      expect(r.status, f).toBe(2);
      expect(r.stdout, f).toBe('');
      expect(r.stderr.trimEnd().split('\n'), f).toEqual(want);
      expect(r.stderr, f).not.toMatch(/\n\s+at /);
    }
  }, 180_000);

  it('says when a config file cannot be read', () => {
    const r = cli(['dump', '--config', '/nonexistent/bpf.yaml']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('/nonexistent/bpf.yaml: cannot read: ENOENT');
  });

  it('refuses an object path that is a FIFO in one line at once, instead of blocking forever', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bme-fifo-'));
    try {
      execFileSync('mkfifo', [join(dir, 'x.bpf.o')]);
      writeFileSync(join(dir, 'c.yaml'), `maps:\n  - name: m\n    source: { object: ${join(dir, 'x.bpf.o')}, map: counts }\n    metrics:\n      - { name: m_total, type: counter, help: h, value: v }\n`);
      const r = spawnSync(process.execPath, ['--import', 'tsx', main, 'check', '--config', join(dir, 'c.yaml')], { encoding: 'utf8', timeout: 20_000 });
      expect(r.signal).toBeNull();
      expect(r.status).toBe(2);
      expect(r.stderr.trim()).toBe(`${join(dir, 'c.yaml')}:3:5: maps[0].source: object ${join(dir, 'x.bpf.o')}: open BPF object failed: EINVAL (it is a FIFO, not a compiled object (.bpf.o))`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('check prints its positioned lines only, not libbpf\'s own log lines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bme-quiet-'));
    try {
      writeFileSync(join(dir, 'c.yaml'), `maps:\n  - name: m\n    source: { object: ${join(dir, 'missing.bpf.o')}, map: counts }\n    metrics:\n      - { name: m_total, type: counter, help: h, value: v }\n`);
      // At the default log level (the tests run the rest silent).
      const r = spawnSync(process.execPath, ['--import', 'tsx', main, 'check', '--config', join(dir, 'c.yaml')], { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'info' } });
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toEqual([`${join(dir, 'c.yaml')}:3:5: maps[0].source: object ${join(dir, 'missing.bpf.o')}: open BPF object failed: ENOENT (no such file)`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes --web.max-connections as the cap on connections, and refuses one that is not a whole number above 0 in one line', async () => {
    for (const bad of ['0', '1.5', '1e3', 'many']) {
      const r = cli(['run', '--web.max-connections', bad, '--web.listen-address', '127.0.0.1:0']);
      expect(r.status, bad).toBe(2);
      expect(r.stderr.trim().split('\n'), bad).toEqual([`bpf-map-exporter: --web.max-connections must be a whole number from 1 to 9999999, not ${JSON.stringify(bad)}`]);
    }
    const dir = mkdtempSync(join(tmpdir(), 'bme-maxconn-'));
    writeFileSync(join(dir, 'c.yaml'), 'inventory: false\nmaps: []\n');
    const e = await spawnExporter(join(dir, 'c.yaml'), { args: ['--web.max-connections', '7'] });
    try {
      expect(e.log()).toContain('"maxConnections":7,');
    } finally {
      await e.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

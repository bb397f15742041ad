import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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
    expect(cli(['check']).stderr.split('\n')[0]).toBe('bpf-map-exporter: check needs --config FILE');
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
});

/**
 * The library as a user gets it: the package built by tsc, installed into an app's node_modules, and
 * README.md's example run there by plain node, importing 'bpf-map-exporter' by name.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { kernelDescribe } from './support.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const MARKER = '<!-- library example: test/kernel/library.test.ts runs the next block -->';

/** The ```js block that follows the marker in README.md. */
export function readmeExample(readme: string): string {
  const at = readme.indexOf(MARKER);
  if (at < 0) throw new Error(`README.md has no "${MARKER}"`);
  const m = /^```js\n([\s\S]*?)^```$/m.exec(readme.slice(at));
  if (m === null) throw new Error('README.md has no ```js block after the library example marker');
  return m[1];
}

kernelDescribe('the library, as README.md shows it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bpf-map-exporter-library-'));
  const app = join(dir, 'app');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  beforeAll(() => {
    // The package: tsc's build, package.json (its exports map) and the repository's dependencies.
    const pkg = join(dir, 'pkg');
    mkdirSync(pkg);
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(pkg, 'dist')], { encoding: 'utf8' });
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
    cpSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'));
    // The app: the package in its node_modules, the example as its main file.
    mkdirSync(join(app, 'node_modules'), { recursive: true });
    symlinkSync(pkg, join(app, 'node_modules/bpf-map-exporter'));
    writeFileSync(join(app, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(app, 'example.js'), readmeExample(readFileSync(join(ROOT, 'README.md'), 'utf8')));
  }, 180_000);

  it('runs the example against the built package, imported by its name', () => {
    const run = spawnSync(process.execPath, ['example.js'], { cwd: app, encoding: 'utf8', timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    // The raw entries come in the map's hash order.
    expect(lines.slice(0, 3).sort()).toEqual(['port 22: 10 bytes', 'port 443: 30 bytes', 'port 80: 20 bytes']);
    expect(lines[3]).toBe('batch 3');
    expect(lines.slice(4)).toEqual([
      '# HELP example_bytes_total Bytes by port',
      '# TYPE example_bytes_total counter',
      'example_bytes_total{port="22"} 10',
      'example_bytes_total{port="443"} 30',
      'example_bytes_total{port="80"} 20',
    ]);
  });

  it('the package exposes only its entry point', () => {
    const deep = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('bpf-map-exporter/dist/src/bpf/map.js')"], { cwd: app, encoding: 'utf8' });
    expect(deep.status).not.toBe(0);
    expect(deep.stderr).toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});

/**
 * deploy/image/Dockerfile, checked statically: there is no container runtime or registry here, so
 * the image is not built by the tests. What can be told from the file is: its stages, a final stage
 * with libbpf1 and no compiler, a non-root USER, no secrets, an ENTRYPOINT and CMD that the real CLI
 * accepts, and a .dockerignore that sends only what the stages copy.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { cliParses, render, root, type K8sObject } from './support.js';

interface Instruction { op: string; args: string; line: number }
interface Stage { name: string; from: string; body: Instruction[] }

const dockerfile = readFileSync(join(root, 'deploy/image/Dockerfile'), 'utf8');

/** Instructions, with continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i];
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      i++;
      if (/^\s*#/.test(lines[i])) continue;
      line = `${line.slice(0, -1)} ${lines[i].trim()}`;
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (m === null) throw new Error(`Dockerfile line ${start + 1}: cannot parse ${line}`);
    out.push({ op: m[1].toUpperCase(), args: m[2].trim(), line: start + 1 });
  }
  return out;
}

const all = instructions(dockerfile);
const globalArgs = new Map<string, string>();
const stages: Stage[] = [];
for (const ins of all) {
  if (ins.op === 'FROM') {
    const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
    if (m === null) throw new Error(`bad FROM: ${ins.args}`);
    const from = m[1].replace(/^\$\{(\w+)\}$/, (_, v: string) => globalArgs.get(v) ?? '');
    stages.push({ name: m[2] ?? String(stages.length), from, body: [] });
  } else if (stages.length === 0) {
    if (ins.op === 'ARG') {
      const [k, v] = ins.args.split('=');
      globalArgs.set(k, v ?? '');
    }
  } else {
    stages.at(-1)!.body.push(ins);
  }
}
const final = stages.at(-1)!;
const stage = (name: string) => stages.find((s) => s.name === name)!;
const text = (s: Stage, op?: string) => s.body.filter((i) => op === undefined || i.op === op).map((i) => i.args).join('\n');
const execForm = (args: string): string[] => JSON.parse(args) as string[];

describe('deploy/image/Dockerfile', () => {
  it('builds in stages from a slim Debian Node LTS image: build, examples, prod-deps, runtime', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'examples', 'prod-deps', 'runtime']);
    expect(globalArgs.get('NODE_IMAGE')).toMatch(/^node:(22|24)-bookworm-slim$/);
    for (const s of stages) expect(s.from === globalArgs.get('NODE_IMAGE') || stages.some((t) => t.name === s.from), s.name).toBe(true);
    expect(stage('examples').from).toBe('build');
  });

  it('runs npm ci and the TypeScript build in the build stage', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
    // npm ci (without install scripts), then the build; the stage checks its output is there.
    expect(pkg.scripts.build).toContain('tsc -p tsconfig.build.json');
    expect(text(stage('build'), 'RUN')).toMatch(/npm ci --ignore-scripts\b.*&& npm run build && test -x dist\/exporter\/main\.js/);
    expect(pkg.bin['bpf-map-exporter']).toBe('dist/exporter/main.js');
    expect(text(stage('prod-deps'), 'RUN')).toMatch(/npm ci --omit=dev --ignore-scripts/);
    expect(text(stage('examples'), 'RUN')).toContain('node scripts/build-bpf.mjs');
  });

  it('has a final stage with libbpf1 from Debian, the built files and production modules, and no compiler', () => {
    const run = text(final, 'RUN');
    const installed = [...run.matchAll(/apt-get install\s+((?:-\S+\s+)*)([^&]+)/g)].flatMap((m) => m[2].trim().split(/\s+/));
    expect(installed).toEqual(['libbpf1']);
    const finalText = final.body.map((i) => `${i.op} ${i.args}`).join('\n');
    for (const tool of ['clang', 'gcc', 'g++', 'build-essential', 'llvm', 'make', 'bpftool', 'libbpf-dev', 'python3']) {
      expect(finalText, tool).not.toMatch(new RegExp(`(^|[\\s/])${tool.replace('+', '\\+')}(\\s|$)`, 'm'));
    }
    expect(text(final, 'COPY').split('\n').sort()).toEqual([
      '--from=build /build/dist ./dist', '--from=examples /build/config ./config', '--from=prod-deps /build/node_modules ./node_modules', 'package.json ./',
    ]);
    expect(text(final, 'WORKDIR')).toBe('/opt/bpf-map-exporter');
    // The apt lists are removed in the same layer.
    expect(run).toContain('rm -rf /var/lib/apt/lists/*');
  });

  it('declares a non-root user, exposes 9435, and writes nothing to the image (no VOLUME, no state file by default)', () => {
    const users = final.body.filter((i) => i.op === 'USER');
    expect(users.map((u) => u.args)).toEqual(['65534:65534']);
    // USER comes after the last RUN: every command at run time is the unprivileged user's.
    const lastRun = Math.max(...final.body.filter((i) => i.op === 'RUN').map((i) => i.line));
    expect(users[0].line).toBeGreaterThan(lastRun);
    expect(text(final, 'EXPOSE')).toBe('9435');
    expect(text(final, 'VOLUME')).toBe('');
    const def = parse(readFileSync(join(root, 'config/default.yaml'), 'utf8')) as Record<string, unknown>;
    expect(def.state_file).toBeUndefined();
  });

  it('carries no secret: no credential-like ARG or ENV, no .npmrc, keys or .env copied', () => {
    for (const i of all.filter((x) => x.op === 'ARG' || x.op === 'ENV')) expect(i.args, `line ${i.line}`).not.toMatch(/token|secret|passw|auth|_key|apikey/i);
    for (const i of all.filter((x) => x.op === 'COPY' || x.op === 'ADD')) expect(i.args, `line ${i.line}`).not.toMatch(/\.npmrc|\.env\b|\.pem|\.key\b|id_rsa/);
    expect(all.filter((x) => x.op === 'ADD')).toEqual([]);
    expect(dockerfile).not.toMatch(/--mount=type=secret/);
  });

  it('starts the exporter with run, and the CLI accepts the image\'s and the DaemonSet\'s arguments', () => {
    const entrypoint = execForm(text(final, 'ENTRYPOINT'));
    const cmd = execForm(text(final, 'CMD'));
    expect(entrypoint).toEqual(['node', '/opt/bpf-map-exporter/dist/exporter/main.js', 'run']);
    expect(cmd).toEqual(['--config', '/opt/bpf-map-exporter/config/default.yaml', '--web.listen-address', ':9435']);
    expect(existsSync(join(root, 'config/default.yaml'))).toBe(true);
    const ds = render('base').find((o) => o.kind === 'DaemonSet') as K8sObject & { spec: { template: { spec: { containers: { args: string[]; command?: string[] }[] } } } };
    const container = ds.spec.template.spec.containers[0];
    expect(container.command).toBeUndefined();
    for (const args of [cmd, container.args]) {
      const r = cliParses(['run', ...args]);
      expect(r.status, r.output).toBe(0);
      expect(r.output.trim()).toBe((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version);
    }
    // The check can fail: a flag the CLI does not have is refused.
    expect(cliParses(['run', '--listen', ':9435']).status).toBe(2);
  });
});

describe('.dockerignore', () => {
  const lines = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/\*\*$/, ''));

  it('sends nothing by default, and allows exactly what the stages copy from the context', () => {
    expect(lines[0]).toBe('**');
    const sources = all.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect([...new Set(sources)].sort()).toEqual([...allowed].sort());
    for (const a of allowed) expect(existsSync(join(root, a)), a).toBe(true);
  });

  it('keeps out built files and secrets even inside allowed folders', () => {
    for (const p of ['**/node_modules', '**/*.bpf.o', '**/vmlinux.h', '**/.env', '**/*.pem', '**/*.key']) expect(lines).toContain(p);
  });
});

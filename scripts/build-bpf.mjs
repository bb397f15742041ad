#!/usr/bin/env node
// npm run build:bpf: every config/examples/*.bpf.c compiled with clang (CO-RE) beside its source,
// against a vmlinux.h generated from this kernel's BTF by bpftool (build/bpf/, not committed).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { arch } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const examples = `${root}config/examples`;
const include = `${root}build/bpf`;
const targetArch = { x64: 'x86', arm64: 'arm64' }[arch()];
if (targetArch === undefined) throw new Error(`no BPF target arch for ${arch()}`);

// Several builds may run at once (test files in parallel) while exporters load the objects: every
// output is written under a temporary name and renamed into place, so nobody reads half a file.
const tmp = (path) => `${path}.tmp-${process.pid}`;

mkdirSync(include, { recursive: true });
const vmlinux = execFileSync('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'c'], { maxBuffer: 256 * 1024 * 1024 });
writeFileSync(tmp(`${include}/vmlinux.h`), vmlinux);
renameSync(tmp(`${include}/vmlinux.h`), `${include}/vmlinux.h`);

for (const file of readdirSync(examples).filter((f) => f.endsWith('.bpf.c'))) {
  const out = file.replace(/\.c$/, '.o');
  execFileSync('clang', ['-g', '-O2', '-target', 'bpf', `-D__TARGET_ARCH_${targetArch}`, `-I${include}`, '-c', `${examples}/${file}`, '-o', tmp(`${examples}/${out}`)], { stdio: 'inherit' });
  renameSync(tmp(`${examples}/${out}`), `${examples}/${out}`);
  console.log(`built config/examples/${out}`);
}

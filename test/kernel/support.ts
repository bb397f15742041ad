import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { describe, it } from 'vitest';

/**
 * Kernel tests need BPF (root or CAP_BPF). Without it they skip loudly; with REQUIRE_BPF=1 (CI)
 * a missing capability is a failure, so a green run always means the kernel was exercised.
 */
function probe(): string | undefined {
  try {
    // Loading the binding needs libbpf.so.1; creating a map needs the privilege.
    execFileSync(process.execPath, ['-e', `
      const k = require('koffi'); const l = k.load('libbpf.so.1');
      const c = l.func('int bpf_map_create(int, const char *, uint32_t, uint32_t, uint32_t, void *)');
      const fd = c(2, null, 4, 4, 1, null); if (fd < 0) { console.error('bpf_map_create: errno ' + -fd); process.exit(1); }`],
    { stdio: 'pipe' });
    return undefined;
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    return (err.stderr?.toString().trim() || err.message).split('\n')[0];
  }
}

const missing = probe();

export const bpfAvailable = missing === undefined;

/** describe() for tests that need the kernel. */
export function kernelDescribe(name: string, fn: () => void): void {
  if (missing === undefined) {
    describe(name, fn);
  } else if (process.env.REQUIRE_BPF === '1') {
    describe(name, () => {
      it('has BPF available (REQUIRE_BPF=1)', () => {
        throw new Error(`BPF is required but unavailable: ${missing}`);
      });
    });
  } else {
    console.warn(`SKIPPING kernel tests "${name}": BPF unavailable (${missing}); set REQUIRE_BPF=1 to fail instead`);
    describe.skip(name, fn);
  }
}

/** Mount bpffs when it is missing, and give the test a fresh folder of pins under it. */
export function pinDir(name: string): string {
  if (!existsSync('/sys/fs/bpf') || execFileSync('stat', ['-f', '-c', '%T', '/sys/fs/bpf']).toString().trim() !== 'bpf_fs') {
    mkdirSync('/sys/fs/bpf', { recursive: true });
    execFileSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
  }
  const dir = `/sys/fs/bpf/bpf-map-exporter-test-${name}-${process.pid}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  return dir;
}

/** clang compiles a BPF C source (test fixtures) with BTF, with more clang arguments (-D...) if given; the object goes to `out`. */
export function compileBpf(source: string, out: string, args: readonly string[] = []): void {
  // <linux/types.h> includes <asm/types.h>, which Debian keeps under the multiarch folder.
  const multiarch = execFileSync('gcc', ['-dumpmachine']).toString().trim();
  execFileSync('clang', ['-g', '-O2', '-target', 'bpf', `-I/usr/include/${multiarch}`, ...args, '-c', source, '-o', out], { stdio: 'pipe' });
}

// `npm run bench`: mount bpffs when missing, build the C baseline, run bench/read-maps.ts.
// Needs root (or CAP_BPF + CAP_SYS_ADMIN), clang or gcc as `cc`, and libbpf-dev.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BPFFS = '/sys/fs/bpf';
// Where bench/read-maps.ts pins its maps (it removes them itself, unless it is killed).
const PIN_DIR = `${BPFFS}/bpf-map-exporter-bench`;

function bpffsMounted() {
  // /proc/mounts: "<source> <mountpoint> <fstype> ..."
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((line) => {
      const f = line.split(' ');
      return f[1] === BPFFS && f[2] === 'bpf';
    });
}

function step(what, fn) {
  try {
    fn();
  } catch (e) {
    process.stderr.write(`bench: ${what} failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}

if (!bpffsMounted()) {
  step(`mounting bpffs at ${BPFFS}`, () => {
    mkdirSync(BPFFS, { recursive: true });
    execFileSync('mount', ['-t', 'bpf', 'bpf', BPFFS], { stdio: 'inherit' });
  });
  process.stdout.write(`bench: mounted bpffs at ${BPFFS}\n`);
}

step('building bench/c/batch-read.c', () => {
  mkdirSync(path.join(root, 'bench/out'), { recursive: true });
  execFileSync('cc', ['-O2', '-o', 'bench/out/batch-read', 'bench/c/batch-read.c', '-lbpf'], { cwd: root, stdio: 'inherit' });
});

const tsx = path.join(root, 'node_modules/.bin/tsx');
const child = spawn(process.execPath, [tsx, path.join(root, 'bench/read-maps.ts'), ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
// Pass termination signals on, so the benchmark removes its pins before exiting; wait for it.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    child.kill(sig);
  });
}
child.on('error', (e) => {
  process.stderr.write(`bench: could not run ${tsx}: ${e.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  // tsx answers a signal by SIGKILLing a child that is busy in synchronous code (a sweep, a C run)
  // after ~60 ms, so the benchmark may not have had a chance to remove its pins: do it here.
  if (existsSync(PIN_DIR)) {
    try {
      rmSync(PIN_DIR, { recursive: true, force: true });
      process.stderr.write(`bench: removed ${PIN_DIR} left by the interrupted run\n`);
    } catch (e) {
      process.stderr.write(`bench: could not remove ${PIN_DIR}: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }
  // Killed by a signal: report 128 + signal, as a shell would.
  process.exit(code ?? (signal !== null ? 128 + (constants.signals[signal] ?? 0) : 1));
});

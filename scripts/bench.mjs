// `npm run bench`: mount bpffs when missing, build the C baseline, run bench/read-maps.ts, then
// bench/daemon.ts (the exporter's read cycle and /metrics latency on a 1M-entry per-CPU hash), then
// bench/series.ts (the whole exporter at 10k and 100k series against the obvious build; BENCH_SKIP_SERIES=1
// skips it), then bench/ringbuf.ts (one BPF ring buffer: RingBufferReader against libbpf's consumer;
// BENCH_SKIP_RINGBUF=1 skips it).
// Needs root (or CAP_BPF + CAP_SYS_ADMIN), clang or gcc as `cc`, and libbpf-dev.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BPFFS = '/sys/fs/bpf';
// Where the benchmarks pin their maps (they remove them themselves, unless they are killed).
const PIN_DIR = `${BPFFS}/bpf-map-exporter-bench`;
const DAEMON_PIN_DIR = `${BPFFS}/bpf-map-exporter-bench-daemon`;
const SERIES_PIN_DIR = `${BPFFS}/bpf-map-exporter-bench-series`;

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

function removeLeftPins(dir) {
  if (!existsSync(dir)) return;
  try {
    rmSync(dir, { recursive: true, force: true });
    process.stderr.write(`bench: removed ${dir} left by the interrupted run\n`);
  } catch (e) {
    process.stderr.write(`bench: could not remove ${dir}: ${e instanceof Error ? e.message : String(e)}\n`);
  }
}

/** Runs one benchmark to its end; resolves with its exit code and the signal that ended it, if any. */
function runStep(args, pinDir) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
    // Pass termination signals on, so the benchmark removes its pins before exiting; wait for it.
    const relay = (sig) => child.kill(sig);
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const sig of signals) process.on(sig, relay);
    child.on('error', (e) => {
      process.stderr.write(`bench: could not run ${args.join(' ')}: ${e.message}\n`);
      process.exit(1);
    });
    child.on('exit', (code, signal) => {
      for (const sig of signals) process.off(sig, relay);
      // tsx answers a signal by SIGKILLing a child that is busy in synchronous code (a sweep, a C run)
      // after ~60 ms, so the benchmark may not have had a chance to remove its pins: do it here.
      removeLeftPins(pinDir);
      resolve({ code, signal });
    });
  });
}

// Killed by a signal: report 128 + signal, as a shell would.
const exitCode = ({ code, signal }) => code ?? (signal !== null ? 128 + (constants.signals[signal] ?? 0) : 1);

// 1. The binding against C (and per-key against batch) on plain reads of HASH and PERCPU_HASH maps.
const first = await runStep([tsx, path.join(root, 'bench/read-maps.ts'), ...process.argv.slice(2)], PIN_DIR);
if (first.signal !== null || (first.code ?? 0) >= 128) process.exit(exitCode(first));
// 2. The exporter itself: its read cycle against the same C loop, and /metrics latency of the
// running daemon. Run through `node --import tsx` (no tsx wrapper process), so that a signal
// reaches it directly and it can stop the daemon it started.
const second = await runStep(['--import', 'tsx', path.join(root, 'bench/daemon.ts')], DAEMON_PIN_DIR);
if (second.signal !== null || (second.code ?? 0) >= 128) process.exit(exitCode(second));
// 3. The whole exporter at high cardinality (10k and 100k series: CPU per cycle, peak RSS, /metrics
// latency, OTLP) against the obvious build (C read + prom-client + OTel SDK). About 2.5 minutes.
const third = process.env.BENCH_SKIP_SERIES === '1'
  ? { code: 0, signal: null }
  : await runStep(['--import', 'tsx', path.join(root, 'bench/series.ts')], SERIES_PIN_DIR);
if (third.signal !== null || (third.code ?? 0) >= 128) process.exit(exitCode(third));
// 4. One BPF ring buffer: records a second taken by RingBufferReader, libbpf's C consumer and libbpf's
// callback through koffi (it builds its own C and BPF programs). About 3 minutes.
const fourth = process.env.BENCH_SKIP_RINGBUF === '1'
  ? { code: 0, signal: null }
  : await runStep(['--import', 'tsx', path.join(root, 'bench/ringbuf.ts')], `${BPFFS}/bpf-map-exporter-bench-ringbuf`);
process.exit([first, second, third, fourth].map(exitCode).find((c) => c !== 0) ?? 0);

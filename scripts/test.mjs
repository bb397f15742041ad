#!/usr/bin/env node
// The project's test command: type-check, lint, then every vitest suite (unit, kernel, e2e).
// Ends with the plain line `tests: N passed, N failed` that CI reads.
//
// Vitest cannot time out a test that blocks its process (a synchronous child that never exits):
// such a run would wait forever. So vitest runs under a deadline (BME_TEST_DEADLINE_MIN, 45 by
// default): past it, vitest and everything it started are killed, the files and tests still running
// are named, and the run fails with the counts it reached.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';

const root = new URL('..', import.meta.url).pathname;
const bin = (name) => `${root}node_modules/.bin/${name}`;
const progressFile = `${root}.vitest-progress.json`;
const deadlineMin = Number(process.env.BME_TEST_DEADLINE_MIN ?? 45);
const SLOW_FILE_MS = 5 * 60_000;

let passed = 0;
let failed = 0;
let skipped = 0;
for (const [name, cmd, args] of [
  ['typecheck', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']],
  ['lint', bin('eslint'), ['.']],
]) {
  if ((spawnSync(cmd, args, { stdio: 'inherit' }).status ?? 1) === 0) passed++;
  else {
    failed++;
    console.error(`${name} failed`);
  }
}

const readProgress = () => {
  try {
    return JSON.parse(readFileSync(progressFile, 'utf8'));
  } catch {
    return undefined;
  }
};
const describe = (r, now) => `${r.file}${r.test ? ` (in "${r.test}")` : ''}, running for ${Math.round((now - r.since) / 1000)} s`;

rmSync(progressFile, { force: true });
// Its own process group, so that the deadline can stop vitest's forks and what the tests started.
const vitest = spawn(bin('vitest'), ['run', '--reporter=default', '--reporter=./scripts/progress-reporter.mjs', ...process.argv.slice(2)], {
  stdio: 'inherit',
  detached: true,
  env: { ...process.env, BME_TEST_PROGRESS: progressFile },
});
const killGroup = (signal) => {
  try {
    process.kill(-vitest.pid, signal);
  } catch {
    // already gone
  }
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    killGroup(signal);
    process.exit(130);
  });
}

let timedOut = false;
const warned = new Set();
const watch = setInterval(() => {
  const now = Date.now();
  for (const r of readProgress()?.running ?? []) {
    if (now - r.since > SLOW_FILE_MS && !warned.has(r.file)) {
      warned.add(r.file);
      console.error(`test: still running: ${describe(r, now)}`);
    }
  }
}, 30_000);
const deadline = setTimeout(() => {
  timedOut = true;
  const now = Date.now();
  console.error(`test: vitest did not finish within ${deadlineMin} min; stopping it. Still running:`);
  for (const r of readProgress()?.running ?? []) console.error(`test:   ${describe(r, now)}`);
  killGroup('SIGKILL');
}, deadlineMin * 60_000);

const status = await new Promise((resolve) => vitest.on('exit', (code) => resolve(code ?? 1)));
clearInterval(watch);
clearTimeout(deadline);
// Tests that leave children behind in vitest's group do not outlive the run.
killGroup('SIGKILL');

const progress = readProgress();
if (progress) {
  passed += progress.passed;
  failed += progress.failed;
  skipped += progress.skipped;
  // A file cut off by the deadline counts as a failure, whatever its tests had reached.
  if (timedOut) failed += Math.max(1, progress.running.length);
}
if ((status !== 0 || timedOut || !progress?.done) && failed === 0) failed++;
console.log(`tests: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);

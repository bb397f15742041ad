// A vitest reporter for scripts/test.mjs: keeps the counts and the files and tests still running in
// a small JSON file (BME_TEST_PROGRESS), rewritten at every event, so the runner can say what hung
// and how many passed even when it has to stop vitest before its end.
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';

export default class ProgressReporter {
  constructor() {
    this.path = process.env.BME_TEST_PROGRESS;
    this.counts = { passed: 0, failed: 0, skipped: 0 };
    /** moduleId -> { since, test } */
    this.running = new Map();
    this.done = false;
  }

  onTestModuleStart(m) {
    this.running.set(m.moduleId, { since: Date.now(), test: '' });
    this.save();
  }

  onTestCaseReady(t) {
    const r = this.running.get(t.module.moduleId);
    if (r) r.test = t.fullName;
    this.save();
  }

  onTestCaseResult(t) {
    const state = t.result().state;
    if (state === 'passed') this.counts.passed++;
    else if (state === 'failed') this.counts.failed++;
    else this.counts.skipped++;
    this.save();
  }

  onTestModuleEnd(m) {
    this.running.delete(m.moduleId);
    // A file that failed to load has no tests to count: it counts as one failure.
    if (m.state() === 'failed' && [...m.children.allTests()].length === 0) this.counts.failed++;
    this.save();
  }

  onTestRunEnd(_modules, unhandledErrors) {
    // An error outside any test (an unhandled rejection in a file) fails the run: count it.
    this.counts.failed += unhandledErrors.length;
    this.done = true;
    this.save();
  }

  save() {
    if (!this.path) return;
    const running = [...this.running].map(([id, r]) => ({ file: relative(process.cwd(), id), since: r.since, test: r.test }));
    writeFileSync(this.path, JSON.stringify({ ...this.counts, done: this.done, running }));
  }
}

import { describe, expect, it, vi } from 'vitest';
import { CheckpointError } from '../../../src/collect/checkpoint.js';
import { Scheduler } from '../../../src/collect/scheduler.js';
import { logger } from '../../../src/log.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Scheduler', () => {
  it('runs each task on its own interval and never overlaps a task with itself', async () => {
    const s = new Scheduler({ random: () => 0 });
    let running = 0;
    let maxRunning = 0;
    let slowRuns = 0;
    let fastRuns = 0;
    s.add({ name: 'slow', intervalMs: 20, run: async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(50); // outlasts its interval: ticks are skipped and counted, not queued
      running--;
      slowRuns++;
    } });
    s.add({ name: 'fast', intervalMs: 10, run: async () => { fastRuns++; } });
    s.start();
    await sleep(230);
    await s.stop();
    expect(maxRunning).toBe(1);
    expect(slowRuns).toBeGreaterThanOrEqual(3);
    expect(slowRuns).toBeLessThanOrEqual(5);
    expect(s.state('slow')!.overruns).toBeGreaterThanOrEqual(slowRuns - 1);
    expect(fastRuns).toBeGreaterThan(slowRuns * 2);
    const after = fastRuns;
    await sleep(40);
    expect(fastRuns).toBe(after); // stopped means stopped
  });

  it('keeps a task that throws on its schedule', async () => {
    const s = new Scheduler({ random: () => 0 });
    let n = 0;
    s.add({ name: 'bad', intervalMs: 10, run: async () => {
      n++;
      throw new Error('boom');
    } });
    s.start();
    await sleep(60);
    await s.stop();
    expect(n).toBeGreaterThanOrEqual(3);
  });

  it('logs an expected failure as its one line and anything else with its stack', async () => {
    const logged = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    try {
      const s = new Scheduler({ random: () => 0 });
      const bug = new TypeError('undefined is not a function');
      s.add({ name: 'ours', intervalMs: 1000, run: async () => { throw new CheckpointError('cannot save the checkpoint: ENOSPC', 'ENOSPC'); } });
      s.add({ name: 'bug', intervalMs: 1000, run: async () => { throw bug; } });
      s.start();
      await sleep(30);
      await s.stop();
      const errs = Object.fromEntries(logged.mock.calls.map(([obj]) => [(obj as { task: string }).task, (obj as { err: unknown }).err]));
      expect(errs).toEqual({ ours: 'cannot save the checkpoint: ENOSPC', bug });
    } finally {
      logged.mockRestore();
    }
  });

  it('waits for a running cycle on stop and refuses duplicate names', async () => {
    const s = new Scheduler({ random: () => 0 });
    let done = false;
    s.add({ name: 'a', intervalMs: 1000, run: async () => {
      await sleep(30);
      done = true;
    } });
    expect(() => s.add({ name: 'a', intervalMs: 1, run: async () => {} })).toThrow('a task named a is already scheduled');
    s.start();
    await sleep(5);
    await s.stop();
    expect(done).toBe(true);
  });
});

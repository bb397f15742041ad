/**
 * MapTask's own decisions, without a kernel: a TaskSource gives it jobs and the id its pin names.
 * keep_stale, following a pin to a new map, a pin that goes away, and the errno it reports.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BpfError, Errno } from '../../../src/bpf/errors.js';
import type { IterationStats } from '../../../src/bpf/batch.js';
import type { PlanProblem } from '../../../src/aggregate/plan.js';
import { MapTask, type TaskJob, type TaskSinks, type TaskSource } from '../../../src/collect/map-task.js';
import { parseConfig } from '../../../src/config/parse.js';

afterEach(() => {
  vi.useRealTimers();
});

function spec(extra = '', mode = 'read') {
  return parseConfig(
    `maps:
  - name: flows
    mode: ${mode}
    source: { pinned: /sys/fs/bpf/flows }
    key: [{ name: k, type: u32 }]
    value: [{ name: v, type: u64 }]
    metrics: [{ name: flows_total, type: counter, help: F, value: v }]
${extra}`,
    'task.yaml',
  ).maps[0];
}

/** A job over no kernel: it opens with `problems`, reads `entries` entries or throws `fails`. */
class FakeJob implements TaskJob {
  seeded = 0;
  lostEvents = 0;
  ringCounts = { records: 0, discarded: 0, skipped: 0, invalid: 0, full: 0 };
  mapPlan = undefined;
  closed = 0;
  reads = 0;
  fails: Error | undefined;
  constructor(
    readonly id: number,
    private readonly problems: PlanProblem[] = [],
  ) {}
  get mapInfo() {
    return { id: this.id, maxEntries: 16 };
  }
  open(): PlanProblem[] {
    return this.problems;
  }
  async readAsync() {
    this.reads++;
    if (this.fails !== undefined) throw this.fails;
    const iteration = { method: 'batch', fallback: undefined, entries: 3, calls: 1, grown: 0, resumed: 0, restarts: 0, duplicatesSkipped: 0, truncated: false } as unknown as IterationStats;
    return { snapshot: { families: [], stats: new Map() }, iteration };
  }
  close(): void {
    this.closed++;
  }
  exportState() {
    return {};
  }
  importState(): number {
    return 0;
  }
  addBatches(): void {}
  refreshSeed(): PlanProblem[] {
    return [];
  }
}

/** Jobs handed out in order, and the id the pin names now (or the error probing it throws). */
function source(jobs: FakeJob[]): TaskSource & { pinned: number | Error; opened: number } {
  const s: TaskSource & { pinned: number | Error; opened: number } = {
    pinned: jobs[0]?.id ?? 0,
    opened: 0,
    job: () => {
      const j = jobs[s.opened++];
      if (j === undefined) throw new Error('no more jobs');
      return j;
    },
    currentId: () => {
      if (s.pinned instanceof Error) throw s.pinned;
      return s.pinned;
    },
  };
  return s;
}

function sinks(): TaskSinks & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    publish: (job) => log.push(`publish ${job}`),
    unpublish: (job) => log.push(`unpublish ${job}`),
    read: (job, r) => log.push(`read ${job} ${r.entries}`),
    failed: (job, errno) => log.push(`failed ${job} ${errno}`),
    lost: () => {},
    eventsLost: () => {},
    ringRead: () => {},
    drained: () => log.push('drained'),
    paused: () => undefined,
    unsaved: () => {},
    setAside: () => {},
  };
}

/** A task over two fake maps, ids `ids`: the pin names the first. */
function twoMaps(ids: [number, number], mode = 'read') {
  const out = sinks();
  const [a, b] = [new FakeJob(ids[0]), new FakeJob(ids[1])];
  const src = source([a, b]);
  return { out, a, b, src, task: new MapTask(spec('', mode), 0, out, { source: src }) };
}

const gone = () => new BpfError('open pinned map', -Errno.ENOENT, { map: '/sys/fs/bpf/flows' });

describe('a map task', () => {
  it('reports the errno of a problem opening its source, and none for a problem of the config', async () => {
    const out = sinks();
    const jobs = [new FakeJob(1, [{ path: ['maps', 0, 'source'], message: 'map /sys/fs/bpf/flows: open pinned map failed: EPERM', errno: 'EPERM' }]), new FakeJob(1, [{ path: ['maps', 0, 'key'], message: 'key is 8 bytes, the map has 4' }])];
    const task = new MapTask(spec(), 0, out, { source: source(jobs) });
    await task.run();
    await task.run();
    expect(out.log).toEqual(['failed flows EPERM', 'unpublish flows', 'failed flows none', 'unpublish flows']);
  });

  it('keeps its series published through failures for keep_stale after the last good read, then drops them', async () => {
    vi.useFakeTimers({ now: 1_000_000, toFake: ['Date'] });
    const out = sinks();
    const first = new FakeJob(1);
    const task = new MapTask(spec('    keep_stale: 10s'), 0, out, { source: source([first, new FakeJob(1, [{ path: ['maps', 0, 'source'], message: 'gone', errno: 'ENOENT' }])]) });
    await task.run();
    first.fails = new BpfError('lookup batch', -Errno.EBADF, { map: 'flows' });
    vi.setSystemTime(1_005_000);
    await task.run(); // the read fails 5 s after the good one: still published
    expect(first.closed).toBe(1);
    vi.setSystemTime(1_011_000);
    await task.run(); // reopening fails 11 s after it: dropped
    expect(out.log).toEqual(['publish flows', 'read flows 3', 'failed flows EBADF', 'failed flows ENOENT', 'unpublish flows']);
  });

  it('drops its series at the first failure without keep_stale', async () => {
    const out = sinks();
    const first = new FakeJob(1);
    const task = new MapTask(spec(), 0, out, { source: source([first]) });
    await task.run();
    first.fails = new BpfError('lookup batch', -Errno.EBADF, { map: 'flows' });
    await task.run();
    expect(out.log).toEqual(['publish flows', 'read flows 3', 'failed flows EBADF', 'unpublish flows']);
  });

  it('follows its pin to a new map: the old job closed, the new one opened and read in the same cycle', async () => {
    const { out, a, b, src, task } = twoMaps([1, 2]);
    await task.run();
    await task.run(); // the pin still names map 1
    expect([src.opened, a.reads, a.closed]).toEqual([1, 2, 0]);
    src.pinned = 2;
    await task.run();
    expect([src.opened, a.closed, b.reads]).toEqual([2, 1, 1]);
    expect(out.log.filter((l) => l.startsWith('failed'))).toEqual([]);
  });

  it('a drain takes what is left in the old map before it follows the pin', async () => {
    const { out, a, b, src, task } = twoMaps([1, 2], 'drain');
    await task.run();
    src.pinned = 2;
    await task.run();
    // The old map drained once more (and published) before closing; then the new one.
    expect([a.reads, a.closed, b.reads]).toEqual([2, 1, 1]);
    expect(out.log).toEqual(['publish flows', 'read flows 3', 'drained', 'publish flows', 'publish flows', 'read flows 3', 'drained']);
  });

  it('lets go of a map whose last pin is gone, and fails with ENOENT until it is back', async () => {
    const { out, a, src, task } = twoMaps([1, 3]);
    await task.run();
    src.pinned = gone();
    await task.run();
    expect(a.closed).toBe(1);
    src.pinned = 3;
    await task.run();
    expect(out.log).toEqual(['publish flows', 'read flows 3', 'failed flows ENOENT', 'unpublish flows', 'publish flows', 'read flows 3']);
  });
});

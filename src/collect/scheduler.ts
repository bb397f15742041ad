import { logger } from '../log.js';
import { isExpected } from '../util/errors.js';

export interface Task {
  readonly name: string;
  readonly intervalMs: number;
  /** One cycle. Errors are the task's to report; a throw is logged and the task keeps its schedule. */
  run(): Promise<void>;
}

export interface TaskState {
  cycles: number;
  /** Ticks skipped because a cycle outlasted its interval (counted, never queued). */
  overruns: number;
  running: boolean;
}

interface Entry {
  task: Task;
  state: TaskState;
  timer: NodeJS.Timeout | undefined;
  current: Promise<void> | undefined;
}

/**
 * Runs every task on its own interval, never overlapping itself. The first run of each task is
 * spread over a small jitter (a tenth of its interval, at most 1 s) so that tasks with the same
 * interval do not fire together; later runs keep the task's own cadence, and ticks that a long
 * cycle made miss are counted as overruns instead of being queued.
 */
export class Scheduler {
  private readonly entries = new Map<string, Entry>();
  private stopped = true;
  private readonly random: () => number;

  constructor(opts: { random?: () => number } = {}) {
    this.random = opts.random ?? Math.random;
  }

  add(task: Task): void {
    if (this.entries.has(task.name)) throw new Error(`a task named ${task.name} is already scheduled`);
    const e: Entry = { task, state: { cycles: 0, overruns: 0, running: false }, timer: undefined, current: undefined };
    this.entries.set(task.name, e);
    if (!this.stopped) this.arm(e, this.random() * Math.min(task.intervalMs / 10, 1000));
  }

  state(name: string): Readonly<TaskState> | undefined {
    return this.entries.get(name)?.state;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    for (const e of this.entries.values()) this.arm(e, this.random() * Math.min(e.task.intervalMs / 10, 1000));
  }

  /** Run a task now (outside its schedule) unless it is running; resolves when that cycle ends. */
  async runNow(name: string): Promise<void> {
    const e = this.entries.get(name);
    if (e === undefined) return;
    if (e.current !== undefined) return e.current;
    await this.cycle(e, false);
  }

  /** Stop scheduling and wait for running cycles to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const e of this.entries.values()) {
      clearTimeout(e.timer);
      e.timer = undefined;
    }
    await Promise.all([...this.entries.values()].map((e) => e.current));
  }

  private arm(e: Entry, delayMs: number): void {
    e.timer = setTimeout(() => void this.cycle(e, true), Math.max(0, delayMs));
    e.timer.unref?.();
  }

  private async cycle(e: Entry, scheduled: boolean): Promise<void> {
    const start = performance.now();
    e.state.running = true;
    e.current = e.task.run().catch((err: unknown) => {
      // An expected failure (a BPF error: errno and what it means) is one line; anything else keeps its stack.
      logger.error({ task: e.task.name, err: isExpected(err) ? err.message : err }, 'task cycle failed');
    });
    await e.current;
    e.current = undefined;
    e.state.running = false;
    e.state.cycles++;
    if (!scheduled || this.stopped || !this.entries.has(e.task.name)) return;
    const interval = e.task.intervalMs;
    const elapsed = performance.now() - start;
    const missed = Math.floor(elapsed / interval);
    e.state.overruns += missed;
    this.arm(e, (missed + 1) * interval - elapsed);
  }
}

import type { MapSpec } from '../config/types.js';
import { BpfMap } from '../bpf/map.js';
import { BpfError } from '../bpf/errors.js';
import type { ObjectRegistry } from '../bpf/object.js';
import type { DecoderEnv } from '../decode/index.js';
import type { SeriesState } from '../aggregate/types.js';
import type { MapSnapshot } from '../aggregate/map-aggregator.js';
import type { PlanProblem } from '../aggregate/plan.js';
import { logger } from '../log.js';
import { MapJob, type RingCounts } from './job.js';
import type { SpanInput } from '../publish/otel-spans.js';
import { JournalError, type Journal, type JournalRecord } from './journal.js';
import type { Task } from './scheduler.js';
import { nextTurn } from '../util/slices.js';

/** Where a map task hands its results: the publishers and the self-metrics. */
export interface TaskSinks {
  publish(job: string, families: MapSnapshot['families'], startTime: number): void;
  unpublish(job: string): void;
  read(job: string, r: { entries: number; maxEntries: number; seconds: number; method: string; truncated: boolean; stats: MapSnapshot['stats'] }): void;
  failed(job: string, errno: string, message: string): void;
  lost(job: string, entries: number): void;
  /** Events of a perf_event_array job the kernel dropped (its rings were full when they came). */
  eventsLost(job: string, events: number): void;
  /** What a ring buffer job took in its last read. */
  ringRead(job: string, counts: RingCounts): void;
  /** A drain cycle moved entries into the totals: time to checkpoint. */
  drained(): void;
  /**
   * Why drains must wait (the drain state cannot be saved: a failed checkpoint or journal write),
   * after trying to save it once more; undefined when they may go on.
   */
  paused(): { errno: string; message: string } | undefined;
  /** A batch taken out of the map could not be journaled: its entries are counted, not yet saved. */
  unsaved(job: string, entries: number, errno: string, message: string): void;
  /** Journal records that cannot be counted into this job's totals: kept in a file of their own. */
  setAside(job: string, records: JournalRecord[], reason: string): void;
}

/** Where a drain task journals what it takes, and what an earlier run journaled for it. */
export interface TaskJournal {
  journal: Journal;
  /** Sync the journal after every batch (state_sync: batch), not only with each cycle's checkpoint. */
  syncEachBatch: boolean;
  /** The last record counted in the restored totals. */
  position: number;
  /** Records after it, to be counted once the map is open. */
  records: JournalRecord[];
}

/** What a task needs of its job: MapJob's surface, so that a test can give it another. */
export type TaskJob = Pick<MapJob, 'open' | 'readAsync' | 'close' | 'exportState' | 'importState' | 'addBatches' | 'refreshSeed' | 'seeded' | 'lostEvents' | 'ringCounts' | 'mapInfo' | 'mapPlan'>;

/** How a task reaches the kernel: its job, and the id its source names now. Injected by tests. */
export interface TaskSource {
  job(spec: MapSpec, index: number): TaskJob;
  /**
   * The id of the map a pinned or named source names now, other than `exclude` for a name (our own
   * fd keeps the old map alive, and would match it too). Throws BpfError as opening would.
   */
  currentId(source: { pinned: string } | { name: string }, exclude: number): number;
}

/** The kernel's: MapJob, and the map the pin or name opens. */
export const KERNEL_SOURCE: TaskSource = {
  job: (spec, index) => new MapJob(spec, index),
  currentId: (source, exclude) => {
    const probe = 'pinned' in source ? BpfMap.openPinned(source.pinned) : BpfMap.openByName(source.name, { exclude: [exclude] });
    try {
      return probe.info.id;
    } finally {
      probe.close();
    }
  },
};

/**
 * One configured map on its schedule: opens (and re-opens) its source, reads or drains it, and hands
 * the snapshot to the publishers. A map that vanishes makes the task report up 0 with the errno and
 * try again next cycle; a pin re-created with a new map is followed without a restart. Drain totals
 * survive all of that: they live in the task, not in the map.
 */
export class MapTask implements Task {
  readonly name: string;
  readonly intervalMs: number;
  readonly spec: MapSpec;
  private readonly index: number;
  private readonly sinks: TaskSinks;
  private readonly env: DecoderEnv | undefined;
  private readonly objects: ObjectRegistry | undefined;
  private job: TaskJob | undefined;
  private readonly source: TaskSource;
  /** Totals waiting for a job to be (re)opened: restored from a checkpoint, or carried from a replaced map. */
  private pending: Record<string, SeriesState[]> | undefined;
  /** When the totals of this task started (its cumulative start time for OTLP). */
  private startTime = Date.now();
  /** When the map was last read successfully (ms), for keep_stale. */
  private lastGood = 0;
  private readonly journal: Journal | undefined;
  private readonly syncEachBatch: boolean;
  /** The last journal record counted in the totals. */
  private position: number;
  /** Journal records of an earlier run not yet counted (the map has not been opened since). */
  private waiting: JournalRecord[];
  /** The seed refresh's last failures, logged once while they last. */
  private lastSeedFailure = '';

  /** Where a spans job's spans go. */
  private readonly spans: ((span: SpanInput) => void) | undefined;

  constructor(spec: MapSpec, index: number, sinks: TaskSinks, opts: { env?: DecoderEnv; state?: Record<string, SeriesState[]>; objects?: ObjectRegistry; journal?: TaskJournal; source?: TaskSource; spans?: (span: SpanInput) => void } = {}) {
    this.spans = opts.spans;
    this.source = opts.source ?? KERNEL_SOURCE;
    this.name = spec.name;
    this.intervalMs = spec.interval;
    this.spec = spec;
    this.index = index;
    this.sinks = sinks;
    this.env = opts.env;
    this.objects = opts.objects;
    this.pending = opts.state;
    this.journal = opts.journal?.journal;
    this.syncEachBatch = opts.journal?.syncEachBatch ?? false;
    this.position = opts.journal?.position ?? 0;
    this.waiting = opts.journal?.records ?? [];
  }

  get draining(): boolean {
    return this.spec.mode === 'drain';
  }

  /** Where the totals are in the journal, and the records still waiting: what a checkpoint keeps. */
  journalState(): TaskJournal | undefined {
    return this.journal === undefined ? undefined : { journal: this.journal, syncEachBatch: this.syncEachBatch, position: this.position, records: this.waiting };
  }

  /** The drain totals now (for checkpoints and reloads). */
  state(): Record<string, SeriesState[]> {
    return this.job?.exportState() ?? this.pending ?? {};
  }

  async run(): Promise<void> {
    const started = performance.now();
    try {
      await this.followSource();
      if (this.job === undefined) {
        const problems = this.open();
        if (problems.length > 0) {
          const first = problems[0];
          this.fail(first.errno ?? 'none', first.message);
          return;
        }
      }
      const job = this.job!;
      this.refreshSeed(job);
      if (this.spec.metrics.length === 0 && this.spec.spans === undefined) {
        // A job that only seeds its map has nothing to read (a cgrp_storage map cannot even be
        // iterated): its entries are the ones it keeps written.
        this.sinks.read(this.name, { entries: job.seeded, maxEntries: job.mapInfo?.maxEntries ?? 0, seconds: (performance.now() - started) / 1000, method: 'seed', truncated: false, stats: new Map() });
        this.lastGood = Date.now();
        return;
      }
      if (this.draining) {
        const paused = this.sinks.paused();
        if (paused !== undefined) {
          this.fail(paused.errno, `drain paused, the entries stay in the map: ${paused.message}`);
          return;
        }
      }
      const { snapshot, iteration } = await job.readAsync(this.spec.mode, this.draining ? this.journalTaken(job) : undefined);
      if (job.lostEvents > 0) {
        this.sinks.eventsLost(this.name, job.lostEvents);
        job.lostEvents = 0;
      }
      if (job.ringCounts.records + job.ringCounts.full > 0 || this.spec.spans !== undefined) {
        this.sinks.ringRead(this.name, job.ringCounts);
        job.ringCounts = { records: 0, discarded: 0, skipped: 0, invalid: 0, full: 0 };
      }
      this.sinks.publish(this.name, snapshot.families, this.startTime);
      this.sinks.read(this.name, {
        entries: iteration.entries,
        maxEntries: job.mapInfo?.maxEntries ?? 0,
        seconds: (performance.now() - started) / 1000,
        method: iteration.method,
        truncated: iteration.truncated,
        stats: snapshot.stats,
      });
      this.lastGood = Date.now();
      if (this.draining) this.sinks.drained();
    } catch (e) {
      if (e instanceof JournalError) {
        // The batch is in the totals and published; it is saved by the next checkpoint that works.
        this.fail(e.errnoName, e.message);
        return;
      }
      if (!(e instanceof BpfError)) throw e;
      if (e.possibleLoss > 0) this.sinks.lost(this.name, e.possibleLoss);
      // The map may be gone (or its fd broken): open it afresh next cycle, keeping the totals.
      this.closeJob();
      this.fail(e.errnoName, e.message);
    }
  }

  /** A final drain before exit or reload, so that what is in the map now is counted. */
  async finalCycle(): Promise<void> {
    if (this.draining) await this.run();
  }

  close(): void {
    this.closeJob();
  }

  private open(): PlanProblem[] {
    const job = this.source.job(this.spec, this.index);
    const problems = job.open({ write: this.draining, env: this.env, objects: this.objects, seed: true, cgroupRoot: this.env?.cgroupRoot, spans: this.spans, poll: true });
    if (problems.length > 0) return problems;
    if (this.pending !== undefined) {
      const skipped = job.importState(this.pending);
      if (skipped > 0) logger.warn({ map: this.name, skipped }, 'saved series that no longer fit the metrics were not restored');
      this.pending = undefined;
    }
    this.countWaiting(job);
    this.job = job;
    return [];
  }

  /**
   * The seed's cgroup entries, brought up to date each cycle. A cgroup that cannot be written (a
   * full map) is logged, once per distinct failure, and the map is read all the same: the entries
   * mirror the host, and the metrics do not depend on all of them being there.
   */
  private refreshSeed(job: TaskJob): void {
    const problems = job.refreshSeed();
    const text = problems.map((p) => p.message).join('\n');
    if (text !== '' && text !== this.lastSeedFailure) logger.warn({ map: this.name, failures: problems.length }, problems[0].message);
    this.lastSeedFailure = text;
  }

  /** Count what an earlier run journaled after its last checkpoint, if it still fits the map. */
  private countWaiting(job: TaskJob): void {
    if (this.waiting.length === 0) return;
    const records = this.waiting;
    this.waiting = [];
    const { keySize, valueStride } = job.mapPlan!.shape;
    const misfit = records.find((r) => r.keySize !== keySize || r.valueSize !== valueStride);
    if (misfit !== undefined) {
      this.sinks.setAside(this.name, records, `journaled entries of ${misfit.keySize}-byte keys and ${misfit.valueSize}-byte values, the map now has ${keySize} and ${valueStride}`);
      return;
    }
    job.addBatches(records);
    this.position = records.reduce((n, r) => Math.max(n, r.seq), this.position);
    logger.info({ map: this.name, records: records.length, entries: records.reduce((n, r) => n + r.count, 0) }, 'counted the entries an earlier run took out of the map after its last checkpoint');
  }

  /**
   * Journal each batch a drain takes before the next batch call: written (a process crash cannot
   * lose it), and with state_sync: batch synced too (nor can a host crash).
   */
  private journalTaken(job: TaskJob): ((keys: Uint8Array, values: Uint8Array, count: number) => Promise<void>) | undefined {
    const journal = this.journal;
    if (journal === undefined) return undefined;
    const { keySize, valueStride } = job.mapPlan!.shape;
    return async (keys, values, count) => {
      try {
        this.position = journal.append(this.name, keys, values, count, keySize, valueStride);
        if (this.syncEachBatch) await journal.commit();
        else await nextTurn();
      } catch (e) {
        if (e instanceof JournalError) this.sinks.unsaved(this.name, count, e.errnoName, e.message);
        throw e;
      }
    };
  }

  private closeJob(): void {
    if (this.job === undefined) return;
    if (this.draining) this.pending = this.job.exportState();
    this.job.close();
    this.job = undefined;
  }

  private fail(errno: string, message: string): void {
    this.sinks.failed(this.name, errno, message);
    // Read jobs export what the map holds now, and there is no "now" for a map we cannot read, past
    // what keep_stale allows; drain totals are ours and stay published.
    if (this.draining) return;
    const keep = this.spec.keep_stale;
    if (keep === undefined || this.lastGood === 0 || Date.now() - this.lastGood > keep) this.sinks.unpublish(this.name);
  }

  /**
   * A pinned or named map can be replaced (a program restarted) while our fd keeps the old one alive:
   * compare the id the source resolves to with ours each cycle. Before a drain job lets go of the
   * old map it drains it one last time.
   */
  private async followSource(): Promise<void> {
    const source = this.spec.source;
    if (this.job === undefined || !('pinned' in source || 'name' in source)) return;
    let id: number | undefined;
    try {
      id = this.source.currentId(source, this.job.mapInfo?.id ?? 0);
    } catch (e) {
      if (!(e instanceof BpfError)) throw e;
      if ('pinned' in source && e.errnoName === 'ENOENT') {
        // The last pin is gone: only our fd keeps the map alive, and nothing will write to it again.
        // Its series are not the map's "now" (a drain takes what is left first); the cycle fails
        // with ENOENT until the pin comes back.
        await this.letGo();
        throw e;
      }
      // No other map of that name (or several): our fd still holds the map; keep reading it.
      return;
    }
    if (id === this.job.mapInfo?.id) return;
    logger.info({ map: this.name, from: this.job.mapInfo?.id, to: id }, 'the source now names another map: following it');
    await this.letGo();
  }

  /** Close the map our fd alone holds; a drain job takes what is left in it first. */
  private async letGo(): Promise<void> {
    if (this.draining && this.job !== undefined) {
      // Even when drains are paused: closing the map without it would destroy what is left.
      const { snapshot } = await this.job.readAsync(this.spec.mode, this.journalTaken(this.job));
      this.sinks.publish(this.name, snapshot.families, this.startTime);
    }
    this.closeJob();
  }
}

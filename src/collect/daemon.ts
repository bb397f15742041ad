import type { Config } from '../config/types.js';
import type { DecoderEnv } from '../decode/index.js';
import type { ExpositionCache } from '../publish/prometheus.js';
import type { SnapshotProducer } from '../publish/otel.js';
import type { SelfMetrics } from '../publish/self-metrics.js';
import type { SpanExporter } from '../publish/otel-spans.js';
import type { SeriesState } from '../aggregate/types.js';
import { logger } from '../log.js';
import { CheckpointError, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { inventoryAsync, programInventoryAsync } from '../bpf/inventory.js';
import { Journal, JournalError, type JournalRecord } from './journal.js';
import { MapTask, type TaskJournal, type TaskSinks } from './map-task.js';
import { Scheduler } from './scheduler.js';
import { ObjectRegistry } from '../bpf/object.js';
import { BpfError } from '../bpf/errors.js';

export interface DaemonOptions {
  exposition: ExpositionCache;
  self: SelfMetrics;
  producer?: SnapshotProducer;
  /** Run the inventory of every map on the host (always when the config lists no maps). */
  inventory?: boolean;
  env?: DecoderEnv;
  /** Where the spans of ring buffer jobs (spans:) go; without it such jobs take their records and send nothing. */
  spans?: Pick<SpanExporter, 'add' | 'stats'>;
}

const INVENTORY = 'inventory';

/** What a drain task carries from a state file, or across a reload. */
interface Carried {
  state: Record<string, SeriesState[]>;
  position: number;
  records: JournalRecord[];
}

/**
 * The running exporter: one scheduled task per configured map (and the inventory), their snapshots
 * handed to every publisher, drain totals checkpointed after every drain cycle and carried across
 * reloads.
 */
export class Daemon {
  private config: Config;
  private readonly opts: DaemonOptions;
  private scheduler = new Scheduler();
  private tasks: MapTask[] = [];
  private readonly firstDone = new Set<string>();
  private readonly overrunsSeen = new Map<string, number>();
  private readonly sinks: TaskSinks;
  /** BPF objects named by object sources, loaded and attached once, shared by their jobs. */
  private readonly objects = new ObjectRegistry();
  /** The last failure logged per job, until it reads again. */
  private readonly lastFailure = new Map<string, string>();
  /** Where every batch a drain takes is journaled before the next batch call (with a state file). */
  private journal: Journal | undefined;
  /** Why the drain state cannot be saved (drains pause until it can), and the entries at risk. */
  private unsavedReason: { errno: string; message: string } | undefined;
  private unsavedEntries = 0;

  constructor(config: Config, opts: DaemonOptions) {
    this.config = config;
    this.opts = opts;
    const { exposition, self, producer } = opts;
    const changed = () => exposition.invalidate();
    this.sinks = {
      publish: (job, families, startTime) => {
        try {
          exposition.set(job, families);
        } catch (e) {
          logger.error({ map: job, err: (e as Error).message }, 'snapshot not published');
        }
        producer?.set(job, families, { startTime, time: Date.now() });
      },
      unpublish: (job) => {
        exposition.remove(job);
        producer?.remove(job);
      },
      read: (job, r) => {
        this.loadedPrograms();
        this.firstCycleDone(job);
        if (this.lastFailure.delete(job)) logger.info({ map: job }, 'the map is read again');
        self.read(job, r);
        const overruns = this.scheduler.state(job)?.overruns ?? 0;
        self.overrun(job, overruns - (this.overrunsSeen.get(job) ?? 0));
        this.overrunsSeen.set(job, overruns);
        changed();
      },
      failed: (job, errno, message) => {
        this.loadedPrograms();
        this.firstCycleDone(job);
        self.failed(job, errno, message);
        // A failure repeated every cycle is logged once (and at debug after); map_up 0 and
        // read_errors_total keep counting it. A different failure is logged again.
        const repeated = this.lastFailure.get(job) === message;
        this.lastFailure.set(job, message);
        logger[repeated ? 'debug' : 'warn']({ map: job, errno }, message);
        changed();
      },
      lost: (job, n) => self.lost(job, n),
      eventsLost: (job, n) => self.eventsLost(job, n),
      ringRead: (job, counts) => {
        self.ringRead(job, counts);
        if (this.opts.spans !== undefined) self.spans(this.opts.spans.stats);
      },
      drained: () => this.checkpoint(),
      paused: () => {
        // Drains wait for the state to be saved again; each waiting cycle tries once more.
        if (this.unsavedReason !== undefined) this.checkpoint();
        return this.unsavedReason;
      },
      unsaved: (job, entries, errno, message) => {
        // Drains pause until a checkpoint (which saves these entries too) works.
        this.unsavedReason = { errno, message };
        self.checkpointUp(false);
        this.unsavedEntries += entries;
        self.unsaved(this.unsavedEntries);
        logger.error({ map: job, entries }, `${message}: the entries taken are counted and published, and saved by the next checkpoint that works; drains pause until then`);
      },
      setAside: (job, records, reason) => this.setAside(job, records, reason),
    };
  }

  /**
   * The programs of the objects loaded (attached or not, run time and count) as of now: taken after
   * every job's cycle, so they are as fresh as the maps read with them.
   */
  private loadedPrograms(): void {
    try {
      this.opts.self.loadedPrograms(this.objects.programs());
    } catch (e) {
      if (!(e instanceof BpfError)) throw e;
      logger.debug({ err: e.message }, 'program info of a loaded object not read');
    }
  }

  /**
   * The maps an object source loads exist only once its job has run: when every job has finished
   * its first cycle, the inventory runs once more at once, so that it lists them without waiting
   * for its interval.
   */
  private firstCycleDone(job: string): void {
    const first = !this.firstDone.has(job);
    this.firstDone.add(job);
    if (first && this.inventoryOn() && this.tasks.every((t) => this.firstDone.has(t.name))) void this.scheduler.runNow(INVENTORY);
  }

  /** Why the exporter is not ready (undefined when it is): maps not read yet, or drain state not saved. */
  notReady(): string | undefined {
    if (!this.tasks.every((t) => this.firstDone.has(t.name)) || (this.inventoryOn() && !this.firstDone.has(INVENTORY))) return 'maps not read yet';
    if (this.unsavedReason !== undefined) return `drain state cannot be saved, drains are paused: ${this.unsavedReason.message}`;
    return undefined;
  }

  start(): void {
    const carried = new Map<string, Carried>();
    const path = this.config.state_file;
    if (path !== undefined) {
      const saved = loadCheckpoint(path);
      const records = this.openJournal(path, Math.max(0, ...Object.values(saved.journal)));
      for (const spec of this.config.maps) {
        if (spec.mode !== 'drain') continue;
        const position = saved.journal[spec.name] ?? 0;
        carried.set(spec.name, { state: saved.jobs[spec.name] ?? {}, position, records: records.filter((r) => r.job === spec.name && r.seq > position) });
      }
      this.setAsideStrays(records, saved.journal);
      const after = [...carried.values()].reduce((n, c) => n + c.records.length, 0);
      if (after > 0) logger.info({ stateSavedAt: saved.savedAt ?? null, records: after }, 'restoring drain totals: the state file plus the journal records written after it');
    }
    this.install(this.config, carried);
    this.scheduler.start();
  }

  /** Swap in a new config: drain totals of jobs that keep their name carry over. */
  async reload(config: Config): Promise<void> {
    await this.scheduler.stop();
    const carried = this.carried();
    for (const t of this.tasks) t.close();
    // Journal records waiting for a job the new config no longer drains are kept apart, not dropped.
    const drains = new Set(config.maps.filter((m) => m.mode === 'drain').map((m) => m.name));
    for (const [name, c] of carried) if (!drains.has(name) && c.records.length > 0) this.setAside(name, c.records, 'the config has no drain job of that name');
    const keep = new Set(config.maps.map((m) => m.name));
    for (const t of this.tasks) {
      if (!keep.has(t.name)) {
        this.sinks.unpublish(t.name);
        await this.opts.self.forget(t.name);
        this.lastFailure.delete(t.name);
      }
    }
    if (config.state_file !== this.config.state_file) {
      // Another state file: the totals in memory carry over; its journal starts after them.
      this.journal?.close();
      this.journal = undefined;
      if (config.state_file !== undefined) {
        const position = Math.max(0, ...[...carried.values()].map((c) => c.position));
        this.setAsideStrays(this.openJournal(config.state_file, position), {});
      }
    }
    this.config = config;
    this.objects.retain(objectPaths(config));
    this.loadedPrograms();
    this.firstDone.clear();
    this.overrunsSeen.clear();
    this.scheduler = new Scheduler();
    this.install(config, carried);
    this.checkpoint();
    this.scheduler.start();
  }

  /**
   * Stop reading: a final drain of every drain job, a last checkpoint, every map closed. Returns why
   * the drain state could not be saved, if it could not (the exit is then a failure).
   */
  async stop(): Promise<string | undefined> {
    await this.scheduler.stop();
    for (const t of this.tasks) await t.finalCycle();
    this.checkpoint();
    for (const t of this.tasks) t.close();
    this.objects.closeAll();
    this.journal?.close();
    if (this.unsavedReason === undefined) return undefined;
    return `${this.unsavedReason.message}${this.unsavedEntries > 0 ? `; ${this.unsavedEntries} entries taken out of maps are not saved` : ''}`;
  }

  /**
   * Write the drain totals to the state file, if there is one, then empty the journal (but for
   * records not yet counted). A failure pauses drains until a checkpoint works again.
   */
  checkpoint(): void {
    const path = this.config.state_file;
    if (path === undefined || !this.tasks.some((t) => t.draining)) return;
    const journals = this.tasks.filter((t) => t.draining).map((t) => [t.name, t.journalState()] as const);
    try {
      saveCheckpoint(path, this.states(), Object.fromEntries(journals.map(([name, j]) => [name, j?.position ?? 0])));
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      this.opts.self.checkpointFailed();
      if (this.unsavedReason?.message !== e.message) logger.error({ err: e.message }, 'checkpoint failed: drains pause until the state file can be written');
      this.unsavedReason = { errno: e.errnoName, message: e.message };
      this.opts.self.checkpointUp(false);
      return;
    }
    this.journal?.compact(journals.flatMap(([, j]) => j?.records ?? []));
    if (this.unsavedReason !== undefined) logger.info({ entries: this.unsavedEntries }, 'the drain state is saved again: drains go on');
    this.unsavedReason = undefined;
    this.unsavedEntries = 0;
    this.opts.self.unsaved(0);
    this.opts.self.checkpointUp(true);
  }

  private states(): Record<string, Record<string, SeriesState[]>> {
    return Object.fromEntries(this.tasks.filter((t) => t.draining).map((t) => [t.name, t.state()]));
  }

  private carried(): Map<string, Carried> {
    return new Map(
      this.tasks.filter((t) => t.draining).map((t) => {
        const j = t.journalState();
        return [t.name, { state: t.state(), position: j?.position ?? 0, records: j?.records ?? [] }];
      }),
    );
  }

  /** Open the journal beside the state file; returns the records it holds. */
  private openJournal(statePath: string, afterSeq: number): JournalRecord[] {
    try {
      const { journal, records, cutBytes } = Journal.open(`${statePath}.journal`, afterSeq);
      if (cutBytes > 0) logger.warn({ file: journal.path, bytes: cutBytes }, 'the drain journal ended in a record written in part (a crash during a write): it was cut off');
      this.journal = journal;
      return records;
    } catch (e) {
      if (e instanceof JournalError) throw new CheckpointError(e.message, e.errnoName);
      throw e;
    }
  }

  /** Records of jobs the config no longer drains, or already in the totals, are not dropped unseen. */
  private setAsideStrays(records: readonly JournalRecord[], positions: Record<string, number>): void {
    const drains = new Set(this.config.maps.filter((m) => m.mode === 'drain').map((m) => m.name));
    const strays = new Map<string, JournalRecord[]>();
    for (const r of records) {
      if (drains.has(r.job) || r.seq <= (positions[r.job] ?? 0)) continue;
      strays.set(r.job, [...(strays.get(r.job) ?? []), r]);
    }
    for (const [job, rs] of strays) this.setAside(job, rs, 'the config has no drain job of that name');
  }

  private setAside(job: string, records: JournalRecord[], reason: string): void {
    const entries = records.reduce((n, r) => n + r.count, 0);
    try {
      const file = this.journal!.setAside(job, records);
      logger.error({ map: job, entries, file }, `journaled entries not counted (${reason}): kept in a file of their own`);
    } catch (e) {
      if (!(e instanceof JournalError)) throw e;
      logger.error({ map: job, entries, err: e.message }, `journaled entries not counted (${reason}), and they could not be kept apart: they are lost`);
    }
  }

  private inventoryOn(): boolean {
    return this.opts.inventory === true || this.config.inventory || this.config.maps.length === 0;
  }

  private install(config: Config, carried: ReadonlyMap<string, Carried>): void {
    this.tasks = config.maps.map((spec, i) => {
      const c = spec.mode === 'drain' ? carried.get(spec.name) : undefined;
      const journal: TaskJournal | undefined = spec.mode === 'drain' && this.journal !== undefined ? { journal: this.journal, syncEachBatch: config.state_sync === 'batch', position: c?.position ?? 0, records: c?.records ?? [] } : undefined;
      const spans = this.opts.spans;
      return new MapTask(spec, i, this.sinks, { env: this.opts.env, objects: this.objects, state: c?.state, journal, spans: spans === undefined ? undefined : (span) => void spans.add(span) });
    });
    for (const t of this.tasks) this.scheduler.add(t);
    if (!this.inventoryOn()) this.opts.self.inventoryOff();
    else {
      this.scheduler.add({
        name: INVENTORY,
        intervalMs: config.interval,
        run: async () => {
          try {
            const maps = await inventoryAsync();
            this.opts.self.inventory(maps, await programInventoryAsync());
          } catch (e) {
            this.opts.self.inventoryFailed(e instanceof BpfError ? e.errnoName : 'none');
            throw e;
          } finally {
            this.firstDone.add(INVENTORY);
            this.opts.exposition.invalidate();
          }
        },
      });
    }
  }
}

function objectPaths(config: Config): Set<string> {
  return new Set(config.maps.flatMap((m) => ('object' in m.source ? [m.source.object] : [])));
}

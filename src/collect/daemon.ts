import type { Config } from '../config/types.js';
import type { DecoderEnv } from '../decode/index.js';
import type { ExpositionCache } from '../publish/prometheus.js';
import type { SnapshotProducer } from '../publish/otel.js';
import type { SelfMetrics } from '../publish/self-metrics.js';
import type { SeriesState } from '../aggregate/types.js';
import { logger } from '../log.js';
import { CheckpointError, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { inventoryAsync } from './inventory.js';
import { MapTask, type TaskSinks } from './map-task.js';
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
}

const INVENTORY = 'inventory';

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
        this.firstCycleDone(job);
        if (this.lastFailure.delete(job)) logger.info({ map: job }, 'the map is read again');
        self.read(job, r);
        const overruns = this.scheduler.state(job)?.overruns ?? 0;
        self.overrun(job, overruns - (this.overrunsSeen.get(job) ?? 0));
        this.overrunsSeen.set(job, overruns);
        changed();
      },
      failed: (job, errno, message) => {
        this.firstCycleDone(job);
        self.failed(job, errno);
        // A failure repeated every cycle is logged once (and at debug after); map_up 0 and
        // read_errors_total keep counting it. A different failure is logged again.
        const repeated = this.lastFailure.get(job) === message;
        this.lastFailure.set(job, message);
        logger[repeated ? 'debug' : 'warn']({ map: job, errno }, message);
        changed();
      },
      lost: (job, n) => self.lost(job, n),
      drained: () => this.checkpoint(),
    };
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

  /** Every map job (and the inventory) has finished its first cycle. */
  ready(): boolean {
    return this.tasks.every((t) => this.firstDone.has(t.name)) && (!this.inventoryOn() || this.firstDone.has(INVENTORY));
  }

  start(): void {
    const saved = this.config.state_file === undefined ? {} : loadCheckpoint(this.config.state_file);
    this.install(this.config, saved);
    this.scheduler.start();
  }

  /** Swap in a new config: drain totals of jobs that keep their name carry over. */
  async reload(config: Config): Promise<void> {
    await this.scheduler.stop();
    const carried = this.states();
    for (const t of this.tasks) t.close();
    const keep = new Set(config.maps.map((m) => m.name));
    for (const t of this.tasks) {
      if (!keep.has(t.name)) {
        this.sinks.unpublish(t.name);
        await this.opts.self.forget(t.name);
        this.lastFailure.delete(t.name);
      }
    }
    this.config = config;
    this.objects.retain(objectPaths(config));
    this.firstDone.clear();
    this.overrunsSeen.clear();
    this.scheduler = new Scheduler();
    this.install(config, carried);
    this.checkpoint();
    this.scheduler.start();
  }

  /** Stop reading: a final drain of every drain job, a last checkpoint, every map closed. */
  async stop(): Promise<void> {
    await this.scheduler.stop();
    for (const t of this.tasks) await t.finalCycle();
    this.checkpoint();
    for (const t of this.tasks) t.close();
    this.objects.closeAll();
  }

  /** Write the drain totals to the state file, if there is one. */
  checkpoint(): void {
    const path = this.config.state_file;
    if (path === undefined || !this.tasks.some((t) => t.draining)) return;
    try {
      saveCheckpoint(path, this.states());
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      this.opts.self.checkpointFailed();
      logger.error({ err: e.message }, 'checkpoint failed');
    }
  }

  private states(): Record<string, Record<string, SeriesState[]>> {
    return Object.fromEntries(this.tasks.filter((t) => t.draining).map((t) => [t.name, t.state()]));
  }

  private inventoryOn(): boolean {
    return this.opts.inventory === true || this.config.inventory || this.config.maps.length === 0;
  }

  private install(config: Config, states: Record<string, Record<string, SeriesState[]>>): void {
    this.tasks = config.maps.map((spec, i) => new MapTask(spec, i, this.sinks, { env: this.opts.env, objects: this.objects, state: spec.mode === 'drain' ? states[spec.name] : undefined }));
    for (const t of this.tasks) this.scheduler.add(t);
    if (!this.inventoryOn()) this.opts.self.inventoryOff();
    else {
      this.scheduler.add({
        name: INVENTORY,
        intervalMs: config.interval,
        run: async () => {
          try {
            this.opts.self.inventory(await inventoryAsync());
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

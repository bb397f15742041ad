import type { Config, MapSpec } from '../config/types.js';
import { openSource, type OpenedMap } from '../bpf/source.js';
import type { ObjectRegistry } from '../bpf/object.js';
import { mapBtf, type MapBtf } from '../bpf/btf.js';
import { BpfError } from '../bpf/errors.js';
import { possibleCpus } from '../bpf/cpus.js';
import { BatchReader, type IterationStats, type ReadMode } from '../bpf/batch.js';
import type { DecoderEnv } from '../decode/index.js';
import { planMap, type MapPlan, type PlanProblem } from '../aggregate/plan.js';
import { MapAggregator, type MapSnapshot } from '../aggregate/map-aggregator.js';
import { Seeder } from './seed.js';
import { MapType } from '../bpf/map-types.js';
import { PerfEventReader } from '../bpf/perf-buffer.js';
import { parseFieldType } from '../layout/field-type.js';
import { nextTurn } from '../util/slices.js';

export interface JobRead {
  snapshot: MapSnapshot;
  iteration: IterationStats;
}

/**
 * One configured map: its source opened, its layout and metrics fitted to the real map, and reads
 * that turn the map's entries into series. (The scheduler that runs jobs on their intervals builds on this.)
 */
export class MapJob {
  readonly spec: MapSpec;
  readonly index: number;
  private opened: OpenedMap | undefined;
  private plan: MapPlan | undefined;
  private reader: BatchReader | undefined;
  private aggregator: MapAggregator | undefined;
  private seeder: Seeder | undefined;
  /** A perf_event_array job's events (spec.events), and when its totals were last cleared. */
  private events: { reader: PerfEventReader; width: number; flushed: number } | undefined;
  /** Events of a perf_event_array job the kernel lost since the last read (its rings were full). */
  lostEvents = 0;

  constructor(spec: MapSpec, index: number) {
    this.spec = spec;
    this.index = index;
  }

  /**
   * Open the map and fit the config to it. Problems name config paths; BPF failures are problems of
   * `source`. `checkTargets` (check): an object loaded privately is also checked for programs whose
   * attach target is missing. A seed is encoded (its values checked against the layouts) whenever
   * there is one, and written into the map only with `seed: true` (the daemon; check and dump never
   * write): its failures are positioned in their message, since run logs carry no other position.
   */
  open(opts: { write?: boolean; env?: DecoderEnv; objects?: ObjectRegistry; checkTargets?: boolean; seed?: boolean; cgroupRoot?: string } = {}): PlanProblem[] {
    this.close();
    let opened: OpenedMap;
    try {
      // Seeding writes: a pinned map is opened read-write then.
      opened = openSource(this.spec.source, { write: opts.write === true || (opts.seed === true && this.spec.seed !== undefined), objects: opts.objects, checkTargets: opts.checkTargets });
    } catch (e) {
      if (e instanceof BpfError) return [{ path: ['maps', this.index, 'source'], message: e.message, errno: e.errnoName }];
      throw e;
    }
    const { map } = opened;
    if (this.spec.events !== undefined) return this.openEvents(opened, opts.env);
    let btf: MapBtf | undefined;
    try {
      // btf: false takes the written layout as it is (the config requires both key and value then).
      if (this.spec.btf !== false) btf = mapBtf(map);
    } catch (e) {
      // Reading BTF needs CAP_SYS_ADMIN; a config that describes the layout does without it.
      if (!(e instanceof BpfError) || (this.spec.key === undefined || this.spec.value === undefined)) {
        opened.close();
        if (e instanceof BpfError) return [{ path: ['maps', this.index, 'source'], message: `cannot read the map's BTF to learn its layout: ${e.message}`, errno: e.errnoName }];
        throw e;
      }
    }
    const facts = { info: map.info, cpus: map.cpus, cpuIds: map.perCpu ? possibleCpus() : [0], valueStride: map.valueStride, perCpu: map.perCpu, btf };
    const { plan, problems } = planMap(this.spec, this.index, facts, opts.env);
    if (plan === undefined) {
      opened.close();
      return problems;
    }
    if (this.spec.seed !== undefined) {
      const prepared = Seeder.prepare(this.spec, this.index, plan, plan.shape, map.info.type, { cgroupRoot: opts.cgroupRoot });
      const wrote = prepared.seeder === undefined || opts.seed !== true ? [] : prepared.seeder.writeEntries(map);
      if (prepared.seeder === undefined || wrote.length > 0) {
        opened.close();
        return [...prepared.problems, ...wrote];
      }
      this.seeder = prepared.seeder;
    }
    this.opened = opened;
    this.plan = plan;
    this.reader = new BatchReader(map, { batchSize: this.spec.batch_size, method: this.spec.batch ? 'auto' : 'per-key' });
    this.aggregator = new MapAggregator(plan, { accumulate: this.spec.mode === 'drain' });
    return [];
  }

  /**
   * A perf_event_array job: the events are read as entries of a hash map whose key is the
   * configured layout (the event's first bytes) and whose value is a u64 1, counted into totals.
   */
  private openEvents(opened: OpenedMap, env: DecoderEnv | undefined): PlanProblem[] {
    const { map } = opened;
    const fail = (message: string, errno?: string): PlanProblem[] => {
      opened.close();
      return [{ path: ['maps', this.index, 'source'], message, errno }];
    };
    if (map.info.type !== MapType.perf_event_array) return fail(`map ${map.label} is a ${map.info.typeName} map, expected a perf_event_array the programs send events through`);
    const width = (this.spec.key ?? []).reduce((n, f) => {
      const t = parseFieldType(f.type); // the config checked every type already
      return n + (typeof t === 'string' ? 0 : t.size);
    }, 0);
    const info = { ...map.info, type: MapType.hash, typeName: 'hash', keySize: width, valueSize: 8 };
    const { plan, problems } = planMap(this.spec, this.index, { info, cpus: 1, cpuIds: [0], valueStride: 8, perCpu: false, btf: undefined }, env);
    if (plan === undefined) {
      opened.close();
      return problems;
    }
    let reader: PerfEventReader;
    try {
      reader = new PerfEventReader(map, width);
    } catch (e) {
      if (e instanceof BpfError) return fail(e.message, e.errnoName);
      throw e;
    }
    this.opened = { map, close: () => { reader.close(); opened.close(); } };
    this.plan = plan;
    this.events = { reader, width, flushed: Date.now() };
    this.aggregator = new MapAggregator(plan, { accumulate: true });
    return [];
  }

  /** One read of a perf_event_array job: the events since the last, counted into the totals (cleared every flush). */
  private readEvents(): JobRead {
    const ev = this.events!;
    if (Date.now() - ev.flushed >= this.spec.events!.flush) {
      this.aggregator = new MapAggregator(this.plan!, { accumulate: true });
      ev.flushed = Date.now();
    }
    const { data, count, lost } = ev.reader.consume(this.opened!.map.label);
    this.lostEvents += lost;
    const agg = this.aggregator!;
    agg.begin();
    if (count > 0) agg.add(data, ones(count), count);
    const iteration: IterationStats = { method: 'events', fallback: undefined, entries: count, calls: 1, grown: 0, resumed: 0, restarts: 0, duplicatesSkipped: 0, truncated: false, batchSize: count };
    return { snapshot: agg.finish(), iteration };
  }

  /** Bring the seed's cgroup entries up to date (the daemon, every cycle); the failures, positioned. */
  refreshSeed(): PlanProblem[] {
    if (this.seeder === undefined || this.opened === undefined) return [];
    return this.seeder.refreshCgroups(this.opened.map);
  }

  /** Entries the seed wrote and keeps: its entries, and the cgroups written and still there. */
  get seeded(): number {
    return this.seeder === undefined ? 0 : this.seeder.written;
  }

  /** One sweep of the map into a snapshot. `mode` defaults to the job's own. */
  read(mode: ReadMode = this.spec.mode): JobRead {
    if (this.events !== undefined) return this.readEvents();
    if (this.reader === undefined || this.aggregator === undefined) throw new Error(`map job ${this.spec.name} is not open`);
    const agg = this.aggregator;
    agg.begin();
    for (const b of this.reader.batches(mode)) agg.add(b.keys, b.values, b.count);
    return { snapshot: agg.finish(), iteration: { ...this.reader.stats } };
  }

  /**
   * The same sweep as read(), yielding to the event loop after every batch so that /metrics and
   * health checks answer at once while a large map is read. `taken` sees each batch after it is
   * counted and before the next batch call (a drain journals it there).
   */
  async readAsync(mode: ReadMode = this.spec.mode, taken?: (keys: Uint8Array, values: Uint8Array, count: number) => Promise<void>): Promise<JobRead> {
    // perf_buffer__consume never blocks: it takes what the rings hold now.
    if (this.events !== undefined) return this.readEvents();
    if (this.reader === undefined || this.aggregator === undefined) throw new Error(`map job ${this.spec.name} is not open`);
    const agg = this.aggregator;
    agg.begin();
    for (const b of this.reader.batches(mode)) {
      agg.add(b.keys, b.values, b.count);
      if (taken !== undefined) await taken(b.keys, b.values, b.count);
      else await nextTurn();
    }
    return { snapshot: agg.finish(), iteration: { ...this.reader.stats } };
  }

  /** The opened map's id and max_entries (undefined before open()). */
  get mapInfo(): { id: number; maxEntries: number } | undefined {
    const info = this.opened?.map.info;
    return info === undefined ? undefined : { id: info.id, maxEntries: info.maxEntries };
  }

  /** Drain totals, to checkpoint or to carry into a re-opened job. */
  exportState(): ReturnType<MapAggregator['exportState']> {
    return this.aggregator?.exportState() ?? {};
  }

  importState(state: Parameters<MapAggregator['importState']>[0]): number {
    return this.aggregator?.importState(state) ?? 0;
  }

  /** Count batches taken from the map by an earlier run (drain journal records) into the totals. */
  addBatches(batches: readonly { keys: Uint8Array; values: Uint8Array; count: number }[]): void {
    if (this.aggregator === undefined) throw new Error(`map job ${this.spec.name} is not open`);
    // A cycle of their own: rows are counted against the cycle they arrive in.
    this.aggregator.begin();
    for (const b of batches) this.aggregator.add(b.keys, b.values, b.count);
  }

  get mapPlan(): MapPlan | undefined {
    return this.plan;
  }

  close(): void {
    this.opened?.close();
    this.opened = undefined;
    this.plan = undefined;
    this.reader = undefined;
    this.aggregator = undefined;
    this.seeder = undefined;
    this.events = undefined;
  }
}

/** u64 ones, one per event: each event counts once. */
function ones(count: number): Uint8Array {
  const values = new BigUint64Array(count).fill(1n);
  return new Uint8Array(values.buffer);
}

/** The jobs of a config, optionally only the one named. */
export function jobsOf(config: Config, only?: string): MapJob[] {
  return config.maps.flatMap((spec, i) => (only === undefined || spec.name === only ? [new MapJob(spec, i)] : []));
}

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
      if (e instanceof BpfError) return [{ path: ['maps', this.index, 'source'], message: e.message }];
      throw e;
    }
    const { map } = opened;
    let btf: MapBtf | undefined;
    try {
      // btf: false takes the written layout as it is (the config requires both key and value then).
      if (this.spec.btf !== false) btf = mapBtf(map);
    } catch (e) {
      // Reading BTF needs CAP_SYS_ADMIN; a config that describes the layout does without it.
      if (!(e instanceof BpfError) || (this.spec.key === undefined || this.spec.value === undefined)) {
        opened.close();
        if (e instanceof BpfError) return [{ path: ['maps', this.index, 'source'], message: `cannot read the map's BTF to learn its layout: ${e.message}` }];
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
    if (this.reader === undefined || this.aggregator === undefined) throw new Error(`map job ${this.spec.name} is not open`);
    const agg = this.aggregator;
    agg.begin();
    for (const b of this.reader.batches(mode)) {
      agg.add(b.keys, b.values, b.count);
      if (taken !== undefined) await taken(b.keys, b.values, b.count);
      else await new Promise<void>((resolve) => setImmediate(resolve));
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
  }
}

/** The jobs of a config, optionally only the one named. */
export function jobsOf(config: Config, only?: string): MapJob[] {
  return config.maps.flatMap((spec, i) => (only === undefined || spec.name === only ? [new MapJob(spec, i)] : []));
}

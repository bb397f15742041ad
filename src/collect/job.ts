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
import type { MapInfo } from '../bpf/map.js';
import { PerfEventReader } from '../bpf/perf-buffer.js';
import { parseFieldType } from '../layout/field-type.js';
import { layoutFromSpecs } from '../layout/build.js';
import { numberReader, type NumberReader } from '../layout/read.js';
import { observedKey, type BucketRule } from '../aggregate/buckets.js';
import { nextTurn } from '../util/slices.js';
import { RingBufferReader } from '../bpf/ring-buffer.js';
import { wallMinusMonotonicNs } from '../bpf/libbpf.js';
import { SpanRecords } from '../publish/span-records.js';
import type { SpanInput } from '../publish/otel-spans.js';

/** Records taken from a ring buffer per turn of the event loop: a full 1 MiB ring of 64-byte records is ~15 turns. */
const RING_SLICE = 1024;
/** An events job's aggregator: totals kept from read to read (until events.flush), rows a stream of events. */
const EVENTS_AGGREGATION = { accumulate: true, stream: true } as const;

/**
 * How often a ring buffer job's ring is drained between its reads (a timer, not the job's interval:
 * a read publishes, which costs a /metrics generation; a drain that finds nothing costs a few µs).
 */
export const RING_POLL_MS = 100;

/** What a ring buffer job took since the task last asked (the task reports it, then resets it). */
export interface RingCounts {
  records: number;
  /** Records the programs discarded (bpf_ringbuf_discard). */
  discarded: number;
  /** Spans: records a decoder dropped (a regexp that did not match). */
  skipped: number;
  /** Spans: records with no trace id (zero) or that did not read as a span. */
  invalid: number;
  /** Reads that found the ring full: the programs' sends were refused meanwhile (the kernel counts no loss). */
  full: number;
}

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
  /** A perf_event_array job's events (spec.events). */
  private events: { reader: PerfEventReader; width: number } | undefined;
  /** Events of a perf_event_array job the kernel lost since the last read (its rings were full). */
  lostEvents = 0;
  /** A ring buffer job's reader, and its spans (spec.spans) or counts (spec.events). */
  private ring:
    | {
        reader: RingBufferReader;
        width: number;
        spans?: SpanRecords;
        emit?: (span: SpanInput) => void;
        /** The drain running, if one is. */
        draining?: Promise<void>;
        /** Drains between reads, every RING_POLL_MS (the daemon's jobs only: check and dump take no records). */
        poller?: NodeJS.Timeout;
        /** What made a drain between reads fail, reported by the next read. */
        failed?: unknown;
      }
    | undefined;
  /** A ring buffer job's counts since the task last took them. */
  ringCounts: RingCounts = { records: 0, discarded: 0, skipped: 0, invalid: 0, full: 0 };

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
  open(opts: { write?: boolean; env?: DecoderEnv; objects?: ObjectRegistry; checkTargets?: boolean; seed?: boolean; cgroupRoot?: string; spans?: (span: SpanInput) => void; poll?: boolean } = {}): PlanProblem[] {
    this.close();
    let opened: OpenedMap;
    try {
      // Seeding writes, and so does consuming events (a perf buffer puts its events in the map, a
      // ring buffer's reader writes its position): a pinned map is opened read-write then.
      const write = opts.write === true || (opts.seed === true && this.spec.seed !== undefined) || this.spec.events !== undefined || this.spec.spans !== undefined;
      opened = openSource(this.spec.source, { write, objects: opts.objects, checkTargets: opts.checkTargets });
    } catch (e) {
      if (e instanceof BpfError) return [{ path: ['maps', this.index, 'source'], message: e.message, errno: e.errnoName }];
      throw e;
    }
    const { map } = opened;
    if (this.spec.spans !== undefined || (this.spec.events !== undefined && map.info.type === MapType.ringbuf)) return this.openRing(opened, opts.env, opts.spans, opts.poll === true);
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
    const { width, counted, plan, problems } = planEvents(this.spec, this.index, map.info, env);
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
    this.events = { reader, width };
    this.flushed = Date.now();
    this.counted = counted;
    this.aggregator = new MapAggregator(plan, EVENTS_AGGREGATION);
    return [];
  }

  /**
   * A ring buffer job: its records are spans (spec.spans), or events counted as a perf_event_array
   * job's are (spec.events: each record's first bytes are a key with the value 1).
   */
  private openRing(opened: OpenedMap, env: DecoderEnv | undefined, emit: ((span: SpanInput) => void) | undefined, poll: boolean): PlanProblem[] {
    const { map } = opened;
    const fail = (problems: PlanProblem[]): PlanProblem[] => {
      opened.close();
      return problems;
    };
    if (map.info.type !== MapType.ringbuf) return fail([{ path: ['maps', this.index, 'source'], message: `map ${map.label} is a ${map.info.typeName} map, expected a ringbuf the programs send ${this.spec.spans === undefined ? 'events' : 'spans'} through` }]);
    let spans: SpanRecords | undefined;
    if (this.spec.spans !== undefined) {
      const planned = SpanRecords.plan(this.spec, this.index, env);
      if (planned.records === undefined) return fail(planned.problems);
      spans = planned.records;
    }
    const { width, counted, plan, problems } = planEvents(this.spec, this.index, map.info, env);
    if (plan === undefined) return fail(problems);
    let reader: RingBufferReader;
    try {
      reader = new RingBufferReader(map);
    } catch (e) {
      if (e instanceof BpfError) return fail([{ path: ['maps', this.index, 'source'], message: e.message, errno: e.errnoName }]);
      throw e;
    }
    const ring: NonNullable<MapJob['ring']> = { reader, width, spans, emit };
    if (poll) {
      ring.poller = setInterval(() => this.pollRing(), RING_POLL_MS);
      ring.poller.unref();
    }
    // The poller stops before the pages are unmapped; a drain in its slices stops at its next turn.
    this.opened = { map, close: () => { clearInterval(ring.poller); reader.close(); opened.close(); } };
    this.plan = plan;
    this.ring = ring;
    this.counted = counted;
    this.events = undefined;
    this.flushed = Date.now();
    this.aggregator = new MapAggregator(plan, EVENTS_AGGREGATION);
    this.aggregator.begin();
    return [];
  }

  /** When an events job's totals were last cleared. */
  private flushed = 0;
  /** An events job's values: 1 an event, and the values its histograms observe. */
  private counted: EventValues | undefined;

  /**
   * Take what the ring holds: every record there when it starts (and those that come meanwhile, up
   * to a ring's worth), a slice per turn of the event loop, into the spans or the aggregator's cycle.
   * One drain at a time: a poll that finds one running waits for it instead.
   */
  private drainRing(): Promise<void> {
    const ring = this.ring!;
    return (ring.draining ??= (async () => {
      const counts = this.ringCounts;
      // A full ring now means sends were refused since the last drain (or are being refused).
      if (ring.reader.available() > ring.reader.size - 2 * ring.width - 16) counts.full++;
      let budget = ring.reader.size;
      for (;;) {
        const r = ring.reader.consume(ring.width, RING_SLICE);
        counts.records += r.count;
        counts.discarded += r.discarded;
        budget -= r.count * ring.width;
        if (ring.spans !== undefined && r.count > 0) {
          const s = ring.spans.decode(r.data, r.offsets, r.count, wallMinusMonotonicNs(), ring.emit ?? (() => {}));
          counts.skipped += s.skipped;
          counts.invalid += s.invalid;
        } else if (r.count > 0) {
          // Read where they lie in the reader's buffer (its copy: the observed fields are rewritten there).
          this.aggregator!.add(r.data, this.counted!.rows(r.data, r.count, ring.width, r.offsets), r.count, r.offsets);
        }
        if (r.pending === 0 || budget <= 0) return;
        await nextTurn();
      }
    })().finally(() => (ring.draining = undefined)));
  }

  /**
   * One read of a ring buffer job: the last drain, then the counts as a snapshot. The ring is
   * drained between reads too, every RING_POLL_MS: the interval is how often the results are
   * published, and a ring need only hold what comes in a poll's time.
   */
  private async readRing(): Promise<JobRead> {
    const ring = this.ring!;
    if (ring.failed !== undefined) throw ring.failed;
    await this.drainRing();
    // The task takes ringCounts after each read: its records are those since the last read.
    const entries = this.ringCounts.records;
    const snapshot = this.aggregator!.finish();
    this.flushIfDue();
    this.aggregator!.begin();
    const iteration: IterationStats = { method: 'events', fallback: undefined, entries, calls: 1, grown: 0, resumed: 0, restarts: 0, duplicatesSkipped: 0, truncated: false, batchSize: RING_SLICE };
    return { snapshot, iteration };
  }

  /** An events job's totals start anew (every series goes) once `events.flush` has passed since they last did. */
  private flushIfDue(): void {
    const events = this.spec.events;
    if (events === undefined || Date.now() - this.flushed < events.flush) return;
    this.aggregator = new MapAggregator(this.plan!, EVENTS_AGGREGATION);
    this.flushed = Date.now();
  }

  /** A drain between reads (the poller); a failure is kept for the next read to report. */
  private pollRing(): void {
    const ring = this.ring;
    // Nothing written since the last drain: the common case, two loads and no allocation.
    if (ring === undefined || ring.draining !== undefined || ring.failed !== undefined || ring.reader.available() === 0) return;
    this.drainRing().catch((e: unknown) => (ring.failed = e));
  }

  /** One read of a perf_event_array job: the events since the last, counted into the totals (cleared every flush). */
  private readEvents(): JobRead {
    const ev = this.events!;
    this.flushIfDue();
    const { data, count, lost } = ev.reader.consume(this.opened!.map.label);
    this.lostEvents += lost;
    const agg = this.aggregator!;
    agg.begin();
    if (count > 0) agg.add(data, this.counted!.rows(data, count, ev.width), count);
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
    // A ring buffer's records are read once, by the daemon: a synchronous read (dump) takes none of them.
    if (this.ring !== undefined) {
      const snapshot = this.aggregator!.finish();
      this.aggregator!.begin();
      return { snapshot, iteration: { method: 'events', fallback: undefined, entries: 0, calls: 0, grown: 0, resumed: 0, restarts: 0, duplicatesSkipped: 0, truncated: false, batchSize: 0 } };
    }
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
    if (this.ring !== undefined) return this.readRing();
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
    this.ring = undefined;
    this.counted = undefined;
  }
}

/** The bytes of a written layout (the config checked every type already). */
function layoutSize(fields: MapSpec['key']): number {
  return (fields ?? []).reduce((n, f) => {
    const t = parseFieldType(f.type);
    return n + (typeof t === 'string' ? 0 : t.size);
  }, 0);
}

/**
 * An events job's plan (perf_event_array or ring buffer, `info` its map's): its events counted as
 * entries of a hash map keyed by their first bytes (the written key, `width` bytes), valued 1 (and
 * the values its histograms observe). Spans make no series and have no value.
 */
export function planEvents(spec: MapSpec, index: number, info: MapInfo, env?: DecoderEnv): { width: number; counted: EventValues; plan?: MapPlan; problems: PlanProblem[] } {
  const width = layoutSize(spec.key);
  const counted = EventValues.of({ ...spec, value: spec.value ?? [] });
  const asHash = { ...info, type: MapType.hash, typeName: 'hash', keySize: width, valueSize: counted.stride };
  return { width, counted, ...planMap(counted.spec, index, { info: asHash, cpus: 1, cpuIds: [0], valueStride: counted.stride, perCpu: false, btf: undefined }, env) };
}

/**
 * The values of an events job's rows. Each event counts once: its value is a u64 1, after which come,
 * for each histogram observing a field (`buckets.of`), the field's value (the histogram's sum, as a
 * hidden value field the plan reads). The observed field itself is rewritten, in the event's row,
 * into the bucket key its value falls under, which the histogram then reads as a histogram map's.
 */
export class EventValues {
  /** The values rows() returns: overwritten by its next call. */
  private values = new BigUint64Array(0);

  private constructor(
    /** The job's spec as the plan sees it: a value field and a sum for each observing histogram. */
    readonly spec: MapSpec,
    /** Bytes of one row's values. */
    readonly stride: number,
    private readonly observers: readonly { offset: number; size: number; read: NumberReader; write: (row: DataView, at: number, key: number) => void; rule: BucketRule }[],
  ) {}

  static of(spec: MapSpec): EventValues {
    const keyLayout = layoutFromSpecs(spec.key ?? []);
    const extra: MapSpec['value'] = [];
    const observers: EventValues['observers'][number][] = [];
    const metrics = spec.metrics.map((m) => {
      const b = m.buckets;
      if (b?.observe !== true) return m;
      const field = keyLayout.fields.find((f) => f.name === b.from);
      if (field === undefined || field.type.kind !== 'int') return m; // the config refused it already
      const sum = `_observed_${b.from}`;
      extra.push({ name: sum, type: 'u64', at: m.at });
      const t = field.type;
      observers.push({
        offset: field.offset,
        size: t.size,
        read: numberReader(t),
        write: (row, at, key) => writeKey(row, at, t.size, t.bigEndian, key),
        rule: b,
      });
      return { ...m, sum };
    });
    const value = [...(spec.value ?? []), ...extra];
    // A spans job has no value (its rows are never counted): its stride is 0.
    return new EventValues({ ...spec, value, metrics }, layoutSize(value), observers);
  }

  /**
   * The values of `count` rows, row i at `rows[i * width]` or at `rows[offsets[i]]`; the observed
   * fields of `rows` become bucket keys.
   */
  rows(rows: Uint8Array, count: number, width: number, offsets?: Uint32Array): Uint8Array {
    const per = this.stride / 8;
    // Kept from one call to the next (the aggregator reads the values before the next batch): a new
    // array a batch cost 27 ns an event. Without observers every value is 1 and stays so.
    if (this.values.length < count * per) {
      this.values = new BigUint64Array(Math.max(count * per, 2 * this.values.length));
      if (this.observers.length === 0) this.values.fill(1n);
    }
    const values = this.values;
    if (this.observers.length === 0) return new Uint8Array(values.buffer, 0, count * this.stride);
    const view = new DataView(rows.buffer, rows.byteOffset, rows.byteLength);
    for (let i = 0; i < count; i++) {
      values[i * per] = 1n;
      this.observers.forEach((o, j) => {
        const at = (offsets === undefined ? i * width : offsets[i]) + o.offset;
        const v = o.read(rows, at);
        values[i * per + 1 + j] = BigInt(Math.max(0, Math.round(v)));
        o.write(view, at, observedKey(o.rule, v));
      });
    }
    return new Uint8Array(values.buffer, 0, count * this.stride);
  }
}

/** `key` into an integer field of `size` bytes at `at`, in the field's byte order. */
function writeKey(row: DataView, at: number, size: number, bigEndian: boolean, key: number): void {
  const k = Math.min(key, 2 ** (8 * size) - 1);
  if (size === 1) row.setUint8(at, k);
  else if (size === 2) row.setUint16(at, k, !bigEndian);
  else if (size === 4) row.setUint32(at, k, !bigEndian);
  else row.setBigUint64(at, BigInt(k), !bigEndian);
}

/** The jobs of a config, optionally only the one named. */
export function jobsOf(config: Config, only?: string): MapJob[] {
  return config.maps.flatMap((spec, i) => (only === undefined || spec.name === only ? [new MapJob(spec, i)] : []));
}

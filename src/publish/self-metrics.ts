import type { SpanExportStats } from './otel-spans.js';
import { collectDefaultMetrics, Counter, Gauge, type Registry } from 'prom-client';
import type { InventoryRow, ProgramRow } from '../bpf/inventory.js';
import type { MetricStats } from '../aggregate/types.js';

/** A program of an object the exporter loaded, as SelfMetrics.loadedPrograms shows it. */
export interface LoadedProgram {
  object: string;
  program: string;
  section: string;
  id: number;
  attached: boolean;
  runTimeNs: bigint;
  runCount: bigint;
  recursionMisses: bigint;
}

/**
 * prom-client's default metrics that registerProcessMetrics drops: gauges whose names end in _total,
 * which Prometheus keeps for counters (`promtool check metrics` reports them, and the config refuses
 * such a gauge from a map). Their per-type siblings (nodejs_active_handles{type} ...) hold the same
 * counts: the total is their sum.
 */
const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];


/**
 * Process metrics on `registry`: CPU (process_cpu_seconds_total, user and system), resident and
 * virtual memory, heap, open and max fds, start time, event-loop lag, GC durations (a histogram by
 * kind), active handles, requests and resources, and the Node.js version. Once per registry.
 *
 * Their values are taken when the registry is read (a /metrics render, an OTLP collection), by
 * prom-client's collect callbacks. The event-loop lag statistics (min, max, mean, stddev, p50, p90,
 * p99) cover the time since the previous read of the registry by anyone, and
 * nodejs_eventloop_lag_seconds is measured just after a read and shown by the next one. The lag is
 * sampled every 100 ms rather than prom-client's 10 ms: the 10 ms timer alone cost an idle exporter
 * 5 ms of CPU a second (measured: 19 -> 8 ms per 2 s), and lag worth alerting on is far longer.
 */
export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);
}

/** A map job as the landing page shows it: the state its self-metrics hold, for a person. */
export interface JobStatus {
  map: string;
  up: boolean;
  entries: number | undefined;
  maxEntries: number | undefined;
  /** When the map was last read successfully (ms since the epoch). */
  lastRead: number | undefined;
  reads: number;
  errors: number;
  /** The last failure, while the map is not up (or until the next success). */
  lastError: { errno: string; message: string; at: number } | undefined;
}

/**
 * The exporter's own metrics (names are the contract in DESIGN.md), registered in the registry the
 * exposition renders after the jobs' families.
 */
export class SelfMetrics {
  readonly registry: Registry;
  private readonly up: Gauge;
  private readonly entries: Gauge;
  private readonly maxEntries: Gauge;
  private readonly duration: Gauge;
  private readonly reads: Counter;
  private readonly errors: Counter;
  private readonly lastRead: Gauge;
  private readonly series: Gauge;
  private readonly dropped: Counter;
  private readonly rowsDropped: Counter;
  private readonly overruns: Counter;
  private readonly possibleLoss: Counter;
  private readonly eventsLostTotal: Counter;
  private readonly ring: { records: Counter; discarded: Counter; full: Counter; dropped: Counter };
  private readonly spanCounts: Counter;
  /** The span exporter's counts as last published (its counters are cumulative; ours add the differences). */
  private spansSeen: Record<string, number> = {};
  private readonly truncated: Counter;
  private readonly checkpointErrors: Counter;
  private readonly checkpointUpGauge: Gauge;
  private readonly unsavedGauge: Gauge;
  private readonly method: Gauge;
  private readonly inv: { info: Gauge; entries: Gauge; max: Gauge; fill: Gauge; memlock: Gauge } | undefined;
  private readonly progs: { info: Gauge; seconds: Counter; runs: Counter; misses: Counter } | undefined;
  private readonly invUp: Gauge | undefined;
  private readonly loaded: { attached: Gauge; seconds: Counter; runs: Counter; misses: Counter };
  private readonly invErrors: Counter | undefined;
  /** Each job's state, as read() and failed() last left it (the landing page's table). */
  private readonly jobs = new Map<string, JobStatus>();

  constructor(registry: Registry, opts: { version: string; inventory: boolean }) {
    this.registry = registry;
    const r = [registry];
    const g = (name: string, help: string, labelNames: string[] = ['map']) => new Gauge({ name, help, labelNames, registers: r });
    const c = (name: string, help: string, labelNames: string[] = ['map']) => new Counter({ name, help, labelNames, registers: r });
    new Gauge({ name: 'bpf_map_exporter_build_info', help: 'Version of bpf-map-exporter and of Node.js, as labels; always 1', labelNames: ['version', 'nodejs'], registers: r })
      .set({ version: opts.version, nodejs: process.versions.node }, 1);
    this.up = g('bpf_map_exporter_map_up', 'Whether the last read of the map succeeded (1) or failed (0)');
    this.entries = g('bpf_map_exporter_map_entries', 'Entries seen in the map in the last read cycle');
    this.maxEntries = g('bpf_map_exporter_map_max_entries', 'max_entries of the map');
    this.duration = g('bpf_map_exporter_map_read_duration_seconds', 'Duration of the last read cycle, from the first syscall to the snapshot');
    this.reads = c('bpf_map_exporter_map_reads_total', 'Read cycles of the map');
    this.errors = c('bpf_map_exporter_map_read_errors_total', 'Failed read cycles of the map, by errno', ['map', 'errno']);
    this.lastRead = g('bpf_map_exporter_map_last_read_timestamp_seconds', 'When the map was last read successfully (Unix time)');
    this.series = g('bpf_map_exporter_series', 'Series of a metric in the last snapshot', ['map', 'metric']);
    this.dropped = c('bpf_map_exporter_series_dropped_total', 'Series not exported because the metric reached max_series (counted every cycle)', ['map', 'metric']);
    this.rowsDropped = c('bpf_map_exporter_rows_dropped_total', 'Map entries a regexp label decoder dropped', ['map', 'metric']);
    this.overruns = c('bpf_map_exporter_map_read_overruns_total', 'Read ticks skipped because the previous cycle outlasted the interval');
    this.possibleLoss = c('bpf_map_exporter_drain_possible_loss_total', 'Entries a drain may have deleted without receiving them (kernel EFAULT), upper bound');
    this.eventsLostTotal = c('bpf_map_exporter_perf_events_lost_total', 'Events of a perf_event_array job that the kernel dropped because the ring of their CPU was full');
    this.ring = {
      records: c('bpf_map_exporter_ringbuf_records_total', 'Records taken from a ring buffer job\'s ring'),
      discarded: c('bpf_map_exporter_ringbuf_discarded_total', 'Records the programs discarded (bpf_ringbuf_discard) in a ring buffer job\'s ring'),
      full: c('bpf_map_exporter_ringbuf_full_total', 'Reads that found a ring buffer job\'s ring full: the programs\' sends were refused meanwhile (the kernel counts no ring buffer loss)'),
      dropped: c('bpf_map_exporter_span_records_dropped_total', 'Records of a spans job not made into spans: a decoder dropped them (skipped) or they had no trace id (invalid)', ['map', 'reason']),
    };
    this.spanCounts = c('bpf_map_exporter_spans_total', 'Spans of ring buffer jobs by result: exported (the collector took them), queue_full (dropped: the collector slow or down), export_failed, invalid, shutdown (still held at exit)', ['result']);
    this.truncated = c('bpf_map_exporter_map_iterations_truncated_total', 'Per-key walks stopped at max_entries + 1 steps: entries may be missing from that cycle');
    this.checkpointErrors = c('bpf_map_exporter_checkpoint_errors_total', 'Failed writes of the drain state file', []);
    this.checkpointUpGauge = g('bpf_map_exporter_checkpoint_up', 'Whether the last write of the drain state file succeeded (1) or failed (0, drains pause until it works)', []);
    this.unsavedGauge = g('bpf_map_exporter_drain_unsaved_entries', 'Entries taken out of maps whose journal write failed: counted and published, not yet saved', []);
    this.method = g('bpf_map_exporter_map_read_method', 'How the map was read in the last cycle (batch or per-key; seed for a job that only seeds its map), as a label; always 1', ['map', 'method']);
    const own = ['object', 'program', 'id'];
    this.loaded = {
      attached: g('bpf_map_exporter_program_attached', 'Whether a program of an object the exporter loaded is attached (1) or not (0: its section or the source gives no target)', ['object', 'program', 'section', 'id']),
      seconds: c('bpf_map_exporter_program_run_seconds_total', 'Time spent in a program of an object the exporter loaded (counted only while kernel.bpf_stats_enabled is on)', own),
      runs: c('bpf_map_exporter_program_runs_total', 'Runs of a program of an object the exporter loaded (counted only while kernel.bpf_stats_enabled is on)', own),
      misses: c('bpf_map_exporter_program_recursion_misses_total', 'Runs the kernel skipped because another BPF program was running on that CPU: events the program never saw (always counted)', own),
    };
    if (opts.inventory) {
      const l = ['id', 'name', 'type'];
      this.inv = {
        info: g('bpf_map_info', 'Every BPF map on the host; always 1', ['id', 'name', 'type', 'key_size', 'value_size', 'flags']),
        entries: g('bpf_map_entries', 'Entries in the map (array-like maps: max_entries)', l),
        max: g('bpf_map_max_entries', 'max_entries of the map', l),
        fill: g('bpf_map_fill_ratio', 'entries / max_entries', l),
        memlock: g('bpf_map_memlock_bytes', 'Memory the kernel accounts to the map', l),
      };
      this.progs = {
        info: g('bpf_program_info', 'Every BPF program on the host; always 1', ['id', 'name', 'type', 'tag']),
        seconds: c('bpf_program_run_seconds_total', 'Time spent in the program (counted only while kernel.bpf_stats_enabled is on)', l),
        runs: c('bpf_program_runs_total', 'Runs of the program (counted only while kernel.bpf_stats_enabled is on)', l),
        misses: c('bpf_program_recursion_misses_total', 'Runs the kernel skipped because another BPF program was running on that CPU: events the program never saw (always counted)', l),
      };
      this.invUp = g('bpf_map_exporter_inventory_up', 'Whether the last inventory of the host\'s maps and programs succeeded (1) or failed (0); it needs CAP_SYS_ADMIN', []);
      this.invErrors = c('bpf_map_exporter_inventory_errors_total', 'Failed inventories of the host\'s maps and programs, by errno', ['errno']);
    }
  }

  read(map: string, r: { entries: number; maxEntries: number; seconds: number; method: string; truncated: boolean; stats: ReadonlyMap<string, MetricStats> }): void {
    const j = this.job(map);
    Object.assign(j, { up: true, entries: r.entries, maxEntries: r.maxEntries, lastRead: Date.now(), reads: j.reads + 1, lastError: undefined });
    this.up.set({ map }, 1);
    this.entries.set({ map }, r.entries);
    this.maxEntries.set({ map }, r.maxEntries);
    this.duration.set({ map }, r.seconds);
    this.reads.inc({ map });
    this.lastRead.set({ map }, Date.now() / 1000);
    for (const method of ['batch', 'per-key', 'seed', 'events']) if (method !== r.method) this.method.remove({ map, method });
    this.method.set({ map, method: r.method }, 1);
    if (r.truncated) this.truncated.inc({ map });
    for (const [metric, s] of r.stats) {
      this.series.set({ map, metric }, s.series);
      this.dropped.inc({ map, metric }, s.seriesDropped);
      this.rowsDropped.inc({ map, metric }, s.rowsDropped);
    }
  }

  failed(map: string, errno: string, message = errno): void {
    const j = this.job(map);
    Object.assign(j, { up: false, reads: j.reads + 1, errors: j.errors + 1, lastError: { errno, message, at: Date.now() } });
    this.up.set({ map }, 0);
    this.reads.inc({ map });
    this.errors.inc({ map, errno });
  }

  overrun(map: string, n: number): void {
    if (n > 0) this.overruns.inc({ map }, n);
  }

  lost(map: string, n: number): void {
    this.possibleLoss.inc({ map }, n);
  }

  eventsLost(map: string, n: number): void {
    this.eventsLostTotal.inc({ map }, n);
  }

  /** What a ring buffer job took in its last read. */
  ringRead(map: string, c: { records: number; discarded: number; full: number; skipped: number; invalid: number }): void {
    this.ring.records.inc({ map }, c.records);
    if (c.discarded > 0) this.ring.discarded.inc({ map }, c.discarded);
    // From 0 at the first read: an alert on its increase sees the first full ring too.
    this.ring.full.inc({ map }, c.full);
    if (c.skipped > 0) this.ring.dropped.inc({ map, reason: 'skipped' }, c.skipped);
    if (c.invalid > 0) this.ring.dropped.inc({ map, reason: 'invalid' }, c.invalid);
  }

  /** The span exporter's cumulative counts. */
  spans(s: SpanExportStats): void {
    const now: Record<string, number> = { exported: s.exported, queue_full: s.dropped.queueFull, export_failed: s.dropped.exportFailed, invalid: s.dropped.invalid, shutdown: s.dropped.shutdown };
    for (const [result, n] of Object.entries(now)) {
      const delta = n - (this.spansSeen[result] ?? 0);
      if (delta > 0 || this.spansSeen[result] === undefined) this.spanCounts.inc({ result }, Math.max(0, delta));
    }
    this.spansSeen = now;
  }

  checkpointFailed(): void {
    this.checkpointErrors.inc();
  }

  checkpointUp(up: boolean): void {
    this.checkpointUpGauge.set(up ? 1 : 0);
  }

  unsaved(entries: number): void {
    this.unsavedGauge.set(entries);
  }

  /** The inventory was turned off (a reload): its rows and its up gauge go. */
  inventoryOff(): void {
    if (this.inv === undefined) return;
    for (const m of [...Object.values(this.inv), ...Object.values(this.progs!)]) m.reset();
    // reset() would leave a label-less gauge at 0: remove its one sample instead.
    this.invUp?.remove({});
  }

  /** The inventory failed: its last rows are dropped rather than shown as current. */
  inventoryFailed(errno: string): void {
    if (this.inv === undefined) return;
    for (const m of [...Object.values(this.inv), ...Object.values(this.progs!)]) m.reset();
    this.invUp?.set(0);
    this.invErrors?.inc({ errno });
  }

  /** Forget every series of a job (the config dropped it): gauges, counters, and those with more labels. */
  /** Every job's state, by name. */
  status(): JobStatus[] {
    return [...this.jobs.values()].sort((a, b) => (a.map < b.map ? -1 : a.map > b.map ? 1 : 0)).map((j) => ({ ...j }));
  }

  private job(map: string): JobStatus {
    let j = this.jobs.get(map);
    if (j === undefined) this.jobs.set(map, (j = { map, up: false, entries: undefined, maxEntries: undefined, lastRead: undefined, reads: 0, errors: 0, lastError: undefined }));
    return j;
  }

  async forget(map: string): Promise<void> {
    this.jobs.delete(map);
    const perMap = [this.up, this.entries, this.maxEntries, this.duration, this.lastRead, this.reads, this.errors, this.series, this.dropped, this.rowsDropped, this.overruns, this.possibleLoss, this.eventsLostTotal, this.ring.records, this.ring.discarded, this.ring.full, this.ring.dropped, this.truncated, this.method];
    for (const m of perMap) {
      for (const v of (await m.get()).values) if (v.labels.map === map) m.remove(v.labels);
    }
  }

  /** The inventory of the host's maps and programs: every row of the last one replaced. */
  inventory(rows: readonly InventoryRow[], programs: readonly ProgramRow[] = []): void {
    if (this.inv === undefined) return;
    this.invUp?.set(1);
    for (const m of [...Object.values(this.inv), ...Object.values(this.progs!)]) m.reset();
    for (const p of programs) {
      const l = { id: String(p.id), name: p.name, type: p.typeName };
      this.progs!.info.set({ ...l, tag: p.tag }, 1);
      // The kernel's counters, set as they are (inc from the fresh 0 of reset()).
      this.progs!.seconds.inc(l, Number(p.runTimeNs) / 1e9);
      this.progs!.runs.inc(l, Number(p.runCount));
      this.progs!.misses.inc(l, Number(p.recursionMisses));
    }
    for (const r of rows) {
      const l = { id: String(r.id), name: r.name, type: r.type };
      this.inv.info.set({ ...l, key_size: String(r.keySize), value_size: String(r.valueSize), flags: `0x${r.flags.toString(16)}` }, 1);
      this.inv.max.set(l, r.maxEntries);
      if (r.entries !== null) {
        this.inv.entries.set(l, r.entries);
        if (r.maxEntries > 0) this.inv.fill.set(l, r.entries / r.maxEntries);
      }
      if (r.memlockBytes !== null) this.inv.memlock.set(l, r.memlockBytes);
    }
  }

  /** The programs of the objects the exporter loaded, every row of the last call replaced. */
  loadedPrograms(programs: readonly LoadedProgram[]): void {
    for (const m of Object.values(this.loaded)) m.reset();
    for (const p of programs) {
      const l = { object: p.object, program: p.program, id: String(p.id) };
      this.loaded.attached.set({ ...l, section: p.section }, p.attached ? 1 : 0);
      this.loaded.seconds.inc(l, Number(p.runTimeNs) / 1e9);
      this.loaded.runs.inc(l, Number(p.runCount));
      this.loaded.misses.inc(l, Number(p.recursionMisses));
    }
  }
}

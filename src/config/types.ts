/**
 * A validated configuration, as the rest of the exporter sees it. Every default is applied and
 * every duration is in milliseconds; `at` says where each part was written, for later messages.
 */
import type { PerfEventName } from '../bpf/perf-event-attr.js';
import type { SourceRef } from '../yaml/locate.js';

/**
 * Where a map comes from. An object path is resolved relative to the config file's folder; `xdp`,
 * `tc` and `perf_event` say where the object's XDP, tc and perf_event programs are attached (unset:
 * those programs are not attached). `kaddrs`: kernel symbols whose addresses are written into the
 * object's `kaddr_<symbol>` variables before it loads (ebpf_exporter's top-level `kaddrs`).
 */
export type MapSource =
  | { pinned: string }
  | { id: number }
  | { name: string }
  | { object: string; map: string; xdp?: string; tc?: TcSource; perf_event?: PerfEventSource; kaddrs?: string[] };

/** Where an object's tc programs are attached: the clsact hook of an interface, one direction. */
export interface TcSource {
  interface: string;
  direction: 'ingress' | 'egress';
}

/** What an object's perf_event programs sample, on every online CPU: exactly one of frequency and period is set. */
export interface PerfEventSource {
  event: PerfEventName;
  /** Samples per second per CPU. */
  frequency?: number;
  /** A sample every this many events per CPU. */
  period?: number;
}

/** One field of a key or value layout. */
export interface FieldSpec {
  name: string;
  /** As written: u8..u64, s8..s64, be16, be32, be64, char[N], u8[N], pad[N]. */
  type: string;
  at: SourceRef;
}

/** How a key field's values become histogram buckets. */
export interface BucketSpec {
  /** The key field that holds the bucket (with `observe`: the field whose value each event observes). */
  from: string;
  /**
   * Written `of:` instead of `from:` (events jobs): each event is one observation of the field's
   * value, counted in the bucket whose bound is the smallest at least as large, and summed.
   */
  observe?: boolean;
  kind: 'exp2' | 'exp2zero' | 'linear' | 'fixed';
  /** First and last bucket key; for `fixed`, the smallest and largest of `values`. */
  min: number;
  max: number;
  /** Bucket bounds (and the sum) are multiplied by it, e.g. 1e-6 for microseconds to seconds. */
  multiplier: number;
  /** fixed only: the bucket keys there are, ascending; each is an upper bound before the multiplier. */
  values?: number[];
  at: SourceRef;
}

/** A label: from a key or value field (`from`, decoded), or static (`value`). Exactly one of from/value is set. */
export interface LabelSpec {
  name: string;
  from?: string;
  value?: string;
  /** Unset: the default for the field's type (integers: uint, char[N]: string, u8[N]: hex). */
  decoder?: string;
  /** static_map: raw value as a decimal string -> label value. */
  map?: Record<string, string>;
  /** static_map: unknown values pass through as their number. */
  allow_unknown?: boolean;
  /** regexp: rows whose decoded value does not match are dropped. */
  pattern?: string;
  /** regexp: several patterns, tried in order (instead of pattern). */
  patterns?: string[];
  /** regexp: the label is the part matched, or the first group of the pattern that matched. */
  rewrite?: boolean;
  /** The label values ebpf_exporter gives, where ours differ. */
  style?: 'ebpf_exporter';
  at: SourceRef;
}

export interface MetricSpec {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
  /** The value field read (for histograms: the count in each bucket). */
  value: string;
  /** How per-CPU values are reduced; `label` keeps one series per CPU, labelled cpu="N". */
  cpu: 'sum' | 'max' | 'min' | 'label';
  scale: number;
  /** The labels written; the `cpu` label of `cpu: label` is not among them. */
  labels: LabelSpec[];
  /** histograms only (and required for them). */
  buckets?: BucketSpec;
  /** histograms only: the value field holding the sum. */
  sum?: string;
  max_series: number;
  at: SourceRef;
}

/** One entry a seed writes: field name -> value as written (text), for the job's key and value layouts. */
export interface SeedEntrySpec {
  key: Record<string, string>;
  /** Unset: every value field zero. */
  value?: Record<string, string>;
  at: SourceRef;
}

/** Entries for the cgroups whose paths match, kept up to date as cgroups come and go. */
export interface SeedCgroupsSpec {
  match: string[];
  /** relative: below the cgroup root (/system.slice/x); absolute: with the mount point (/sys/fs/cgroup/system.slice/x). */
  paths: 'relative' | 'absolute';
  /** Unset: every value field zero. */
  value?: Record<string, string>;
  at: SourceRef;
}

/** What the exporter writes into a map when it opens it. */
export interface SeedSpec {
  flags: 'any' | 'noexist' | 'exist';
  lock: boolean;
  entries?: SeedEntrySpec[];
  cgroups?: SeedCgroupsSpec;
  at: SourceRef;
}

/**
 * A ring buffer's records as OpenTelemetry spans (ebpf_exporter's tracing.spans). Each record is
 * laid out by the job's `key`; labels named trace_id, parent_span_id, span_id (hex),
 * span_monotonic_timestamp_ns, span_duration_ns (uint) and span_name are the span's own fields, every
 * other label is an attribute.
 */
export interface SpanSpec {
  /** The spans' name; a label span_name gives each record's own. */
  name: string;
  /** service.name of the spans' resource; unset: OTEL_SERVICE_NAME, else bpf-map-exporter. */
  service?: string;
  labels: LabelSpec[];
  /** Attributes every span of the job carries (compat mode: ebpf_exporter.config). */
  attributes?: Record<string, string>;
  at: SourceRef;
}

export interface MapSpec {
  name: string;
  source: MapSource;
  mode: 'read' | 'drain';
  /** Milliseconds. */
  interval: number;
  batch_size: number;
  batch: boolean;
  /** Unset: the layout comes from the map's BTF. */
  key?: FieldSpec[];
  value?: FieldSpec[];
  metrics: MetricSpec[];
  /** Milliseconds the last good series of a read map stay exported while it cannot be read. */
  keep_stale?: number;
  /**
   * false: the map's BTF is neither read nor checked, and `key` and `value` (both written) are taken
   * as the bytes they describe, whatever fields BTF has there. Unset: BTF is used when the map has it.
   */
  btf?: boolean;
  /** Entries written into the map when it is opened (start, reload, re-created map). */
  seed?: SeedSpec;
  /**
   * The map is a perf_event_array (ebpf_exporter's perf_event_array counters) or a ringbuf the
   * object's programs send events through: each event's first bytes are read as a key of `key`'s layout with
   * the value 1, and counted into totals kept across reads; `flush` (milliseconds) clears the totals
   * (every series goes) that often.
   */
  events?: { flush: number };
  /** The map is a ring buffer whose records are sent as spans over OTLP. */
  spans?: SpanSpec;
  at: SourceRef;
}

/** OTLP push; unset keys fall back to the standard OTEL_* variables. Durations in milliseconds. */
export interface OtelSpec {
  endpoint?: string;
  protocol?: 'http/protobuf' | 'http/json' | 'grpc';
  headers?: Record<string, string>;
  interval?: number;
  timeout?: number;
  temporality?: 'cumulative' | 'delta';
}

export interface Config {
  /** The config file, as it was named to the parser. */
  file: string;
  /** Milliseconds: the default for every map. */
  interval: number;
  /** Where drain totals are checkpointed, resolved relative to the config file's folder. */
  state_file?: string;
  /** When the drain journal is synced: with each cycle's checkpoint, or after every batch too. */
  state_sync: 'cycle' | 'batch';
  /** Default cap on series per metric. */
  max_series: number;
  /** Empty: the exporter only inventories the host's BPF maps. */
  maps: MapSpec[];
  /** Also inventory every map on the host beside the maps listed. */
  inventory: boolean;
  otel?: OtelSpec;
  /**
   * Where a key path is written, e.g. ['maps', 0, 'key']: the value itself when it is a scalar,
   * the key when its value is a list or mapping, the item for a list index. A path that is not
   * written falls back to the nearest written parent.
   */
  where(path: readonly (string | number)[]): SourceRef;
  /**
   * How the file `where` points into names a key path, when that is not our config's own naming
   * (an ebpf_exporter config: `metrics.counters[0].labels[1].decoders`). Unset: our naming.
   */
  pathText?(path: readonly (string | number)[]): string;
}

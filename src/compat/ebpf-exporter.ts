/**
 * cloudflare/ebpf_exporter's config format, read as it is and translated into our Config, so the
 * rest of the exporter runs it unchanged. A config NAME is NAME.yaml beside NAME.bpf.o in one
 * folder; each of its metrics reads the map of the same name in that object:
 *
 * - counters: the map's u64 values by key, labels cut from the key bytes by `size` (+ `padding`),
 *   each through a chain of decoders; a per-CPU map whose last label is `cpu` keeps a series per
 *   CPU, any other per-CPU map sums its CPUs;
 * - histograms: the same, with the last label as the bucket key (exp2, exp2zero, linear, fixed),
 *   the key bucket_max + 1 (fixed: the last key + 1) holding the sum;
 * - every metric named `ebpf_exporter_<map>`.
 *
 * Their labels are raw byte ranges, so the maps are read with `btf: false`: a label `size: 4` over
 * a u8 and its padding reads those four bytes, as theirs does. Decoder chains map onto our
 * decoders where the result is the same, with `style: ebpf_exporter` where their label values
 * differ from our own (unknown inputs, syscall names, full cgroup paths). Beyond maps:
 * - counters with perf_event_array: true: a job counting the events sent through the map (events);
 * - kaddrs: the symbols' addresses written into the object before it loads (source.kaddrs);
 * - their program sections perf_event/type=N,... and xdp/IFNAME are read by our loader itself.
 * What has no equivalent yet (tracing, chains we do not run) is refused with a positioned line
 * naming it, never run with other values. Problems are ConfigErrors, one line each, pointing into
 * their YAML.
 */
import { basename, join, resolve } from 'node:path';
import { Document, isMap, isScalar, isSeq, type Node, type Pair, YAMLMap } from 'yaml';
import { ConfigError, ConfigErrors, formatPath as pathText, type ConfigPath } from '../yaml/errors.js';
import { Locator } from '../yaml/locate.js';
import { parseYaml, readConfigText } from '../yaml/parse.js';
import { type ObjectShape, parseDuration, type Prop } from '../yaml/shapes.js';
import type { SourceRef } from '../yaml/locate.js';
import { checkRules, type RawConfig } from '../config/rules.js';
import { ATTRIBUTE_NAME_SHAPE, LABEL_NAME_SHAPE, METRIC_NAME_SHAPE } from '../config/schema.js';
import type { BucketSpec, Config, FieldSpec, LabelSpec, MapSpec, MetricSpec } from '../config/types.js';
import { Validator } from '../yaml/validate.js';
import { MapType, isHashFamily, mapTypeName } from '../bpf/map-types.js';
import { BpfError } from '../bpf/errors.js';
import type { ObjectContents } from '../bpf/object.js';
import { parsePerfEventSection } from '../bpf/perf-event-attr.js';

/** ebpf_exporter's namespace: every metric it exports is named `ebpf_exporter_<map>`. */
export const METRIC_PREFIX = 'ebpf_exporter_';

/**
 * How often the maps are read. ebpf_exporter reads them at each scrape; we read on a schedule and
 * serve the last read, so a short interval keeps what a scrape sees close to theirs.
 */
export const COMPAT_INTERVAL_MS = 5000;

/** How often the events of a perf_event_array counter are counted (theirs counts each as it comes). */
export const PERF_EVENT_INTERVAL_MS = 1000;

/** Their default flush_interval: a perf_event_array counter's counts are cleared every hour. */
export const PERF_EVENT_FLUSH_MS = 3_600_000;

/** Series per metric before new ones are dropped (and counted): our default; theirs has no cap. */
export const COMPAT_MAX_SERIES = 10_000;

/** The map types ebpf_exporter reads as per-CPU (one u64 per CPU). */
const PER_CPU = new Set<number>([MapType.percpu_hash, MapType.percpu_array, MapType.lru_percpu_hash]);

/** Their decoders, every one. */
const THEIR_DECODERS = [
  'cgroup', 'dname', 'errno', 'hex', 'ifname', 'inet_ip', 'kstack', 'ksym', 'majorminor',
  'pci_class', 'pci_device', 'pci_subclass', 'pci_vendor', 'regexp', 'static_map', 'string', 'syscall', 'uint',
] as const;

/** Our decoders' option that gives their label values where ours differ. */
const THEIRS = { style: 'ebpf_exporter' } as const;

/** One config as ebpf_exporter finds it: NAME.yaml (its text) and what NAME.bpf.o holds. */
export interface CompatInput {
  /** The config's name, as in --config.names. */
  name: string;
  /** NAME.yaml, for messages. */
  file: string;
  text: string;
  /** NAME.bpf.o, absolute. */
  object: string;
  contents: ObjectContents;
}

/** Something that runs, but deserves a word: logged by run, written as a comment by convert. */
export interface CompatNote {
  at: SourceRef;
  message: string;
}

export interface CompatResult {
  config: Config;
  notes: CompatNote[];
}

// ---------------------------------------------------------------------------------------------
// Their format's shape, walked by our validator (types, unknown keys with "did you mean", positions)

const decoderShape: ObjectShape = {
  type: 'object',
  props: {
    name: { shape: { type: 'string', enum: THEIR_DECODERS }, required: true, description: 'The decoder.' },
    static_map: { shape: { type: 'dict', keys: 'string' }, description: 'static_map: input -> label value.' },
    regexps: { shape: { type: 'list', items: { type: 'string', nonEmpty: true }, minItems: 1 }, description: 'regexp: patterns; rows matching none are dropped.' },
    allow_unknown: { shape: { type: 'boolean' }, description: 'static_map: unknown inputs pass through.' },
  },
};

const labelShape: ObjectShape = {
  type: 'object',
  props: {
    name: { shape: LABEL_NAME_SHAPE, required: true, description: 'The label name.' },
    size: { shape: { type: 'integer', min: 1 }, required: true, description: 'Bytes of the key the label reads.' },
    padding: { shape: { type: 'integer', min: 0 }, description: 'Bytes skipped after it.' },
    decoders: { shape: { type: 'list', items: decoderShape, minItems: 1 }, required: true, description: 'Applied in order.' },
  },
};

const common: Record<string, Prop> = {
  name: { shape: METRIC_NAME_SHAPE, required: true, description: 'The map read, and the metric name after ebpf_exporter_.' },
  help: { shape: { type: 'string', nonEmpty: true }, required: true, description: 'HELP text.' },
};

const counterShape: ObjectShape = {
  type: 'object',
  props: {
    ...common,
    perf_event_array: { shape: { type: 'boolean' }, description: 'Counted from the events the program sends through the perf_event_array map of the metric\'s name.' },
    flush_interval: { shape: { type: 'text' }, description: 'perf_event_array only: how often the counts are cleared (default 1h).' },
    labels: { shape: { type: 'list', items: labelShape }, description: 'Labels cut from the key.' },
  },
};

const histogramShape: ObjectShape = {
  type: 'object',
  props: {
    ...common,
    bucket_type: { shape: { type: 'string', enum: ['exp2', 'exp2zero', 'linear', 'fixed'] }, required: true, description: 'How bucket keys become bounds.' },
    bucket_multiplier: { shape: { type: 'number' }, description: 'Bounds and sum are multiplied by it (0 or unset: 1).' },
    bucket_min: { shape: { type: 'integer' }, description: 'First bucket key.' },
    bucket_max: { shape: { type: 'integer' }, description: 'Last bucket key.' },
    bucket_keys: { shape: { type: 'list', items: { type: 'number' }, minItems: 1 }, description: 'fixed: the bucket keys.' },
    labels: { shape: { type: 'list', items: labelShape, minItems: 1 }, required: true, description: 'Labels cut from the key; the last is the bucket.' },
  },
};

const cgroupIdMapShape: ObjectShape = {
  type: 'object',
  props: {
    name: { shape: { type: 'string', nonEmpty: true }, required: true, description: 'The map in the object the cgroup ids go into.' },
    type: { shape: { type: 'string', enum: ['hash', 'cgrp_storage'] }, description: 'hash (keyed by cgroup id; the default) or cgrp_storage (keyed by a cgroup fd).' },
    regexps: { shape: { type: 'list', items: { type: 'string', nonEmpty: true }, minItems: 1 }, required: true, description: 'Patterns over the cgroup\'s full path; a cgroup matching one is written with value 1.' },
  },
};

/** A span's label names an attribute: OpenTelemetry's keys may be dotted (their sched-trace has cpu.orig). */
const spanLabelShape: ObjectShape = { ...labelShape, props: { ...labelShape.props, name: { shape: ATTRIBUTE_NAME_SHAPE, required: true, description: 'The span field or attribute name.' } } };

const spanShape: ObjectShape = {
  type: 'object',
  props: {
    name: { shape: { type: 'string', nonEmpty: true }, description: 'The spans\' name (a label span_name gives each its own). Default: the ring buffer\'s name.' },
    ringbuf: { shape: { type: 'string', nonEmpty: true }, required: true, description: 'The ring buffer map in the object the spans come from.' },
    service: { shape: { type: 'string', nonEmpty: true }, description: 'service.name of the spans. Default: OTEL_SERVICE_NAME.' },
    labels: { shape: { type: 'list', items: spanLabelShape, minItems: 1 }, required: true, description: 'What each record holds, in order: trace_id, parent_span_id, span_id, span_monotonic_timestamp_ns, span_duration_ns, span_name are the span\'s; the rest are attributes.' },
  },
};

const rootShape: ObjectShape = {
  type: 'object',
  props: {
    tracing: {
      shape: { type: 'object', props: { spans: { shape: { type: 'list', items: spanShape, minItems: 1 }, required: true, description: 'Spans, each from a ring buffer.' } } },
      description: 'Spans from ring buffers, sent over OTLP.',
    },
    cgroup_id_map: { shape: cgroupIdMapShape, description: 'A map of the cgroups whose paths match, kept up to date.' },
    kaddrs: { shape: { type: 'list', items: { type: 'string', nonEmpty: true } }, description: 'Kernel symbols whose addresses are written into the object\'s kaddr_<symbol> variables before it loads.' },
    metrics: {
      shape: {
        type: 'object',
        props: {
          counters: { shape: { type: 'list', items: counterShape }, description: 'Counters.' },
          histograms: { shape: { type: 'list', items: histogramShape }, description: 'Histograms.' },
        },
      },
      description: 'The metrics, each read from the map of its name.',
    },
  },
};

/** Top-level keys of theirs that we do not run yet: refused at the key, not "unknown". */
const UNSUPPORTED_KEYS: Readonly<Record<string, string>> = {};

/**
 * How often a tracing config's jobs publish their counts, as their maps' jobs do. Their rings are
 * drained every 100 ms whatever this is (RING_POLL_MS); theirs reads each record as it comes.
 */
export const TRACING_INTERVAL_MS = COMPAT_INTERVAL_MS;

/** The attribute every span of theirs carries: the config it came from. */
export const CONFIG_ATTRIBUTE = 'ebpf_exporter.config';

interface RawDecoder {
  name: (typeof THEIR_DECODERS)[number];
  static_map?: Record<string, string>;
  regexps?: string[];
  allow_unknown?: boolean;
}
interface RawLabel {
  name: string;
  size: number;
  padding?: number;
  decoders: RawDecoder[];
}
interface RawCounter {
  name: string;
  help: string;
  perf_event_array?: boolean;
  flush_interval?: string;
  labels?: RawLabel[];
}
interface RawHistogram {
  name: string;
  help: string;
  bucket_type: 'exp2' | 'exp2zero' | 'linear' | 'fixed';
  bucket_multiplier?: number;
  bucket_min?: number;
  bucket_max?: number;
  bucket_keys?: number[];
  labels: RawLabel[];
}
interface RawSpan {
  name?: string;
  ringbuf: string;
  service?: string;
  labels: RawLabel[];
}
interface RawRoot {
  tracing?: { spans: RawSpan[] };
  metrics?: { counters?: RawCounter[]; histograms?: RawHistogram[] };
  cgroup_id_map?: { name: string; type?: 'hash' | 'cgrp_storage'; regexps: string[] };
  kaddrs?: string[];
}

// ---------------------------------------------------------------------------------------------

/** Where each path of the translated config was written in their files, for every later message. */
class Origins {
  private readonly refs = new Map<string, { at: SourceRef; path: string }>();

  constructor(private readonly fallback: SourceRef) {}

  set(ours: ConfigPath, at: SourceRef, theirPath: string): void {
    this.refs.set(JSON.stringify(ours), { at, path: theirPath });
  }

  /** The nearest written parent of `ours`. */
  find(ours: ConfigPath): { at: SourceRef; path: string } {
    for (let n = ours.length; n >= 0; n--) {
      const r = this.refs.get(JSON.stringify(ours.slice(0, n)));
      if (r !== undefined) return r;
    }
    return { at: this.fallback, path: '' };
  }
}

/** Translate configs already read (the text of each and its object's contents). Throws ConfigErrors. */
export function translate(inputs: readonly CompatInput[]): CompatResult {
  const errors: ConfigError[] = [];
  const notes: CompatNote[] = [];
  const maps: MapSpec[] = [];
  const origins = new Origins(inputs.length === 0 ? { file: '(none)', line: 0, column: 0 } : { file: inputs[0].file, line: 1, column: 1 });

  for (const input of inputs) {
    let parsed: ReturnType<typeof parseYaml>;
    try {
      parsed = parseYaml(input.text, input.file);
    } catch (e) {
      if (!(e instanceof ConfigErrors)) throw e;
      errors.push(...e.errors);
      continue;
    }
    const one = new OneConfig(input, new Locator(parsed.doc, parsed.lines, input.file), errors, notes, origins);
    maps.push(...one.translate(parsed.doc.contents, maps.length));
  }

  const config: Config = {
    file: inputs.length === 1 ? inputs[0].file : `${inputs.map((i) => i.file).join(',')}`,
    interval: COMPAT_INTERVAL_MS,
    state_sync: 'cycle',
    max_series: COMPAT_MAX_SERIES,
    inventory: false,
    maps,
    where: (path) => origins.find(path).at,
    pathText: (path) => origins.find(path).path,
  };
  if (errors.length === 0) {
    // Our rules across keys: names unique across configs, names that fit their type, bucket counts...
    checkRules(config as unknown as RawConfig, {
      folder: '/',
      report: (path, message) => {
        const o = origins.find(path);
        errors.push(new ConfigError(o.at, o.path, message));
      },
      line: (path) => origins.find(path).at.line,
      written: () => true,
    });
  }
  if (errors.length > 0) throw new ConfigErrors(errors);
  // In file order: the configs as named, each from its top.
  const fileOrder = (n: CompatNote) => inputs.findIndex((i) => i.file === n.at.file);
  notes.sort((a, b) => fileOrder(a) - fileOrder(b) || a.at.line - b.at.line || a.at.column - b.at.column);
  return { config, notes };
}

/** One NAME.yaml with its object. */
class OneConfig {
  private readonly validator: Validator;

  constructor(
    private readonly input: CompatInput,
    private readonly loc: Locator,
    private readonly errors: ConfigError[],
    private readonly notes: CompatNote[],
    private readonly origins: Origins,
  ) {
    this.validator = new Validator(loc);
  }

  private where(path: ConfigPath): SourceRef {
    return this.loc.where(path);
  }

  private fail(path: ConfigPath, message: string): undefined {
    this.errors.push(new ConfigError(this.where(path), pathText(path), message));
    return undefined;
  }

  private note(path: ConfigPath, message: string): void {
    this.notes.push({ at: this.where(path), message: `${pathText(path)}: ${message}` });
  }

  /** The metrics of this config as map jobs; `first` is the index of the first one in the whole config. */
  translate(contents: unknown, first: number): MapSpec[] {
    const root = this.loc.resolve(contents) ?? new YAMLMap();
    // Keys of theirs we do not run: said once, at the key, and kept out of the walk.
    if (isMap(root)) {
      root.items = root.items.filter((pair: Pair) => {
        const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
        if (key === undefined || !Object.hasOwn(UNSUPPORTED_KEYS, key)) return true;
        this.fail([key], UNSUPPORTED_KEYS[key]);
        return false;
      });
    }
    const before = this.validator.problems.length;
    const raw = this.validator.document(rootShape, root) as RawRoot | undefined;
    for (const p of this.validator.problems.slice(before)) this.errors.push(new ConfigError(p.at, pathText(p.path), p.message));
    if (raw === undefined || this.validator.problems.length > before) return [];

    const counters = raw.metrics?.counters ?? [];
    const histograms = raw.metrics?.histograms ?? [];
    const spans = raw.tracing?.spans ?? [];
    if (counters.length + histograms.length + spans.length === 0) {
      // Without maps our exporter would fall back to the inventory: nothing like what was asked for.
      this.fail(raw.metrics === undefined ? [] : ['metrics'], 'no metrics: neither metrics.counters nor metrics.histograms lists any, nor tracing.spans, expected at least one');
      return [];
    }
    this.checkSections();
    this.kaddrs = this.checkKaddrs(raw.kaddrs ?? []);
    const out: MapSpec[] = [];
    counters.forEach((c, j) => {
      const m = this.metric(c, ['metrics', 'counters', j], first + out.length, 'counter');
      if (m !== undefined) out.push(m);
    });
    histograms.forEach((h, j) => {
      const m = this.metric(h, ['metrics', 'histograms', j], first + out.length, 'histogram');
      if (m !== undefined) out.push(m);
    });
    spans.forEach((sp, j) => {
      const m = this.span(sp, ['tracing', 'spans', j], first + out.length);
      if (m !== undefined) out.push(m);
    });
    if (raw.cgroup_id_map !== undefined) {
      const m = this.cgroupIdMap(raw.cgroup_id_map, first + out.length);
      if (m !== undefined) out.push(m);
    }
    return out;
  }

  /**
   * Their cgroup_id_map: every cgroup whose full path (with the mount point) matches one of the
   * patterns gets an entry of value 1, keyed by its id (hash) or an fd of it (cgrp_storage), kept
   * up to date as cgroups come and go. Ours is a job that seeds the map (seed.cgroups) with no
   * metrics of its own.
   */
  private cgroupIdMap(raw: NonNullable<RawRoot['cgroup_id_map']>, index: number): MapSpec | undefined {
    const at: ConfigPath = ['cgroup_id_map'];
    const info = this.input.contents.maps.find((m) => m.name === raw.name);
    if (info === undefined) {
      const names = this.input.contents.maps.map((m) => m.name).filter((n) => !n.includes('.'));
      return this.fail([...at, 'name'], `${basename(this.input.object)} has no map named "${raw.name}", expected one of: ${names.join(', ') || 'none'}`);
    }
    const type = raw.type ?? 'hash';
    const storage = type === 'cgrp_storage';
    if (storage !== (info.type === MapType.cgrp_storage)) {
      return this.fail([...at, 'type'], `map "${raw.name}" is a ${mapTypeName(info.type)} map, expected ${storage ? 'a cgrp_storage map for type: cgrp_storage' : 'a hash map for type: hash (or type: cgrp_storage for a cgrp_storage map)'}`);
    }
    if (!storage && !isHashFamily(info.type)) return this.fail([...at, 'name'], `map "${raw.name}" is a ${mapTypeName(info.type)} map, expected a hash map keyed by cgroup id`);
    const keySize = storage ? 4 : 8;
    if (info.keySize !== keySize) return this.fail([...at, 'name'], `map "${raw.name}" has a ${info.keySize}-byte key, expected ${keySize} for type ${type} (${storage ? 'a cgroup fd' : 'a cgroup id'})`);
    if (info.valueSize !== 8) return this.fail([...at, 'name'], `map "${raw.name}" has ${info.valueSize}-byte values, expected 8 (ebpf_exporter writes the u64 1)`);
    for (const [i, p] of raw.regexps.entries()) {
      try {
        new RegExp(p);
      } catch (e) {
        return this.fail([...at, 'regexps', i], `pattern "${p}" is not one this exporter can run (JavaScript syntax): ${(e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '')}`);
      }
    }
    const where = this.where(at);
    const spec = this.job(raw.name, {
      key: [{ name: 'key', type: storage ? 'u32' : 'u64', at: where }],
      value: [{ name: 'value', type: 'u64', at: where }],
      metrics: [],
      seed: { flags: 'any', lock: false, cgroups: { match: [...raw.regexps], paths: 'absolute', value: { value: '1' }, at: this.where([...at, 'regexps']) }, at: where },
      at: where,
    });
    const set = (ours: ConfigPath, theirs: ConfigPath) => this.origins.set(['maps', index, ...ours], this.where(theirs), pathText(theirs));
    set([], at);
    for (const k of ['name', 'source', 'key', 'value']) set([k], [...at, 'name']);
    set(['seed'], at);
    set(['seed', 'cgroups'], [...at, 'regexps']);
    return spec;
  }

  /** Kernel symbols for the object's kaddr_* variables (empty: none). */
  private kaddrs: string[] = [];

  /**
   * Their section convention for perf events, read by our loader too: a section that does not
   * parse is refused here, naming the object, program and section.
   */
  private checkSections(): void {
    for (const p of this.input.contents.programs) {
      const event = parsePerfEventSection(p.section);
      if (typeof event !== 'string') continue;
      this.errors.push(new ConfigError({ file: this.input.object, line: 0, column: 0 }, '', `program ${p.name} is in section ${p.section}, which does not read as ebpf_exporter's perf_event/type=N,config=N,frequency=N: ${event}`));
    }
  }

  /**
   * Their kaddrs: each symbol's address goes into the object's variable kaddr_<symbol> before it
   * loads. A symbol named twice, or one the object has no variable for, is refused at its item;
   * whether the kernel has the symbol is known at load.
   */
  private checkKaddrs(symbols: string[]): string[] {
    const variables = this.input.contents.variables;
    let ok = true;
    symbols.forEach((symbol, i) => {
      if (symbols.indexOf(symbol) !== i) {
        ok = false;
        this.fail(['kaddrs', i], `symbol ${symbol} is listed twice, expected each once`);
      } else if (!/^[A-Za-z_.$][\w.$]*$/.test(symbol)) {
        ok = false;
        this.fail(['kaddrs', i], `"${symbol}" is not a kernel symbol name (letters, digits, _, . and $), expected a name as /proc/kallsyms lists it`);
      } else if (variables !== undefined && !variables.includes(`kaddr_${symbol}`)) {
        ok = false;
        this.fail(['kaddrs', i], `${basename(this.input.object)} has no global variable kaddr_${symbol} for the address of ${symbol}, expected one declared as const volatile u64 kaddr_${symbol}`);
      }
    });
    return ok ? symbols : [];
  }

  private metric(raw: RawCounter | RawHistogram, at: ConfigPath, index: number, kind: 'counter' | 'histogram'): MapSpec | undefined {
    const objectName = basename(this.input.object);
    const info = this.input.contents.maps.find((m) => m.name === raw.name);
    if (info === undefined) {
      const names = this.input.contents.maps.map((m) => m.name).filter((n) => !n.includes('.'));
      return this.fail([...at, 'name'], `${objectName} has no map named "${raw.name}" (each metric reads the map of its name), expected one of: ${names.join(', ') || 'none'}`);
    }
    const events = kind === 'counter' && (raw as RawCounter).perf_event_array === true;
    let flush = PERF_EVENT_FLUSH_MS;
    if (events) {
      if (info.type !== MapType.perf_event_array) return this.fail([...at, 'perf_event_array'], `map "${raw.name}" is a ${mapTypeName(info.type)} map, expected a perf_event_array for perf_event_array: true (the events the program sends through it are counted)`);
      const text = (raw as RawCounter).flush_interval;
      if (text !== undefined) {
        const ms = parseDuration(text);
        if (typeof ms === 'string') return this.fail([...at, 'flush_interval'], `${ms} (a Go duration such as 30s, 5m or 1h)`);
        flush = ms;
      }
    } else if ((raw as RawCounter).flush_interval !== undefined && kind === 'counter') {
      this.note([...at, 'flush_interval'], 'flush_interval is read only with perf_event_array: true, as ebpf_exporter does; it is ignored here');
    }
    if (events) {
      // Counted from events: the labels are cut from each event's bytes, whatever its size.
    } else if (info.type === MapType.perf_event_array) {
      return this.fail([...at, 'name'], `map "${raw.name}" is a perf_event_array map: its events are counted only by a counter with perf_event_array: true${kind === 'histogram' ? ', which histograms do not take' : ''}`);
    } else if (info.type === MapType.ringbuf || info.type === MapType.percpu_cgroup_storage) {
      return this.fail([...at, 'name'], `map "${raw.name}" is a ${mapTypeName(info.type)} map, which is not read as counters here`);
    }
    if (!events && info.valueSize !== 8) {
      return this.fail([...at, 'name'], `map "${raw.name}" has ${info.valueSize}-byte values, expected 8: ebpf_exporter reads every value as a u64`);
    }
    const perCpu = PER_CPU.has(info.type);
    const labels = raw.labels ?? [];

    // The key's layout: each label's bytes (and padding); the cpu label of a per-CPU map is no key bytes.
    let keyLabels = labels.map((l, k) => ({ l, k }));
    let cpu: MetricSpec['cpu'] = 'sum';
    let bucket: { l: RawLabel; k: number } | undefined;
    if (kind === 'histogram') {
      bucket = keyLabels.at(-1);
      if (perCpu && bucket?.l.name === 'cpu') return this.fail([...at, 'labels', bucket.k, 'name'], 'the last label of a histogram is its bucket, expected another name than cpu (on a per-CPU map, cpu would be the CPU number)');
    } else if (perCpu && labels.at(-1)?.name === 'cpu') {
      const k = labels.length - 1;
      const l = labels[k];
      if (l.size !== 2 || (l.padding ?? 0) !== 0) return this.fail([...at, 'labels', k, 'size'], 'the cpu label of a per-CPU map is the CPU number ebpf_exporter appends to the key, expected size: 2 and no padding');
      if (l.decoders.length !== 1 || l.decoders[0].name !== 'uint') return this.fail([...at, 'labels', k, 'decoders'], 'the cpu label of a per-CPU map is supported with the decoder uint alone, expected decoders: [ { name: uint } ]');
      cpu = 'label';
      keyLabels = keyLabels.slice(0, -1);
    }

    const valueName = labels.some((l) => l.name === 'value') ? '_value' : 'value';
    const key: FieldSpec[] = [];
    const metricLabels: LabelSpec[] = [];
    // Which of their labels each key field and each of our labels comes from (pads: none).
    const keyOrigin: (number | undefined)[] = [];
    const labelOrigin: number[] = [];
    const names = new Set(labels.map((l) => l.name));
    let pads = 0;
    const pad = (size: number, where: SourceRef): void => {
      let name = `_pad${pads++}`;
      while (names.has(name)) name = `_pad${pads++}`;
      key.push({ name, type: `pad[${size}]`, at: where });
      keyOrigin.push(undefined);
    };

    if (events) {
      // Each event's first bytes, as the labels cut them (none: every event in one series).
      if (keyLabels.length === 0) pad(4, this.where([...at, 'name']));
    } else if (keyLabels.length === 0) {
      // ebpf_exporter reads a metric without labels (or with only cpu) from the 4-byte key 0.
      if (info.keySize !== 4) return this.fail([...at, cpu === 'label' ? 'labels' : 'name'], `map "${raw.name}" has a ${info.keySize}-byte key but no labels describe it, expected labels that add up to ${info.keySize} bytes (ebpf_exporter reads a metric without labels from a 4-byte key 0)`);
      pad(4, this.where([...at, 'name']));
    } else {
      const total = keyLabels.reduce((n, { l }) => n + l.size + (l.padding ?? 0), 0);
      if (total !== info.keySize) {
        const parts = keyLabels.map(({ l }) => `${l.name} ${l.size}${l.padding ? ` + ${l.padding} padding` : ''}`).join(', ');
        return this.fail([...at, 'labels'], `the labels take ${total} bytes (${parts}) but map "${raw.name}" has a ${info.keySize}-byte key${perCpu && kind === 'counter' ? ' (a per-CPU map\'s cpu label, last and named cpu, takes none)' : ''}, expected them to add up to ${info.keySize}`);
      }
    }

    let failed = false;
    let bucketField: string | undefined;
    for (const { l, k } of keyLabels) {
      const lat: ConfigPath = [...at, 'labels', k];
      if (l === bucket?.l) {
        const d = l.decoders;
        if (d.length !== 1 || d[0].name !== 'uint') {
          this.fail([...lat, 'decoders'], 'the last label of a histogram is its bucket key, expected decoders: [ { name: uint } ]');
          failed = true;
          continue;
        }
        if (![1, 2, 4, 8].includes(l.size)) {
          this.fail([...lat, 'size'], `uint reads 1, 2, 4 or 8 bytes, got size ${l.size}`);
          failed = true;
          continue;
        }
        key.push({ name: l.name, type: `u${l.size * 8}`, at: this.where(lat) });
        keyOrigin.push(k);
        bucketField = l.name;
      } else {
        const t = this.label(l, lat);
        if (t === undefined) {
          failed = true;
          continue;
        }
        key.push({ name: l.name, type: t.type, at: this.where(lat) });
        keyOrigin.push(k);
        if (t.pad > 0) pad(t.pad, this.where([...lat, 'size']));
        metricLabels.push({ name: l.name, from: l.name, ...t.decoder, at: this.where(lat) });
        labelOrigin.push(k);
      }
      if ((l.padding ?? 0) > 0) pad(l.padding!, this.where([...lat, 'padding']));
    }
    if (failed) return undefined;

    const name = METRIC_PREFIX + raw.name;
    let type: MetricSpec['type'] = kind;
    if (kind === 'counter' && !raw.name.endsWith('_total')) {
      // Our counters end in _total; theirs may not. The name is what dashboards query: keep it, as a gauge.
      type = 'gauge';
      this.note([...at, 'name'], `counter ${name} does not end in _total, which this exporter keeps for counters: it is exported under the same name as a gauge (the same samples; only its TYPE line differs)`);
    }
    let buckets: BucketSpec | undefined;
    if (kind === 'histogram') {
      buckets = this.buckets(raw as RawHistogram, at, bucketField!);
      if (buckets === undefined) return undefined;
    }

    const metric: MetricSpec = {
      name,
      type,
      help: raw.help,
      value: valueName,
      cpu,
      scale: 1,
      labels: metricLabels,
      ...(buckets === undefined ? {} : { buckets }),
      max_series: COMPAT_MAX_SERIES,
      at: this.where(at),
    };
    const spec = this.job(raw.name, {
      key,
      value: [{ name: valueName, type: 'u64', at: this.where([...at, 'name']) }],
      metrics: [metric],
      at: this.where(at),
      ...(events ? { events: { flush }, interval: PERF_EVENT_INTERVAL_MS } : {}),
    });
    this.record(index, at, spec, { cpu: cpu === 'label' ? labels.length - 1 : undefined, key: keyOrigin, labels: labelOrigin, bucket: bucket?.k });
    return spec;
  }

  /**
   * One of their tracing spans: a job reading the ring buffer `ringbuf`, each record cut by the
   * labels (as a key is) and sent as a span; every span carries ebpf_exporter.config.
   */
  private span(raw: RawSpan, at: ConfigPath, index: number): MapSpec | undefined {
    const info = this.input.contents.maps.find((m) => m.name === raw.ringbuf);
    if (info === undefined) {
      const names = this.input.contents.maps.filter((m) => m.type === MapType.ringbuf).map((m) => m.name);
      return this.fail([...at, 'ringbuf'], `${basename(this.input.object)} has no map named "${raw.ringbuf}", expected one of its ring buffers: ${names.join(', ') || 'none'}`);
    }
    if (info.type !== MapType.ringbuf) return this.fail([...at, 'ringbuf'], `map "${raw.ringbuf}" is a ${mapTypeName(info.type)} map, expected a ringbuf the program sends its spans through`);
    const key: FieldSpec[] = [];
    const labels: LabelSpec[] = [];
    const names = new Set(raw.labels.map((l) => l.name));
    let pads = 0;
    const pad = (size: number, where: SourceRef): void => {
      let name = `_pad${pads++}`;
      while (names.has(name)) name = `_pad${pads++}`;
      key.push({ name, type: `pad[${size}]`, at: where });
    };
    let failed = false;
    raw.labels.forEach((l, k) => {
      const lat: ConfigPath = [...at, 'labels', k];
      const t = this.label(l, lat);
      if (t === undefined) {
        failed = true;
        return;
      }
      key.push({ name: l.name, type: t.type, at: this.where(lat) });
      if (t.pad > 0) pad(t.pad, this.where([...lat, 'size']));
      if ((l.padding ?? 0) > 0) pad(l.padding!, this.where([...lat, 'padding']));
      labels.push({ name: l.name, from: l.name, ...t.decoder, at: this.where(lat) });
    });
    if (failed) return undefined;
    const where = this.where(at);
    const spec = this.job(raw.ringbuf, {
      key,
      value: [],
      metrics: [],
      interval: TRACING_INTERVAL_MS,
      spans: { name: raw.name ?? raw.ringbuf, ...(raw.service === undefined ? {} : { service: raw.service }), labels, attributes: { [CONFIG_ATTRIBUTE]: this.input.name }, at: where },
      at: where,
    });
    const set = (ours: ConfigPath, theirs: ConfigPath) => this.origins.set(['maps', index, ...ours], this.where(theirs), pathText(theirs));
    set([], at);
    for (const k of ['name', 'source']) set([k], [...at, 'ringbuf']);
    set(['key'], [...at, 'labels']);
    set(['spans'], at);
    set(['spans', 'labels'], [...at, 'labels']);
    raw.labels.forEach((_, k) => {
      set(['spans', 'labels', k], [...at, 'labels', k]);
      set(['spans', 'labels', k, 'from'], [...at, 'labels', k, 'name']);
      set(['spans', 'labels', k, 'decoder'], [...at, 'labels', k, 'decoders']);
    });
    return spec;
  }

  /** A read job of the object's map `map`, as each of their metrics and filter maps becomes (bytes as written: btf: false). */
  private job(map: string, parts: Pick<MapSpec, 'key' | 'value' | 'metrics' | 'at'> & Partial<MapSpec>): MapSpec {
    const source = { object: this.input.object, map, ...(this.kaddrs.length === 0 ? {} : { kaddrs: [...this.kaddrs] }) };
    return { name: `${this.input.name}/${map}`, source, mode: 'read', interval: COMPAT_INTERVAL_MS, batch_size: 4096, batch: true, btf: false, ...parts };
  }

  /** Where the parts of a translated job were written in their file. */
  private record(i: number, at: ConfigPath, spec: MapSpec, origin: { cpu?: number; key: (number | undefined)[]; labels: number[]; bucket?: number }): void {
    const set = (ours: ConfigPath, theirs: ConfigPath) => this.origins.set(['maps', i, ...ours], this.where(theirs), pathText(theirs));
    set([], at);
    for (const k of ['name', 'source', 'value']) set([k], [...at, 'name']);
    set(['key'], [...at, 'labels']);
    set(['metrics', 0], at);
    for (const k of ['name', 'help']) set(['metrics', 0, k], [...at, k]);
    set(['metrics', 0, 'value'], [...at, 'name']);
    set(['metrics', 0, 'labels'], [...at, 'labels']);
    if (origin.cpu !== undefined) set(['metrics', 0, 'cpu'], [...at, 'labels', origin.cpu]);
    origin.key.forEach((k, f) => {
      if (k !== undefined) set(['key', f], [...at, 'labels', k, 'size']);
    });
    origin.labels.forEach((k, j) => {
      set(['metrics', 0, 'labels', j], [...at, 'labels', k]);
      set(['metrics', 0, 'labels', j, 'name'], [...at, 'labels', k, 'name']);
      set(['metrics', 0, 'labels', j, 'from'], [...at, 'labels', k, 'name']);
      set(['metrics', 0, 'labels', j, 'decoder'], [...at, 'labels', k, 'decoders']);
    });
    if (spec.metrics[0].buckets !== undefined) {
      set(['metrics', 0, 'buckets'], [...at, 'bucket_type']);
      set(['metrics', 0, 'buckets', 'kind'], [...at, 'bucket_type']);
      for (const [ours, theirs] of [['min', 'bucket_min'], ['max', 'bucket_max'], ['multiplier', 'bucket_multiplier'], ['values', 'bucket_keys']]) set(['metrics', 0, 'buckets', ours], [...at, theirs]);
      if (origin.bucket !== undefined) set(['metrics', 0, 'buckets', 'from'], [...at, 'labels', origin.bucket, 'name']);
    }
  }

  /** A label's field type and our decoder for their chain, or undefined (reported). */
  private label(l: RawLabel, at: ConfigPath): { type: string; pad: number; decoder: Partial<LabelSpec> } | undefined {
    const d = l.decoders;
    const dat = (i: number): ConfigPath => [...at, 'decoders', i, 'name'];
    const tooLong = (from: number): undefined => this.fail(dat(from), `decoder ${d[from].name} after ${d.slice(0, from).map((x) => x.name).join(', ')} is not supported here, expected ${from === 1 ? `${d[0].name} alone` : `at most ${from} decoders`}`);
    const size = l.size;
    const first = d[0];
    switch (first.name) {
      case 'uint': {
        if (![1, 2, 4, 8].includes(size)) return this.fail([...at, 'size'], `uint reads 1, 2, 4 or 8 bytes, got size ${size}`);
        const type = `u${size * 8}`;
        if (d.length === 1) return { type, pad: 0, decoder: { decoder: 'uint' } };
        if (d.length > 2) return tooLong(2);
        const second = d[1];
        switch (second.name) {
          case 'static_map':
            return this.staticMap(second, [...at, 'decoders', 1], type);
          case 'syscall':
          case 'errno':
          case 'pci_vendor':
          case 'pci_device':
          case 'pci_class':
          case 'pci_subclass':
            return { type, pad: 0, decoder: { decoder: second.name, ...THEIRS } };
          case 'cgroup':
            if (size !== 4 && size !== 8) return this.fail([...at, 'size'], `the cgroup decoder reads a cgroup id from 8 bytes (or 4), got size ${size}`);
            return { type, pad: 0, decoder: { decoder: 'cgroup', ...THEIRS } };
          case 'regexp': {
            const decoder = this.regexp(second, [...at, 'decoders', 1]);
            return decoder === undefined ? undefined : { type, pad: 0, decoder };
          }
          default:
            return tooLong(1);
        }
      }
      case 'string': {
        const type = `char[${size}]`;
        if (d.length === 1) return { type, pad: 0, decoder: { decoder: 'string' } };
        // string then dname: the name up to the first NUL, which is what our dname reads of a char[N].
        if (d.length === 2 && d[1].name === 'dname') return { type, pad: 0, decoder: { decoder: 'dname', ...THEIRS } };
        if (d.length > 2 || d[1].name !== 'regexp') return tooLong(d.length > 2 && (d[1].name === 'regexp' || d[1].name === 'dname') ? 2 : 1);
        const decoder = this.regexp(d[1], [...at, 'decoders', 1]);
        return decoder === undefined ? undefined : { type, pad: 0, decoder };
      }
      case 'hex':
        return d.length > 1 ? tooLong(1) : { type: `u8[${size}]`, pad: 0, decoder: { decoder: 'hex' } };
      case 'inet_ip':
        if (d.length > 1) return tooLong(1);
        if (size !== 4 && size !== 16) return this.fail([...at, 'size'], `inet_ip reads an IPv4 (4 bytes) or IPv6 (16 bytes) address, got size ${size}`);
        return { type: `u8[${size}]`, pad: 0, decoder: { decoder: 'inet_ip', ...THEIRS } };
      case 'ksym':
        if (d.length > 1) return tooLong(1);
        if (size !== 8) return this.fail([...at, 'size'], `ksym reads an 8-byte kernel address, got size ${size}`);
        return { type: 'u64', pad: 0, decoder: { decoder: 'ksym', ...THEIRS } };
      case 'kstack':
        if (d.length > 1) return tooLong(1);
        if (size % 8 !== 0) return this.fail([...at, 'size'], `kstack reads 8-byte frame addresses, got size ${size}, expected a multiple of 8 (8 x the stack depth)`);
        return { type: `u8[${size}]`, pad: 0, decoder: { decoder: 'kstack', ...THEIRS } };
      case 'dname':
        // dname alone reads every byte of the label, as theirs (string then dname stops at the first NUL).
        if (d.length > 1) return tooLong(1);
        return { type: `u8[${size}]`, pad: 0, decoder: { decoder: 'dname', ...THEIRS } };
      case 'ifname':
      case 'majorminor':
        // Both read the first 4 bytes as a u32.
        if (d.length > 1) return tooLong(1);
        if (size < 4) return this.fail([...at, 'size'], `${first.name} reads a 4-byte number, got size ${size}`);
        return { type: 'u32', pad: size - 4, decoder: { decoder: first.name, ...THEIRS } };
      default: {
        const before = first.name === 'regexp' ? 'string or uint' : 'uint';
        return this.fail(dat(0), `decoder ${first.name} reads the text another decoder gives, expected ${before} before it`);
      }
    }
  }

  /** static_map after uint: their keys are matched against uint's decimal text. */
  private staticMap(dec: RawDecoder, at: ConfigPath, type: string): { type: string; pad: number; decoder: Partial<LabelSpec> } | undefined {
    const node = this.loc.find([...at, 'static_map']).value;
    if (!isMap(node) || node.items.length === 0) return this.fail([...at, 'name'], 'static_map needs a non-empty static_map: mapping, e.g. { 0: read, 1: write }');
    const map: Record<string, string> = {};
    for (const pair of node.items) {
      const keyNode = this.loc.resolve(pair.key);
      // As yaml.v2 gives it to their map[string]string: the key as written.
      const text = isScalar(keyNode) ? (typeof keyNode.source === 'string' && keyNode.source !== '' ? keyNode.source : String(keyNode.value)) : '';
      const value = dec.static_map?.[String(isScalar(keyNode) ? keyNode.value : '')];
      if (!/^(0|[1-9][0-9]*)$/.test(text)) {
        this.notes.push({ at: this.loc.pos(keyNode), message: `${pathText([...at, 'static_map'])}: key "${text}" never matches (uint gives decimal numbers without leading zeros), so it is left out` });
        continue;
      }
      if (value !== undefined) map[text] = value;
    }
    if (Object.keys(map).length === 0) return this.fail([...at, 'static_map'], 'no key of static_map can match (uint gives decimal numbers), expected keys like 0, 1, 2');
    return { type, pad: 0, decoder: { decoder: 'static_map', map, ...(dec.allow_unknown === true ? { allow_unknown: true } : {}) } };
  }

  /**
   * Their regexp keeps a row when a pattern matches (tried in order) and labels it with the match,
   * or the first group of a pattern with one; a pattern with more groups never labels (the next is
   * tried). When every pattern can match only the whole value, that is the value itself: one
   * pattern of ours. Otherwise ours rewrites as theirs does (patterns, rewrite: true).
   */
  private regexp(dec: RawDecoder, at: ConfigPath): Partial<LabelSpec> | undefined {
    const patterns = dec.regexps;
    if (patterns === undefined) return this.fail([...at, 'name'], 'regexp needs regexps: a list of patterns');
    const bodies: (string | undefined)[] = [];
    for (const [i, p] of patterns.entries()) {
      const pat: ConfigPath = [...at, 'regexps', i];
      try {
        new RegExp(p, 'u');
      } catch (e) {
        return this.fail(pat, `pattern "${p}" is not one this exporter can run (JavaScript syntax): ${(e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '')}`);
      }
      const groups = new RegExp(`${p}|`, 'u').exec('')!.length - 1;
      if (groups > 1) {
        return this.fail(pat, `pattern "${p}" has ${groups} groups: ebpf_exporter never labels a row with such a pattern (it takes a match with no group or one), so it only hides the patterns after it; expected at most one group (make the others (?:...))`);
      }
      bodies.push(wholeMatchBody(p));
    }
    if (bodies.every((b) => b !== undefined)) {
      const whole = bodies as string[];
      return { decoder: 'regexp', pattern: whole.length === 1 ? `^${whole[0]}$` : `^(?:${whole.join('|')})$` };
    }
    return { decoder: 'regexp', patterns: [...patterns], rewrite: true };
  }

  private buckets(h: RawHistogram, at: ConfigPath, from: string): BucketSpec | undefined {
    const multiplier = h.bucket_multiplier === undefined || h.bucket_multiplier === 0 ? 1 : h.bucket_multiplier;
    if (multiplier < 0) return this.fail([...at, 'bucket_multiplier'], `${h.bucket_multiplier} is negative, expected a positive multiplier`);
    const where = this.where([...at, 'bucket_type']);
    if (h.bucket_type === 'fixed') {
      const keys = h.bucket_keys;
      if (keys === undefined) return this.fail(at, 'missing required key "bucket_keys", required when bucket_type is fixed');
      for (const [i, k] of keys.entries()) {
        if (!Number.isInteger(k) || k < 0) return this.fail([...at, 'bucket_keys', i], `${k} is not a bucket key a uint can hold, expected a whole number of at least 0`);
        if (i > 0 && k <= keys[i - 1]) return this.fail([...at, 'bucket_keys', i], `${k} comes after ${keys[i - 1]}, expected ascending keys without repeats`);
      }
      return { from, kind: 'fixed', min: keys[0], max: keys[keys.length - 1], multiplier, values: [...keys], at: where };
    }
    const min = h.bucket_min ?? 0;
    if (h.bucket_max === undefined) return this.fail(at, `missing required key "bucket_max", required when bucket_type is ${h.bucket_type}`);
    const max = h.bucket_max;
    if (min < 0) return this.fail([...at, 'bucket_min'], `${min} is negative, expected a bucket key of at least 0 (keys are unsigned)`);
    if (max <= min) return this.fail([...at, 'bucket_max'], `bucket_max ${max} is not above bucket_min ${min}: ebpf_exporter refuses a histogram of zero or negative size, expected bucket_max > bucket_min`);
    return { from, kind: h.bucket_type, min, max, multiplier, at: where };
  }
}

/**
 * The body X of a pattern that can only match a whole value: `^X$` with no capturing group and no
 * `|` outside groups, or `^(X)$` with one group around it all and none inside. Undefined otherwise.
 */
export function wholeMatchBody(p: string): string | undefined {
  if (!p.startsWith('^') || !p.endsWith('$')) return undefined;
  // The $ must not be escaped: an odd run of backslashes before it escapes it.
  let slashes = 0;
  for (let i = p.length - 2; i >= 0 && p[i] === '\\'; i--) slashes++;
  if (slashes % 2 === 1) return undefined;
  const body = p.slice(1, -1);
  const groups: { start: number; end: number }[] = [];
  const open: number[] = [];
  let capturing = 0;
  let topAlternation = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '\\') {
      i++;
    } else if (c === '[') {
      // A class: to its closing ], escapes included; a ] first in the class is a literal.
      i++;
      if (body[i] === '^') i++;
      if (body[i] === ']') i++;
      while (i < body.length && body[i] !== ']') i += body[i] === '\\' ? 2 : 1;
    } else if (c === '(') {
      const named = body.startsWith('(?<', i) && body[i + 3] !== '=' && body[i + 3] !== '!';
      const isCapture = body[i + 1] !== '?' || named || body.startsWith('(?P<', i);
      open.push(isCapture ? i : -1 - i);
      if (isCapture) capturing++;
    } else if (c === ')') {
      const start = open.pop();
      if (start !== undefined && start >= 0) groups.push({ start, end: i });
    } else if (c === '|' && open.length === 0) {
      topAlternation = true;
    }
  }
  if (capturing === 0) return topAlternation ? undefined : body;
  if (capturing === 1 && groups.length === 1 && groups[0].start === 0 && groups[0].end === body.length - 1 && body[1] !== '?') return body.slice(1, -1);
  return undefined;
}

// ---------------------------------------------------------------------------------------------

/** --config.names as ebpf_exporter reads it: comma-separated, each name once. */
export function splitNames(names: string): string[] | string {
  const list = names.split(',');
  if (list.some((n) => n.trim() === '')) return `--config.names has an empty name in ${JSON.stringify(names)}, expected names separated by commas`;
  const twice = list.find((n, i) => list.indexOf(n) !== i);
  if (twice !== undefined) return `--config.names names ${twice} twice, expected each config once`;
  return list;
}

/**
 * Read and translate `dir`/NAME.yaml + NAME.bpf.o for each name. `inspect` reads an object's maps
 * and programs (BpfObject.inspect; injected so that this module does not load libbpf itself).
 * Throws ConfigErrors.
 */
export function loadEbpfExporterConfigs(dir: string, names: readonly string[], inspect: (path: string) => ObjectContents): CompatResult {
  const errors: ConfigError[] = [];
  const inputs: CompatInput[] = [];
  for (const name of names) {
    const file = join(dir, `${name}.yaml`);
    const object = resolve(dir, `${name}.bpf.o`);
    let text: string;
    try {
      text = readConfigText(file);
    } catch (e) {
      if (!(e instanceof ConfigErrors)) throw e;
      errors.push(...e.errors);
      continue;
    }
    let contents: ObjectContents;
    try {
      contents = inspect(object);
    } catch (e) {
      if (!(e instanceof BpfError)) throw e;
      errors.push(new ConfigError({ file: join(dir, `${name}.bpf.o`), line: 0, column: 0 }, '', `config ${name} needs its compiled object beside ${name}.yaml: ${e.message}`));
      continue;
    }
    inputs.push({ name, file, text, object, contents });
  }
  if (errors.length > 0) {
    // The configs that could be read are still checked, so one run reports everything.
    try {
      translate(inputs);
    } catch (e) {
      if (!(e instanceof ConfigErrors)) throw e;
      errors.push(...e.errors);
    }
    throw new ConfigErrors(errors);
  }
  return translate(inputs);
}

// ---------------------------------------------------------------------------------------------
// convert: the translated config as our YAML

function durationText(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** A label as our YAML writes it: only the options it has. */
function labelYaml(l: LabelSpec): Record<string, unknown> {
  return {
    name: l.name,
    from: l.from,
    decoder: l.decoder,
    ...(l.map === undefined ? {} : { map: l.map }),
    ...(l.allow_unknown === undefined ? {} : { allow_unknown: l.allow_unknown }),
    ...(l.pattern === undefined ? {} : { pattern: l.pattern }),
    ...(l.patterns === undefined ? {} : { patterns: l.patterns }),
    ...(l.rewrite === undefined ? {} : { rewrite: l.rewrite }),
    ...(l.style === undefined ? {} : { style: l.style }),
  };
}

/**
 * The native YAML of a translated config: what `check` accepts and what runs the same. Notes are
 * written as comments at the top.
 */
export function renderNative(result: CompatResult, header: readonly string[] = []): string {
  const { config, notes } = result;
  const data = {
    interval: durationText(config.interval),
    maps: config.maps.map((m) => ({
      name: m.name,
      source: m.source,
      // A ring buffer's records have no BTF to read, and a spans job no value.
      ...(m.spans === undefined ? { btf: false } : {}),
      key: (m.key ?? []).map((f) => ({ name: f.name, type: f.type })),
      ...(m.spans === undefined ? { value: (m.value ?? []).map((f) => ({ name: f.name, type: f.type })) } : {}),
      ...(m.interval === config.interval ? {} : { interval: durationText(m.interval) }),
      ...(m.events === undefined ? {} : { events: { flush: durationText(m.events.flush) } }),
      ...(m.spans === undefined
        ? {}
        : { spans: { name: m.spans.name, ...(m.spans.service === undefined ? {} : { service: m.spans.service }), labels: m.spans.labels.map(labelYaml), attributes: m.spans.attributes } }),
      ...(m.seed?.cgroups === undefined ? {} : { seed: { cgroups: { match: m.seed.cgroups.match, paths: m.seed.cgroups.paths, value: m.seed.cgroups.value } } }),
      ...(m.metrics.length === 0 ? {} : { metrics: m.metrics.map((x) => ({
        name: x.name,
        type: x.type,
        help: x.help,
        value: x.value,
        ...(x.cpu === 'sum' ? {} : { cpu: x.cpu }),
        ...(x.labels.length === 0
          ? {}
          : {
              labels: x.labels.map(labelYaml),
            }),
        ...(x.buckets === undefined
          ? {}
          : {
              buckets: {
                from: x.buckets.from,
                kind: x.buckets.kind,
                ...(x.buckets.kind === 'fixed' ? { values: x.buckets.values } : { min: x.buckets.min, max: x.buckets.max }),
                multiplier: x.buckets.multiplier,
              },
            }),
      })) }),
    })),
  };
  const doc = new Document(data);
  // Short mappings on one line: fields, sources, labels and buckets read like the examples.
  const flow = (node: unknown): void => {
    if (isMap(node) || isSeq(node)) (node as Node & { flow?: boolean }).flow = true;
  };
  const maps = doc.get('maps') as unknown;
  if (isSeq(maps)) {
    for (const m of maps.items) {
      if (!isMap(m)) continue;
      flow(m.get('source'));
      flow(m.get('events'));
      const seed = m.get('seed');
      if (isMap(seed)) flow(seed.get('cgroups'));
      for (const side of ['key', 'value']) {
        const fields = m.get(side);
        if (isSeq(fields)) fields.items.forEach(flow);
      }
      const spans = m.get('spans');
      if (isMap(spans)) {
        const labels = spans.get('labels');
        if (isSeq(labels)) labels.items.forEach(flow);
      }
      const metrics = m.get('metrics');
      if (!isSeq(metrics)) continue;
      for (const x of metrics.items) {
        if (!isMap(x)) continue;
        flow(x.get('buckets'));
        const labels = x.get('labels');
        if (isSeq(labels)) labels.items.forEach(flow);
      }
    }
  }
  const comments = [...header, ...notes.map((n) => `${n.at.file}:${n.at.line}:${n.at.column}: ${n.message}`)];
  const body = doc.toString({ lineWidth: 0 });
  return `${comments.map((c) => `# ${c}\n`).join('')}${body}`;
}

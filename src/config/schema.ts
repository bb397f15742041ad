/**
 * The config's keys, described once: types, allowed values, defaults and descriptions, in the shapes
 * of src/yaml/shapes.ts. The validator (src/yaml/validate.ts) walks this description, and
 * renderJsonSchema() turns it into the JSON Schema editors use (config/schema.json). Rules that relate keys far apart (names unique across
 * maps, fields a metric refers to) are in rules.ts; they cannot be said per key.
 */
import { parseFieldType } from '../layout/field-type.js';
import { PERF_EVENT_NAMES } from '../bpf/perf-event-attr.js';
import { DECODER_NAMES } from '../decode/index.js';
import { jsonSchema, type ObjectShape, type Prop, type StringShape } from '../yaml/shapes.js';


const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// Dots let a config name the same fields BTF would (`addr.port`).
const FIELD_NAME = /^[a-zA-Z_][a-zA-Z0-9_.]*$/;
const FIELD_TYPE = /^(u8|u16|u32|u64|s8|s16|s32|s64|be16|be32|be64|(char|u8|pad)\[[1-9][0-9]*\])$/;

function checkFieldType(text: string): string | undefined {
  const sized = /^(char|u8|pad)\[(.*)\]$/.exec(text);
  if (sized !== null && !/^[1-9][0-9]*$/.test(sized[2])) return `field type "${text}": N must be a positive integer`;
  const t = parseFieldType(text);
  return typeof t === 'string' ? t : undefined;
}

// The kernel's rule for interface names (dev_valid_name): shorter than IFNAMSIZ (16), not . or .., no /, : or whitespace.
const INTERFACE_NAME = /^(?!\.\.?$)[^\s/:]{1,15}$/;

function checkInterfaceName(name: string): string | undefined {
  if (name.length > 15) return `interface name "${name}" is longer than 15 characters (the kernel's limit), expected a network interface name`;
  return undefined;
}

function checkLabelName(name: string): string | undefined {
  if (name.startsWith('__')) return `label name "${name}" starts with __, which Prometheus reserves, expected another name`;
  if (name === 'le') return 'label name "le" is reserved for histogram buckets, expected another name';
  return undefined;
}

function checkPattern(pattern: string): string | undefined {
  try {
    new RegExp(pattern);
    return undefined;
  } catch (e) {
    // V8 says "Invalid regular expression: /PATTERN/: REASON"; the pattern is in the config already.
    const reason = (e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
    return `invalid regular expression "${pattern}": ${reason}, expected a JavaScript regular expression`;
  }
}

function checkAscending(items: readonly unknown[]): string | undefined {
  for (let i = 1; i < items.length; i++) {
    if ((items[i] as number) <= (items[i - 1] as number)) return `${String(items[i])} comes after ${String(items[i - 1])}, expected ascending values without repeats`;
  }
  return undefined;
}

/** Label and metric names as Prometheus takes them (shared with the ebpf_exporter format in src/compat). */
export const LABEL_NAME_SHAPE: StringShape = { type: 'string', check: checkLabelName, pattern: LABEL_NAME, expected: 'a label name ([a-zA-Z_][a-zA-Z0-9_]*)' };
/** A span attribute's name: OpenTelemetry's keys are dotted (cpu.orig, net.peer.port). */
export const ATTRIBUTE_NAME_SHAPE: StringShape = { type: 'string', pattern: /^[a-zA-Z_][a-zA-Z0-9_.]*$/, expected: 'an attribute name ([a-zA-Z_][a-zA-Z0-9_.]*)' };
export const METRIC_NAME_SHAPE: StringShape = { type: 'string', pattern: METRIC_NAME, expected: 'a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)' };

const nonEmpty: StringShape = { type: 'string', nonEmpty: true };
const NOT_FIXED = ['exp2', 'exp2zero', 'linear'];

const field: ObjectShape = {
  type: 'object',
  at: true,
  props: {
    name: { shape: { type: 'string', pattern: FIELD_NAME, expected: 'a field name ([a-zA-Z_][a-zA-Z0-9_.]*)' }, required: true, description: 'The field\'s name, which metrics and labels refer to.' },
    type: {
      shape: { type: 'string', check: checkFieldType, pattern: FIELD_TYPE },
      required: true,
      description: 'u8 u16 u32 u64 s8 s16 s32 s64 (host order), be16 be32 be64 (network order), char[N] (NUL-terminated string), u8[N] (bytes), pad[N] (skipped). Fields are laid out in order, without implicit alignment.',
    },
  },
};

const fields = (what: string): Prop => ({
  shape: { type: 'list', items: field, minItems: 1 },
  description: `The map's ${what}, field by field; the sizes must add up to its ${what}_size. Omit it when the map carries BTF.`,
});

const interfaceName: StringShape = { type: 'string', check: checkInterfaceName, pattern: INTERFACE_NAME, expected: 'a network interface name (1 to 15 characters, none of them /, : or blank)' };

const tc: ObjectShape = {
  type: 'object',
  props: {
    interface: { shape: interfaceName, required: true, description: 'The network interface whose clsact hook the tc programs are attached to, e.g. eth0.' },
    direction: {
      shape: { type: 'string', enum: ['ingress', 'egress'] },
      required: true,
      description: 'ingress (packets the interface receives) or egress (packets it sends).',
    },
  },
};

const perfEvent: ObjectShape = {
  type: 'object',
  exactlyOne: ['frequency', 'period'],
  props: {
    event: {
      shape: { type: 'string', enum: PERF_EVENT_NAMES },
      required: true,
      description:
        'The event sampled, by its perf name: software events (cpu-clock, task-clock, page-faults, context-switches, cpu-migrations, minor-faults, major-faults, alignment-faults, emulation-faults) exist everywhere; ' +
        'hardware events (cpu-cycles, instructions, cache-references, cache-misses, branch-instructions, branch-misses, bus-cycles, stalled-cycles-frontend, stalled-cycles-backend, ref-cycles) need a PMU, which most VMs lack.',
    },
    frequency: {
      shape: { type: 'integer', min: 1 },
      description: 'Samples per second on each CPU (perf -F); at most kernel.perf_event_max_sample_rate. For cpu-clock the kernel turns it into a fixed period of 1e9/frequency ns.',
    },
    period: { shape: { type: 'integer', min: 1 }, description: 'A sample every this many events on each CPU (perf -c); for cpu-clock and task-clock, nanoseconds.' },
  },
};

const source: ObjectShape = {
  type: 'object',
  exactlyOne: ['pinned', 'id', 'name', 'object'],
  props: {
    pinned: { shape: nonEmpty, description: 'Path of a map pinned in bpffs, e.g. /sys/fs/bpf/my_map.' },
    id: { shape: { type: 'integer', min: 1, max: 0xffffffff }, description: 'The kernel\'s id of the map (as bpftool map list shows it).' },
    name: { shape: nonEmpty, description: 'The name of a loaded map (the first map of that name).' },
    object: { shape: nonEmpty, description: 'A compiled BPF object (.bpf.o) the exporter loads and attaches, relative to the config file\'s folder.' },
    map: { shape: nonEmpty, when: { key: 'object', required: true }, description: 'With object: the name of the map in that object.' },
    xdp: {
      shape: interfaceName,
      when: { key: 'object' },
      description:
        'With object: the network interface every XDP program of the object (sections xdp, xdp.frags and ebpf_exporter\'s xdp/IFNAME) is attached to, e.g. eth0; without it, xdp/IFNAME programs go to IFNAME. ' +
        'libbpf\'s bpf_program__attach_xdp makes a BPF link without mode flags, so the kernel picks native (driver) mode when the interface\'s driver supports XDP, else generic (skb) mode. ' +
        'Every job naming the object must give the same xdp. The programs are detached when the exporter exits.',
    },
    tc: {
      shape: tc,
      when: { key: 'object' },
      description:
        'With object: where every tc program of the object (sections tc and classifier) is attached, e.g. { interface: eth0, direction: ingress }: ' +
        'a direct-action cls_bpf filter each, on the interface\'s clsact qdisc (created when the interface has none). ' +
        'Every job naming the object must give the same tc. On exit the filters are removed, and the qdisc too when the exporter created it.',
    },
    perf_event: {
      shape: perfEvent,
      when: { key: 'object' },
      description:
        'With object: the perf event every perf_event program of the object samples, on every online CPU and every task, e.g. { event: cpu-clock, frequency: 99 }. ' +
        'Every job naming the object must give the same perf_event. The events are closed when the exporter exits. ' +
        'Without it, a program in ebpf_exporter\'s section convention perf_event/type=N,config=N,frequency=N samples the event its section names.',
    },
    kaddrs: {
      shape: { type: 'list', items: { type: 'string', pattern: /^[A-Za-z_.$][\w.$]*$/, expected: 'a kernel symbol name as /proc/kallsyms lists it (letters, digits, _, . and $)' } },
      when: { key: 'object' },
      description:
        'With object: kernel symbols whose addresses (/proc/kallsyms) are written into the object\'s global variables kaddr_<symbol> (const volatile u64, in .rodata) before it loads, as ebpf_exporter\'s kaddrs. ' +
        'Every job naming the object must give the same kaddrs.',
    },
  },
};

const bucket: ObjectShape = {
  type: 'object',
  at: true,
  exactlyOne: ['from', 'of'],
  props: {
    from: { shape: nonEmpty, description: 'The key field that holds the bucket (a histogram map\'s bucket key).' },
    of: {
      shape: nonEmpty,
      description:
        'Events jobs (events:): the field of each event whose value the histogram observes, one observation an event, counted under the smallest bound at least as large (le) and summed, ' +
        'e.g. a latency in nanoseconds with kind exp2 and multiplier 1.0e-9. Instead of from.',
    },
    kind: {
      shape: { type: 'string', enum: ['exp2', 'exp2zero', 'linear', 'fixed'] },
      required: true,
      description: 'Upper bound of bucket key k: exp2 2^k; exp2zero 0 for k = 0, else 2^(k-1); linear k; fixed k for each of values. Each times multiplier.',
    },
    min: { shape: { type: 'integer', min: 0 }, default: 0, when: { key: 'kind', is: NOT_FIXED }, description: 'First bucket key; smaller keys count in the first bucket.' },
    max: {
      shape: { type: 'integer', min: 0 },
      when: { key: 'kind', is: NOT_FIXED, required: true },
      description: 'Last bucket key; larger keys count only in +Inf. Key max + 1 holds the sum unless the metric names a sum field.',
    },
    multiplier: { shape: { type: 'number', above: 0 }, default: 1, description: 'Multiplies bucket bounds and the sum, e.g. 1.0e-6 for microseconds to seconds.' },
    values: {
      shape: { type: 'list', items: { type: 'integer', min: 0 }, minItems: 1, check: checkAscending },
      when: { key: 'kind', is: ['fixed'], required: true },
      description: 'fixed: the bucket keys there are, ascending; each is its bucket\'s upper bound before the multiplier.',
    },
  },
};

const label: ObjectShape = {
  type: 'object',
  at: true,
  exactlyOne: ['from', 'value'],
  props: {
    name: { shape: LABEL_NAME_SHAPE, required: true, description: 'The label\'s name; not starting with __, not le.' },
    from: { shape: nonEmpty, description: 'The key or value field the label is decoded from. Rows that decode to the same labels are summed.' },
    value: { shape: { type: 'text' }, description: 'A static label value.' },
    decoder: {
      shape: { type: 'string', enum: DECODER_NAMES },
      when: { key: 'from' },
      description: 'How the field becomes text. Default by type: integers uint, char[N] string, u8[N] hex.',
    },
    map: { shape: { type: 'dict' }, when: { key: 'decoder', is: ['static_map'], required: true }, description: 'static_map: raw value -> label value, e.g. { 0: read, 1: write }.' },
    allow_unknown: { shape: { type: 'boolean' }, when: { key: 'decoder', is: ['static_map'] }, description: 'static_map: values not in map pass through as their number (else unknown:N).' },
    pattern: {
      shape: { type: 'string', nonEmpty: true, check: checkPattern },
      when: { key: 'decoder', is: ['regexp'] },
      description: 'regexp (this or patterns): a JavaScript regular expression; rows whose (string) value does not match are dropped.',
    },
    patterns: {
      shape: { type: 'list', items: { type: 'string', nonEmpty: true, check: checkPattern }, minItems: 1 },
      when: { key: 'decoder', is: ['regexp'] },
      description: 'regexp (this or pattern): JavaScript regular expressions tried in order; rows that match none are dropped.',
    },
    style: {
      shape: { type: 'string', enum: ['ebpf_exporter'] },
      when: { key: 'decoder', is: ['inet_ip', 'ksym', 'kstack', 'syscall', 'errno', 'cgroup', 'ifname', 'majorminor', 'dname', 'pci_vendor', 'pci_device', 'pci_class', 'pci_subclass'] },
      description: 'ebpf_exporter: the label values cloudflare/ebpf_exporter gives where ours differ (unknown:N, unknown_syscall:N, its syscall names, full cgroup paths...).',
    },
    rewrite: {
      shape: { type: 'boolean' },
      when: { key: 'decoder', is: ['regexp'] },
      description: 'regexp: the label is the part that matched, or the first group of the pattern that matched (^(kswapd).*$ labels kswapd0 and kswapd1 as kswapd, and sums them), instead of the whole value.',
    },
  },
};

/** A span's label: a label whose name is an attribute's, dots allowed. */
const spanLabel: ObjectShape = {
  ...label,
  props: { ...label.props, name: { shape: ATTRIBUTE_NAME_SHAPE, required: true, description: 'The span field it is (trace_id, span_id, ...) or the attribute\'s name.' } },
};

const metric: ObjectShape = {
  type: 'object',
  at: true,
  props: {
    name: {
      shape: METRIC_NAME_SHAPE,
      required: true,
      description: 'The metric\'s name, unique in the config; counters end in _total.',
    },
    type: { shape: { type: 'string', enum: ['counter', 'gauge', 'histogram'] }, required: true, description: 'counter, gauge or histogram.' },
    help: { shape: nonEmpty, required: true, description: 'The metric\'s HELP text.' },
    value: { shape: nonEmpty, required: true, description: 'The value field read; for histograms, the count in each bucket.' },
    cpu: {
      shape: { type: 'string', enum: ['sum', 'max', 'min', 'label'] },
      default: 'sum',
      description: 'Per-CPU maps: how the CPUs\' values combine; label keeps one series per CPU, with a label cpu="N".',
    },
    scale: { shape: { type: 'number' }, default: 1, when: { key: 'type', is: ['counter', 'gauge'] }, description: 'Multiplies the value, e.g. 1.0e-9 for nanoseconds to seconds. Histograms use buckets.multiplier.' },
    labels: { shape: { type: 'list', items: label }, default: [], description: 'The series\' labels; rows with the same labels are summed.' },
    buckets: { shape: bucket, when: { key: 'type', is: ['histogram'], required: true }, description: 'Histograms: how a key field\'s values map to buckets.' },
    sum: { shape: nonEmpty, when: { key: 'type', is: ['histogram'] }, description: 'Histograms: a value field holding the sum; without it, bucket key max + 1 holds the sum when the map keeps one.' },
    max_series: { shape: { type: 'integer', min: 1 }, description: 'Cap on this metric\'s series; new series beyond it are dropped and counted. Default: the top-level max_series.' },
  },
};

const seedEntry: ObjectShape = {
  type: 'object',
  at: true,
  props: {
    key: {
      shape: { type: 'dict', keys: 'string' },
      required: true,
      description: 'The key, field by field as the job\'s key layout names them (written or from BTF): integers in decimal or 0x hex (negative for s8..s64), char[N] as a string, u8[N] as hex digits. Fields left out are zero.',
    },
    value: {
      shape: { type: 'dict', keys: 'string' },
      description: 'The value, field by field as the job\'s value layout names them; fields left out are zero. Per-CPU maps get the same value on every CPU.',
    },
  },
};

const seedCgroups: ObjectShape = {
  type: 'object',
  at: true,
  props: {
    match: {
      shape: { type: 'list', items: { type: 'string', nonEmpty: true, check: checkPattern }, minItems: 1 },
      required: true,
      description: 'JavaScript regular expressions; every cgroup v2 whose path matches one of them is written into the map (its id as the key of a hash map, or its fd for a cgrp_storage map), and deleted from a hash map when the cgroup goes.',
    },
    paths: {
      shape: { type: 'string', enum: ['relative', 'absolute'] },
      default: 'relative',
      description: 'What the patterns see: the path below the cgroup root as the cgroup decoder gives it (/system.slice/x.service), or absolute, with the mount point (/sys/fs/cgroup/system.slice/x.service), as ebpf_exporter matches.',
    },
    value: {
      shape: { type: 'dict', keys: 'string' },
      description: 'The value written for each cgroup, field by field as the job\'s value layout names them; fields left out are zero.',
    },
  },
};

const seed: ObjectShape = {
  type: 'object',
  at: true,
  props: {
    flags: {
      shape: { type: 'string', enum: ['any', 'noexist', 'exist'] },
      default: 'any',
      description: 'any: create or replace each entry (one bpf_map_update_batch call); noexist: only create (an entry already there fails with EEXIST); exist: only replace (a missing entry fails with ENOENT). The kernel takes noexist and exist only entry by entry, so those are written with one update per entry.',
    },
    lock: {
      shape: { type: 'boolean' },
      default: false,
      description: 'Write each value under its bpf_spin_lock (BPF_F_LOCK): for maps whose value holds one; the kernel refuses it (EINVAL) for others.',
    },
    entries: { shape: { type: 'list', items: seedEntry, minItems: 1 }, description: 'Entries written into the map when it is opened: at start, at every reload, and whenever it is opened again.' },
    cgroups: { shape: seedCgroups, description: 'Entries for the cgroups whose paths match, written when the map is opened and brought up to date every interval as cgroups come and go.' },
  },
};

const map: ObjectShape = {
  type: 'object',
  at: true,
  props: {
    name: { shape: nonEmpty, required: true, description: 'The job\'s name in self-metrics, logs and `dump --map`; unique.' },
    source: { shape: source, required: true, description: 'Where the map is: exactly one of pinned, id, name, or object with map (and, for its XDP, tc and perf_event programs, xdp, tc and perf_event).' },
    mode: {
      shape: { type: 'string', enum: ['read', 'drain'] },
      default: 'read',
      description: 'read, or drain: lookup-and-delete, keeping the totals in the exporter.',
    },
    interval: { shape: { type: 'duration' }, description: 'How often the map is read. Default: the top-level interval.' },
    batch_size: { shape: { type: 'integer', min: 1, max: 1_048_576 }, default: 4096, description: 'Entries per batch call (ENOSPC grows it as needed).' },
    batch: { shape: { type: 'boolean' }, default: true, description: 'false: per-key iteration (get_next_key), as on kernels without batch operations.' },
    key: fields('key'),
    value: fields('value'),
    metrics: { shape: { type: 'list', items: metric, minItems: 1 }, description: 'The metrics made from the map\'s entries. Required unless the job only seeds the map (seed:) or sends spans (spans:).' },
    keep_stale: {
      shape: { type: 'duration' },
      description: 'Read maps: how long the last good series stay exported while the map cannot be read. Default: they go at the first failed read.',
    },
    seed: {
      shape: seed,
      description: 'Entries the exporter writes into the map (bpf_map_update_batch) when it opens it: at start, at every reload and after the map was re-created. Needs write access to the map. A job may seed a map without metrics.',
    },
    events: {
      shape: {
        type: 'object',
        props: {
          flush: { shape: { type: 'duration' }, default: 3_600_000, description: 'How often the counts are cleared (every series goes). Default: 1h, as ebpf_exporter.' },
        },
      },
      description:
        'The map is a perf_event_array (bpf_perf_event_output) or a ringbuf (bpf_ringbuf_output, reserve/submit) the programs send events through: each event\'s first bytes are read as a key of the written key layout, with a u64 value of 1, ' +
        'and counted into totals kept across reads; the events are taken every interval (a perf_event_array\'s wait in a 256 KiB ring per CPU; those the kernel drops when it is full count in bpf_map_exporter_perf_events_lost_total; ' +
        'a ring buffer keeps no count of the sends it refused: bpf_map_exporter_ringbuf_full_total counts the reads that found it full). ' +
        'Needs key written, a value of one u64 field, and mode read. e.g. events: { flush: 1h }',
    },
    spans: {
      shape: {
        type: 'object',
        at: true,
        props: {
          name: { shape: nonEmpty, description: 'The spans\' name; a label named span_name gives each record its own. Default: the job\'s name.' },
          service: { shape: nonEmpty, description: 'service.name of the spans\' resource. Default: OTEL_SERVICE_NAME, else bpf-map-exporter.' },
          labels: {
            shape: { type: 'list', items: spanLabel, minItems: 1 },
            required: true,
            description:
              'What each record holds, from the fields of key: labels named trace_id (16 bytes, hex), span_id and parent_span_id (8 bytes, hex; zero: none), ' +
              'span_monotonic_timestamp_ns and span_duration_ns (uint, bpf_ktime_get_ns time) and span_name are the span\'s own; every other label is an attribute.',
          },
          attributes: { shape: { type: 'dict', keys: 'string' }, description: 'Attributes every span of the job carries.' },
        },
      },
      description:
        'The map is a ring buffer (BPF_MAP_TYPE_RINGBUF) whose records are OpenTelemetry spans, laid out by key (written), read every interval and sent over OTLP ' +
        '(the otel section and the OTEL_EXPORTER_OTLP_TRACES_* / OTEL_EXPORTER_OTLP_* variables). Instead of metrics; mode read.',
    },
    btf: {
      shape: { type: 'boolean' },
      description:
        'false: the map\'s BTF is neither read nor checked; key and value (both required then) are read as the bytes they describe, whatever fields BTF has there ' +
        '(a u32 read over a u8 and its padding, as ebpf_exporter configs do). Default: the layout comes from BTF, or is checked against it.',
    },
  },
};

const otel: ObjectShape = {
  type: 'object',
  props: {
    endpoint: {
      shape: nonEmpty,
      description: 'OTLP endpoint, e.g. http://collector:4318 (http) or http://collector:4317 (grpc). Default: OTEL_EXPORTER_OTLP_METRICS_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT.',
    },
    protocol: {
      shape: { type: 'string', enum: ['http/protobuf', 'http/json', 'grpc'] },
      description: 'Default: OTEL_EXPORTER_OTLP_METRICS_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf.',
    },
    headers: { shape: { type: 'dict', keys: 'string' }, description: 'Headers sent with every export (added to OTEL_EXPORTER_OTLP_HEADERS).' },
    interval: { shape: { type: 'duration' }, description: 'How often metrics are pushed. Default: OTEL_METRIC_EXPORT_INTERVAL, else 60s.' },
    timeout: { shape: { type: 'duration' }, description: 'Timeout of one export. Default: OTEL_EXPORTER_OTLP_TIMEOUT, else 10s.' },
    temporality: {
      shape: { type: 'string', enum: ['cumulative', 'delta'] },
      description: 'Counters and histograms as cumulative totals or per-export deltas. Default: OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE, else cumulative.',
    },
  },
};

export const CONFIG_SCHEMA: ObjectShape = {
  type: 'object',
  props: {
    interval: { shape: { type: 'duration' }, default: '15s', description: 'How often maps are read, unless a map says otherwise: 500ms, 5s, 1m, 1h, 1m30s.' },
    state_file: { shape: nonEmpty, description: 'Where drain totals are checkpointed across restarts, relative to the config file\'s folder; every batch a drain takes is journaled beside it (state_file.journal) before the next batch call.' },
    state_sync: {
      shape: { type: 'string', enum: ['cycle', 'batch'] },
      default: 'cycle',
      description: 'When the drain journal is synced to disk: with the checkpoint at the end of each drain cycle (a process crash loses at most one batch, a host crash at most one cycle), or after every batch too (a host crash also loses at most one batch; a sync per batch call).',
    },
    max_series: { shape: { type: 'integer', min: 1 }, default: 10000, description: 'Cap on series per metric, unless a metric says otherwise.' },
    maps: { shape: { type: 'list', items: map }, default: [], description: 'The maps to export. Without any, the exporter only inventories every BPF map on the host.' },
    inventory: { shape: { type: 'boolean' }, default: false, description: 'Also export the inventory of every BPF map on the host beside the maps listed (always on when none are).' },
    otel: { shape: otel, description: 'Push metrics over OTLP. Also started, without this key, when OTEL_EXPORTER_OTLP_ENDPOINT is set.' },
  },
};

/** The JSON Schema (draft 2020-12) of the config, as committed in config/schema.json. */
export function renderJsonSchema(): string {
  return jsonSchema(CONFIG_SCHEMA, {
    title: 'bpf-map-exporter configuration',
    description: 'Generated from src/config/schema.ts; do not edit. Rules across keys (unique names, fields that metrics name, counters ending in _total) are checked by the exporter.',
  });
}

/** The command that rewrites config/schema.json, for messages. */
export const REGENERATE_SCHEMA =
  'node --import tsx -e "import(\'./src/config/schema.ts\').then((m) => process.stdout.write(m.renderJsonSchema()))" > config/schema.json';

/**
 * The perf events a perf_event source may name, with their perf_event_attr type and config, and the
 * struct perf_event_attr that opens one. No native code here: the config's schema takes its list of
 * names from this table, and unit tests compare the struct with C's.
 */
export const PERF_TYPE_HARDWARE = 0;
const PERF_TYPE_SOFTWARE = 1;

/** Events by the names `perf list` gives them: [type, config] (include/uapi/linux/perf_event.h). */
export const PERF_EVENTS = {
  'cpu-cycles': [PERF_TYPE_HARDWARE, 0],
  instructions: [PERF_TYPE_HARDWARE, 1],
  'cache-references': [PERF_TYPE_HARDWARE, 2],
  'cache-misses': [PERF_TYPE_HARDWARE, 3],
  'branch-instructions': [PERF_TYPE_HARDWARE, 4],
  'branch-misses': [PERF_TYPE_HARDWARE, 5],
  'bus-cycles': [PERF_TYPE_HARDWARE, 6],
  'stalled-cycles-frontend': [PERF_TYPE_HARDWARE, 7],
  'stalled-cycles-backend': [PERF_TYPE_HARDWARE, 8],
  'ref-cycles': [PERF_TYPE_HARDWARE, 9],
  'cpu-clock': [PERF_TYPE_SOFTWARE, 0],
  'task-clock': [PERF_TYPE_SOFTWARE, 1],
  'page-faults': [PERF_TYPE_SOFTWARE, 2],
  'context-switches': [PERF_TYPE_SOFTWARE, 3],
  'cpu-migrations': [PERF_TYPE_SOFTWARE, 4],
  'minor-faults': [PERF_TYPE_SOFTWARE, 5],
  'major-faults': [PERF_TYPE_SOFTWARE, 6],
  'alignment-faults': [PERF_TYPE_SOFTWARE, 7],
  'emulation-faults': [PERF_TYPE_SOFTWARE, 8],
} as const satisfies Record<string, readonly [number, number]>;

export type PerfEventName = keyof typeof PERF_EVENTS;

/** What a perf_event source samples: an event, every `period` events or `frequency` times a second per CPU. */
export interface PerfEventSpec {
  event: PerfEventName;
  frequency?: number;
  period?: number;
}

/**
 * An event given by its perf_event_attr type and config, as ebpf_exporter's section convention
 * `perf_event/type=N,config=N,frequency=N` writes it: any PMU's event, not only the named ones.
 */
export interface RawPerfEventSpec {
  type: number;
  config: bigint;
  frequency?: number;
  period?: number;
}

/** Either way of naming an event. */
export type AnyPerfEventSpec = PerfEventSpec | RawPerfEventSpec;

/** The type and config of an event however it was given. */
export function perfEventTypeConfig(spec: AnyPerfEventSpec): [number, bigint] {
  if ('event' in spec) {
    const [type, config] = PERF_EVENTS[spec.event];
    return [type, BigInt(config)];
  }
  return [spec.type, spec.config];
}

/** The name `perf list` gives a type and config, when the table has it. */
export function perfEventName(type: number, config: bigint): PerfEventName | undefined {
  return PERF_EVENT_NAMES.find((n) => PERF_EVENTS[n][0] === type && BigInt(PERF_EVENTS[n][1]) === config);
}

const SECTION_PREFIX = 'perf_event/';
const MAX_U32 = 2 ** 32 - 1;
const MAX_U64 = 2n ** 64n - 1n;

/**
 * The event of a program section in ebpf_exporter's convention: `perf_event/` then `key=value`
 * items separated by commas, with keys `type` (perf_event_attr.type, default 0), `config`
 * (default 0) and `frequency` (samples per second per CPU), and, ours only, `period` (a sample
 * every N events) instead of frequency. A key given twice takes its last value, as theirs.
 * Undefined for a section not in the convention; a string saying what is wrong for one that is.
 */
export function parsePerfEventSection(section: string): RawPerfEventSpec | string | undefined {
  if (!section.startsWith(SECTION_PREFIX)) return undefined;
  let type = 0;
  let config = 0n;
  let frequency: number | undefined;
  let period: number | undefined;
  for (const item of section.slice(SECTION_PREFIX.length).split(',')) {
    const eq = item.indexOf('=');
    if (eq < 0) return `item "${item}" is not key=value, expected items like type=1,config=0,frequency=99`;
    const key = item.slice(0, eq);
    const text = item.slice(eq + 1);
    if (!/^[0-9]+$/.test(text)) return `${key}=${text}: "${text}" is not a whole number of at least 0`;
    const value = BigInt(text);
    switch (key) {
      case 'type':
        if (value > BigInt(MAX_U32)) return `type=${text} is above ${MAX_U32} (perf_event_attr.type is 32 bits)`;
        type = Number(value);
        break;
      case 'config':
        if (value > MAX_U64) return `config=${text} is above 2^64 - 1`;
        config = value;
        break;
      case 'frequency':
      case 'period':
        if (value === 0n || value > MAX_U64) return `${key}=${text}: expected at least 1${value === 0n ? '' : ' and below 2^64'}`;
        if (key === 'frequency') frequency = Number(value);
        else period = Number(value);
        break;
      default:
        return `unknown key "${key}" in item "${item}", expected type, config, frequency or period`;
    }
  }
  if (frequency !== undefined && period !== undefined) return 'frequency and period both given, expected one of them';
  // Without either the event counts but never overflows: the program would never run.
  if (frequency === undefined && period === undefined) return 'no frequency=N (or period=N): the event would count without ever running the program';
  return { type, config, ...(frequency === undefined ? {} : { frequency }), ...(period === undefined ? {} : { period }) };
}

/** The event names, in the table's order (hardware first). */
export const PERF_EVENT_NAMES = Object.keys(PERF_EVENTS) as PerfEventName[];

// PERF_ATTR_SIZE_VER7: the struct up to sig_data, as the uapi header of this libbpf's era has it.
// Newer kernels accept an older size (the fields it lacks read as zero).
const ATTR_SIZE = 128;
const ATTR_DISABLED = 1n << 0n;
const ATTR_FREQ = 1n << 10n;

/**
 * struct perf_event_attr: type@0 size@4 config@8 sample_period|sample_freq@16 sample_type@24
 * read_format@32, the flag bitfield@40 (disabled bit 0, freq bit 10). Opened disabled: libbpf
 * enables the event once the program is attached, so no sample comes before.
 */
export function perfEventAttr(spec: AnyPerfEventSpec): Buffer {
  const [type, config] = perfEventTypeConfig(spec);
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(type, 0);
  attr.writeUInt32LE(ATTR_SIZE, 4);
  attr.writeBigUInt64LE(config, 8);
  attr.writeBigUInt64LE(BigInt(spec.frequency ?? spec.period ?? 0), 16);
  attr.writeBigUInt64LE(ATTR_DISABLED | (spec.frequency !== undefined ? ATTR_FREQ : 0n), 40);
  return attr;
}

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
export function perfEventAttr(spec: PerfEventSpec): Buffer {
  const [type, config] = PERF_EVENTS[spec.event];
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(type, 0);
  attr.writeUInt32LE(ATTR_SIZE, 4);
  attr.writeBigUInt64LE(BigInt(config), 8);
  attr.writeBigUInt64LE(BigInt(spec.frequency ?? spec.period ?? 0), 16);
  attr.writeBigUInt64LE(ATTR_DISABLED | (spec.frequency !== undefined ? ATTR_FREQ : 0n), 40);
  return attr;
}

/**
 * The perf events a perf_event source may name, with their perf_event_attr type and config. No
 * native code here: the config's schema takes its list of names from this table.
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

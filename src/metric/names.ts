/**
 * The names a metric takes in the exposition, and the names the exporter itself registers: the rules
 * the config checks a map's metrics against and the publishers write by. Nothing here renders.
 */
import type { Family } from './series.js';

/** The exposition formats /metrics speaks: Prometheus text 0.0.4 and OpenMetrics 1.0.0. */
export type ExpositionFormat = 'text' | 'openmetrics';

/**
 * The name in `# TYPE`/`# HELP` and the name of the value samples. OpenMetrics names a counter
 * family without `_total` and its samples with it; text 0.0.4 uses the configured name for both.
 */
export function exposedNames(name: string, type: Family['type'], format: ExpositionFormat): { family: string; sample: string } {
  if (type !== 'counter' || format === 'text') return { family: name, sample: name };
  const family = name.endsWith('_total') ? name.slice(0, -'_total'.length) : name;
  return { family, sample: `${family}_total` };
}

/**
 * The inventory's metrics, registered by SelfMetrics: the maps' (gauges) and the programs' (an info
 * gauge and three counters). Config rules reserve every name they expose.
 */
export const INVENTORY_METRICS: readonly { name: string; type: 'counter' | 'gauge' }[] = [
  ...['bpf_map_info', 'bpf_map_entries', 'bpf_map_max_entries', 'bpf_map_fill_ratio', 'bpf_map_memlock_bytes', 'bpf_program_info'].map((name) => ({ name, type: 'gauge' as const })),
  ...['bpf_program_run_seconds_total', 'bpf_program_runs_total', 'bpf_program_recursion_misses_total'].map((name) => ({ name, type: 'counter' as const })),
];

/**
 * The process metrics registerProcessMetrics registers (prom-client 15's default metrics on Linux,
 * less DROPPED_DEFAULT_METRICS), with their types: config rules reserve every name they expose, so
 * a map metric cannot take one. A unit test holds this list to what prom-client really registers.
 */
export const PROCESS_METRICS: readonly { name: string; type: 'counter' | 'gauge' | 'histogram' }[] = [
  ...['process_cpu_user_seconds_total', 'process_cpu_system_seconds_total', 'process_cpu_seconds_total'].map((name) => ({ name, type: 'counter' as const })),
  ...[
    'process_start_time_seconds',
    'process_resident_memory_bytes',
    'process_virtual_memory_bytes',
    'process_heap_bytes',
    'process_open_fds',
    'process_max_fds',
    'nodejs_eventloop_lag_seconds',
    'nodejs_eventloop_lag_min_seconds',
    'nodejs_eventloop_lag_max_seconds',
    'nodejs_eventloop_lag_mean_seconds',
    'nodejs_eventloop_lag_stddev_seconds',
    'nodejs_eventloop_lag_p50_seconds',
    'nodejs_eventloop_lag_p90_seconds',
    'nodejs_eventloop_lag_p99_seconds',
    'nodejs_active_resources',
    'nodejs_active_handles',
    'nodejs_active_requests',
    'nodejs_heap_size_total_bytes',
    'nodejs_heap_size_used_bytes',
    'nodejs_external_memory_bytes',
    'nodejs_heap_space_size_total_bytes',
    'nodejs_heap_space_size_used_bytes',
    'nodejs_heap_space_size_available_bytes',
    'nodejs_version_info',
  ].map((name) => ({ name, type: 'gauge' as const })),
  { name: 'nodejs_gc_duration_seconds', type: 'histogram' },
];

/**
 * Every name a family occupies in either format: its TYPE names and its sample names. Two families
 * whose sets meet would print two `# TYPE` lines for one name, or samples another family claims
 * (a counter foo_total and a gauge foo are both "foo" in OpenMetrics).
 */
export function occupiedNames(name: string, type: string): string[] {
  switch (type) {
    case 'counter': {
      const om = exposedNames(name, 'counter', 'openmetrics');
      return [...new Set([name, om.family, om.sample])];
    }
    case 'histogram':
      return [name, `${name}_bucket`, `${name}_sum`, `${name}_count`];
    case 'summary':
      return [name, `${name}_sum`, `${name}_count`];
    default:
      return [name];
  }
}

/**
 * bpf-map-exporter as a library: `import { BpfMap, BatchReader } from 'bpf-map-exporter'`.
 *
 * Three levels, each usable alone:
 * - the binding: open or create a BPF map, read or drain it in batches (libbpf through koffi);
 * - a config: the exporter's YAML parsed and checked, with problems positioned in the text;
 * - a job: a configured map opened, fitted to its layout, and read into families of series, which
 *   renderFamilies turns into Prometheus text or OpenMetrics.
 * README.md ("As a library") has an example that test/kernel/library.test.ts runs.
 */
export { BpfError, Errno, errnoName } from './bpf/errors.js';
export { BpfMap, mapIds, readMapInfo, BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_F_NO_PREALLOC, BPF_F_RDONLY, BPF_NOEXIST } from './bpf/map.js';
export type { CreateOptions, MapInfo, OpenOptions } from './bpf/map.js';
export { BatchReader } from './bpf/batch.js';
export type { Batch, IterationMethod, IterationStats, ReaderOptions, ReadMode } from './bpf/batch.js';
export { isPerCpu, MapType, mapTypeName, perCpuSlotSize } from './bpf/map-types.js';
export { possibleCpus } from './bpf/cpus.js';

export { loadConfig, parseConfig } from './config/parse.js';
export { ConfigError, ConfigErrors } from './yaml/errors.js';
export type { Config, MapSpec, MetricSpec } from './config/types.js';

export { jobsOf, MapJob } from './collect/job.js';
export type { JobRead } from './collect/job.js';
export type { MapSnapshot } from './aggregate/map-aggregator.js';
export type { Family, HistogramSeries, ScalarSeries } from './metric/series.js';
export type { ExpositionFormat } from './metric/names.js';
export { renderFamilies } from './publish/prometheus-render.js';

/**
 * A rich set of families shared by the rendering, cache and promtool tests: every type, labels that
 * need escaping, empty label sets, empty families, NaN/Inf, large and small numbers.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Family } from '../../../src/metric/series.js';

export const WEIRD = 'a"b\\c\nd';

export function richFamilies(): Family[] {
  return [
    {
      name: 'syscalls_total',
      type: 'counter',
      help: 'System calls by process and syscall',
      series: [
        { labels: { syscall: 'read', pid: '10' }, value: 5 },
        { labels: { pid: '9', syscall: WEIRD }, value: 2 ** 53 + 2 },
        { labels: { pid: '1', syscall: '' }, value: 1e21 },
        { labels: { pid: '10', syscall: 'openat' }, value: 123456789 },
      ],
    },
    {
      name: 'syscall_time_seconds_total',
      type: 'counter',
      help: 'Time spent in system calls; a backslash \\ and a\nnewline',
      series: [{ labels: {}, value: 1e-9 }],
    },
    {
      name: 'queue_depth',
      type: 'gauge',
      help: 'Odd values',
      series: [
        { labels: { q: 'nan' }, value: NaN },
        { labels: { q: 'inf' }, value: Infinity },
        { labels: { q: 'neg_inf' }, value: -Infinity },
        { labels: { q: 'neg' }, value: -42.5 },
        { labels: { q: 'zero' }, value: 0 },
      ],
    },
    { name: 'empty_total', type: 'counter', help: 'A counter with no series yet', series: [] },
    { name: 'empty_gauge', type: 'gauge', help: 'A gauge with no series yet', series: [] },
    { name: 'empty_seconds', type: 'histogram', help: 'A histogram with no series yet', series: [] },
    {
      name: 'io_latency_seconds',
      type: 'histogram',
      help: 'IO latency',
      series: [
        {
          labels: { op: 'write' },
          buckets: [
            { le: 1e-6, count: 1 },
            { le: 0.5, count: 2 },
            { le: 1, count: 3 },
            { le: 1e6, count: 3 },
            { le: Infinity, count: 4 },
          ],
          count: 4,
          sum: 2.5,
        },
        { labels: {}, buckets: [{ le: 1, count: 0 }, { le: Infinity, count: 0 }], count: 0, sum: 0 },
        { labels: { op: WEIRD }, buckets: [{ le: 0.001, count: 7 }, { le: Infinity, count: 9 }], count: 9, sum: 0.1 },
      ],
    },
  ];
}

/** Self-metrics like the exporter's: a counter, a gauge and a histogram with labels. */
export function registerSelfMetrics(registry: Registry): void {
  const reads = new Counter({ name: 'bpf_map_exporter_map_reads_total', help: 'Read cycles per map', labelNames: ['map'], registers: [registry] });
  reads.inc({ map: 'syscalls' }, 3);
  reads.inc({ map: 'io' }, 1);
  new Gauge({ name: 'bpf_map_exporter_map_up', help: 'Whether the last read of the map worked', labelNames: ['map'], registers: [registry] }).set({ map: 'io' }, 1);
  const h = new Histogram({ name: 'bpf_map_exporter_render_seconds', help: 'Time to render', buckets: [0.001, 0.1, 1], registers: [registry] });
  h.observe(0.05);
}

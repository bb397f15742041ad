import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { ExpositionCache } from '../../../src/publish/prometheus.js';
import { registryMetricTypes } from '../../../src/publish/prometheus-registry.js';
import { registerProcessMetrics, SelfMetrics } from '../../../src/publish/self-metrics.js';
import { INVENTORY_METRICS, PROCESS_METRICS } from '../../../src/metric/names.js';

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

describe('process metrics', () => {
  it('registers exactly PROCESS_METRICS, the names config rules reserve', () => {
    const registry = new Registry();
    registerProcessMetrics(registry);
    expect(registryMetricTypes(registry).sort(byName)).toEqual([...PROCESS_METRICS].sort(byName));
    // What the task asks for: CPU, memory, heap, event-loop lag, fds, start time.
    for (const name of [
      'process_cpu_seconds_total',
      'process_cpu_user_seconds_total',
      'process_cpu_system_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
      'process_open_fds',
      'process_max_fds',
      'process_start_time_seconds',
    ]) {
      expect(PROCESS_METRICS.map((m) => m.name)).toContain(name);
    }
    // Gauges named like counters are left out (promtool and the config rules refuse them).
    expect(PROCESS_METRICS.filter((m) => m.type !== 'counter' && m.name.endsWith('_total'))).toEqual([]);
  });

  it('have values once read', async () => {
    const registry = new Registry();
    registerProcessMetrics(registry);
    const json = await registry.getMetricsAsJSON();
    const value = (name: string) => json.find((m) => m.name === name)?.values[0]?.value;
    expect(value('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(value('process_open_fds')).toBeGreaterThan(0);
    expect(value('process_max_fds')).toBeGreaterThan(0);
    expect(value('process_start_time_seconds')).toBeGreaterThan(1_600_000_000);
  });

  it('do not share a name with the self-metrics or the inventory', () => {
    const registry = new Registry();
    new SelfMetrics(registry, { version: '0.1.0', inventory: true });
    const own = registryMetricTypes(registry).map((m) => m.name);
    // The self-metrics' names are the prefix's, but for the inventory's (maps' and programs'), whose types config rules rely on.
    expect(registryMetricTypes(registry).filter((m) => !m.name.startsWith('bpf_map_exporter_')).sort(byName)).toEqual([...INVENTORY_METRICS].sort(byName));
    registerProcessMetrics(registry); // throws on a name registered twice
    expect(registryMetricTypes(registry)).toHaveLength(own.length + PROCESS_METRICS.length);
  });
});

describe('ExpositionCache with process metrics', () => {
  it("refuses a job's family that would expose a process metric's name", () => {
    const cache = new ExpositionCache();
    registerProcessMetrics(cache.registry);
    expect(() => cache.set('j', [{ name: 'process_cpu_seconds_total', type: 'counter', help: 'h', series: [] }])).toThrow(
      `metric "process_cpu_seconds_total" of job "j" clashes with the exporter's self-metric "process_cpu_seconds_total": both expose "process_cpu_seconds_total"`,
    );
    // A gauge that OpenMetrics' name for the counter would meet.
    expect(() => cache.set('j', [{ name: 'process_cpu_seconds', type: 'gauge', help: 'h', series: [] }])).toThrow(/clashes with the exporter's self-metric "process_cpu_seconds_total"/);
  });
});

describe('SelfMetrics.forget', () => {
  it('drops every series of a job the config no longer has, and only those', async () => {
    const registry = new Registry();
    const self = new SelfMetrics(registry, { version: 't', inventory: false });
    for (const map of ['gone', 'kept']) {
      const stats = new Map([['m_total', { series: 3, seriesDropped: 1, rowsDropped: 2 }]]);
      self.read(map, { entries: 3, maxEntries: 8, seconds: 0.1, method: 'batch', truncated: true, stats });
      self.failed(map, 'EPERM');
      self.overrun(map, 1);
      self.lost(map, 4);
    }
    await self.forget('gone');
    const text = await registry.metrics();
    expect(text).not.toContain('map="gone"');
    for (const name of ['map_up', 'map_reads_total', 'map_read_errors_total', 'series', 'series_dropped_total', 'rows_dropped_total', 'map_read_overruns_total', 'drain_possible_loss_total', 'map_iterations_truncated_total', 'map_read_method']) {
      expect(text).toMatch(new RegExp(`bpf_map_exporter_${name}\\{[^}]*map="kept"`));
    }
  });
});

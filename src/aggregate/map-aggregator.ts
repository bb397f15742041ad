import { MetricAggregator, type AggregatorOptions } from './metric.js';
import type { MapPlan } from './plan.js';
import type { MetricStats, SeriesState } from './types.js';
import type { Family } from '../metric/series.js';

export interface MapSnapshot {
  families: Family[];
  stats: Map<string, MetricStats>;
}

/** Every metric of one map job, fed from the same batches. */
export class MapAggregator {
  private readonly metrics: MetricAggregator[];

  constructor(plan: MapPlan, opts: AggregatorOptions = {}) {
    this.metrics = plan.metrics.map((m) => new MetricAggregator(m, plan.shape, opts));
  }

  begin(): void {
    for (const m of this.metrics) m.begin();
  }

  /** Row i's key at `keys[i * keySize]`, or at `keys[keyOffsets[i]]`; its values at `values[i * valueStride]`. */
  add(keys: Uint8Array, values: Uint8Array, count: number, keyOffsets?: Uint32Array): void {
    for (const m of this.metrics) m.add(keys, values, count, keyOffsets);
  }

  /** Totals per metric name (drain jobs). */
  exportState(): Record<string, SeriesState[]> {
    return Object.fromEntries(this.metrics.map((m) => [m.plan.name, m.exportState()]));
  }

  /** Start from saved totals; metrics no longer configured are ignored. Returns the series skipped. */
  importState(state: Readonly<Record<string, readonly SeriesState[]>>): number {
    let skipped = 0;
    for (const m of this.metrics) skipped += m.importState(state[m.plan.name] ?? []);
    return skipped;
  }

  finish(): MapSnapshot {
    const families: Family[] = [];
    const stats = new Map<string, MetricStats>();
    for (const m of this.metrics) {
      const r = m.finish();
      families.push(r.family);
      stats.set(r.family.name, r.stats);
    }
    return { families, stats };
  }
}

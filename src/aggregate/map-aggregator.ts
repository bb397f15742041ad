import { MetricAggregator } from './metric.js';
import type { MapPlan } from './plan.js';
import type { Family, MetricStats } from './types.js';

export interface MapSnapshot {
  families: Family[];
  stats: Map<string, MetricStats>;
}

/** Every metric of one map job, fed from the same batches. */
export class MapAggregator {
  private readonly metrics: MetricAggregator[];

  constructor(plan: MapPlan, opts: { accumulate?: boolean } = {}) {
    this.metrics = plan.metrics.map((m) => new MetricAggregator(m, plan.shape, opts));
  }

  begin(): void {
    for (const m of this.metrics) m.begin();
  }

  add(keys: Uint8Array, values: Uint8Array, count: number): void {
    for (const m of this.metrics) m.add(keys, values, count);
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

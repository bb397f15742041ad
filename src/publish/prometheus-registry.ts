/**
 * The exporter's self-metrics, the inventory and the process metrics live in a prom-client Registry;
 * this renders them with the same renderer as the map families, so the whole document follows one set
 * of rules (and registryFamily hands the same families to the OTLP RegistryProducer).
 *
 * Why not `registry.metrics()` (prom-client 15.1.3):
 * - in OpenMetrics mode it renames every counter in place (`metric.name = name without _total`,
 *   lib/registry.js metrics()), so each later text render prints `x_reads{...}` instead of
 *   `x_reads_total{...}`: the two formats cannot share one registry;
 * - an empty registry renders "\n# EOF\n" in OpenMetrics, and a blank line is invalid there;
 * - its HELP leaves `"` bare in OpenMetrics, where the spec's escaped-string forbids it; its le values
 *   ("0.000001", "1") differ from both Go's and the OpenMetrics canonical spelling, and NaN is "Nan".
 * `getMetricsAsJSON()` is public, runs the same collect() callbacks and changes nothing.
 */
import type { Registry } from 'prom-client';
import type { Family, HistogramSeries, ScalarSeries } from '../metric/series.js';
import type { ExpositionFormat } from '../metric/names.js';
import { escapeLabelValue, formatLe, formatValue, metadata, renderFamily } from './prometheus-render.js';

export type JsonMetric = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];
type JsonValue = JsonMetric['values'][number];

/** prom-client's typings omit metricName, which histogram and summary values carry at run time. */
function sampleName(v: JsonValue, fallback: string): string {
  const named = v as JsonValue & { metricName?: unknown };
  return typeof named.metricName === 'string' ? named.metricName : fallback;
}

/** prom-client's typings say MetricType is a numeric enum; at run time it is the type's name. */
export function typeName(m: { type: unknown }): string {
  return String(m.type);
}

function stringLabels(labels: JsonValue['labels'], omit?: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (k !== omit && v !== undefined) out[k] = String(v);
  return out;
}

function histogramFamily(m: JsonMetric): Family {
  // prom-client lists each label set's buckets (ascending, +Inf last), then _sum and _count.
  const groups = new Map<string, HistogramSeries>();
  for (const v of m.values) {
    const labels = stringLabels(v.labels, 'le');
    const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    let s = groups.get(key);
    if (s === undefined) groups.set(key, (s = { labels, buckets: [], count: 0, sum: 0 }));
    const name = sampleName(v, m.name);
    if (name === `${m.name}_bucket`) {
      const le = v.labels.le;
      s.buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: v.value });
    } else if (name === `${m.name}_sum`) {
      s.sum = v.value;
    } else if (name === `${m.name}_count`) {
      s.count = v.value;
    }
  }
  return { name: m.name, type: 'histogram', help: m.help, series: [...groups.values()] };
}

/**
 * Types our Family does not model (summary): samples as prom-client lists them, numeric label
 * values (quantile) in the canonical number form of the format.
 */
function renderOther(m: JsonMetric, type: string, format: ExpositionFormat): string {
  let out = metadata(m.name, type, m.help, format);
  for (const v of m.values) {
    const names = Object.keys(v.labels).filter((k) => v.labels[k] !== undefined).sort();
    const body = names
      .map((k) => {
        const x = v.labels[k];
        return `${k}="${typeof x === 'number' ? formatLe(x, format) : escapeLabelValue(String(x))}"`;
      })
      .join(',');
    out += `${sampleName(v, m.name)}${body === '' ? '' : `{${body}}`} ${formatValue(v.value)}\n`;
  }
  return out;
}

/**
 * A registry metric as a Family (label values as strings, histograms grouped per label set with
 * their cumulative buckets), or undefined for a type Family does not model (summary). The
 * /metrics renderer and the OTLP RegistryProducer both read the registry through this.
 */
export function registryFamily(m: JsonMetric): Family | undefined {
  const type = typeName(m);
  if (type === 'counter' || type === 'gauge') {
    const series: ScalarSeries[] = m.values.map((v) => ({ labels: stringLabels(v.labels), value: v.value }));
    return { name: m.name, type, help: m.help, series };
  }
  if (type === 'histogram') return histogramFamily(m);
  return undefined;
}

/** The registry's metrics as exposition lines in `format`, without `# EOF`. */
export async function renderRegistry(registry: Registry, format: ExpositionFormat): Promise<string> {
  let out = '';
  for (const m of await registry.getMetricsAsJSON()) {
    const family = registryFamily(m);
    out += family === undefined ? renderOther(m, typeName(m), format) : renderFamily(family, format);
  }
  return out;
}

/** Name and type of each registered metric, without collecting values (for clash checks). */
export function registryMetricTypes(registry: Registry): { name: string; type: string }[] {
  return registry.getMetricsAsArray().map((m) => ({ name: m.name, type: typeName(m) }));
}

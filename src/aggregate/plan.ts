import type { MapSpec, MetricSpec } from '../config/types.js';
import type { MapBtf } from '../bpf/btf.js';
import type { MapInfo } from '../bpf/map.js';
import { isArrayLike } from '../bpf/map-types.js';
import { createDecoder, defaultDecoderName, type DecoderEnv } from '../decode/index.js';
import { checkAgainstBtf, checkSize, layoutFromBtf, layoutFromSpecs, LayoutError } from '../layout/build.js';
import { numberReader } from '../layout/read.js';
import { formatFieldType } from '../layout/field-type.js';
import type { Layout, LayoutField } from '../layout/types.js';
import { bucketIndex } from './buckets.js';
import type { LabelPlan, MapShape, MetricPlan, ValuePlan } from './types.js';

/** A problem found while fitting a map's config to the real map, and the config path it is about. */
export interface PlanProblem {
  path: (string | number)[];
  message: string;
  /** The errno name when a BPF operation failed (opening the source, reading its BTF). */
  errno?: string;
}

export interface MapPlan {
  key: Layout;
  value: Layout;
  shape: MapShape;
  metrics: MetricPlan[];
}

/** What the plan needs to know of the opened map. */
export interface MapFacts {
  info: MapInfo;
  cpus: number;
  cpuIds: readonly number[];
  valueStride: number;
  perCpu: boolean;
  /** The map's BTF key/value types, when it carries BTF and we may read it. */
  btf?: MapBtf;
}

/**
 * Fit one map's config to the real map: layouts from the config (checked against key_size,
 * value_size and BTF) or from BTF, then every metric resolved to offsets, readers and decoders.
 * Every problem is reported, each with the config path it is about.
 */
export function planMap(spec: MapSpec, index: number, facts: MapFacts, env?: DecoderEnv): { plan?: MapPlan; problems: PlanProblem[] } {
  const at = (...p: (string | number)[]): (string | number)[] => ['maps', index, ...p];
  const problems: PlanProblem[] = [];
  if (spec.mode === 'drain' && isArrayLike(facts.info.type)) {
    problems.push({ path: at('mode'), message: `${facts.info.typeName} maps cannot be drained: every index always exists and none can be deleted; use mode: read` });
  }
  const key = resolveLayout('key', spec.key, facts.info.keySize, facts.btf === undefined ? undefined : () => layoutFromBtf(facts.btf!.key, 'key'), at, problems);
  const value = resolveLayout('value', spec.value, facts.info.valueSize, facts.btf === undefined ? undefined : () => layoutFromBtf(facts.btf!.value, 'value'), at, problems);
  if (key === undefined || value === undefined) return { problems };

  const slotSize = facts.perCpu ? (facts.info.valueSize + 7) & ~7 : facts.info.valueSize;
  const shape: MapShape = { keySize: facts.info.keySize, valueStride: facts.valueStride, slotSize, cpus: facts.cpus, cpuIds: facts.cpuIds };
  const metrics: MetricPlan[] = [];
  spec.metrics.forEach((m, j) => {
    const p = planMetric(m, key, value, facts, env, (path, message) => problems.push({ path: at('metrics', j, ...path), message }));
    if (p !== undefined) metrics.push(p);
  });
  return problems.length > 0 ? { problems } : { plan: { key, value, shape, metrics }, problems };
}

function resolveLayout(
  what: 'key' | 'value',
  written: MapSpec['key'],
  size: number,
  fromBtf: (() => Layout) | undefined,
  at: (...p: (string | number)[]) => (string | number)[],
  problems: PlanProblem[],
): Layout | undefined {
  try {
    const btf = fromBtf?.();
    if (written === undefined) {
      if (btf === undefined) {
        problems.push({ path: at(), message: `the map carries no BTF: describe its ${what} with \`${what}:\` fields (${what}_size is ${size} bytes)` });
        return undefined;
      }
      return btf;
    }
    const layout = layoutFromSpecs(written);
    checkSize(layout, what, size);
    if (btf !== undefined) checkAgainstBtf(layout, btf, what);
    return layout;
  } catch (e) {
    if (!(e instanceof LayoutError)) throw e;
    problems.push({ path: e.field === undefined ? at(what) : at(what, e.field, 'type'), message: e.message });
    return undefined;
  }
}

function fieldNames(l: Layout): string {
  return l.fields.filter((f) => f.type.kind !== 'pad').map((f) => f.name).join(', ');
}

function planMetric(
  m: MetricSpec,
  key: Layout,
  value: Layout,
  facts: MapFacts,
  env: DecoderEnv | undefined,
  problem: (path: (string | number)[], message: string) => void,
): MetricPlan | undefined {
  let failures = 0;
  const fail = (path: (string | number)[], message: string): undefined => {
    failures++;
    problem(path, message);
    return undefined;
  };
  const intField = (layout: Layout, name: string, what: string, path: (string | number)[]): ValuePlan | undefined => {
    const f = layout.fields.find((x) => x.name === name && x.type.kind !== 'pad');
    if (f === undefined) return fail(path, `no ${what} field named "${name}"; the ${what} fields are: ${fieldNames(layout)}`);
    if (f.type.kind !== 'int') return fail(path, `${what} field "${name}" is ${formatFieldType(f.type)}; a number needs an integer field`);
    return { offset: f.offset, fromKey: layout === key, read: numberReader(f.type) };
  };

  const valuePlan = intField(value, m.value, 'value', ['value']);
  if (m.cpu === 'label' && !facts.perCpu) fail(['cpu'], `cpu: label needs a per-CPU map; this map is ${facts.info.typeName}`);

  const labels: LabelPlan[] = [];
  m.labels.forEach((l, k) => {
    if (l.value !== undefined) {
      labels.push({ name: l.name, kind: 'static', value: l.value });
      return;
    }
    const name = l.from ?? '';
    const fromKey = key.fields.find((f) => f.name === name && f.type.kind !== 'pad');
    const fromValue = fromKey === undefined ? value.fields.find((f) => f.name === name && f.type.kind !== 'pad') : undefined;
    const field: LayoutField | undefined = fromKey ?? fromValue;
    if (field === undefined) return fail(['labels', k, 'from'], `no key or value field named "${name}"; key fields: ${fieldNames(key)}; value fields: ${fieldNames(value)}`);
    if (fromValue !== undefined && facts.perCpu && m.cpu !== 'label') {
      return fail(['labels', k, 'from'], `"${name}" is a value field of a per-CPU map: it differs per CPU, so it can label only with cpu: label`);
    }
    if (m.buckets?.from === name) {
      return fail(['labels', k, 'from'], `"${name}" is the histogram's bucket field and cannot also be a label`);
    }
    try {
      const decoder = createDecoder({ decoder: l.decoder ?? defaultDecoderName(field), map: l.map, allow_unknown: l.allow_unknown, pattern: l.pattern, patterns: l.patterns, rewrite: l.rewrite, style: l.style }, field, env);
      labels.push({ name: l.name, kind: 'field', fromKey: fromKey !== undefined, offset: field.offset, size: field.size, decoder });
    } catch (e) {
      fail(['labels', k, l.decoder === undefined ? 'from' : 'decoder'], (e as Error).message);
    }
  });
  if (m.cpu === 'label') labels.push({ name: 'cpu', kind: 'cpu' });

  let histogram: MetricPlan['histogram'];
  if (m.type === 'histogram' && m.buckets !== undefined) {
    const b = m.buckets;
    const bucket = intField(key, b.from, 'key', ['buckets', 'from']);
    const sum = m.sum === undefined ? undefined : intField(value, m.sum, 'value', ['sum']);
    if (m.scale !== 1) fail(['scale'], 'scale does not apply to histograms; bucket bounds and the sum use buckets.multiplier');
    if (bucket !== undefined) {
      const { bounds, index } = bucketIndex(b, sum !== undefined);
      histogram = { bucket, bounds, index, sum, sumScale: b.multiplier };
    }
  }
  if (failures > 0 || valuePlan === undefined) return undefined;
  return { name: m.name, type: m.type, help: m.help, value: valuePlan, cpu: m.cpu, scale: m.scale, labels, histogram, maxSeries: m.max_series };
}

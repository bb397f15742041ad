/**
 * Rules that relate keys written apart, which a per-key schema cannot say. They run on what the
 * validator made of the document, where anything written wrong is already reported and missing:
 * each rule skips what it cannot judge rather than report a problem twice.
 */
import { INVENTORY_METRICS, occupiedNames, PROCESS_METRICS } from '../metric/names.js';
import { resolve } from 'node:path';
import type { ConfigPath } from '../yaml/errors.js';
import { formatPath } from '../yaml/errors.js';
import type { Config, FieldSpec } from './types.js';
import { nearest } from '../yaml/validate.js';

/** A value as the validator leaves it: any part may be missing where it was written wrong. */
export type Loose<T> = T extends readonly (infer U)[] ? (Loose<U> | undefined)[] : T extends object ? { [K in keyof T]?: Loose<T[K]> } : T;

export type RawConfig = Loose<Omit<Config, 'file' | 'where'>>;
type RawField = Loose<FieldSpec>;

export interface RuleContext {
  /** Report a problem at the value written at `path`. */
  report(path: ConfigPath, message: string): void;
  /** The line a path is written on, to point at the other half of a clash. */
  line(path: ConfigPath): number;
  /** Whether `path` is written at all (a key written wrong is written, though missing from the config). */
  written(path: ConfigPath): boolean;
  /** The config file's folder, which relative paths in the config are relative to. */
  folder: string;
}

type Rule = (config: RawConfig, ctx: RuleContext) => void;

/** Reports every later use of a name already used; `scope` lists (name, path) pairs in file order. */
function unique(ctx: RuleContext, what: string, scope: [string | undefined, ConfigPath][], expectedText: string): void {
  const first = new Map<string, ConfigPath>();
  for (const [name, path] of scope) {
    if (name === undefined) continue;
    const earlier = first.get(name);
    const owner = path.slice(0, -1);
    if (earlier === undefined) first.set(name, owner);
    else ctx.report(path, `${what} "${name}" is already used by ${formatPath(earlier)} (line ${ctx.line(earlier)}), expected ${expectedText}`);
  }
}

/** Names of fields a metric can refer to, when the list is written and all of it is valid; pads have no value to read. */
function names(fields: (RawField | undefined)[] | undefined): string[] | undefined {
  if (fields === undefined || fields.some((f) => f?.name === undefined || f.type === undefined)) return undefined;
  return fields.filter((f) => !f!.type!.startsWith('pad[')).map((f) => f!.name!);
}

function noField(what: string, name: string, choices: string[], listed: string): string {
  const near = nearest(name, choices);
  return `no ${what} field named "${name}"${near === undefined ? '' : ` (did you mean "${near}"?)`}, expected one of ${listed}`;
}

/** The inventory's metrics, maps' and programs' (the exporter's self-metrics all start with bpf_map_exporter_). */
const RESERVED = new Set(INVENTORY_METRICS.map((m) => m.name));

/**
 * Every exposition name the exporter's own registry occupies besides its self-metrics (the inventory
 * and the process metrics), with the metric that occupies it: a map metric exposing one of them
 * would clash with it at the first snapshot (ExpositionCache.set refuses it).
 */
const OCCUPIED_BY_EXPORTER = new Map<string, string>([
  ...INVENTORY_METRICS.flatMap((m) => occupiedNames(m.name, m.type).map((n): [string, string] => [n, m.name])),
  ...PROCESS_METRICS.flatMap((m) => occupiedNames(m.name, m.type).map((n): [string, string] => [n, m.name])),
]);

type RawSource = NonNullable<NonNullable<NonNullable<RawConfig['maps']>[number]>['source']>;

/**
 * The attach options of an object source: each described as words for messages (`eth0`,
 * `eth0 ingress`, `cpu-clock at 99 Hz`), or undefined when not written or not complete.
 */
const ATTACH_OPTIONS: { key: string; programs: string; describe(source: RawSource): string | undefined }[] = [
  { key: 'xdp', programs: 'XDP', describe: (s) => ('xdp' in s ? s.xdp : undefined) },
  {
    key: 'tc',
    programs: 'tc',
    describe: (s) => {
      const tc = 'tc' in s ? s.tc : undefined;
      return tc?.interface === undefined || tc.direction === undefined ? undefined : `${tc.interface} ${tc.direction}`;
    },
  },
  {
    key: 'perf_event',
    programs: 'perf_event',
    describe: (s) => {
      const p = 'perf_event' in s ? s.perf_event : undefined;
      if (p?.event === undefined || (p.frequency === undefined) === (p.period === undefined)) return undefined;
      return p.frequency !== undefined ? `${p.event} at ${p.frequency} Hz` : `${p.event} every ${p.period} events`;
    },
  },
  {
    key: 'kaddrs',
    programs: 'kaddr_*',
    describe: (s) => {
      const k = 'kaddrs' in s ? s.kaddrs : undefined;
      return k === undefined || k.length === 0 ? undefined : k.join(', ');
    },
  },
];

const rules: Rule[] = [
  function regexpHasPatterns(config, ctx) {
    (config.maps ?? []).forEach((m, i) =>
      (m?.metrics ?? []).forEach((x, j) =>
        (x?.labels ?? []).forEach((l, k) => {
          if (l?.decoder !== 'regexp') return;
          const at: ConfigPath = ['maps', i, 'metrics', j, 'labels', k];
          // A key written wrong is written (and reported already), though it has no value.
          if (!ctx.written([...at, 'pattern']) && !ctx.written([...at, 'patterns'])) ctx.report(at, 'missing required key "pattern", required when decoder is regexp');
          else if (l.pattern !== undefined && l.patterns !== undefined) ctx.report([...at, 'patterns'], 'conflicts with pattern, expected one of pattern and patterns (a list)');
        }),
      ),
    );
  },

  /** A job reads metrics, seeds its map, or both; a seed writes entries, cgroups, or both, into a map a drain would empty. */
  function jobsHaveWork(config, ctx) {
    (config.maps ?? []).forEach((m, i) => {
      if (m === undefined || m === null) return;
      if (!ctx.written(['maps', i, 'metrics']) && !ctx.written(['maps', i, 'seed']) && !ctx.written(['maps', i, 'spans'])) ctx.report(['maps', i], 'missing required key "metrics"');
      const seed = m.seed;
      if (seed === undefined || seed === null) return;
      if (!ctx.written(['maps', i, 'seed', 'entries']) && !ctx.written(['maps', i, 'seed', 'cgroups'])) ctx.report(['maps', i, 'seed'], 'a seed writes nothing, expected entries:, cgroups: or both');
      if (m.mode === 'drain') ctx.report(['maps', i, 'seed'], 'a drained map loses its seeded entries at the first drain, expected mode: read (or no seed)');
    });
  },

  function mapNamesAreUnique(config, ctx) {
    unique(ctx, 'map name', (config.maps ?? []).map((m, i) => [m?.name, ['maps', i, 'name']]), 'a unique name');
  },

  // One exposition holds every map's metrics, so a name may be used once in the whole config.
  function metricNamesAreUnique(config, ctx) {
    const all = (config.maps ?? []).flatMap((m, i) => (m?.metrics ?? []).map((x, j): [string | undefined, ConfigPath] => [x?.name, ['maps', i, 'metrics', j, 'name']]));
    unique(ctx, 'metric name', all, 'a unique name across the config');
  },

  function labelNamesAreUniqueInAMetric(config, ctx) {
    (config.maps ?? []).forEach((m, i) =>
      (m?.metrics ?? []).forEach((x, j) => {
        const at = (k: number): ConfigPath => ['maps', i, 'metrics', j, 'labels', k, 'name'];
        unique(ctx, 'label name', (x?.labels ?? []).map((l, k) => [l?.name, at(k)]), 'a unique name within the metric');
        (x?.labels ?? []).forEach((l, k) => {
          if (x?.cpu === 'label' && l?.name === 'cpu') ctx.report(at(k), 'label name "cpu" is added by cpu: label, expected another name');
        });
      }),
    );
  },

  // Prometheus convention: a counter's name ends in _total (OpenMetrics exposition relies on it).
  function countersEndInTotal(config, ctx) {
    (config.maps ?? []).forEach((m, i) =>
      (m?.metrics ?? []).forEach((x, j) => {
        if (x?.type === 'counter' && x.name !== undefined && !x.name.endsWith('_total')) {
          ctx.report(['maps', i, 'metrics', j, 'name'], `counter "${x.name}" does not end in _total (Prometheus convention), expected "${x.name}_total"`);
        }
      }),
    );
  },

  // Two metrics whose exposition names meet would print two TYPE lines for one name, or samples
  // another family owns: a counter foo_total and a gauge foo are both "foo" in OpenMetrics, a
  // histogram lat owns lat_count. Caught here rather than when the first snapshot is published.
  function exposedNamesDoNotCollide(config, ctx) {
    const owners = new Map<string, { name: string; path: ConfigPath }>();
    (config.maps ?? []).forEach((m, i) =>
      (m?.metrics ?? []).forEach((x, j) => {
        if (x?.name === undefined || x.type === undefined) return;
        const path: ConfigPath = ['maps', i, 'metrics', j, 'name'];
        const taken = occupiedNames(x.name, x.type).find((n) => owners.has(n) && owners.get(n)!.name !== x.name);
        if (taken !== undefined) {
          const other = owners.get(taken)!;
          ctx.report(path, `metric "${x.name}" would expose "${taken}", which metric "${other.name}" (${formatPath(other.path.slice(0, -1))}, line ${ctx.line(other.path)}) exposes too, expected names that do not meet (OpenMetrics names a counter without _total; a histogram adds _bucket, _count and _sum)`);
          return;
        }
        for (const n of occupiedNames(x.name, x.type)) if (!owners.has(n)) owners.set(n, { name: x.name, path });
      }),
    );
  },

  // Suffixes Prometheus reads as a type: promtool refuses _total on a non-counter and _count, _sum or
  // _bucket on anything but a histogram; the exporter's own names are reserved.
  function namesFitTheirType(config, ctx) {
    (config.maps ?? []).forEach((m, i) =>
      (m?.metrics ?? []).forEach((x, j) => {
        if (x?.name === undefined || x.type === undefined) return;
        const at: ConfigPath = ['maps', i, 'metrics', j, 'name'];
        const suffix = /_(total|count|sum|bucket)$/.exec(x.name)?.[1];
        if (suffix === 'total' && x.type !== 'counter') ctx.report(at, `${x.type} "${x.name}" ends in _total, which Prometheus keeps for counters, expected another name`);
        else if (suffix !== undefined && suffix !== 'total' && x.type !== 'histogram') ctx.report(at, `${x.type} "${x.name}" ends in _${suffix}, which Prometheus reads as part of a histogram, expected another name`);
        else if (x.name.startsWith('bpf_map_exporter_') || RESERVED.has(x.name)) ctx.report(at, `metric name "${x.name}" is the exporter's own, expected another name`);
        else {
          const taken = occupiedNames(x.name, x.type).find((n) => OCCUPIED_BY_EXPORTER.has(n));
          if (taken === undefined) return;
          const owner = OCCUPIED_BY_EXPORTER.get(taken)!;
          ctx.report(
            at,
            owner === x.name
              ? `metric name "${x.name}" is one of the exporter's process metrics, expected another name`
              : `metric "${x.name}" would expose "${taken}", which the exporter's own metric "${owner}" exposes too, expected another name`,
          );
        }
      }),
    );
  },

  // A label's `from` looks in both lists, so a name in both would be ambiguous.
  function fieldNamesAreUnique(config, ctx) {
    (config.maps ?? []).forEach((m, i) => {
      const scope = (['key', 'value'] as const).flatMap((side) => (m?.[side] ?? []).map((f, k): [string | undefined, ConfigPath] => [f?.name, ['maps', i, side, k, 'name']]));
      unique(ctx, 'field name', scope, 'a unique name among the key and value fields');
    });
  },

  // Only where the fields are written: fields that will come from BTF are checked once the map is open.
  function referencedFieldsExist(config, ctx) {
    (config.maps ?? []).forEach((m, i) => {
      const key = names(m?.key);
      const value = names(m?.value);
      (m?.metrics ?? []).forEach((x, j) => {
        const at = (...p: (string | number)[]): ConfigPath => ['maps', i, 'metrics', j, ...p];
        if (value !== undefined) {
          if (x?.value !== undefined && !value.includes(x.value)) ctx.report(at('value'), noField('value', x.value, value, value.join(', ')));
          if (x?.sum !== undefined && !value.includes(x.sum)) ctx.report(at('sum'), noField('value', x.sum, value, value.join(', ')));
        }
        const from = x?.buckets?.from;
        if (key !== undefined && from !== undefined && !key.includes(from)) ctx.report(at('buckets', 'from'), noField('key', from, key, key.join(', ')));
        const of = observedField(x?.buckets);
        if (key !== undefined && of !== undefined && !key.includes(of)) ctx.report(at('buckets', 'of'), noField('key', of, key, key.join(', ')));
        if (key === undefined || value === undefined) return;
        (x?.labels ?? []).forEach((l, k) => {
          if (l?.from !== undefined && !key.includes(l.from) && !value.includes(l.from)) {
            ctx.report(at('labels', k, 'from'), noField('key or value', l.from, [...key, ...value], `${key.join(', ')} (key) or ${value.join(', ')} (value)`));
          }
        });
      });
    });
  },

  // The exporter loads an object once however many jobs read its maps, and attaches its XDP, tc and
  // perf_event programs once: two jobs asking for different places (or one for none) cannot both be right.
  function attachAgreesPerObject(config, ctx) {
    for (const option of ATTACH_OPTIONS) {
      const first = new Map<string, { index: number; name: string | undefined; value: string | undefined }>();
      (config.maps ?? []).forEach((m, i) => {
        const source = m?.source;
        if (source === undefined || !('object' in source) || source.object === undefined) return;
        const at: ConfigPath = ['maps', i, 'source'];
        const value = option.describe(source);
        // Written wrong (or in part): reported already, and its value unknown.
        if (value === undefined && ctx.written([...at, option.key])) return;
        const path = resolve(ctx.folder, source.object);
        const earlier = first.get(path);
        if (earlier === undefined) {
          first.set(path, { index: i, name: m?.name, value });
          return;
        }
        if (earlier.value === value) return;
        const job = (name: string | undefined, index: number): string => (name === undefined ? `maps[${index}]` : `job "${name}"`);
        const { key, programs } = option;
        const mine = value === undefined ? `names ${source.object} without ${key}` : key === 'kaddrs' ? `loads ${source.object} with kaddrs ${value}` : `attaches the ${programs} programs of ${source.object} to ${value}`;
        const theirs = earlier.value === undefined ? `names it without ${key}` : key === 'kaddrs' ? `loads it with kaddrs ${earlier.value}` : `attaches ${value === undefined ? `its ${programs} programs` : 'them'} to ${earlier.value}`;
        ctx.report(
          value === undefined ? at : [...at, key],
          `${job(m?.name, i)} ${mine}, but ${job(earlier.name, earlier.index)} (maps[${earlier.index}], line ${ctx.line(['maps', earlier.index])}) ${theirs}, ` +
            `expected the same ${key} in every job naming that object (it is loaded and attached once)`,
        );
      });
    }
  },

  // Events carry no BTF: their bytes are what the key says; and they are counted, never drained.
  function eventsNeedKeyAndRead(config, ctx) {
    (config.maps ?? []).forEach((m, i) => {
      if (m?.events === undefined) return;
      if (!ctx.written(['maps', i, 'key'])) ctx.report(['maps', i, 'events'], 'events needs the key written: the fields each event\'s first bytes are read as');
      if (m.mode === 'drain') ctx.report(['maps', i, 'mode'], 'events are counted as they come, not drained, expected mode: read');
    });
  },

  // A ring buffer's records carry no BTF, go to one consumer, and are sent as they come.
  function spansStandAlone(config, ctx) {
    (config.maps ?? []).forEach((m, i) => {
      if (m?.spans === undefined) return;
      const at: ConfigPath = ['maps', i, 'spans'];
      if (m.key === undefined) ctx.report(at, 'spans needs the key written: the fields each record is read as');
      if (m.mode === 'drain') ctx.report(['maps', i, 'mode'], 'a ring buffer\'s records are taken as they come, not drained, expected mode: read');
      if ((m.metrics ?? []).length > 0) ctx.report(['maps', i, 'metrics'], 'a job sends its ring buffer\'s records as spans or counts them as metrics (events:), not both: a record is read once');
      if (m.events !== undefined) ctx.report(['maps', i, 'events'], 'a job sends its ring buffer\'s records as spans or counts them (events:), not both: a record is read once');
      if (m.seed !== undefined) ctx.report(['maps', i, 'seed'], 'a ring buffer takes no entries, expected no seed with spans');
      const fields = new Set((m.key ?? []).map((f) => f?.name));
      const names = new Set<string>();
      (m.spans.labels ?? []).forEach((l, k) => {
        if (l?.name !== undefined && names.has(l.name)) ctx.report([...at, 'labels', k, 'name'], `label ${l.name} is listed twice, expected each name once`);
        if (l?.name !== undefined) names.add(l.name);
        if (l?.from !== undefined && m.key !== undefined && !fields.has(l.from)) ctx.report([...at, 'labels', k, 'from'], `no key field named ${l.from}, expected one of: ${[...fields].join(', ')}`);
      });
    });
  },

  // A histogram of an event field: one observation an event, the field rewritten into its bucket key
  // as each event is counted, so no other metric of the job may read it.
  function observedFieldsBelongToOneHistogram(config, ctx) {
    (config.maps ?? []).forEach((m, i) => {
      const observed = new Map<string, number>();
      (m?.metrics ?? []).forEach((x, j) => {
        const of = observedField(x?.buckets);
        if (of === undefined) return;
        const at: ConfigPath = ['maps', i, 'metrics', j, 'buckets', 'of'];
        if (m?.events === undefined) {
          ctx.report(at, 'of observes one value an event, for jobs that count events (events:); a histogram of a map reads its bucket from a key field, expected from:');
          return;
        }
        if (x?.sum !== undefined) ctx.report(['maps', i, 'metrics', j, 'sum'], 'a histogram of observed values sums them itself, expected no sum field');
        const t = (m.key ?? []).find((f) => f?.name === of)?.type;
        if (t !== undefined && !/^(u|s|be)\d+$/.test(t)) ctx.report(at, `field ${of} is a ${t}, expected an integer field to observe`);
        const earlier = observed.get(of);
        if (earlier !== undefined) ctx.report(at, `field ${of} is observed by metrics[${earlier}] already, expected one histogram a field`);
        observed.set(of, j);
      });
      (m?.metrics ?? []).forEach((x, j) =>
        (x?.labels ?? []).forEach((l, k) => {
          if (l?.from !== undefined && observed.has(l.from)) ctx.report(['maps', i, 'metrics', j, 'labels', k, 'from'], `field ${l.from} is observed by the histogram metrics[${observed.get(l.from)}], which turns it into a bucket as it counts, expected another field`);
        }),
      );
    });
  },

  // Without BTF the layout can only come from the config.
  function noBtfNeedsALayout(config, ctx) {
    (config.maps ?? []).forEach((m, i) => {
      if (m?.btf !== false) return;
      const missing = (['key', 'value'] as const).filter((side) => !ctx.written(['maps', i, side]));
      if (missing.length > 0) ctx.report(['maps', i, 'btf'], `btf: false needs the layout written: ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} missing, expected key: and value: fields`);
    });
  },

  function bucketRangeIsInOrder(config, ctx) {
    (config.maps ?? []).forEach((m, i) =>
      (m?.metrics ?? []).forEach((x, j) => {
        const b = x?.buckets;
        if (b?.kind === 'fixed' || b?.min === undefined || b.max === undefined || b.max >= b.min) return;
        ctx.report(['maps', i, 'metrics', j, 'buckets', 'max'], `max ${b.max} is below min ${b.min}, expected max >= min`);
      }),
    );
  },

  /**
   * A histogram keeps a count per bucket for every series and writes a line per bucket: a key range
   * of 10^8 took 1.9 GB to check, 2^64 aborted the process. No BPF histogram needs more than
   * MAX_BUCKETS (exp2 covers all of u64 in 65), and exp2 bounds past 2^1023 are no longer numbers.
   */
  function bucketCountIsBounded(config, ctx) {
    (config.maps ?? []).forEach((m, i) =>
      (m?.metrics ?? []).forEach((x, j) => {
        const b = x?.buckets;
        if (b === undefined || b === null) return;
        const at = (k: string) => ['maps', i, 'metrics', j, 'buckets', k];
        if (b.kind === 'fixed') {
          if (Array.isArray(b.values) && b.values.length > MAX_BUCKETS) ctx.report(at('values'), `${b.values.length} bucket keys, expected at most ${MAX_BUCKETS}: each series of a histogram keeps a count per bucket and writes a line per bucket`);
          return;
        }
        if (typeof b.max !== 'number' || typeof b.min !== 'number' || b.max < b.min) return;
        const n = b.max - b.min + 1;
        if (n > MAX_BUCKETS) {
          ctx.report(at('max'), `min ${b.min} to max ${b.max} makes ${n} buckets, expected at most ${MAX_BUCKETS}: each series of a histogram keeps a count per bucket and writes a line per bucket (exp2 covers all of u64 in 65)`);
        } else if ((b.kind === 'exp2' || b.kind === 'exp2zero') && !Number.isFinite(2 ** b.max * (typeof b.multiplier === 'number' ? b.multiplier : 1))) {
          ctx.report(at('max'), `max ${b.max} gives ${b.kind} bucket bounds beyond the largest number, expected a smaller max`);
        }
      }),
    );
  },
];

/** The field a histogram observes (`buckets.of`, before the config is built), if it does. */
function observedField(b: unknown): string | undefined {
  const of = (b as { of?: unknown } | undefined)?.of;
  return typeof of === 'string' ? of : undefined;
}

/** The most buckets a histogram may have (see bucketCountIsBounded). */
export const MAX_BUCKETS = 4096;

export function checkRules(config: RawConfig, ctx: RuleContext): void {
  for (const rule of rules) rule(config, ctx);
}

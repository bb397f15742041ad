/**
 * Config text -> Config: YAML with positions, the schema walk, the rules across keys, then the
 * defaults that depend on other keys. Every problem is collected and thrown as one ConfigErrors.
 */
import { dirname, resolve } from 'node:path';
import { YAMLMap } from 'yaml';
import { ConfigError, ConfigErrors, formatPath } from '../yaml/errors.js';
import { Locator } from '../yaml/locate.js';
import { parseYaml, readConfigText } from '../yaml/parse.js';
import { checkRules, type RawConfig } from './rules.js';
import { CONFIG_SCHEMA } from './schema.js';
import type { BucketSpec, Config, MapSource, MapSpec, MetricSpec, OtelSpec, PerfEventSource } from './types.js';
import { Validator } from '../yaml/validate.js';

/** Parse and validate a config; `file` names it in messages and anchors relative paths in it. */
export function parseConfig(text: string, file: string): Config {
  const { doc, lines } = parseYaml(text, file);
  const loc = new Locator(doc, lines, file);

  const validator = new Validator(loc);
  // An empty file (or only comments) is an empty mapping: every default, no maps.
  const raw = validator.document(CONFIG_SCHEMA, doc.contents ?? new YAMLMap()) as RawConfig | undefined;
  if (raw !== undefined) {
    checkRules(raw, {
      folder: dirname(file),
      report: (path, message) => validator.report(loc.valuePos(loc.find(path)), path, message),
      line: (path) => loc.where(path).line,
      written: (path) => loc.find(path).depth === path.length,
    });
  }
  if (validator.problems.length > 0 || raw === undefined) {
    throw new ConfigErrors(validator.problems.map((p) => new ConfigError(p.at, formatPath(p.path), p.message)));
  }
  // No problems: every required key is there and valid, so the loose result is the full one.
  return build(raw as Complete, file, loc);
}

/** Read and parse a config file. */
export function loadConfig(path: string): Config {
  return parseConfig(readConfigText(path), path);
}


/** The validator's result once it has no problems: what the schema guarantees, before the last defaults. */
interface Complete {
  interval: number;
  state_file?: string;
  state_sync: 'cycle' | 'batch';
  max_series: number;
  inventory: boolean;
  otel?: OtelSpec;
  maps: (Omit<MapSpec, 'interval' | 'metrics' | 'spans'> & { interval?: number; spans?: Omit<NonNullable<MapSpec['spans']>, 'name'> & { name?: string }; metrics?: (Omit<MetricSpec, 'max_series'> & { max_series?: number })[] })[];
}

/** Defaults taken from other keys, and paths made absolute. */
function build(raw: Complete, file: string, loc: Locator): Config {
  const folder = dirname(file);
  const config: Config = {
    file,
    interval: raw.interval,
    state_sync: raw.state_sync,
    max_series: raw.max_series,
    inventory: raw.inventory,
    ...(raw.otel === undefined ? {} : { otel: raw.otel }),
    maps: raw.maps.map(({ spans, ...m }) => ({
      ...m,
      source: sourceOf(m.source, folder),
      interval: m.interval ?? raw.interval,
      ...(spans === undefined ? {} : { spans: { ...spans, name: spans.name ?? m.name } }),
      metrics: (m.metrics ?? []).map((x) => ({
        ...x,
        max_series: x.max_series ?? raw.max_series,
        ...(x.buckets === undefined ? {} : { buckets: bucketsOf(x.buckets) }),
      })),
    })),
    where: (path) => loc.where(path),
  };
  if (raw.state_file !== undefined) config.state_file = resolve(folder, raw.state_file);
  return config;
}

function sourceOf(s: MapSource, folder: string): MapSource {
  if (!('object' in s)) return s;
  return {
    object: resolve(folder, s.object),
    map: s.map,
    ...(s.xdp === undefined ? {} : { xdp: s.xdp }),
    ...(s.tc === undefined ? {} : { tc: { interface: s.tc.interface, direction: s.tc.direction } }),
    ...(s.perf_event === undefined ? {} : { perf_event: perfEventOf(s.perf_event) }),
    ...(s.kaddrs === undefined || s.kaddrs.length === 0 ? {} : { kaddrs: [...s.kaddrs] }),
  };
}

/** Keys in one order, whichever order they were written in: sources compare as JSON (all.yaml's test, reloads). */
function perfEventOf(p: PerfEventSource): PerfEventSource {
  return { event: p.event, ...(p.frequency === undefined ? {} : { frequency: p.frequency }), ...(p.period === undefined ? {} : { period: p.period }) };
}

/** Fixed buckets have no min/max of their own: they span the listed keys. `of` is `from` observed. */
function bucketsOf(written: BucketSpec & { of?: string }): BucketSpec {
  const { of, ...rest } = written;
  const b: BucketSpec = of === undefined ? rest : { ...rest, from: of, observe: true };
  if (b.kind !== 'fixed' || b.values === undefined) return b;
  return { ...b, min: b.values[0], max: b.values[b.values.length - 1] };
}

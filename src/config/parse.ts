/**
 * Config text -> Config: YAML with positions, the schema walk, the rules across keys, then the
 * defaults that depend on other keys. Every problem is collected and thrown as one ConfigErrors.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, YAMLMap, type Document } from 'yaml';
import { ConfigError, ConfigErrors, formatPath } from './errors.js';
import { Locator } from './locate.js';
import { checkRules, type RawConfig } from './rules.js';
import { CONFIG_SCHEMA } from './schema.js';
import type { BucketSpec, Config, MapSource, MapSpec, MetricSpec, OtelSpec, PerfEventSource } from './types.js';
import { Validator } from './validate.js';

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

/**
 * The YAML document of a config file (ours or a web config) with its line counter, or ConfigErrors
 * with a positioned line per YAML problem. After a YAML error the tree is the parser's guess at
 * what was meant; checking it would report problems that are not in the file, so YAML errors are
 * reported alone.
 */
export function parseYaml(text: string, file: string): { doc: Document.Parsed; lines: LineCounter } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  // The first problem only: the parser's later ones follow from it (one bare `u8[4]` inside `{ }` gave
  // 65 lines), and whatever else is wrong shows once it is mended.
  const first = [...doc.errors, ...doc.warnings].sort((a, b) => a.pos[0] - b.pos[0])[0];
  if (first !== undefined) {
    const { line, col } = lines.linePos(first.pos[0]);
    const hint = yamlHint(text, first.pos[0]);
    throw new ConfigErrors([new ConfigError({ file, line, column: col }, '', `invalid YAML: ${first.message.split('\n')[0]}${hint === undefined ? '' : ` (${hint})`}`)]);
  }
  return { doc, lines };
}

/**
 * What was probably meant by the YAML mistake at `offset`, when it is a common one: a field type
 * such as u8[4] written bare inside `{ }` or `[ ]`, where brackets end the value.
 */
function yamlHint(text: string, offset: number): string | undefined {
  const start = text.lastIndexOf('\n', offset - 1) + 1;
  const end = text.indexOf('\n', offset);
  const line = text.slice(start, end < 0 ? undefined : end);
  for (const m of line.matchAll(/(?<!["'\w])[A-Za-z_]\w*\[[^\]\s,{}"']*\]/g)) {
    const at = start + m.index;
    if (offset >= at && offset <= at + m[0].length) return `inside { } or [ ], a value with brackets must be quoted: "${m[0]}"`;
  }
  return undefined;
}

/** Read and parse a config file. */
export function loadConfig(path: string): Config {
  return parseConfig(readConfigText(path), path);
}

/** The text of a config file (ours or a web config), or ConfigErrors with one line saying why not. */
export function readConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new ConfigErrors([new ConfigError({ file: path, line: 0, column: 0 }, '', `cannot read: ${code}`)]);
  }
}

/** The validator's result once it has no problems: what the schema guarantees, before the last defaults. */
interface Complete {
  interval: number;
  state_file?: string;
  state_sync: 'cycle' | 'batch';
  max_series: number;
  inventory: boolean;
  otel?: OtelSpec;
  maps: (Omit<MapSpec, 'interval' | 'metrics'> & { interval?: number; metrics?: (Omit<MetricSpec, 'max_series'> & { max_series?: number })[] })[];
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
    maps: raw.maps.map((m) => ({
      ...m,
      source: sourceOf(m.source, folder),
      interval: m.interval ?? raw.interval,
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

/** Fixed buckets have no min/max of their own: they span the listed keys. */
function bucketsOf(b: BucketSpec): BucketSpec {
  if (b.kind !== 'fixed' || b.values === undefined) return b;
  return { ...b, min: b.values[0], max: b.values[b.values.length - 1] };
}

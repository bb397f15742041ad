import { loadConfig } from '../src/config/parse.js';
import { ConfigError, ConfigErrors, formatPath } from '../src/yaml/errors.js';
import type { Config } from '../src/config/types.js';
import { jobsOf, type MapJob } from '../src/collect/job.js';
import { captureLibbpfOutput } from '../src/bpf/libbpf.js';
import type { PlanProblem } from '../src/aggregate/plan.js';
import type { Family } from '../src/metric/series.js';
import { describeCompat, loadCompat, type CompatRef } from '../src/compat/load.js';
import { renderNative } from '../src/compat/ebpf-exporter.js';

/** A config file of ours, or ebpf_exporter's configs (--config.dir, --config.names). */
export type ConfigRef = string | CompatRef;

function nameOf(ref: ConfigRef): string {
  return typeof ref === 'string' ? ref : describeCompat(ref);
}

/** A command's outcome: lines for stdout and stderr, and the exit code. */
export interface Outcome {
  out: string[];
  err: string[];
  code: number;
}

/** One line per problem, `FILE:LINE:COLUMN: path: message`, pointing at the config key concerned. */
export function problemLines(config: Config, problems: readonly PlanProblem[]): string[] {
  return problems.map((p) => new ConfigError(config.where(p.path), config.pathText?.(p.path) ?? formatPath(p.path), p.message).message);
}

function load(ref: ConfigRef): Config | Outcome {
  try {
    return typeof ref === 'string' ? loadConfig(ref) : loadCompat(ref).config;
  } catch (e) {
    if (e instanceof ConfigErrors) return { out: [], err: e.errors.map((x) => x.message), code: 2 };
    throw e;
  }
}

/**
 * Every job opened; a problem with a source (an object that does not load or attach) said once, at
 * the first job naming it: each job of an object loads it, and would say the same.
 */
function openAll(config: Config, jobs: MapJob[], opts: { checkTargets?: boolean }): string[] {
  const said = new Set<string>();
  const problems = jobs.flatMap((j) => j.open(opts)).filter((p) => {
    if (p.path.at(-1) !== 'source') return true;
    if (said.has(p.message)) return false;
    said.add(p.message);
    return true;
  });
  return problemLines(config, problems);
}

/**
 * `check`: the config parses, its maps resolve and its layouts and metrics fit them, and the
 * programs of the objects it loads have their attach targets (tracepoints, kernel functions,
 * interfaces...) on this host, as `run` will need them.
 */
export function check(ref: ConfigRef): Outcome {
  const file = nameOf(ref);
  const config = load(ref);
  if ('code' in config) return config;
  const jobs = jobsOf(config);
  try {
    const err = openQuietly(config, jobs, { checkTargets: true });
    if (err.length > 0) return { out: [], err, code: 2 };
    return { out: [`${file}: ok (${jobs.length} map${jobs.length === 1 ? '' : 's'})`], err: [], code: 0 };
  } finally {
    for (const j of jobs) j.close();
  }
}

export interface DumpRow {
  map: string;
  metric: string;
  type: Family['type'];
  labels: Readonly<Record<string, string>>;
  value?: number;
  buckets?: { le: number | '+Inf'; count: number }[];
  count?: number;
  sum?: number;
}

/** `dump`: the series the config yields right now. Drain maps are read, never drained, by a dump. */
export function dump(ref: ConfigRef, opts: { map?: string; format: 'json' | 'table' }): Outcome {
  const file = nameOf(ref);
  const config = load(ref);
  if ('code' in config) return config;
  const jobs = jobsOf(config, opts.map);
  if (opts.map !== undefined && jobs.length === 0) {
    return { out: [], err: [`${file}: no map named "${opts.map}"; the config has: ${config.maps.map((m) => m.name).join(', ') || 'none'}`], code: 2 };
  }
  try {
    const err = openQuietly(config, jobs, {});
    if (err.length > 0) return { out: [], err, code: 2 };
    const rows: DumpRow[] = [];
    for (const job of jobs) {
      for (const f of job.read('read').snapshot.families) {
        for (const s of f.series) {
          if ('value' in s) rows.push({ map: job.spec.name, metric: f.name, type: f.type, labels: s.labels, value: s.value });
          else rows.push({ map: job.spec.name, metric: f.name, type: f.type, labels: s.labels, buckets: s.buckets.map((b) => ({ le: b.le === Infinity ? '+Inf' : b.le, count: b.count })), count: s.count, sum: s.sum });
        }
      }
    }
    return { out: [opts.format === 'json' ? JSON.stringify(rows.map(({ map: _map, ...r }) => r), null, 2) : table(rows)], err: [], code: 0 };
  } finally {
    for (const j of jobs) j.close();
  }
}

/**
 * openAll without libbpf's own log lines: what they say of a failure is in the positioned line
 * (`FILE:LINE:COLUMN: ...`), which must be the only kind of line these commands print.
 */
function openQuietly(config: Config, jobs: MapJob[], opts: { checkTargets?: boolean }): string[] {
  return captureLibbpfOutput(() => openAll(config, jobs, opts), { quiet: true }).result;
}

function table(rows: DumpRow[]): string {
  const cells = rows.map((r) => [
    r.metric,
    `{${Object.entries(r.labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}}`,
    r.value !== undefined ? String(r.value) : `count=${r.count} sum=${r.sum} ${r.buckets!.map((b) => `le${b.le}:${b.count}`).join(' ')}`,
  ]);
  const head = ['METRIC', 'LABELS', 'VALUE'];
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  return [head, ...cells].map((c) => c.map((x, i) => (i === 2 ? x : x.padEnd(w[i]))).join('  ')).join('\n');
}

/**
 * `convert`: ebpf_exporter's configs as our YAML, which `check` accepts and which runs the same;
 * what deserves a word is written as comments on top.
 */
export function convert(ref: CompatRef): Outcome {
  try {
    const result = loadCompat(ref);
    const header = [
      `Converted by bpf-map-exporter convert --config.dir ${ref.dir} --config.names ${ref.names}`,
      'from ebpf_exporter\'s format: the same metric names and label values. Object paths are absolute.',
    ];
    return { out: [renderNative(result, header).trimEnd()], err: [], code: 0 };
  } catch (e) {
    if (e instanceof ConfigErrors) return { out: [], err: e.errors.map((x) => x.message), code: 2 };
    throw e;
  }
}

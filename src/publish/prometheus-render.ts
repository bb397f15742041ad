/**
 * Prometheus exposition text from families: text format 0.0.4 and OpenMetrics 1.0.0.
 *
 * Output is deterministic so that two renders of the same data are byte-identical and diffable:
 * families in the order given, labels in name order, series in the code-unit order of their label
 * text (never locale order), histogram buckets in the order the snapshot holds (ascending, +Inf last).
 */
import type { Family, HistogramSeries, ScalarSeries } from '../aggregate/types.js';
import type { ExpositionFormat } from './negotiate.js';

const TWO_53 = 2 ** 53;

/**
 * A sample value. Integers below 2^53 print as plain digits ("123456789", never "1.23456789e+08":
 * counters stay readable and exact). At or above 2^53 a double no longer holds every integer, so the
 * value prints in exponent form ("9.007199254740994e+15", "1e+21"), which says "this is a float".
 * Other values use JavaScript's shortest round-trip form ("0.5", "1e-9"); Go's ParseFloat, which
 * both Prometheus parsers use, reads all of these.
 */
export function formatValue(v: number): string {
  if (Number.isInteger(v)) return Math.abs(v) < TWO_53 ? String(v) : v.toExponential();
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/**
 * Go's strconv.FormatFloat(v, 'g', -1, 64): shortest round-trip digits, exponent form when the
 * decimal exponent is below -4 or at least 6 (Go's choice for the shortest precision), with at
 * least two exponent digits ("1e-06", "1e+21").
 */
export function formatGoFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const exp = v.toExponential(); // shortest round-trip digits, like Go's -1 precision
  const e = exp.indexOf('e');
  const power = Number(exp.slice(e + 1));
  // In -4..5 JavaScript's String() is fixed-point with the same shortest digits as Go's %f branch.
  if (power >= -4 && power < 6) return String(v);
  const digits = exp.slice(e + 2);
  return `${exp.slice(0, e + 2)}${digits.length < 2 ? `0${digits}` : digits}`;
}

/**
 * The `le` label value of a bucket bound. A label value is part of a series' identity, so it must
 * be the same string every Prometheus client writes for that bound, not merely a parseable number:
 * text 0.0.4 writes Go's %g ("1e-06", "0.5", "1"), as client_golang and cloudflare/ebpf_exporter do;
 * OpenMetrics writes its canonical numbers, %g plus ".0" when there is neither a point nor an
 * exponent ("1.0", "100000.0", "1e+06"), as the spec requires for le and quantile. Prometheus 3
 * normalizes text le values to the OpenMetrics form on ingestion, so both agree there.
 * promtool accepts either spelling: it only checks that le parses as a float.
 */
export function formatLe(v: number, format: ExpositionFormat): string {
  const g = formatGoFloat(v);
  if (format === 'text' || !Number.isFinite(v) || /[.e]/.test(g)) return g;
  return `${g}.0`;
}

const NEEDS_LABEL_ESCAPE = /[\\"\n]/;
const NEEDS_HELP_ESCAPE = /[\\\n]/;

function escapeChar(c: string): string {
  return c === '\n' ? '\\n' : `\\${c}`;
}

/** A label value inside double quotes: backslash, double quote and line feed escaped (both formats). */
export function escapeLabelValue(s: string): string {
  return NEEDS_LABEL_ESCAPE.test(s) ? s.replace(/[\\"\n]/g, escapeChar) : s;
}

/**
 * HELP text. Text 0.0.4 escapes only backslash and line feed (its parser rejects any other escape);
 * OpenMetrics' escaped-string also forbids a bare double quote, so it is escaped there.
 */
export function escapeHelp(s: string, format: ExpositionFormat): string {
  if (format === 'text') return NEEDS_HELP_ESCAPE.test(s) ? s.replace(/[\\\n]/g, escapeChar) : s;
  return NEEDS_LABEL_ESCAPE.test(s) ? s.replace(/[\\"\n]/g, escapeChar) : s;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Labelled<S> {
  series: S;
  /** The labels as exposed, `name="value"` pairs in name order without braces; "" when none. */
  body: string;
}

/**
 * Above this many series a family keeps the snapshot's order (the aggregator's, stable from cycle to
 * cycle) instead of being sorted: sorting a million label texts costs seconds of main thread.
 */
export const SORT_LIMIT = 10_000;

/**
 * Label texts by the labels object they were made from. The aggregator hands out the same frozen
 * labels object for a series in every snapshot, so a series' text is built once in its life.
 */
const bodies = new WeakMap<object, string>();

function labelBody(labels: Readonly<Record<string, string>>): string {
  let body = bodies.get(labels);
  if (body !== undefined) return body;
  const names = Object.keys(labels).sort(compareStrings);
  body = '';
  for (let i = 0; i < names.length; i++) body += `${i > 0 ? ',' : ''}${names[i]}="${escapeLabelValue(labels[names[i]])}"`;
  bodies.set(labels, body);
  return body;
}

/**
 * Each series with its label text; families of up to SORT_LIMIT series ordered by that text
 * (code-unit order). The text encodes a label set one-to-one (names sorted, values escaped), so this
 * is a total order on label sets and small outputs do not depend on the order the snapshot lists
 * series or label keys in.
 */
function labelled<S extends { labels: Readonly<Record<string, string>> }>(series: readonly S[]): Labelled<S>[] {
  const items = series.map((s) => ({ series: s, body: labelBody(s.labels) }));
  // Array.prototype.sort is stable: equal texts (which a valid snapshot never has) keep their order.
  return items.length < 2 || items.length > SORT_LIMIT ? items : items.sort((x, y) => compareStrings(x.body, y.body));
}

/**
 * The name in `# TYPE`/`# HELP` and the name of the value samples. OpenMetrics names a counter
 * family without `_total` and its samples with it; text 0.0.4 uses the configured name for both.
 */
export function exposedNames(name: string, type: Family['type'], format: ExpositionFormat): { family: string; sample: string } {
  if (type !== 'counter' || format === 'text') return { family: name, sample: name };
  const family = name.endsWith('_total') ? name.slice(0, -'_total'.length) : name;
  return { family, sample: `${family}_total` };
}

/** The metadata lines: HELP then TYPE in text (every client's order), TYPE then HELP in OpenMetrics (its spec's order). */
export function metadata(family: string, type: string, help: string, format: ExpositionFormat): string {
  const helpLine = `# HELP ${family} ${escapeHelp(help, format)}\n`;
  const typeLine = `# TYPE ${family} ${type}\n`;
  return format === 'text' ? helpLine + typeLine : typeLine + helpLine;
}

function isHistogramSeries(s: ScalarSeries | HistogramSeries): s is HistogramSeries {
  return 'buckets' in s;
}

/** Lines per piece that renderFamilyPieces hands out: small enough to yield to the event loop between. */
const PIECE_LINES = 8192;

/**
 * One family, every line ending in "\n", no `# EOF`, in pieces of a few thousand lines, so that a
 * caller can yield to the event loop between pieces of a family with a million series. A family
 * without series still gets its HELP and TYPE: it tells the reader the metric is configured and read
 * but produced nothing this cycle (an empty map, or every row dropped), and both promtool and the
 * OpenMetrics spec accept it.
 */
export function* renderFamilyPieces(f: Family, format: ExpositionFormat): Generator<string> {
  const { family, sample } = exposedNames(f.name, f.type, format);
  let out = metadata(family, f.type, f.help, format);
  let lines = 0;
  if (f.type !== 'histogram') {
    for (const { series, body } of labelled(f.series as readonly ScalarSeries[])) {
      out += `${sample}${body === '' ? '' : `{${body}}`} ${formatValue(series.value)}\n`;
      if (++lines === PIECE_LINES) {
        yield out;
        out = '';
        lines = 0;
      }
    }
    yield out;
    return;
  }
  // Every series of a family shares its bounds: format each bound once.
  const leText = new Map<number, string>();
  const le = (v: number): string => {
    let t = leText.get(v);
    if (t === undefined) leText.set(v, (t = formatLe(v, format)));
    return t;
  };
  for (const { series, body } of labelled(f.series)) {
    if (!isHistogramSeries(series)) continue; // the aggregator never puts a scalar in a histogram family
    const bucketPrefix = `${sample}_bucket{${body === '' ? '' : `${body},`}le="`;
    const suffix = body === '' ? '' : `{${body}}`;
    let sawInf = false;
    for (const b of series.buckets) {
      sawInf = b.le === Infinity;
      out += `${bucketPrefix}${le(b.le)}"} ${formatValue(b.count)}\n`;
    }
    // Every histogram needs its +Inf bucket (it is what _count repeats); a snapshot always has it
    // last, this only keeps a malformed one from producing an invalid exposition.
    if (!sawInf) out += `${bucketPrefix}+Inf"} ${formatValue(series.count)}\n`;
    out += `${sample}_sum${suffix} ${formatValue(series.sum)}\n`;
    out += `${sample}_count${suffix} ${formatValue(series.count)}\n`;
    lines += series.buckets.length + 2;
    if (lines >= PIECE_LINES) {
      yield out;
      out = '';
      lines = 0;
    }
  }
  yield out;
}

/** One family as one string (see renderFamilyPieces). */
export function renderFamily(f: Family, format: ExpositionFormat): string {
  let out = '';
  for (const piece of renderFamilyPieces(f, format)) out += piece;
  return out;
}

/**
 * A complete exposition of `families` in `format`: text 0.0.4, or OpenMetrics 1.0.0 ending in
 * `# EOF`. Families are rendered in the order given; each family's name must be unique.
 */
export function renderFamilies(families: readonly Family[], format: ExpositionFormat): string {
  let out = '';
  for (const f of families) out += renderFamily(f, format);
  return format === 'openmetrics' ? `${out}# EOF\n` : out;
}

/**
 * Every name a family occupies in either format: its TYPE names and its sample names. Two families
 * whose sets meet would print two `# TYPE` lines for one name, or samples another family claims
 * (a counter foo_total and a gauge foo are both "foo" in OpenMetrics).
 */
export function occupiedNames(name: string, type: string): string[] {
  switch (type) {
    case 'counter': {
      const om = exposedNames(name, 'counter', 'openmetrics');
      return [...new Set([name, om.family, om.sample])];
    }
    case 'histogram':
      return [name, `${name}_bucket`, `${name}_sum`, `${name}_count`];
    case 'summary':
      return [name, `${name}_sum`, `${name}_count`];
    default:
      return [name];
  }
}

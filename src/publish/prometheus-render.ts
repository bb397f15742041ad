/**
 * Prometheus exposition text from families: text format 0.0.4 and OpenMetrics 1.0.0.
 *
 * Output is deterministic so that two renders of the same data are byte-identical and diffable:
 * families in the order given, labels in name order, series in the code-unit order of their label
 * text (never locale order), histogram buckets in the order the snapshot holds (ascending, +Inf last).
 */
import { columnsOf } from '../aggregate/columns.js';
import type { Family, LabelTable, SeriesColumns } from '../metric/series.js';
import { exposedNames, type ExpositionFormat } from '../metric/names.js';
import { arenaFor, LabelArena } from './label-arena.js';
import { ByteWriter } from './byte-writer.js';

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

/**
 * Above this many series a family keeps the snapshot's order (the aggregator's, stable from cycle to
 * cycle) instead of being sorted: sorting a million label texts costs seconds of main thread.
 */
export const SORT_LIMIT = 10_000;

/** The labels as exposed: `name="value"` pairs in name order, without braces; "" when none. */
function labelBody(labels: Readonly<Record<string, string>>): string {
  const names = Object.keys(labels).sort(compareStrings);
  let body = '';
  for (let i = 0; i < names.length; i++) body += `${i > 0 ? ',' : ''}${names[i]}="${escapeLabelValue(labels[names[i]])}"`;
  return body;
}

/** Label text per series, built once in a series' life (both formats write labels alike). */
const bodies = new WeakMap<LabelTable, LabelArena>();
/** Where a label set's text is written before it is copied into its arena. */
const scratch = new ByteWriter(1024);
const writeBody = (labels: Readonly<Record<string, string>>, w: ByteWriter): void => w.utf8(labelBody(labels));

/**
 * Whole line starts (`name{labels} `) per series, by sample name: a scalar line is then one copy,
 * its value and a newline.
 */
const prefixes = new WeakMap<LabelTable, Map<string, LabelArena>>();

function prefixArena(table: LabelTable, sample: string): LabelArena {
  let byName = prefixes.get(table);
  if (byName === undefined) prefixes.set(table, (byName = new Map()));
  let a = byName.get(sample);
  if (a === undefined) {
    byName.set(sample, (a = new LabelArena((labels, w) => {
      const body = labelBody(labels);
      w.utf8(body === '' ? `${sample} ` : `${sample}{${body}} `);
    }, scratch)));
  }
  return a;
}

/** The last order computed per table: a read job's set of series rarely changes between cycles. */
const orders = new WeakMap<LabelTable, { ids: Int32Array; order: Int32Array }>();

function sameIds(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The positions of a family's series in exposition order. Families of up to SORT_LIMIT series are
 * ordered by their label text (code-unit order); the text encodes a label set one-to-one (names
 * sorted, values escaped), so this is a total order on label sets and small outputs do not depend on
 * the order the snapshot lists series in. Larger families keep the snapshot's order.
 */
function exposedOrder(c: SeriesColumns, text: LabelArena): Int32Array {
  const last = orders.get(c.table);
  if (last !== undefined && sameIds(last.ids, c.ids)) return last.order;
  const keys = Array.from(c.ids, (id) => text.text(id));
  // Array.prototype.sort is stable: equal texts (which a valid snapshot never has) keep their order.
  const order = Int32Array.from(keys.keys()).sort((x, y) => compareStrings(keys[x], keys[y]));
  orders.set(c.table, { ids: c.ids, order });
  return order;
}

/**
 * The decimal digits of an integer in 0..2^53 at `pos`; returns the end. In parts below 10^8 so
 * that the arithmetic stays in small integers (a third of the cost of dividing doubles).
 */
function writeDigits(buf: Buffer, pos: number, v: number): number {
  if (v >= 1e8) {
    const hi = Math.floor(v / 1e8);
    let lo = v - hi * 1e8;
    pos = writeDigits(buf, pos, hi);
    for (let i = pos + 7; i >= pos; i--) {
      const q = (lo / 10) | 0;
      buf[i] = 48 + lo - q * 10;
      lo = q;
    }
    return pos + 8;
  }
  let x = v | 0;
  let digits = 1;
  for (let t = x; t >= 10; t = (t / 10) | 0) digits++;
  for (let i = pos + digits - 1; i >= pos; i--) {
    const q = (x / 10) | 0;
    buf[i] = 48 + x - q * 10;
    x = q;
  }
  return pos + digits;
}

/** The exposition's writer: bytes, and sample values as formatValue spells them. */
export class TextWriter extends ByteWriter {
  constructor(size = 64 * 1024) {
    super(Math.max(1024, size));
  }

  /** A sample value as formatValue writes it; integers in 0..2^53 without a string. */
  value(v: number): void {
    if (!(v >= 0 && v < TWO_53 && Number.isInteger(v))) {
      this.utf8(formatValue(v));
      return;
    }
    this.reserve(16);
    this.pos = writeDigits(this.buf, this.pos, v);
  }
}

const ascii = (s: string): Buffer => Buffer.from(s, 'utf8');
const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const COMMA = 0x2c;
const SPACE = 0x20;
/** The longest value formatValue writes ("-1.7976931348623157e+308"). */
const MAX_VALUE_BYTES = 24;
const NEWLINE = 0x0a;
/** A value below 2^53 (16 digits) and its newline, with room to spare: the size a line's value is planned at. */
const MAX_INTEGER_LINE = 20;

/** The metadata lines: HELP then TYPE in text (every client's order), TYPE then HELP in OpenMetrics (its spec's order). */
export function metadata(family: string, type: string, help: string, format: ExpositionFormat): string {
  const helpLine = `# HELP ${family} ${escapeHelp(help, format)}\n`;
  const typeLine = `# TYPE ${family} ${type}\n`;
  return format === 'text' ? helpLine + typeLine : typeLine + helpLine;
}

/**
 * Series per slice that writeFamily yields after: small enough that a scrape or /healthz waits at
 * most a few ms behind a slice (a slice of 4,096 flow series takes ~1-2 ms once their line starts
 * exist, ~5 ms in the cycle that encodes them).
 */
const SLICE_SERIES = 4096;

/**
 * One family, every line ending in "\n", no `# EOF`, written from its columns. It yields after every
 * few thousand series, so that a caller can give the event loop a turn inside a family of a million
 * series. A family without series still gets its HELP and TYPE: it tells the reader the metric is
 * configured and read but produced nothing this cycle (an empty map, or every row dropped), and both
 * promtool and the OpenMetrics spec accept it.
 */
export function* writeFamily(f: Family, format: ExpositionFormat, w: TextWriter): Generator<void> {
  const { family, sample } = exposedNames(f.name, f.type, format);
  w.utf8(metadata(family, f.type, f.help, format));
  if (f.type === 'histogram' && f.columns === undefined) {
    writeHistogramObjects(f, sample, format, w);
    return;
  }
  const c = columnsOf(f);
  const n = c.ids.length;
  const order = n < 2 || n > SORT_LIMIT ? undefined : exposedOrder(c, arenaFor(bodies, c.table, writeBody, scratch));
  if (f.type !== 'histogram' || c.bounds === undefined || c.buckets === undefined || c.sums === undefined) {
    const prefix = prefixArena(c.table, sample);
    const { ids, values } = c;
    // Line starts of new series are made slice by slice: the first cycle of a million series would
    // otherwise encode them all in one turn of the event loop. Ids ascend unless sorted (small families).
    if (order !== undefined) prefix.fill(c.table);
    else if (n > 0) prefix.fill(c.table, ids[Math.min(SLICE_SERIES, n) - 1] + 1);
    // A writer not sized for this family (a first render) gets room for every line at once, rather
    // than doubling a dozen times and leaving each old buffer behind.
    if (w.buf.length - w.pos < n * prefix.meanLength()) w.reserve(Math.ceil(n * (prefix.meanLength() + MAX_INTEGER_LINE)));
    for (let k = 0; k < n; k++) {
      if (order === undefined && k % SLICE_SERIES === 0) prefix.fill(c.table, ids[Math.min(k + SLICE_SERIES, n) - 1] + 1);
      const i = order === undefined ? k : order[k];
      const id = ids[i];
      w.reserve(prefix.length(id) + MAX_VALUE_BYTES + 1);
      w.pos += prefix.copy(id, w.buf, w.pos);
      w.value(values[i]);
      w.buf[w.pos++] = NEWLINE;
      if ((k + 1) % SLICE_SERIES === 0) yield;
    }
    return;
  }
  const text = arenaFor(bodies, c.table, writeBody, scratch);
  const { bounds, buckets, sums } = c;
  const width = bounds.length + 1;
  // Every series of a family shares its bounds: each `le="..."} ` is encoded once.
  const le = [...bounds, Infinity].map((b) => ascii(`le="${formatLe(b, format)}"} `));
  const bucketName = ascii(`${sample}_bucket{`);
  const sumName = ascii(`${sample}_sum`);
  const countName = ascii(`${sample}_count`);
  for (let k = 0; k < n; k++) {
    const i = order === undefined ? k : order[k];
    const id = c.ids[i];
    const len = text.length(id);
    let cum = 0;
    for (let b = 0; b < width; b++) {
      cum += buckets[i * width + b];
      w.reserve(bucketName.length + len + 1);
      w.bytes(bucketName);
      if (len > 0) {
        w.pos += text.copy(id, w.buf, w.pos);
        w.byte(COMMA);
      }
      w.bytes(le[b]);
      w.value(cum);
      w.byte(NEWLINE);
    }
    for (const [name, v] of [[sumName, sums[i]], [countName, c.values[i]]] as const) {
      w.reserve(name.length + len + 3);
      w.bytes(name);
      if (len > 0) {
        w.byte(OPEN);
        w.pos += text.copy(id, w.buf, w.pos);
        w.byte(CLOSE);
      }
      w.byte(SPACE);
      w.value(v);
      w.byte(NEWLINE);
    }
    if ((k + 1) % SLICE_SERIES === 0) yield;
  }
}

/**
 * A histogram family written as objects (the self-metrics' histograms, tests): each series with its
 * own buckets, sorted like columns. An aggregator's families always come as columns.
 */
function writeHistogramObjects(f: Family, sample: string, format: ExpositionFormat, w: TextWriter): void {
  const items = f.series.map((s) => ({ s, body: labelBody(s.labels) }));
  if (items.length <= SORT_LIMIT) items.sort((x, y) => compareStrings(x.body, y.body));
  for (const { s, body } of items) {
    if (!('buckets' in s)) continue; // the aggregator never puts a scalar in a histogram family
    const bucketPrefix = `${sample}_bucket{${body === '' ? '' : `${body},`}le="`;
    const suffix = body === '' ? '' : `{${body}}`;
    let sawInf = false;
    for (const b of s.buckets) {
      sawInf = b.le === Infinity;
      w.utf8(`${bucketPrefix}${formatLe(b.le, format)}"} ${formatValue(b.count)}\n`);
    }
    // Every histogram needs its +Inf bucket (it is what _count repeats); a snapshot always has it
    // last, this only keeps a malformed one from producing an invalid exposition.
    if (!sawInf) w.utf8(`${bucketPrefix}+Inf"} ${formatValue(s.count)}\n`);
    w.utf8(`${sample}_sum${suffix} ${formatValue(s.sum)}\n${sample}_count${suffix} ${formatValue(s.count)}\n`);
  }
}

/** One family as one string (see writeFamily). */
export function renderFamily(f: Family, format: ExpositionFormat): string {
  const w = new TextWriter();
  const slices = writeFamily(f, format, w);
  while (slices.next().done !== true);
  return w.result().toString('utf8');
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

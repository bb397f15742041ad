import { describe, expect, it } from 'vitest';
import { type Family, LabelTable } from '../../../src/metric/series.js';
import { occupiedNames } from '../../../src/metric/names.js';
import { columnFamily, columnsOf } from '../../../src/aggregate/columns.js';
import { formatLe, formatValue, renderFamilies, renderFamily } from '../../../src/publish/prometheus.js';
import { escapeHelp, escapeLabelValue, formatGoFloat } from '../../../src/publish/prometheus-render.js';
import { richFamilies, WEIRD } from './exposition-sample.js';
import { lintOpenMetrics } from './openmetrics-lint.js';

const lines = (...l: string[]): string => l.map((x) => `${x}\n`).join('');

describe('formatValue', () => {
  it('prints integers below 2^53 as plain digits', () => {
    expect(formatValue(0)).toBe('0');
    expect(formatValue(-0)).toBe('0');
    expect(formatValue(5)).toBe('5');
    expect(formatValue(-17)).toBe('-17');
    expect(formatValue(123456789)).toBe('123456789');
    expect(formatValue(2 ** 53 - 1)).toBe('9007199254740991');
  });

  it('prints integers from 2^53 up in exponent form, shortest round-trip digits', () => {
    expect(formatValue(2 ** 53)).toBe('9.007199254740992e+15');
    expect(formatValue(2 ** 53 + 2)).toBe('9.007199254740994e+15');
    expect(formatValue(1e21)).toBe('1e+21');
    expect(formatValue(-1e300)).toBe('-1e+300');
    expect(Number(formatValue(2 ** 64))).toBe(2 ** 64);
  });

  it('prints fractions in shortest round-trip form', () => {
    expect(formatValue(0.5)).toBe('0.5');
    expect(formatValue(-42.5)).toBe('-42.5');
    expect(formatValue(1e-9)).toBe('1e-9');
    expect(formatValue(0.1 + 0.2)).toBe('0.30000000000000004');
    expect(formatValue(Number.MIN_VALUE)).toBe('5e-324');
  });

  it('spells the non-real values as Prometheus does', () => {
    expect(formatValue(NaN)).toBe('NaN');
    expect(formatValue(Infinity)).toBe('+Inf');
    expect(formatValue(-Infinity)).toBe('-Inf');
  });
});

describe('le formatting', () => {
  it("follows Go's strconv.FormatFloat(v, 'g', -1, 64)", () => {
    const cases: [number, string][] = [
      [0, '0'], [1, '1'], [0.5, '0.5'], [0.001, '0.001'], [0.0001, '0.0001'], [0.00001, '1e-05'], [1e-6, '1e-06'],
      [1e-10, '1e-10'], [100000, '100000'], [123456, '123456'], [1e6, '1e+06'], [1234567, '1.234567e+06'],
      [1e21, '1e+21'], [1.1e23, '1.1e+23'], [2.5e-300, '2.5e-300'], [-0.25, '-0.25'], [-1e-7, '-1e-07'],
    ];
    for (const [v, go] of cases) expect(formatGoFloat(v), String(v)).toBe(go);
  });

  it('writes %g in text and OpenMetrics canonical numbers (a ".0" on bare integers) in OpenMetrics', () => {
    // The spec's own examples of canonical numbers.
    const om: [number, string][] = [
      [0, '0.0'], [0.001, '0.001'], [0.01, '0.01'], [0.95, '0.95'], [1, '1.0'], [1.7, '1.7'], [10, '10.0'], [1e-10, '1e-10'],
      [1e-9, '1e-09'], [1e-5, '1e-05'], [0.0001, '0.0001'], [100000, '100000.0'], [1e6, '1e+06'], [1e10, '1e+10'], [1.1e23, '1.1e+23'],
    ];
    for (const [v, s] of om) expect(formatLe(v, 'openmetrics'), String(v)).toBe(s);
    expect(formatLe(1, 'text')).toBe('1');
    expect(formatLe(100000, 'text')).toBe('100000');
    expect(formatLe(Infinity, 'text')).toBe('+Inf');
    expect(formatLe(Infinity, 'openmetrics')).toBe('+Inf');
  });
});

describe('escaping', () => {
  it('escapes backslash, double quote and newline in label values', () => {
    expect(escapeLabelValue(WEIRD)).toBe('a\\"b\\\\c\\nd');
    expect(escapeLabelValue('plain')).toBe('plain');
  });

  it('escapes HELP per format: no quote escape in text, which its parser would reject', () => {
    expect(escapeHelp(WEIRD, 'text')).toBe('a"b\\\\c\\nd');
    expect(escapeHelp(WEIRD, 'openmetrics')).toBe('a\\"b\\\\c\\nd');
  });
});

const TEXT = lines(
  '# HELP syscalls_total System calls by process and syscall',
  '# TYPE syscalls_total counter',
  'syscalls_total{pid="1",syscall=""} 1e+21',
  'syscalls_total{pid="10",syscall="openat"} 123456789',
  'syscalls_total{pid="10",syscall="read"} 5',
  'syscalls_total{pid="9",syscall="a\\"b\\\\c\\nd"} 9.007199254740994e+15',
  '# HELP syscall_time_seconds_total Time spent in system calls; a backslash \\\\ and a\\nnewline',
  '# TYPE syscall_time_seconds_total counter',
  'syscall_time_seconds_total 1e-9',
  '# HELP queue_depth Odd values',
  '# TYPE queue_depth gauge',
  'queue_depth{q="inf"} +Inf',
  'queue_depth{q="nan"} NaN',
  'queue_depth{q="neg"} -42.5',
  'queue_depth{q="neg_inf"} -Inf',
  'queue_depth{q="zero"} 0',
  '# HELP empty_total A counter with no series yet',
  '# TYPE empty_total counter',
  '# HELP empty_gauge A gauge with no series yet',
  '# TYPE empty_gauge gauge',
  '# HELP empty_seconds A histogram with no series yet',
  '# TYPE empty_seconds histogram',
  '# HELP io_latency_seconds IO latency',
  '# TYPE io_latency_seconds histogram',
  'io_latency_seconds_bucket{le="1"} 0',
  'io_latency_seconds_bucket{le="+Inf"} 0',
  'io_latency_seconds_sum 0',
  'io_latency_seconds_count 0',
  'io_latency_seconds_bucket{op="a\\"b\\\\c\\nd",le="0.001"} 7',
  'io_latency_seconds_bucket{op="a\\"b\\\\c\\nd",le="+Inf"} 9',
  'io_latency_seconds_sum{op="a\\"b\\\\c\\nd"} 0.1',
  'io_latency_seconds_count{op="a\\"b\\\\c\\nd"} 9',
  'io_latency_seconds_bucket{op="write",le="1e-06"} 1',
  'io_latency_seconds_bucket{op="write",le="0.5"} 2',
  'io_latency_seconds_bucket{op="write",le="1"} 3',
  'io_latency_seconds_bucket{op="write",le="1e+06"} 3',
  'io_latency_seconds_bucket{op="write",le="+Inf"} 4',
  'io_latency_seconds_sum{op="write"} 2.5',
  'io_latency_seconds_count{op="write"} 4',
);

const OPENMETRICS = lines(
  '# TYPE syscalls counter',
  '# HELP syscalls System calls by process and syscall',
  'syscalls_total{pid="1",syscall=""} 1e+21',
  'syscalls_total{pid="10",syscall="openat"} 123456789',
  'syscalls_total{pid="10",syscall="read"} 5',
  'syscalls_total{pid="9",syscall="a\\"b\\\\c\\nd"} 9.007199254740994e+15',
  '# TYPE syscall_time_seconds counter',
  '# HELP syscall_time_seconds Time spent in system calls; a backslash \\\\ and a\\nnewline',
  'syscall_time_seconds_total 1e-9',
  '# TYPE queue_depth gauge',
  '# HELP queue_depth Odd values',
  'queue_depth{q="inf"} +Inf',
  'queue_depth{q="nan"} NaN',
  'queue_depth{q="neg"} -42.5',
  'queue_depth{q="neg_inf"} -Inf',
  'queue_depth{q="zero"} 0',
  '# TYPE empty counter',
  '# HELP empty A counter with no series yet',
  '# TYPE empty_gauge gauge',
  '# HELP empty_gauge A gauge with no series yet',
  '# TYPE empty_seconds histogram',
  '# HELP empty_seconds A histogram with no series yet',
  '# TYPE io_latency_seconds histogram',
  '# HELP io_latency_seconds IO latency',
  'io_latency_seconds_bucket{le="1.0"} 0',
  'io_latency_seconds_bucket{le="+Inf"} 0',
  'io_latency_seconds_sum 0',
  'io_latency_seconds_count 0',
  'io_latency_seconds_bucket{op="a\\"b\\\\c\\nd",le="0.001"} 7',
  'io_latency_seconds_bucket{op="a\\"b\\\\c\\nd",le="+Inf"} 9',
  'io_latency_seconds_sum{op="a\\"b\\\\c\\nd"} 0.1',
  'io_latency_seconds_count{op="a\\"b\\\\c\\nd"} 9',
  'io_latency_seconds_bucket{op="write",le="1e-06"} 1',
  'io_latency_seconds_bucket{op="write",le="0.5"} 2',
  'io_latency_seconds_bucket{op="write",le="1.0"} 3',
  'io_latency_seconds_bucket{op="write",le="1e+06"} 3',
  'io_latency_seconds_bucket{op="write",le="+Inf"} 4',
  'io_latency_seconds_sum{op="write"} 2.5',
  'io_latency_seconds_count{op="write"} 4',
  '# EOF',
);

describe('renderFamilies', () => {
  it('renders text 0.0.4 exactly', () => {
    expect(renderFamilies(richFamilies(), 'text')).toBe(TEXT);
  });

  it('renders OpenMetrics 1.0.0 exactly', () => {
    expect(renderFamilies(richFamilies(), 'openmetrics')).toBe(OPENMETRICS);
  });

  it('escapes a weird HELP per format', () => {
    const f: Family[] = [{ name: 'g', type: 'gauge', help: WEIRD, series: [] }];
    expect(renderFamilies(f, 'text')).toBe(lines('# HELP g a"b\\\\c\\nd', '# TYPE g gauge'));
    expect(renderFamilies(f, 'openmetrics')).toBe(lines('# TYPE g gauge', '# HELP g a\\"b\\\\c\\nd', '# EOF'));
  });

  it('is deterministic whatever the order of series and of label keys', () => {
    const shuffled = richFamilies().map((f) => ({
      ...f,
      series: [...f.series].reverse().map((s) => ({ ...s, labels: Object.fromEntries(Object.entries(s.labels).reverse()) })),
    }));
    expect(renderFamilies(shuffled, 'text')).toBe(TEXT);
    expect(renderFamilies(shuffled, 'openmetrics')).toBe(OPENMETRICS);
  });

  it('orders series by their label text: a shorter set first, then code-unit order', () => {
    const f: Family = {
      name: 'g',
      type: 'gauge',
      help: 'h',
      series: [
        { labels: { b: '1' }, value: 1 },
        { labels: { a: '2' }, value: 2 },
        { labels: { a: '1', b: '0' }, value: 3 },
        { labels: { a: '1' }, value: 4 },
        { labels: {}, value: 5 },
        { labels: { a: 'B' }, value: 6 },
        { labels: { a: 'a' }, value: 7 },
      ],
    };
    expect(renderFamilies([f], 'text')).toBe(
      lines('# HELP g h', '# TYPE g gauge', 'g 5', 'g{a="1"} 4', 'g{a="1",b="0"} 3', 'g{a="2"} 2', 'g{a="B"} 6', 'g{a="a"} 7', 'g{b="1"} 1'),
    );
  });

  it('keeps a counter name without _total usable in OpenMetrics', () => {
    const f: Family[] = [{ name: 'odd', type: 'counter', help: 'h', series: [{ labels: {}, value: 1 }] }];
    expect(renderFamilies(f, 'text')).toBe(lines('# HELP odd h', '# TYPE odd counter', 'odd 1'));
    expect(renderFamilies(f, 'openmetrics')).toBe(lines('# TYPE odd counter', '# HELP odd h', 'odd_total 1', '# EOF'));
  });

  it('adds the +Inf bucket a malformed histogram lacks', () => {
    const f: Family[] = [{ name: 'h', type: 'histogram', help: 'x', series: [{ labels: {}, buckets: [{ le: 1, count: 2 }], count: 3, sum: 4 }] }];
    expect(renderFamilies(f, 'text')).toBe(
      lines('# HELP h x', '# TYPE h histogram', 'h_bucket{le="1"} 2', 'h_bucket{le="+Inf"} 3', 'h_sum 4', 'h_count 3'),
    );
  });

  it('renders nothing but # EOF for no families in OpenMetrics', () => {
    expect(renderFamilies([], 'text')).toBe('');
    expect(renderFamilies([], 'openmetrics')).toBe('# EOF\n');
  });
});

describe('occupiedNames', () => {
  it('lists the TYPE and sample names of both formats', () => {
    expect(occupiedNames('a_total', 'counter')).toEqual(['a_total', 'a']);
    expect(occupiedNames('a', 'counter')).toEqual(['a', 'a_total']);
    expect(occupiedNames('h', 'histogram')).toEqual(['h', 'h_bucket', 'h_sum', 'h_count']);
    expect(occupiedNames('g', 'gauge')).toEqual(['g']);
  });
});

describe('lintOpenMetrics (the test helper that checks what promtool lets pass)', () => {
  it('accepts our OpenMetrics and catches what the spec forbids', () => {
    expect(lintOpenMetrics(OPENMETRICS)).toEqual([]);
    expect(lintOpenMetrics(lines('# TYPE c counter', 'c 1', '# EOF'))).toEqual(['line 2: sample c does not belong to counter family c']);
    expect(lintOpenMetrics(lines('# TYPE g gauge', '# TYPE g gauge', '# EOF'))).toEqual(['line 2: second TYPE for g']);
    expect(lintOpenMetrics(lines('# TYPE g gauge', '', '# EOF'))).toEqual(['line 2: blank line']);
    expect(lintOpenMetrics(lines('# TYPE h histogram', 'h_bucket{le="1"} 1', '# EOF'))).toEqual([
      'line 2: le missing or not canonical: h_bucket{le="1"} 1',
    ]);
    expect(lintOpenMetrics(lines('# HELP g a "quote"', '# EOF'))).toEqual(['line 1: bad escape in HELP']);
    expect(lintOpenMetrics(lines('# TYPE g gauge', 'g 1', '# TYPE f gauge', 'g 2', '# EOF'))).toEqual([
      'line 4: sample g does not belong to gauge family f',
      'line 4: duplicate sample g 2',
    ]);
    expect(lintOpenMetrics(lines('# TYPE g gauge', 'g 1', '# EOF', '# EOF'))).toEqual(['line 3: # EOF before the end']);
    expect(lintOpenMetrics('# TYPE g gauge\n')).toEqual(['does not end with "# EOF\\n"']);
  });
});

describe('columns', () => {
  const values = [0, -0, 1, 9, 10, 99, 100, 12345678, 99_999_999, 100_000_000, 100_000_001, 1_000_000_007, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1, 2 ** 53, 1e21, 0.5, -3, 1e-9, NaN, Infinity, -Infinity];

  it('writes every value of a column family exactly as formatValue spells it', () => {
    const table = new LabelTable();
    const ids = Int32Array.from(values, (_, i) => table.add({ i: String(i).padStart(2, '0') }));
    const f = columnFamily({ name: 'v', type: 'gauge', help: 'h' }, { table, ids, values: Float64Array.from(values) });
    const lines = renderFamily(f, 'text').split('\n').slice(2, -1);
    expect(lines).toEqual(values.map((v, i) => `v{i="${String(i).padStart(2, '0')}"} ${formatValue(v)}`));
  });

  it('renders a family from columns byte for byte as the same series written as objects', () => {
    const rich = richFamilies();
    for (const f of rich) {
      const c = columnsOf(f);
      if (f.type === 'histogram' && new Set(f.series.map((s) => JSON.stringify('buckets' in s ? s.buckets.map((b) => b.le) : []))).size > 1) continue;
      const fromColumns = columnFamily(f, c);
      for (const format of ['text', 'openmetrics'] as const) expect(renderFamily(fromColumns, format)).toBe(renderFamily(f, format));
    }
  });

  it('keeps the label text of a series when only its value changes, and adds new series', () => {
    const table = new LabelTable();
    table.add({ a: 'x' });
    const one = columnFamily({ name: 'c_total', type: 'counter', help: 'h' }, { table, ids: Int32Array.of(0), values: Float64Array.of(1) });
    expect(renderFamily(one, 'openmetrics')).toContain('c_total{a="x"} 1\n');
    table.add({ a: 'w"\n' });
    const two = columnFamily({ name: 'c_total', type: 'counter', help: 'h' }, { table, ids: Int32Array.of(0, 1), values: Float64Array.of(2, 3) });
    expect(renderFamily(two, 'text').split('\n').slice(2)).toEqual(['c_total{a="w\\"\\n"} 3', 'c_total{a="x"} 2', '']);
  });
});

/**
 * A strict structural check of an OpenMetrics 1.0.0 text document, for tests. promtool's OpenMetrics
 * parser (Prometheus 2.42) checks the syntax but accepts duplicate TYPE lines, counters without
 * _total and bad escapes; this checks those spec rules. Returns the problems, one line each.
 */
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const ESCAPED = /^(?:[^\\"\n]|\\[\\"n])*$/;
// Canonical le: %g with a point or an exponent, or +Inf.
const CANONICAL_LE = /^(?:\+Inf|-?\d+\.\d+|-?\d+(?:\.\d+)?e[+-]\d{2,})$/;
const NUMBER = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?|[+-]Inf|NaN)$/;

interface Sample {
  name: string;
  labels: [string, string][];
}

function parseSample(line: string): Sample | string {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
  if (m === null) return `malformed sample line: ${line}`;
  if (!NUMBER.test(m[3])) return `bad value: ${line}`;
  const labels: [string, string][] = [];
  if (m[2] !== undefined && m[2] !== '{}') {
    const body = m[2].slice(1, -1);
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^\\"]|\\.)*)"(,|$)/y;
    let at = 0;
    while (at < body.length) {
      re.lastIndex = at;
      const l = re.exec(body);
      if (l === null) return `malformed labels: ${line}`;
      if (!ESCAPED.test(l[2])) return `bad escape in label value: ${line}`;
      labels.push([l[1], l[2]]);
      at = re.lastIndex;
    }
  }
  return { name: m[1], labels };
}

const SUFFIXES: Record<string, string[]> = {
  counter: ['_total'],
  gauge: [''],
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
  unknown: [''],
};

export function lintOpenMetrics(doc: string): string[] {
  const problems: string[] = [];
  if (!doc.endsWith('# EOF\n')) problems.push('does not end with "# EOF\\n"');
  const lines = doc.split('\n');
  lines.pop(); // after the final \n
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const closed = new Set<string>();
  let current: string | undefined;
  let currentType = 'unknown';
  const seenSeries = new Set<string>();
  lines.forEach((line, i) => {
    const at = `line ${i + 1}`;
    if (line === '# EOF') {
      if (i !== lines.length - 1) problems.push(`${at}: # EOF before the end`);
      return;
    }
    if (line === '') {
      problems.push(`${at}: blank line`);
      return;
    }
    if (line.startsWith('#')) {
      const m = /^# (TYPE|HELP|UNIT) (\S+) ?(.*)$/.exec(line);
      if (m === null) {
        problems.push(`${at}: a comment other than TYPE/HELP/UNIT/EOF: ${line}`);
        return;
      }
      const [, kind, name, rest] = m;
      if (!NAME.test(name)) problems.push(`${at}: bad family name ${name}`);
      if (name !== current) {
        if (closed.has(name) || types.has(name) || helps.has(name)) problems.push(`${at}: family ${name} interleaved or repeated`);
        if (current !== undefined) closed.add(current);
        current = name;
        currentType = 'unknown';
      }
      if (kind === 'TYPE') {
        if (types.has(name)) problems.push(`${at}: second TYPE for ${name}`);
        types.set(name, rest);
        currentType = rest;
      } else if (kind === 'HELP') {
        if (helps.has(name)) problems.push(`${at}: second HELP for ${name}`);
        helps.add(name);
        if (!ESCAPED.test(rest)) problems.push(`${at}: bad escape in HELP`);
      }
      return;
    }
    const s = parseSample(line);
    if (typeof s === 'string') {
      problems.push(`${at}: ${s}`);
      return;
    }
    const family = current ?? '';
    const suffix = s.name.startsWith(family) ? s.name.slice(family.length) : undefined;
    if (suffix === undefined || !(SUFFIXES[currentType] ?? ['']).includes(suffix)) {
      problems.push(`${at}: sample ${s.name} does not belong to ${currentType} family ${family}`);
    }
    if (currentType === 'histogram' && suffix === '_bucket') {
      const le = s.labels.find(([k]) => k === 'le');
      if (le === undefined || !CANONICAL_LE.test(le[1])) problems.push(`${at}: le missing or not canonical: ${line}`);
    }
    const key = `${s.name}${JSON.stringify(s.labels.slice().sort())}`;
    if (seenSeries.has(key)) problems.push(`${at}: duplicate sample ${line}`);
    seenSeries.add(key);
  });
  return problems;
}

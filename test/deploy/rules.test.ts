/**
 * The PrometheusRule and the Grafana dashboard: promtool checks the rules and fires every alert on
 * synthetic series (test/deploy/rules.promtest.yaml); every metric the rules and the dashboard
 * query is one the exporter declares (the live check against a running exporter is in
 * exporter-metrics.test.ts).
 */
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { MAP_TYPE_NAMES, MapType, isArrayLike } from '../../src/bpf/map-types.js';
import { metricNames, render, root, type K8sObject } from './support.js';

interface Rule { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface PrometheusRule extends K8sObject { spec: { groups: { name: string; rules: Rule[] }[] } }
interface Panel { type: string; id: number; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets?: { expr: string; refId: string }[]; datasource?: { uid: string } }

const PROMTOOL = '/usr/bin/promtool';
const rule = render('.').find((o) => o.kind === 'PrometheusRule') as PrometheusRule;
const rules = rule.spec.groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(readFileSync(join(root, 'deploy/grafana/bpf-map-exporter.json'), 'utf8')) as {
  title: string; uid: string; panels: Panel[]; templating: { list: { name: string; type: string }[] };
};
const dashboardExprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

/** Names the exporter declares (self-metrics and the inventory of maps and programs), read from the source that registers them. */
const declared = new Set([...readFileSync(join(root, 'src/publish/self-metrics.ts'), 'utf8').matchAll(/'((?:bpf_map_exporter|bpf_map|bpf_program)_[a-z_]+)'/g)].map((m) => m[1]));

describe('the PrometheusRule', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bme-rules-'));
    writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: rule.spec.groups }));
    copyFileSync(join(root, 'test/deploy/rules.promtest.yaml'), join(dir, 'rules.promtest.yaml'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has the alerts the deployment documents, each with a severity, a summary and a description', () => {
    expect(rules.map((r) => r.alert)).toEqual([
      'BPFMapNearlyFull', 'BPFMapExporterMapDown', 'BPFMapExporterMapReadErrors', 'BPFMapExporterInventoryFailing',
      'BPFMapExporterCheckpointFailing', 'BPFMapExporterSeriesDropped', 'BPFMapExporterRingBufferFull', 'BPFMapExporterSpansDropped',
      'BPFMapExporterDown',
    ]);
    const doc = readFileSync(join(root, 'docs/deployment.md'), 'utf8');
    for (const r of rules) {
      expect(['critical', 'warning', 'info'], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.description, r.alert).toBeTruthy();
      expect(r.for, r.alert).toMatch(/^\d+m$/);
      expect(doc, `docs/deployment.md names ${r.alert}`).toContain(`| ${r.alert} |`);
    }
  });

  it('queries only metrics the exporter declares (and Prometheus\'s own up)', () => {
    const used = new Set(rules.flatMap((r) => metricNames(r.expr)));
    expect([...used].sort()).toEqual([
      'bpf_map_exporter_checkpoint_up', 'bpf_map_exporter_inventory_up', 'bpf_map_exporter_map_read_errors_total',
      'bpf_map_exporter_map_up', 'bpf_map_exporter_ringbuf_full_total', 'bpf_map_exporter_series_dropped_total',
      'bpf_map_exporter_spans_total', 'bpf_map_fill_ratio', 'up',
    ]);
    for (const m of used) if (m !== 'up') expect(declared, m).toContain(m);
  });

  it('leaves out exactly the array-like map types, which are always full', () => {
    const full = rules.find((r) => r.alert === 'BPFMapNearlyFull')!.expr;
    const excluded = /type!~"([^"]+)"/.exec(full)![1].split('|').sort();
    const arrayLike = MAP_TYPE_NAMES.filter((n) => isArrayLike(MapType[n])).slice().sort();
    expect(excluded).toEqual(arrayLike);
  });

  it.runIf(existsSync(PROMTOOL))('passes promtool check rules', () => {
    const r = spawnSync(PROMTOOL, ['check', 'rules', join(dir, 'rules.yaml')], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it.runIf(existsSync(PROMTOOL))('fires every alert in promtool test rules, not before its for:, and only on the series meant', () => {
    const tests = readFileSync(join(dir, 'rules.promtest.yaml'), 'utf8');
    // Every alert has a case in the unit tests.
    for (const r of rules) expect(tests, r.alert).toContain(`alertname: ${r.alert}\n        exp_alerts:\n          - exp_labels`);
    const r = spawnSync(PROMTOOL, ['test', 'rules', join(dir, 'rules.promtest.yaml')], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
  });
  if (!existsSync(PROMTOOL)) console.warn(`SKIPPING promtool checks of the rules: ${PROMTOOL} is missing (scripts/setup.sh installs it)`);
});

describe('the Grafana dashboard', () => {
  it('parses, with a data source variable, a node filter, unique panel ids and panels inside the 24-column grid', () => {
    expect(dashboard.uid).toBe('bpf-map-exporter');
    expect(dashboard.templating.list.map((v) => [v.name, v.type])).toEqual([['datasource', 'datasource'], ['node', 'query']]);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type !== 'row') {
        expect(p.datasource?.uid, p.title).toBe('${datasource}');
        expect(p.targets?.length, p.title).toBeGreaterThan(0);
      }
    }
    expect(dashboardExprs.length).toBeGreaterThan(20);
  });

  it('queries only metrics the exporter declares (and Prometheus\'s own up), and covers the self-metrics and the inventory', () => {
    const used = new Set(dashboardExprs.flatMap((e) => metricNames(e.expr)));
    for (const m of used) if (m !== 'up') expect(declared, m).toContain(m);
    // Every declared metric but the error counter of the inventory (whose gauge is shown) is on the dashboard.
    const missing = [...declared].filter((m) => !used.has(m));
    expect(missing).toEqual(['bpf_map_exporter_rows_dropped_total', 'bpf_map_exporter_inventory_errors_total']);
    // The program inventory and the exporter's own programs are declared, and on it.
    for (const m of ['bpf_program_info', 'bpf_program_run_seconds_total', 'bpf_program_runs_total', 'bpf_program_recursion_misses_total', 'bpf_map_exporter_program_attached', 'bpf_map_exporter_program_run_seconds_total', 'bpf_map_exporter_program_runs_total', 'bpf_map_exporter_program_recursion_misses_total']) {
      expect(declared, m).toContain(m);
      expect(used, m).toContain(m);
    }
  });

  it('every query is valid PromQL to promtool (each as a recording rule)', () => {
    if (!existsSync(PROMTOOL)) return;
    const dir = mkdtempSync(join(tmpdir(), 'bme-dash-'));
    try {
      // Grafana's variables replaced by what they stand for.
      const exprs = dashboardExprs.map((e) => e.expr.replaceAll('$__rate_interval', '5m').replaceAll('$node', '.*'));
      writeFileSync(join(dir, 'dash.yaml'), stringify({ groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] }));
      const r = spawnSync(PROMTOOL, ['check', 'rules', join(dir, 'dash.yaml')], { encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('metricNames', () => {
  it('finds the selected metrics and not functions, keywords, labels or durations', () => {
    expect(metricNames('sum by (map, errno) (rate(bpf_map_exporter_map_read_errors_total{node=~"$node", x="a b"}[$__rate_interval])) > 0').sort()).toEqual(['bpf_map_exporter_map_read_errors_total']);
    expect(metricNames('max by (map) (time() - foo_seconds{a="b"}) / on (map) group_left bar').sort()).toEqual(['bar', 'foo_seconds']);
    expect(metricNames('count(x == 0) or vector(0)')).toEqual(['x']);
  });
});

import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { Counter, Gauge, Registry, Summary } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import type { Family } from '../../../src/metric/series.js';
import { ExpositionCache, renderFamilies } from '../../../src/publish/prometheus.js';
import { SORT_LIMIT } from '../../../src/publish/prometheus-render.js';
import { registerSelfMetrics, richFamilies } from './exposition-sample.js';
import { lintOpenMetrics } from './openmetrics-lint.js';

const lines = (...l: string[]): string => l.map((x) => `${x}\n`).join('');
const gauge = (name: string, value: number, labels: Record<string, string> = {}): Family => ({
  name,
  type: 'gauge',
  help: `${name} help`,
  series: [{ labels, value }],
});

describe('ExpositionCache', () => {
  it('returns the same Buffer until set(), remove() or invalidate()', async () => {
    const cache = new ExpositionCache();
    cache.set('a', [gauge('a_value', 1)]);
    for (const format of ['text', 'openmetrics'] as const) {
      for (const gzip of [false, true]) {
        const first = await cache.render(format, gzip);
        expect(await cache.render(format, gzip)).toBe(first);
      }
    }
    const before = await cache.render('text', false);
    const beforeZ = await cache.render('text', true);
    cache.invalidate();
    // A new document: once it is built (until then, after FRESH_WAIT_MS, a scrape gets the last one).
    const fresh = async (gzip: boolean, old: Buffer): Promise<Buffer> => {
      for (let i = 0; i < 200; i++) {
        const b = await cache.render('text', gzip);
        if (b !== old) return b;
        await new Promise((r) => setTimeout(r, 10));
      }
      return old;
    };
    const afterInvalidate = await fresh(false, before);
    expect(afterInvalidate).not.toBe(before);
    expect(afterInvalidate.equals(before)).toBe(true);
    const afterInvalidateZ = await fresh(true, beforeZ);
    expect(afterInvalidateZ).not.toBe(beforeZ);
    expect(gunzipSync(afterInvalidateZ).equals(before)).toBe(true);

    cache.set('a', [gauge('a_value', 2)]);
    const afterSet = await cache.render('text', false);
    expect(afterSet.toString()).toBe(lines('# HELP a_value a_value help', '# TYPE a_value gauge', 'a_value 2'));
    cache.remove('a');
    expect((await cache.render('text', false)).toString()).toBe('');
    expect((await cache.render('openmetrics', false)).toString()).toBe('# EOF\n');
  });

  it('counts generations', () => {
    const cache = new ExpositionCache();
    const g0 = cache.generation;
    cache.set('a', []);
    cache.invalidate();
    cache.remove('a');
    cache.remove('never-set'); // nothing to forget: no new generation
    expect(cache.generation).toBe(g0 + 3);
  });

  it('gzips exactly the text it serves', async () => {
    const cache = new ExpositionCache();
    registerSelfMetrics(cache.registry);
    cache.set('maps', richFamilies());
    for (const format of ['text', 'openmetrics'] as const) {
      const text = await cache.render(format, false);
      const zipped = await cache.render(format, true);
      expect(zipped.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
      expect(gunzipSync(zipped).equals(text)).toBe(true);
    }
  });

  it('reads the registry once per generation, however many scrapes and however concurrent', async () => {
    const registry = new Registry();
    let collects = 0;
    new Gauge({
      name: 'self_collects',
      help: 'How often the registry was read',
      registers: [registry],
      collect() {
        collects++;
        this.set(collects);
      },
    });
    const cache = new ExpositionCache(registry);
    const [a, b] = await Promise.all([cache.render('text', false), cache.render('text', true)]);
    await cache.render('text', false);
    await cache.render('text', true);
    expect(collects).toBe(1);
    expect(gunzipSync(b).equals(a)).toBe(true);
    await cache.render('openmetrics', false);
    expect(collects).toBe(2); // the other format is its own document
    cache.invalidate();
    const text = (await cache.render('text', false)).toString();
    expect(collects).toBe(3);
    expect(text).toBe(lines('# HELP self_collects How often the registry was read', '# TYPE self_collects gauge', 'self_collects 3'));
  });

  it('shows self-metric updates only from the next generation', async () => {
    const cache = new ExpositionCache();
    const up = new Gauge({ name: 'x_up', help: 'Up', registers: [cache.registry] });
    up.set(1);
    expect((await cache.render('text', false)).toString()).toContain('x_up 1\n');
    up.set(0);
    expect((await cache.render('text', false)).toString()).toContain('x_up 1\n');
    cache.invalidate();
    expect((await cache.render('text', false)).toString()).toContain('x_up 0\n');
  });

  it('writes jobs in name order, then self-metrics, and one # EOF at the very end', async () => {
    const cache = new ExpositionCache();
    new Counter({ name: 'x_reads_total', help: 'Reads', registers: [cache.registry] }).inc(2);
    cache.set('zeta', [gauge('z_value', 26)]);
    cache.set('alpha', [gauge('a_value', 1, { k: 'v' })]);
    expect((await cache.render('text', false)).toString()).toBe(
      lines(
        '# HELP a_value a_value help', '# TYPE a_value gauge', 'a_value{k="v"} 1',
        '# HELP z_value z_value help', '# TYPE z_value gauge', 'z_value 26',
        '# HELP x_reads_total Reads', '# TYPE x_reads_total counter', 'x_reads_total 2',
      ),
    );
    const om = (await cache.render('openmetrics', false)).toString();
    expect(om).toBe(
      lines(
        '# TYPE a_value gauge', '# HELP a_value a_value help', 'a_value{k="v"} 1',
        '# TYPE z_value gauge', '# HELP z_value z_value help', 'z_value 26',
        '# TYPE x_reads counter', '# HELP x_reads Reads', 'x_reads_total 2',
        '# EOF',
      ),
    );
    expect(om.match(/# EOF/g)).toHaveLength(1);
  });

  it('renders the rich sample with self-metrics as a valid OpenMetrics document', async () => {
    const cache = new ExpositionCache();
    registerSelfMetrics(cache.registry);
    cache.set('maps', richFamilies());
    const om = (await cache.render('openmetrics', false)).toString();
    expect(lintOpenMetrics(om)).toEqual([]);
    expect(om.startsWith(renderFamilies(richFamilies(), 'openmetrics').replace(/# EOF\n$/, ''))).toBe(true);
    const text = (await cache.render('text', false)).toString();
    expect(text.startsWith(renderFamilies(richFamilies(), 'text'))).toBe(true);
    expect(text).not.toContain('\n\n');
  });

  it('renders self-metrics with the same rules as map families, histograms and summaries included', async () => {
    const cache = new ExpositionCache();
    registerSelfMetrics(cache.registry);
    const s = new Summary({ name: 'x_latency_seconds', help: 'Latency', percentiles: [0.5, 1], labelNames: ['k'], registers: [cache.registry] });
    s.observe({ k: 'b' }, 2);
    expect((await cache.render('openmetrics', false)).toString()).toBe(
      lines(
        '# TYPE bpf_map_exporter_map_reads counter',
        '# HELP bpf_map_exporter_map_reads Read cycles per map',
        'bpf_map_exporter_map_reads_total{map="io"} 1',
        'bpf_map_exporter_map_reads_total{map="syscalls"} 3',
        '# TYPE bpf_map_exporter_map_up gauge',
        '# HELP bpf_map_exporter_map_up Whether the last read of the map worked',
        'bpf_map_exporter_map_up{map="io"} 1',
        '# TYPE bpf_map_exporter_render_seconds histogram',
        '# HELP bpf_map_exporter_render_seconds Time to render',
        'bpf_map_exporter_render_seconds_bucket{le="0.001"} 0',
        'bpf_map_exporter_render_seconds_bucket{le="0.1"} 1',
        'bpf_map_exporter_render_seconds_bucket{le="1.0"} 1',
        'bpf_map_exporter_render_seconds_bucket{le="+Inf"} 1',
        'bpf_map_exporter_render_seconds_sum 0.05',
        'bpf_map_exporter_render_seconds_count 1',
        '# TYPE x_latency_seconds summary',
        '# HELP x_latency_seconds Latency',
        'x_latency_seconds{k="b",quantile="0.5"} 2',
        'x_latency_seconds{k="b",quantile="1.0"} 2',
        'x_latency_seconds_sum{k="b"} 2',
        'x_latency_seconds_count{k="b"} 1',
        '# EOF',
      ),
    );
  });

  it("does not let an OpenMetrics render rename the registry's counters (prom-client's metrics() does)", async () => {
    const cache = new ExpositionCache();
    new Counter({ name: 'x_reads_total', help: 'Reads', registers: [cache.registry] }).inc();
    await cache.render('openmetrics', false);
    cache.invalidate();
    expect((await cache.render('text', false)).toString()).toContain('x_reads_total 1\n');
    expect(await cache.registry.metrics()).toContain('x_reads_total 1');
    expect(cache.registry.contentType).toBe(Registry.PROMETHEUS_CONTENT_TYPE);
  });

  it('refuses a family another job already exposes, naming both jobs, and keeps the old state', async () => {
    const cache = new ExpositionCache();
    cache.set('syscalls', [gauge('shared_value', 1)]);
    cache.set('io', [gauge('io_value', 1)]);
    const before = await cache.render('text', false);
    expect(() => cache.set('io', [gauge('shared_value', 2)])).toThrowError(
      'metric "shared_value" of job "io" clashes with metric "shared_value" of job "syscalls": both expose "shared_value"; a metric name may come from one place only',
    );
    expect(await cache.render('text', false)).toBe(before);
    // A job may re-set its own names, and once a job is gone its names are free.
    cache.set('syscalls', [gauge('shared_value', 3)]);
    cache.remove('syscalls');
    cache.set('io', [gauge('shared_value', 4)]);
    expect((await cache.render('text', false)).toString()).toContain('shared_value 4\n');
  });

  it('refuses names that clash in either format, within a job too', () => {
    const cache = new ExpositionCache();
    const counter: Family = { name: 'foo_total', type: 'counter', help: 'h', series: [] };
    const histogram: Family = { name: 'lat', type: 'histogram', help: 'h', series: [] };
    cache.set('a', [counter, histogram]);
    // In OpenMetrics the counter's family is "foo": a gauge "foo" would be a second TYPE foo.
    expect(() => cache.set('b', [gauge('foo', 1)])).toThrowError(/job "b" clashes with metric "foo_total" of job "a": both expose "foo"/);
    expect(() => cache.set('b', [gauge('lat_count', 1)])).toThrowError(/clashes with metric "lat" of job "a": both expose "lat_count"/);
    expect(() => cache.set('c', [gauge('x', 1), gauge('x', 2)])).toThrowError(
      'metric "x" of job "c" clashes with metric "x" of the same job: both expose "x"; a metric name may come from one place only',
    );
  });

  it('refuses a family that clashes with a self-metric, at set() or, if registered later, at render()', async () => {
    const cache = new ExpositionCache();
    new Gauge({ name: 'bpf_map_exporter_map_up', help: 'Up', registers: [cache.registry] });
    expect(() => cache.set('a', [gauge('bpf_map_exporter_map_up', 1)])).toThrowError(
      'metric "bpf_map_exporter_map_up" of job "a" clashes with the exporter\'s self-metric "bpf_map_exporter_map_up": both expose "bpf_map_exporter_map_up"; a metric name may come from one place only',
    );
    cache.set('a', [gauge('late', 1)]);
    new Gauge({ name: 'late', help: 'Registered after the job', registers: [cache.registry] });
    await expect(cache.render('text', false)).rejects.toThrowError(/metric "late" of job "a" clashes with the exporter's self-metric "late"/);
    cache.remove('a');
    expect((await cache.render('text', false)).toString()).toContain('# TYPE late gauge\n');
  });

  it('retries after a failed render', async () => {
    const registry = new Registry();
    let fail = true;
    new Gauge({
      name: 'flaky',
      help: 'Fails once',
      registers: [registry],
      collect() {
        if (fail) throw new Error('collect failed');
        this.set(1);
      },
    });
    const cache = new ExpositionCache(registry);
    await expect(cache.render('text', true)).rejects.toThrowError('collect failed');
    fail = false;
    expect(gunzipSync(await cache.render('text', true)).toString()).toContain('flaky 1\n');
  });

  it('re-renders only the jobs that changed', async () => {
    const cache = new ExpositionCache();
    let reads = 0;
    const counted = (name: string): Family => ({
      name,
      type: 'gauge',
      help: 'h',
      get series() {
        reads++;
        return [{ labels: {}, value: 1 }];
      },
    });
    cache.set('a', [counted('a_value')]);
    cache.set('b', [counted('b_value')]);
    await cache.render('text', false);
    expect(reads).toBe(2);
    cache.set('b', [counted('b_value')]);
    await cache.render('text', false);
    expect(reads).toBe(3);
  });
});

describe('ExpositionCache ahead of scrapes', () => {
  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it('builds the text document ahead for its first minute, then only what scrapes asked for, each new generation', async () => {
    let reads = 0;
    const counted = (v: number): Family => ({ name: 'a_value', type: 'gauge', help: 'h', get series() { reads++; return [{ labels: {}, value: v }]; } });
    const cache = new ExpositionCache();
    // The first minute: built as a snapshot arrives, plain and gzipped, before any scrape (readiness waits for it).
    cache.set('a', [counted(1)]);
    await tick();
    await tick();
    expect(reads).toBe(1);
    expect(cache.hasDocument()).toBe(true);
    // After it: nothing until a scrape asks.
    // A minute later (a clock that still moves: a frozen one stalls anything that waits on it).
    const realNow = Date.now.bind(Date);
    const now = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 61_000);
    try {
      cache.set('a', [counted(2)]);
      await tick();
      expect(reads).toBe(1);
      expect((await cache.renderChunks('text', true)).length).toBe(1);
      expect(reads).toBe(2);
      cache.set('a', [counted(3)]);
      cache.invalidate(); // a cycle bumps twice: still one build
      await tick();
      await tick();
      expect(reads).toBe(3);
      // Served from what was built ahead: no render on the scrape's path. The gzip built ahead may
      // still be compressing on a loaded machine (a scrape is then served the last complete one, by
      // design): ask until it is there, a render never being made for the asking.
      let served = '';
      for (let i = 0; i < 200 && !served.includes('a_value 3\n'); i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 10));
        served = gunzipSync(Buffer.concat(await cache.renderChunks('text', true))).toString();
      }
      expect(served).toContain('a_value 3\n');
      expect(reads).toBe(3);
    } finally {
      now.mockRestore();
    }
  });

  it('has no document until one is built, and starts building one when asked whether it has', async () => {
    const cache = new ExpositionCache();
    cache.set('a', [gauge('a_value', 1)]);
    expect(cache.hasDocument()).toBe(false);
    await tick();
    await tick();
    expect(cache.hasDocument()).toBe(true);
  });

  it('serves a document in the parts it keeps: each job part once, shared with the next generation', async () => {
    const cache = new ExpositionCache();
    cache.set('a', [gauge('a_value', 1)]);
    cache.set('b', [gauge('b_value', 2)]);
    const first = await cache.renderChunks('text', false);
    expect(Buffer.concat(first).toString()).toBe(lines('# HELP a_value a_value help', '# TYPE a_value gauge', 'a_value 1', '# HELP b_value b_value help', '# TYPE b_value gauge', 'b_value 2'));
    cache.set('b', [gauge('b_value', 3)]);
    const next = await cache.renderChunks('text', false);
    expect(next[0]).toBe(first[0]); // job a did not change: its part is not rendered again
    expect(next[1]).not.toBe(first[1]);
  });
});

describe('ExpositionCache with a family too big to render at once', () => {
  const big = (n: number, v: number): Family => ({
    name: 'big_value', type: 'gauge', help: 'h',
    series: Array.from({ length: n }, (_, i) => ({ labels: { k: String(n - i) }, value: v })),
  });

  it('keeps the snapshot order above SORT_LIMIT series, and sorts below it', () => {
    const text = renderFamilies([big(SORT_LIMIT + 1, 1)], 'text').split('\n');
    expect(text[2]).toBe(`big_value{k="${SORT_LIMIT + 1}"} 1`);
    const small = renderFamilies([big(3, 1)], 'text').split('\n');
    expect(small.slice(2, 5)).toEqual(['big_value{k="1"} 1', 'big_value{k="2"} 1', 'big_value{k="3"} 1']);
  });

  // Documents of 25 MB are compared by digest: a failed toBe() on two such strings has vitest diff
  // them, which takes longer than any timeout (a worker at 100% CPU for as long as one waits).
  const digest = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

  it('serves the last complete document while a new one renders, and the new one once it is done', async () => {
    const cache = new ExpositionCache(new Registry());
    cache.set('j', [big(300_000, 1)]);
    const first = await cache.render('text', false);
    expect(first.includes('big_value{k="7"} 1\n')).toBe(true);
    cache.set('j', [big(300_000, 2)]);
    // The new document takes far longer than the wait a scrape allows: the previous one comes back.
    const during = await cache.render('text', false);
    expect(digest(during)).toBe(digest(first));
    let next = during;
    for (let i = 0; i < 400 && next === first; i++) {
      await new Promise((r) => setTimeout(r, 25));
      next = await cache.render('text', false);
    }
    expect(next.includes('big_value{k="7"} 2\n')).toBe(true);
  }, 60_000);

  it('serves the last compressed document while the new one compresses', async () => {
    const cache = new ExpositionCache(new Registry());
    cache.set('j', [big(300_000, 1)]);
    let served = digest(gunzipSync(await cache.render('text', true)));
    // The moment when the new text is complete and its gzip form (25 MB of text) is not can pass
    // before a poll on a busy machine sees it: a few generations are tried, each checked either way.
    let seenStale = false;
    for (let v = 2; v <= 4 && !seenStale; v++) {
      cache.set('j', [big(300_000, v)]);
      const marker = `big_value{k="7"} ${v}\n`;
      let plain = await cache.render('text', false);
      for (let i = 0; i < 20_000 && !plain.includes(marker); i++) {
        await new Promise((r) => setImmediate(r));
        plain = await cache.render('text', false);
      }
      expect(plain.includes(marker)).toBe(true);
      const now = digest(gunzipSync(await cache.render('text', true)));
      const text = digest(plain);
      // The previous compressed document, or (compressed already) exactly the new text: never a mix.
      if (now === served) seenStale = true;
      else expect(now).toBe(text);
      let zipped = now;
      for (let i = 0; i < 400 && zipped !== text; i++) {
        await new Promise((r) => setTimeout(r, 25));
        zipped = digest(gunzipSync(await cache.render('text', true)));
      }
      expect(zipped).toBe(text);
      served = zipped;
    }
    expect(seenStale).toBe(true);
  }, 60_000);
});

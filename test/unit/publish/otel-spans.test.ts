/**
 * Spans over OTLP end to end inside the process: a receiver on 127.0.0.1 (node:http for http/protobuf
 * and http/json, grpc-js for grpc) takes what SpanExporter and the SDK's trace exporters send. Protobuf
 * bodies are decoded with the OTel project's own definitions (@opentelemetry/otlp-transformer 0.52 under
 * the dev-only alias otlp-proto-definitions, as in the kernel OTLP test), JSON bodies are parsed; both are
 * brought to one shape and asserted field by field.
 */
import { hostname } from 'node:os';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { logger } from '../../../src/log.js';
import type { OtlpProtocol } from '../../../src/publish/otel-exporter.js';
import { exporterVersion } from '../../../src/publish/otel-resource.js';
import { SpanExporter, resolveSpanExportSettings, type SpanExportOptions, type SpanInput } from '../../../src/publish/otel-spans.js';
import { closedPort, grpcReceiver, HAS_IS_REMOTE, httpReceiver, jsonFlags, SAMPLED, SPAN_KIND_INTERNAL, STATUS_UNSET, TRACE_EXPORT_PATH, type Receiver, type WireGroup } from '../../otlp-traces.js';

// ---------------------------------------------------------------------------------------------------
// Fixtures.

const TRACE_A = '0af7651916cd43dd8448eb211c80319c';
const TRACE_B = 'ffeeddccbbaa99887766554433221100';
// Past 2^53 ns: a number of nanoseconds would lose the last digits; the wire must keep them.
const T0 = 1_700_000_000_123_456_789n;

function fixture(): SpanInput[] {
  return [
    { name: 'tcp_connect', service: 'svc-a', traceId: TRACE_A, spanId: 'b7ad6b7169203331', startUnixNano: T0, durationNanos: 1_234_567n, attributes: { comm: 'curl', pid: '4242' } },
    {
      name: 'tcp_sendmsg',
      service: 'svc-a',
      traceId: TRACE_A,
      spanId: '00f067aa0ba902b7',
      parentSpanId: 'b7ad6b7169203331',
      startUnixNano: T0 + 1_001n,
      durationNanos: 2_999_999_999n, // the end crosses whole seconds
      attributes: { bytes: '512' },
    },
    { name: 'sched_switch', service: 'svc-b', traceId: TRACE_B, spanId: '0000000000000001', startUnixNano: T0 + 7n, durationNanos: 0n, attributes: {} },
  ];
}

function expectFixture(groups: WireGroup[]): void {
  const byService = [...groups].sort((a, b) => String(a.resource['service.name']).localeCompare(String(b.resource['service.name'])));
  expect(byService.map((g) => g.resource['service.name'])).toEqual(['svc-a', 'svc-b']);
  for (const g of byService) {
    expect(g.resource).toMatchObject({
      'service.version': exporterVersion(),
      'host.name': hostname(),
      'k8s.node.name': 'node-7',
      'deployment.environment.name': 'ci',
      'telemetry.sdk.language': 'nodejs',
    });
    expect(g.scope).toEqual({ name: 'bpf-map-exporter', version: exporterVersion() });
  }
  const span = { kind: SPAN_KIND_INTERNAL, status: STATUS_UNSET };
  expect(byService[0].spans).toEqual([
    {
      ...span,
      traceId: TRACE_A,
      spanId: 'b7ad6b7169203331',
      name: 'tcp_connect',
      startTimeUnixNano: '1700000000123456789',
      endTimeUnixNano: '1700000000124691356',
      attributes: { comm: 'curl', pid: '4242' },
    },
    {
      ...span,
      traceId: TRACE_A,
      spanId: '00f067aa0ba902b7',
      parentSpanId: 'b7ad6b7169203331',
      name: 'tcp_sendmsg',
      startTimeUnixNano: '1700000000123457790',
      endTimeUnixNano: '1700000003123457789',
      attributes: { bytes: '512' },
    },
  ]);
  expect(byService[1].spans).toEqual([
    { ...span, traceId: TRACE_B, spanId: '0000000000000001', name: 'sched_switch', startTimeUnixNano: '1700000000123456796', endTimeUnixNano: '1700000000123456796', attributes: {} },
  ]);
}

/** `n` root spans of one service, ids counted from `from`. */
function many(n: number, from = 1): SpanInput[] {
  return Array.from({ length: n }, (_, i) => ({
    name: 'op',
    service: 'svc',
    traceId: TRACE_A,
    spanId: (from + i).toString(16).padStart(16, '0'),
    startUnixNano: T0 + BigInt(i),
    durationNanos: 1000n,
    attributes: { i: String(from + i) },
  }));
}

// ---------------------------------------------------------------------------------------------------

const exporters: SpanExporter[] = [];
const receivers: Receiver[] = [];

function exporter(opts: SpanExportOptions): SpanExporter {
  const e = new SpanExporter(opts);
  exporters.push(e);
  return e;
}
async function receiver(kind: 'http' | 'grpc' = 'http'): Promise<Receiver> {
  const r = kind === 'http' ? await httpReceiver() : await grpcReceiver();
  receivers.push(r);
  return r;
}
const addAll = (e: SpanExporter, spans: SpanInput[]): boolean[] => spans.map((s) => e.add(s));

let logLevel: string;
beforeAll(() => {
  logLevel = logger.level;
  logger.level = 'silent';
});
afterAll(() => {
  logger.level = logLevel;
});

beforeEach(() => {
  vi.stubEnv('K8S_NODE_NAME', 'node-7');
  vi.stubEnv('OTEL_RESOURCE_ATTRIBUTES', 'deployment.environment.name=ci');
  // Replaced by each span's service: the caller has resolved it.
  vi.stubEnv('OTEL_SERVICE_NAME', 'from-env');
  for (const name of [
    'OTEL_EXPORTER_OTLP_ENDPOINT',
    'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
    'OTEL_EXPORTER_OTLP_PROTOCOL',
    'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
    'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL',
    'OTEL_EXPORTER_OTLP_HEADERS',
    'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
    'OTEL_EXPORTER_OTLP_TIMEOUT',
    'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT',
    'OTEL_BSP_MAX_QUEUE_SIZE',
    'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
    'OTEL_BSP_SCHEDULE_DELAY',
  ]) {
    vi.stubEnv(name, undefined);
  }
});

afterEach(async () => {
  await Promise.all(exporters.splice(0).map((e) => e.shutdown()));
  await Promise.all(receivers.splice(0).map((r) => r.close()));
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

const ZERO_DROPS = { queueFull: 0, exportFailed: 0, invalid: 0, shutdown: 0 };

describe('SpanExporter on the wire', () => {
  it.each([
    ['http/protobuf', 'http', '/v1/traces', 'application/x-protobuf'],
    ['http/json', 'http', '/v1/traces', 'application/json'],
    ['grpc', 'grpc', TRACE_EXPORT_PATH, 'application/grpc'],
  ] as const)('%s: ids, parent, name, kind, times to the nanosecond, attributes, resource per service, scope', async (protocol, kind, path, contentType) => {
    const rx = await receiver(kind);
    const e = exporter({ protocol: protocol as OtlpProtocol, endpoint: rx.endpoint, headers: { 'x-tenant': 'blue' }, delayMillis: 60_000, timeout: 3000 });
    expect(addAll(e, fixture())).toEqual([true, true, true]);
    expect(e.stats).toMatchObject({ queued: 3, inFlight: 0, exported: 0 });

    await e.forceFlush();
    expect(rx.got).toHaveLength(1);
    expect(rx.got[0].path).toBe(path);
    expect(rx.got[0].contentType).toBe(contentType);
    expect(rx.got[0].headers['x-tenant']).toBe('blue');
    expectFixture(rx.groups(0));
    // Sampled: a collector may drop spans without the flag.
    if (protocol === 'http/json') expect(jsonFlags(rx.got[0].body)).toEqual([1, 2, 3].map(() => SAMPLED | HAS_IS_REMOTE));
    expect(e.stats).toEqual({ queued: 0, inFlight: 0, exported: 3, dropped: ZERO_DROPS });
  });

  it('an all-zero parent is a root span; malformed ids and negative times are refused and counted', async () => {
    const rx = await receiver();
    const e = exporter({ protocol: 'http/json', endpoint: rx.endpoint, delayMillis: 60_000 });
    const [ok] = many(1);
    expect(e.add({ ...ok, parentSpanId: '0000000000000000' })).toBe(true);
    const bad: Partial<SpanInput>[] = [
      { traceId: TRACE_A.toUpperCase() },
      { traceId: TRACE_A.slice(2) },
      { traceId: '0'.repeat(32) },
      { spanId: '0'.repeat(16) },
      { spanId: 'b7ad6b716920333g' },
      { parentSpanId: 'b7ad6b71692033' },
      { durationNanos: -1n },
    ];
    expect(bad.map((b) => e.add({ ...ok, ...b }))).toEqual(bad.map(() => false));
    expect(e.stats.dropped).toEqual({ ...ZERO_DROPS, invalid: bad.length });

    await e.forceFlush();
    const [span] = rx.groups(0)[0].spans;
    expect(span.spanId).toBe(ok.spanId);
    expect(span).not.toHaveProperty('parentSpanId');
  });
});

describe('settings', () => {
  it('defaults: http/protobuf, 2048 queued, batches of 512, 5 s delay; the rest left to the exporter package', () => {
    expect(resolveSpanExportSettings({}, {})).toEqual({
      protocol: 'http/protobuf',
      url: undefined,
      headers: undefined,
      timeoutMillis: undefined,
      maxQueue: 2048,
      maxBatch: 512,
      delayMillis: 5000,
    });
  });

  it('reads the TRACES and OTEL_BSP_* variables; explicit options win; a batch never exceeds the queue', () => {
    const env = {
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'HTTP/JSON',
      OTEL_BSP_MAX_QUEUE_SIZE: '300',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '50',
      OTEL_BSP_SCHEDULE_DELAY: '250',
    };
    expect(resolveSpanExportSettings({}, env)).toMatchObject({ protocol: 'http/json', maxQueue: 300, maxBatch: 50, delayMillis: 250 });
    expect(resolveSpanExportSettings({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json' }).protocol).toBe('grpc');
    expect(resolveSpanExportSettings({ protocol: 'grpc', maxQueue: 10, delayMillis: 20, timeout: 700, headers: { a: 'b' } }, env)).toEqual({
      protocol: 'grpc',
      url: undefined,
      headers: { a: 'b' },
      timeoutMillis: 700,
      maxQueue: 10,
      maxBatch: 10, // 50 from the environment, cut to the queue
      delayMillis: 20,
    });
    expect(resolveSpanExportSettings({ endpoint: 'http://collector:4318' }, {}).url).toBe('http://collector:4318/v1/traces');
    expect(resolveSpanExportSettings({ endpoint: 'http://gw/otlp/spans' }, {}).url).toBe('http://gw/otlp/spans');
  });

  it('logs and ignores bad environment values, refuses bad options', () => {
    const warn = vi.spyOn(logger, 'warn');
    const s = resolveSpanExportSettings({}, { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'udp', OTEL_BSP_MAX_QUEUE_SIZE: '10.5', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '0', OTEL_BSP_SCHEDULE_DELAY: 'soon' });
    expect(s).toMatchObject({ protocol: 'http/protobuf', maxQueue: 2048, maxBatch: 512, delayMillis: 5000 });
    expect(warn).toHaveBeenCalledTimes(4);
    expect(() => resolveSpanExportSettings({ maxQueue: 1.5 }, {})).toThrow(/maxQueue/);
    expect(() => resolveSpanExportSettings({ maxBatch: 0 }, {})).toThrow(/maxBatch/);
    expect(() => resolveSpanExportSettings({ delayMillis: -1 }, {})).toThrow(/delayMillis/);
    expect(() => resolveSpanExportSettings({ endpoint: 'not a url' }, {})).toThrow(/otel\.endpoint/);
  });

  it('leaves the TRACES endpoint (as is) and headers in the environment to the exporter package', async () => {
    const rx = await receiver();
    vi.stubEnv('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', `${rx.endpoint}/custom/spans`);
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', 'http://127.0.0.1:9');
    vi.stubEnv('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'http/json');
    vi.stubEnv('OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'x-from-env=e1');
    const e = exporter({ delayMillis: 60_000 });
    e.add(many(1)[0]);
    await e.forceFlush();
    expect(rx.got.map((g) => [g.path, g.contentType, g.headers['x-from-env']])).toEqual([['/custom/spans', 'application/json', 'e1']]);
    expect(e.stats.exported).toBe(1);
  });

  it('appends /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT', async () => {
    const rx = await receiver();
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', rx.endpoint);
    const e = exporter({ delayMillis: 60_000 });
    e.add(many(1)[0]);
    await e.forceFlush();
    expect(rx.got.map((g) => g.path)).toEqual(['/v1/traces']);
  });
});

describe('batches', () => {
  it('sends as soon as maxBatch spans wait, and never more than maxBatch per request', async () => {
    const rx = await receiver();
    const e = exporter({ endpoint: rx.endpoint, maxBatch: 7, delayMillis: 60_000 });
    addAll(e, many(7));
    await rx.waitFor(1); // no flush, and the delay is a minute away: the full batch went by itself
    addAll(e, many(23, 8));
    await e.forceFlush();
    expect(rx.sizes()).toEqual([7, 7, 7, 7, 2]);
    const ids = rx.got.flatMap((_, i) => rx.groups(i).flatMap((g) => g.spans.map((s) => s.spanId)));
    expect(ids).toEqual(many(30).map((s) => s.spanId)); // in order, none twice
    expect(e.stats).toEqual({ queued: 0, inFlight: 0, exported: 30, dropped: ZERO_DROPS });
  });

  it('sends a batch that does not fill delayMillis after its first span', async () => {
    const rx = await receiver();
    const e = exporter({ endpoint: rx.endpoint, maxBatch: 100, delayMillis: 40 });
    const t0 = performance.now();
    addAll(e, many(3));
    await rx.waitFor(1, 3000);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(35); // timers may fire a millisecond early
    expect(rx.sizes()).toEqual([3]);
  });
});

describe('a slow, failing or missing collector', () => {
  it('never answering: one request in flight, at most maxQueue spans held, the rest refused and counted', async () => {
    const rx = await receiver();
    rx.reply = 'hang';
    const e = exporter({ endpoint: rx.endpoint, maxQueue: 100, maxBatch: 10, delayMillis: 5, timeout: 500 });
    expect(addAll(e, many(100)).every(Boolean)).toBe(true);
    await rx.waitFor(1);
    const refused = addAll(e, many(900, 101)).filter((ok) => !ok).length;
    expect(refused).toBe(900);
    expect(e.stats).toMatchObject({ queued: 90, inFlight: 10, dropped: { ...ZERO_DROPS, queueFull: 900 } });
    // Several delays later, still the one request: the 90 waiting spans do not start a second.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(rx.got).toHaveLength(1);

    const t0 = performance.now();
    await e.shutdown();
    expect(performance.now() - t0).toBeLessThan(2000); // the 500 ms timeout, not the collector, ends it
    const { exported, dropped } = e.stats;
    expect(exported + dropped.exportFailed + dropped.shutdown).toBe(100);
    expect(dropped.queueFull).toBe(900);
    expect(e.add(many(1)[0])).toBe(false);
    expect(e.stats.dropped.shutdown).toBe(dropped.shutdown);
    expect(rx.sizes().every((n) => n <= 10)).toBe(true);
  });

  it('down (a closed port): refusals counted at the bound, then failed requests counted on shutdown', async () => {
    // Under the exporter's first retry backoff (0.8 s at least): each request fails at once, without retries.
    const e = exporter({ endpoint: await closedPort(), maxQueue: 100, maxBatch: 10, delayMillis: 5, timeout: 500 });
    const refused = addAll(e, many(1000)).filter((ok) => !ok).length;
    expect(refused).toBe(900);
    expect(e.stats.dropped.queueFull).toBe(900);
    await e.shutdown();
    expect(e.stats).toEqual({ queued: 0, inFlight: 0, exported: 0, dropped: { ...ZERO_DROPS, queueFull: 900, exportFailed: 100 } });
  });

  it('HTTP 500: every batch of the flush on shutdown fails and is counted, without retries', async () => {
    const rx = await receiver();
    rx.reply = { status: 500 };
    const e = exporter({ endpoint: rx.endpoint, maxBatch: 10, delayMillis: 60_000, timeout: 2000 });
    addAll(e, many(25));
    await e.shutdown();
    expect(rx.sizes()).toEqual([10, 10, 5]);
    expect(e.stats).toEqual({ queued: 0, inFlight: 0, exported: 0, dropped: { ...ZERO_DROPS, exportFailed: 25 } });
  });

  it('HTTP 503: retried by the exporter, then counted as failed; a later success counts again', async () => {
    const rx = await receiver();
    // Retry-After: 0 makes the exporter's retries immediate, so the test does not wait out its backoff.
    rx.reply = { status: 503, retryAfter: '0' };
    const e = exporter({ endpoint: rx.endpoint, delayMillis: 60_000, timeout: 2000 });
    addAll(e, many(5));
    await e.forceFlush();
    expect(rx.got.length).toBeGreaterThan(1);
    expect(rx.sizes().every((n) => n === 5)).toBe(true); // the same batch again, not more
    expect(e.stats).toEqual({ queued: 0, inFlight: 0, exported: 0, dropped: { ...ZERO_DROPS, exportFailed: 5 } });

    rx.reply = 'ok';
    addAll(e, many(4, 6));
    await e.shutdown();
    expect(e.stats).toEqual({ queued: 0, inFlight: 0, exported: 4, dropped: { ...ZERO_DROPS, exportFailed: 5 } });
  });
});

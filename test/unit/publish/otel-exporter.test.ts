import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { hostname } from 'node:os';
import { OTLPMetricExporter as HttpJsonExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { AggregationTemporality, InstrumentType } from '@opentelemetry/sdk-metrics';
import { logger } from '../../../src/log.js';
import { buildResource, createOtlpExporter, resolveOtlpSettings, type OtlpOptions } from '../../../src/publish/otel.js';
import { OtlpGrpcExporter, OtlpProtoExporter } from '../../../src/publish/otel-exporter.js';

let logLevel: string;
beforeAll(() => {
  logLevel = logger.level;
  logger.level = 'silent';
});
afterAll(() => {
  logger.level = logLevel;
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe('resolveOtlpSettings', () => {
  it('defaults: http/protobuf, 60s interval, cumulative, the rest left to the exporter package', () => {
    expect(resolveOtlpSettings({}, {})).toEqual({
      protocol: 'http/protobuf',
      url: undefined,
      headers: undefined,
      timeoutMillis: undefined,
      intervalMillis: 60_000,
      exportTimeoutMillis: 30_000,
      temporality: 'cumulative',
    });
  });

  it('falls back to the standard environment variables, signal-specific first', () => {
    const env = {
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'HTTP/JSON',
      OTEL_METRIC_EXPORT_INTERVAL: '5000',
      OTEL_METRIC_EXPORT_TIMEOUT: '2000',
      OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'Delta',
    };
    expect(resolveOtlpSettings({}, env)).toMatchObject({ protocol: 'http/json', intervalMillis: 5000, exportTimeoutMillis: 2000, temporality: 'delta' });
    expect(resolveOtlpSettings({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).protocol).toBe('grpc');
  });

  it('lets explicit options win over the environment', () => {
    const env = {
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'grpc',
      OTEL_METRIC_EXPORT_INTERVAL: '5000',
      OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'delta',
    };
    const opts: OtlpOptions = { protocol: 'http/json', interval: 15_000, temporality: 'cumulative', timeout: 3000, headers: { a: 'b' }, endpoint: 'http://c:4318' };
    expect(resolveOtlpSettings(opts, env)).toEqual({
      protocol: 'http/json',
      url: 'http://c:4318/v1/metrics',
      headers: { a: 'b' },
      timeoutMillis: 3000,
      intervalMillis: 15_000,
      exportTimeoutMillis: 15_000, // the SDK refuses an export timeout above the interval
      temporality: 'cumulative',
    });
  });

  it('maps lowmemory to delta: delta for counters and histograms is what it means', () => {
    expect(resolveOtlpSettings({}, { OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'lowmemory' }).temporality).toBe('delta');
  });

  it('logs and ignores bad environment values', () => {
    const warn = vi.spyOn(logger, 'warn');
    const s = resolveOtlpSettings({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'udp', OTEL_METRIC_EXPORT_INTERVAL: '-5', OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'sometimes' });
    expect(s).toMatchObject({ protocol: 'http/protobuf', intervalMillis: 60_000, temporality: 'cumulative' });
    expect(warn).toHaveBeenCalledTimes(3);
  });

  it('refuses bad explicit options with the option named', () => {
    expect(() => resolveOtlpSettings({ interval: 0 }, {})).toThrow(/otel\.interval/);
    expect(() => resolveOtlpSettings({ timeout: Number.NaN }, {})).toThrow(/otel\.timeout/);
    expect(() => resolveOtlpSettings({ protocol: 'udp' as never }, {})).toThrow(/otel\.protocol/);
    expect(() => resolveOtlpSettings({ endpoint: 'not a url' }, {})).toThrow(/otel\.endpoint/);
  });

  it('appends /v1/metrics to an http endpoint without a path, keeps one with a path, leaves grpc alone', () => {
    expect(resolveOtlpSettings({ endpoint: 'http://collector:4318/' }, {}).url).toBe('http://collector:4318/v1/metrics');
    expect(resolveOtlpSettings({ endpoint: 'https://gw.example/otlp/v1/metrics' }, {}).url).toBe('https://gw.example/otlp/v1/metrics');
    expect(resolveOtlpSettings({ endpoint: 'collector:4317', protocol: 'grpc' }, {}).url).toBe('collector:4317');
  });
});

describe('createOtlpExporter', () => {
  it('builds the exporter class of each protocol, http/protobuf by default', async () => {
    const cases: [OtlpOptions, abstract new (...a: never[]) => object][] = [
      [{}, OtlpProtoExporter],
      [{ protocol: 'http/protobuf' }, OtlpProtoExporter],
      [{ protocol: 'http/json' }, HttpJsonExporter],
      [{ protocol: 'grpc', headers: { 'x-tenant': 'a' } }, OtlpGrpcExporter],
    ];
    for (const [opts, cls] of cases) {
      const e = createOtlpExporter(opts);
      expect(e, JSON.stringify(opts)).toBeInstanceOf(cls);
      await e.shutdown();
    }
  });

  it('takes the protocol from the environment', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', 'grpc');
    const e = createOtlpExporter();
    expect(e).toBeInstanceOf(OtlpGrpcExporter);
    await e.shutdown();
  });

  it('announces the configured temporality to the SDK (for the provider’s own instruments)', async () => {
    const delta = createOtlpExporter({ temporality: 'delta' });
    const cumulative = createOtlpExporter({});
    expect(delta.selectAggregationTemporality(InstrumentType.COUNTER)).toBe(AggregationTemporality.DELTA);
    expect(cumulative.selectAggregationTemporality(InstrumentType.COUNTER)).toBe(AggregationTemporality.CUMULATIVE);
    await delta.shutdown();
    await cumulative.shutdown();
  });
});

describe('buildResource', () => {
  it('names the service, host and node; the operator’s OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win', () => {
    vi.stubEnv('K8S_NODE_NAME', undefined);
    vi.stubEnv('NODE_NAME', 'node-b');
    vi.stubEnv('OTEL_RESOURCE_ATTRIBUTES', 'team=kernel,host.name=override');
    vi.stubEnv('OTEL_SERVICE_NAME', 'bpf-exporter-canary');
    const attrs = buildResource({ serviceVersion: '9.9.9' }).attributes;
    expect(attrs).toMatchObject({
      'service.name': 'bpf-exporter-canary',
      'service.version': '9.9.9',
      'k8s.node.name': 'node-b',
      'host.name': 'override',
      team: 'kernel',
      'telemetry.sdk.name': 'opentelemetry',
    });
  });

  it('prefers K8S_NODE_NAME, and leaves k8s.node.name out when neither is set', () => {
    vi.stubEnv('OTEL_RESOURCE_ATTRIBUTES', undefined);
    vi.stubEnv('OTEL_SERVICE_NAME', undefined);
    vi.stubEnv('K8S_NODE_NAME', 'node-a');
    vi.stubEnv('NODE_NAME', 'node-b');
    expect(buildResource().attributes).toMatchObject({ 'service.name': 'bpf-map-exporter', 'host.name': hostname(), 'k8s.node.name': 'node-a' });
    vi.stubEnv('K8S_NODE_NAME', '');
    vi.stubEnv('NODE_NAME', undefined);
    expect(buildResource().attributes).not.toHaveProperty('k8s.node.name');
  });
});

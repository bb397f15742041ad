/**
 * The OTLP exporter, chosen and configured from the config file's `otel` options with the standard
 * OTEL_* environment variables as fallback.
 *
 * Precedence: an option given explicitly wins over the environment, which wins over the default.
 *
 * | option        | environment (first set wins)                                          | default                 |
 * |---------------|-----------------------------------------------------------------------|-------------------------|
 * | protocol      | OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL      | http/protobuf           |
 * | endpoint      | OTEL_EXPORTER_OTLP_METRICS_ENDPOINT (as is), OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/metrics for http) | http://localhost:4318/v1/metrics, grpc: http://localhost:4317 |
 * | headers       | OTEL_EXPORTER_OTLP_METRICS_HEADERS, OTEL_EXPORTER_OTLP_HEADERS        | none                    |
 * | timeout (ms)  | OTEL_EXPORTER_OTLP_METRICS_TIMEOUT, OTEL_EXPORTER_OTLP_TIMEOUT        | 10000                   |
 * | interval (ms) | OTEL_METRIC_EXPORT_INTERVAL                                           | 60000                   |
 * | temporality   | OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE                     | cumulative              |
 * | (reader)      | OTEL_METRIC_EXPORT_TIMEOUT: one collect + export, capped at interval  | 30000                   |
 *
 * Endpoint, headers and timeout from the environment are applied by the OTLP exporter packages
 * themselves (they also honour OTEL_EXPORTER_OTLP_*COMPRESSION, *CERTIFICATE, *CLIENT_KEY,
 * *CLIENT_CERTIFICATE and, for grpc, *INSECURE). Headers merge: environment headers are sent too, and a
 * header given in the options replaces the one of the same name from the environment.
 * An `endpoint` option with no path (http://collector:4318) gets /v1/metrics appended for the http
 * protocols, like OTEL_EXPORTER_OTLP_ENDPOINT; with a path it is used as is. For grpc it is the
 * collector's address (http:// for plaintext, https:// or no scheme for TLS).
 * Temporality `lowmemory` (an SDK value for the environment variable) means delta here: it is delta for
 * counters and histograms, the only kinds with a temporality that this exporter publishes.
 *
 * Spans (otel-spans.ts) resolve protocol, endpoint, headers and timeout the same way, from the TRACES
 * variants of the variables and with /v1/traces: resolveOtlpTransport is shared by both signals.
 */
import { OTLPMetricExporter as HttpJsonExporter, AggregationTemporalityPreference, OTLPMetricExporterBase, type OTLPMetricExporterOptions } from '@opentelemetry/exporter-metrics-otlp-http';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { convertLegacyOtlpGrpcOptions, createEmptyMetadata, createOtlpGrpcExportDelegate, type OTLPGRPCExporterConfigNode } from '@opentelemetry/otlp-grpc-exporter-base';
import { ProtobufMetricsSerializer, type IExporterMetricsHelper, type IExportMetricsServiceResponse, type ISerializer } from '@opentelemetry/otlp-transformer';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { logger } from '../log.js';
import { pointCount, type Temporality } from './otel-producer.js';
import { encodeMetricsRequest, encodeMetricsRequestAsync, UnsupportedMetric } from './otlp-encode.js';

export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';

export const OTLP_PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'http/json', 'grpc'];

/** The config file's `otel` section, durations already in milliseconds. */
export interface OtlpOptions {
  endpoint?: string;
  protocol?: OtlpProtocol;
  headers?: Readonly<Record<string, string>>;
  /** Milliseconds between exports. */
  interval?: number;
  /** Milliseconds one export request may take. */
  timeout?: number;
  temporality?: Temporality;
}

/** The OTEL_EXPORTER_OTLP_<signal>_* variables a transport is configured from. */
export type OtlpSignal = 'METRICS' | 'TRACES';

/** Where and how requests go. Undefined: left to the exporter package (env, then default). */
export interface OtlpTransport {
  protocol: OtlpProtocol;
  url: string | undefined;
  headers: Record<string, string> | undefined;
  timeoutMillis: number | undefined;
}

/** What the options and the environment resolve to. Undefined: left to the exporter package (env, then default). */
export interface OtlpSettings extends OtlpTransport {
  intervalMillis: number;
  /** The reader's bound on one collect + export; never more than the interval (the SDK refuses that). */
  exportTimeoutMillis: number;
  temporality: Temporality;
}

const DEFAULT_INTERVAL = 60_000;
const DEFAULT_EXPORT_TIMEOUT = 30_000;

/** Resolve options against the environment. Bad explicit options throw; bad environment values are logged and ignored. */
export function resolveOtlpSettings(opts: OtlpOptions = {}, env: NodeJS.ProcessEnv = process.env): OtlpSettings {
  const transport = resolveOtlpTransport(opts, 'METRICS', env);
  const intervalMillis = positive('otel.interval', opts.interval) ?? envPositive(env, 'OTEL_METRIC_EXPORT_INTERVAL') ?? DEFAULT_INTERVAL;
  const exportTimeout = envPositive(env, 'OTEL_METRIC_EXPORT_TIMEOUT') ?? DEFAULT_EXPORT_TIMEOUT;
  const temporality = opts.temporality ?? envTemporality(env) ?? 'cumulative';
  if (temporality !== 'cumulative' && temporality !== 'delta') throw new Error(`otel.temporality: "${String(temporality)}" is not cumulative or delta`);
  return { ...transport, intervalMillis, exportTimeoutMillis: Math.min(exportTimeout, intervalMillis), temporality };
}

/**
 * Protocol, endpoint, headers and timeout of one signal: the protocol from the options, else the
 * signal's variable, else OTEL_EXPORTER_OTLP_PROTOCOL; the rest from the options only, since the exporter
 * packages read the environment for them themselves. Bad explicit options throw.
 */
export function resolveOtlpTransport(opts: OtlpOptions, signal: OtlpSignal, env: NodeJS.ProcessEnv = process.env): OtlpTransport {
  const protocol = opts.protocol ?? envProtocol(env, signal) ?? 'http/protobuf';
  if (!OTLP_PROTOCOLS.includes(protocol)) throw new Error(`otel.protocol: "${String(protocol)}" is not one of ${OTLP_PROTOCOLS.join(', ')}`);
  return {
    protocol,
    url: opts.endpoint === undefined ? undefined : endpointUrl(opts.endpoint, protocol, signal === 'METRICS' ? '/v1/metrics' : '/v1/traces'),
    headers: opts.headers === undefined ? undefined : { ...opts.headers },
    timeoutMillis: positive('otel.timeout', opts.timeout),
  };
}

/** The OTLP metric exporter for the protocol, configured as `resolveOtlpSettings` says. */
export function createOtlpExporter(opts: OtlpOptions = {}): OTLPMetricExporterBase {
  return otlpExporterFor(resolveOtlpSettings(opts));
}

/**
 * Where an exporter's requests are encoded before the SDK's transport sends them: a slice of points
 * per turn of the event loop (a request of 100,000 series written at once held the loop for 15-50 ms),
 * into the buffer of the last export that has ended (the transport, its retries and its compression
 * are done with it by then). At 100,000 series a request is ~10 MB: a new one per export was garbage
 * that outlived several exports before V8 collected it, and made the peak RSS (BENCHMARKS.md, "Memory").
 */
export class RequestBuffers {
  private spare: Buffer | undefined;
  /** Requests encoded by export() and not yet asked for by the serializer. */
  private readonly encoded = new WeakMap<ResourceMetrics, Uint8Array>();

  /** A buffer of at least `size` bytes: the spare when it fits without much slack, else a new one. */
  private take(size: number): Buffer {
    const s = this.spare;
    if (s !== undefined && s.length >= size && s.length <= size * 1.5) {
      this.spare = undefined;
      return s;
    }
    // Room for a few more series next time; this one becomes the spare when its export ends.
    return Buffer.allocUnsafeSlow(Math.ceil(size * 1.05));
  }

  /**
   * Encode `rm`, then run `send` (the SDK's export, whose serializer takes the bytes with
   * `encodedFor`); the buffer is the spare again once `send` calls `done`. A request this encoder
   * cannot write is sent all the same (the serializer falls back to the SDK's); another failure is
   * `failed`'s.
   */
  export(rm: ResourceMetrics, send: (done: () => void) => void, failed: (e: Error) => void): void {
    let mine: Buffer | undefined;
    const release = (): void => {
      this.encoded.delete(rm);
      if (mine !== undefined) this.spare = mine;
      mine = undefined;
    };
    const fail = (e: unknown): void => {
      release();
      failed(e instanceof Error ? e : new Error(String(e)));
    };
    encodeMetricsRequestAsync(rm, (size) => (mine = this.take(size)))
      .then(
        (bytes) => {
          this.encoded.set(rm, bytes);
          send(release);
        },
        (e: unknown) => {
          if (!(e instanceof UnsupportedMetric)) return fail(e);
          release();
          send(() => {});
        },
      )
      // `send` throwing (it should call back instead) is a failed export too, never an unhandled rejection.
      .catch(fail);
  }

  /** The bytes export() encoded for `rm`, once. */
  encodedFor(rm: ResourceMetrics): Uint8Array | undefined {
    const bytes = this.encoded.get(rm);
    this.encoded.delete(rm);
    return bytes;
  }
}

/**
 * Protobuf from the snapshot's columns (otlp-encode.ts) instead of the SDK's object model: what
 * `buffers` encoded ahead, else encoded here; a request with a metric kind it does not write goes
 * through the SDK's serializer. Responses are the SDK's.
 */
export function columnSerializer(buffers?: RequestBuffers): ISerializer<ResourceMetrics, IExportMetricsServiceResponse> {
  return {
    serializeRequest(request) {
      const ready = buffers?.encodedFor(request);
      if (ready !== undefined) return ready;
      try {
        return encodeMetricsRequest(request);
      } catch (e) {
        if (!(e instanceof UnsupportedMetric)) throw e;
        return ProtobufMetricsSerializer.serializeRequest(request);
      }
    },
    deserializeResponse: (data) => ProtobufMetricsSerializer.deserializeResponse(data),
  };
}

/** Counts points for the SDK's exporter self-observability without building them. */
const pointsHelper: IExporterMetricsHelper<ResourceMetrics> = {
  name: 'metric_data_point',
  countItems: (request) => request.scopeMetrics.reduce((n, sm) => n + sm.metrics.reduce((k, m) => k + pointCount(m), 0), 0),
};

/**
 * OTLP over HTTP with protobuf bodies: the SDK's HTTP transport (retries, timeouts, compression,
 * OTEL_EXPORTER_OTLP_* variables), our serializer.
 */
export class OtlpProtoExporter extends OTLPMetricExporterBase {
  private readonly buffers: RequestBuffers;

  constructor(config: OTLPMetricExporterOptions & { headers?: Record<string, string> } = {}) {
    const options = convertLegacyHttpOptions(config, 'METRICS', 'v1/metrics', { 'Content-Type': 'application/x-protobuf' });
    const buffers = new RequestBuffers();
    super(createOtlpHttpExportDelegate(options, columnSerializer(buffers), 'otlp_http_metric_exporter', pointsHelper, undefined), config);
    this.buffers = buffers;
  }

  override export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    this.buffers.export(
      metrics,
      (done) => super.export(metrics, (r) => (done(), resultCallback(r))),
      (error) => resultCallback({ code: ExportResultCode.FAILED, error }),
    );
  }
}

/** OTLP over gRPC: the SDK's gRPC transport (credentials, metadata, OTEL_* variables), our serializer. */
export class OtlpGrpcExporter extends OTLPMetricExporterBase {
  private readonly buffers: RequestBuffers;

  constructor(config: OTLPMetricExporterOptions & OTLPGRPCExporterConfigNode = {}) {
    const options = convertLegacyOtlpGrpcOptions(config, 'METRICS');
    const buffers = new RequestBuffers();
    super(
      createOtlpGrpcExportDelegate(options, columnSerializer(buffers), 'otlp_grpc_metric_exporter', pointsHelper, undefined, 'MetricsExportService', '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export'),
      config,
    );
    this.buffers = buffers;
  }

  override export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    this.buffers.export(
      metrics,
      (done) => super.export(metrics, (r) => (done(), resultCallback(r))),
      (error) => resultCallback({ code: ExportResultCode.FAILED, error }),
    );
  }
}

/** @internal the exporter for already resolved settings (startOtel resolves once for exporter and reader). */
export function otlpExporterFor(s: OtlpSettings): OTLPMetricExporterBase {
  // The preference also governs instruments of the SDK's own meters, should any be created on the provider.
  const temporalityPreference = s.temporality === 'delta' ? AggregationTemporalityPreference.DELTA : AggregationTemporalityPreference.CUMULATIVE;
  const common = { url: s.url, timeoutMillis: s.timeoutMillis, temporalityPreference };
  switch (s.protocol) {
    case 'http/json':
      // The SDK's own JSON serializer: points are built as objects from the columns (slower; protobuf is the default).
      return new HttpJsonExporter({ ...common, headers: s.headers });
    case 'grpc':
      return new OtlpGrpcExporter({ ...common, metadata: s.headers === undefined ? undefined : grpcMetadata(s.headers) });
    case 'http/protobuf':
      return new OtlpProtoExporter({ ...common, headers: s.headers });
  }
}

/** gRPC headers travel as a grpc-js Metadata made by the transport's own package (grpc-js tells metadata from options with instanceof). */
export function grpcMetadata(headers: Readonly<Record<string, string>>): ReturnType<typeof createEmptyMetadata> {
  const metadata = createEmptyMetadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  return metadata;
}

/** An http endpoint without a path gets the signal's (`path`), as OTEL_EXPORTER_OTLP_ENDPOINT does; grpc's is an address. */
export function endpointUrl(endpoint: string, protocol: OtlpProtocol, path: string): string {
  if (protocol === 'grpc') return endpoint;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new Error(`otel.endpoint: "${endpoint}" is not a URL (expected e.g. http://collector:4318)`);
  }
  if (url.pathname === '' || url.pathname === '/') url.pathname = path;
  return url.href;
}

/** An explicit option as a positive number of milliseconds, or of items (an integer); anything else throws, naming the option. */
export function positive(name: string, v: number | undefined, unit: 'milliseconds' | 'items' = 'milliseconds'): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isFinite(v) || v <= 0 || (unit === 'items' && !Number.isInteger(v))) {
    throw new Error(`${name}: ${v} is not a positive ${unit === 'items' ? 'integer' : 'number of milliseconds'}`);
  }
  return v;
}

/** The first of `names` set to something other than blanks: its name and trimmed value. */
export function envValue(env: NodeJS.ProcessEnv, ...names: string[]): [string, string] | undefined {
  for (const name of names) {
    const v = env[name]?.trim();
    if (v !== undefined && v !== '') return [name, v];
  }
  return undefined;
}

/** The variable `name` as a positive number of milliseconds, or of items (`unit` 'items': an integer); a bad value is logged and ignored. */
export function envPositive(env: NodeJS.ProcessEnv, name: string, unit: 'milliseconds' | 'items' = 'milliseconds'): number | undefined {
  const found = envValue(env, name);
  if (found === undefined) return undefined;
  const n = Number(found[1]);
  if (Number.isFinite(n) && n > 0 && (unit === 'milliseconds' || Number.isInteger(n))) return n;
  logger.warn({ source: 'opentelemetry' }, `${name}="${found[1]}" is not a positive ${unit === 'items' ? 'integer' : 'number of milliseconds'}: ignored`);
  return undefined;
}

function envProtocol(env: NodeJS.ProcessEnv, signal: OtlpSignal): OtlpProtocol | undefined {
  const found = envValue(env, `OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`, 'OTEL_EXPORTER_OTLP_PROTOCOL');
  if (found === undefined) return undefined;
  const p = found[1].toLowerCase();
  if ((OTLP_PROTOCOLS as readonly string[]).includes(p)) return p as OtlpProtocol;
  logger.warn({ source: 'opentelemetry' }, `${found[0]}="${found[1]}" is not one of ${OTLP_PROTOCOLS.join(', ')}: ignored`);
  return undefined;
}

function envTemporality(env: NodeJS.ProcessEnv): Temporality | undefined {
  const found = envValue(env, 'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE');
  if (found === undefined) return undefined;
  const t = found[1].toLowerCase();
  if (t === 'cumulative' || t === 'delta') return t;
  if (t === 'lowmemory') return 'delta';
  logger.warn({ source: 'opentelemetry' }, `${found[0]}="${found[1]}" is not cumulative, delta or lowmemory: ignored`);
  return undefined;
}

/**
 * OpenTelemetry publishing: map jobs' snapshots (SnapshotProducer) and the exporter's prom-client
 * registry (RegistryProducer: self-metrics, the inventory, process metrics) pushed over OTLP by the
 * SDK's PeriodicExportingMetricReader. The reader calls the producers on its own timer; a collection
 * reads no map, it turns the latest snapshots and the registry into points.
 *
 * How the reader merges producers (sdk-metrics 2.x MetricReader.collect): it runs its MeterProvider's own
 * collection and every `metricProducers` entry in parallel, keeps the provider's resource (a producer's
 * resource is ignored), concatenates every scopeMetrics list, and concatenates errors. Producer output
 * bypasses views, temporality selectors and cardinality limits: it is exported exactly as produced. A
 * collection whose merged scopeMetrics is empty is not exported at all.
 */
import { diag, DiagLogLevel, type DiagLogger, type Exception } from '@opentelemetry/api';
import { setGlobalErrorHandler } from '@opentelemetry/core';
import { MeterProvider, PeriodicExportingMetricReader, type MetricProducer } from '@opentelemetry/sdk-metrics';
import { logger } from '../log.js';
import { otlpExporterFor, resolveOtlpSettings, type OtlpOptions, type OtlpSettings } from './otel-exporter.js';
import { buildResource, type ResourceOptions } from './otel-resource.js';
import type { Temporality } from './otel-producer.js';

export { SnapshotProducer, SnapshotView, SCOPE_NAME, toHistogram, type SnapshotProducerOptions, type SnapshotTimes, type Temporality } from './otel-producer.js';
export { createOtlpExporter, resolveOtlpSettings, OTLP_PROTOCOLS, type OtlpOptions, type OtlpProtocol, type OtlpSettings } from './otel-exporter.js';
export { RegistryProducer, RegistryView, REGISTRY_SCOPE_NAME, type RegistryProducerOptions } from './otel-registry.js';
export { buildResource, exporterVersion, SERVICE_NAME, type ResourceOptions } from './otel-resource.js';

export interface OtelOptions extends OtlpOptions, ResourceOptions {}

/**
 * What startOtel pushes: something that gives each reader its own MetricProducer in the reader's
 * temporality, with its own delta memory (SnapshotProducer, RegistryProducer).
 */
export interface ProducerSource {
  view(temporality: Temporality): MetricProducer;
}

export interface Otel {
  meterProvider: MeterProvider;
  reader: PeriodicExportingMetricReader;
  /** What the options and environment resolved to. */
  settings: OtlpSettings;
  /** Stop the timer, export what is there one last time, close the exporter. Never rejects (errors are logged); once only. */
  shutdown(): Promise<void>;
  /** Collect and export now. Never rejects: failures are logged. */
  forceFlush(): Promise<void>;
}

/**
 * Start pushing what the producers hold over OTLP every `interval`: one producer, or several whose
 * points go out together in each export (the daemon passes its SnapshotProducer and a RegistryProducer).
 *
 * The reader gets its own view of each producer, in the temporality the settings resolve to, so that the
 * points match what the exporter announces and a second reader (a second startOtel) keeps its own
 * delta memory. The SDK's timer catches its own failures and hands them to the global error handler,
 * which this routes, with the SDK's diagnostics, to the project's logger (see installOtelLogging).
 */
export function startOtel(producers: ProducerSource | readonly ProducerSource[], opts: OtelOptions = {}): Otel {
  installOtelLogging();
  const settings = resolveOtlpSettings(opts);
  const reader = new PeriodicExportingMetricReader({
    exporter: otlpExporterFor(settings),
    exportIntervalMillis: settings.intervalMillis,
    exportTimeoutMillis: settings.exportTimeoutMillis,
    metricProducers: (isList(producers) ? producers : [producers]).map((p) => p.view(settings.temporality)),
  });
  const meterProvider = new MeterProvider({ resource: buildResource(opts), readers: [reader] });
  logger.info(
    {
      source: 'opentelemetry',
      protocol: settings.protocol,
      endpoint: settings.url ?? '(environment or default)',
      intervalMs: settings.intervalMillis,
      temporality: settings.temporality,
    },
    'OTLP metrics export started',
  );
  let down: Promise<void> | undefined;
  return {
    meterProvider,
    reader,
    settings,
    forceFlush: () => meterProvider.forceFlush().catch((err: unknown) => logger.error({ source: 'opentelemetry', err }, 'OTLP flush failed')),
    shutdown: () => (down ??= meterProvider.shutdown().catch((err: unknown) => logger.error({ source: 'opentelemetry', err }, 'OTLP shutdown failed'))),
  };
}

function isList(p: ProducerSource | readonly ProducerSource[]): p is readonly ProducerSource[] {
  return Array.isArray(p);
}

let loggingInstalled = false;

/**
 * Route the SDK's diagnostics (api.diag) and its global error handler, where the periodic reader sends
 * failed exports, to the project's logger, instead of console or nothing. Both are process-wide hooks of
 * the OpenTelemetry API; installed once.
 */
export function installOtelLogging(): void {
  if (loggingInstalled) return;
  loggingInstalled = true;
  const log = (level: 'error' | 'warn' | 'info' | 'debug' | 'trace') => (message: string, ...args: unknown[]) => {
    const err = args.find((a) => a instanceof Error);
    const details = args.filter((a) => a !== err);
    logger[level]({ source: 'opentelemetry', ...(err === undefined ? {} : { err }), ...(details.length === 0 ? {} : { details }) }, message);
  };
  const diagLogger: DiagLogger = { error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug'), verbose: log('trace') };
  diag.setLogger(diagLogger, { logLevel: logger.isLevelEnabled('debug') ? DiagLogLevel.DEBUG : DiagLogLevel.WARN, suppressOverrideMessage: true });
  setGlobalErrorHandler((ex: Exception) => {
    if (typeof ex === 'string') logger.error({ source: 'opentelemetry' }, ex);
    else logger.error({ source: 'opentelemetry', err: ex }, 'message' in ex && typeof ex.message === 'string' ? ex.message : 'OpenTelemetry error');
  });
}

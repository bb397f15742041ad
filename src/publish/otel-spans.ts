/**
 * Spans decoded from BPF ring buffer records, exported over OTLP by the SDK's trace exporters.
 *
 * Why not a Tracer and the SDK's BatchSpanProcessor: the trace id, span id and parent come from the
 * kernel, and a Tracer makes its own; and the processor does not tell its caller what it dropped, nor
 * why. So spans are queued here and handed to the exporter in batches as the SDK's ReadableSpan.
 *
 * Memory is bounded whatever the collector does: at most `maxQueue` spans are held, those of the one
 * export request in flight included. A collector that is slow or down makes `add` refuse spans (counted)
 * instead of queuing without end, and no second request is started while one is pending, so requests
 * (and their retries) do not pile up either.
 *
 * | option      | environment (first set wins)                                          | default                |
 * |-------------|-----------------------------------------------------------------------|------------------------|
 * | protocol    | OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL        | http/protobuf          |
 * | endpoint    | OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as is), OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces for http) | http://localhost:4318/v1/traces, grpc: http://localhost:4317 |
 * | headers     | OTEL_EXPORTER_OTLP_TRACES_HEADERS, OTEL_EXPORTER_OTLP_HEADERS          | none                   |
 * | timeout     | OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, OTEL_EXPORTER_OTLP_TIMEOUT          | 10000                  |
 * | maxQueue    | OTEL_BSP_MAX_QUEUE_SIZE                                               | 2048                   |
 * | maxBatch    | OTEL_BSP_MAX_EXPORT_BATCH_SIZE                                        | 512                    |
 * | delayMillis | OTEL_BSP_SCHEDULE_DELAY                                               | 5000                   |
 *
 * As for metrics (otel-exporter.ts), endpoint, headers and timeout from the environment are applied by
 * the exporter packages themselves; an `endpoint` option without a path gets /v1/traces for http.
 */
import { performance } from 'node:perf_hooks';
import { SpanKind, SpanStatusCode, TraceFlags, type HrTime, type Link, type SpanContext, type SpanStatus } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult, type InstrumentationScope } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { getSharedConfigurationDefaults, OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate, getSharedConfigurationFromEnvironment } from '@opentelemetry/otlp-exporter-base/node-http';
import { convertLegacyOtlpGrpcOptions, createOtlpGrpcExportDelegate } from '@opentelemetry/otlp-grpc-exporter-base';
import { ProtobufTraceSerializer, TraceExporterMetricsHelper, type IExportTraceServiceResponse, type ISerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan, SpanExporter as SdkSpanExporter, TimedEvent } from '@opentelemetry/sdk-trace-base';
import { logger } from '../log.js';
import { envPositive, grpcMetadata, positive, resolveOtlpTransport, type OtlpOptions, type OtlpTransport } from './otel-exporter.js';
import { SCOPE_NAME } from './otel-producer.js';
import { buildResource, exporterVersion } from './otel-resource.js';
import { installOtelLogging } from './otel.js';
import { I64, keyValues, LEN, PbWriter, tag, VARINT } from './otlp-encode.js';

/** One span as the daemon decoded it from a ring buffer record. */
export interface SpanInput {
  name: string;
  /**
   * service.name of the resource this span is exported under (ebpf_exporter: per config item, default
   * OTEL_SERVICE_NAME or 'ebpf_exporter'; the caller resolves the default, spans are grouped by it).
   */
  service: string;
  /** 32 lowercase hex characters, not all zero. */
  traceId: string;
  /** 16 lowercase hex characters, not all zero. */
  spanId: string;
  /** 16 lowercase hex characters; undefined (or all zero, what a kernel record holds for none): a root span. */
  parentSpanId?: string;
  /** Wall clock, nanoseconds since the epoch. */
  startUnixNano: bigint;
  durationNanos: bigint;
  attributes: Record<string, string>;
}

export interface SpanExportOptions extends Pick<OtlpOptions, 'endpoint' | 'protocol' | 'headers' | 'timeout'> {
  /** Spans held at most, queued or in the request in flight. Default 2048 (OTEL_BSP_MAX_QUEUE_SIZE). */
  maxQueue?: number;
  /** Spans per request at most. Default 512 (OTEL_BSP_MAX_EXPORT_BATCH_SIZE); never more than maxQueue. */
  maxBatch?: number;
  /** Milliseconds a queued span waits at most for a batch to fill. Default 5000 (OTEL_BSP_SCHEDULE_DELAY). */
  delayMillis?: number;
}

/** What the options and the environment resolve to. Transport fields left undefined are the exporter package's (env, then default). */
export interface SpanExportSettings extends OtlpTransport {
  maxQueue: number;
  maxBatch: number;
  delayMillis: number;
}

export interface SpanExportStats {
  /** Spans waiting for a request. */
  queued: number;
  /** Spans of the request in flight. */
  inFlight: number;
  /** Spans the collector accepted. */
  exported: number;
  dropped: {
    /** Refused by `add`: maxQueue spans were held already. */
    queueFull: number;
    /** Sent, and the request failed (after the exporter's own retries). */
    exportFailed: number;
    /** Refused by `add`: an id that is not hex of the right length, or a negative time. */
    invalid: number;
    /** Refused by `add` once shutdown began, or still held when shutdown's time ran out. */
    shutdown: number;
  };
}

const DEFAULT_MAX_QUEUE = 2048;
const DEFAULT_MAX_BATCH = 512;
const DEFAULT_DELAY = 5000;

/** Resolve options against the environment. Bad explicit options throw; bad environment values are logged and ignored. */
export function resolveSpanExportSettings(opts: SpanExportOptions = {}, env: NodeJS.ProcessEnv = process.env): SpanExportSettings {
  const transport = resolveOtlpTransport(opts, 'TRACES', env);
  const maxQueue = positive('maxQueue', opts.maxQueue, 'items') ?? envPositive(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 'items') ?? DEFAULT_MAX_QUEUE;
  const maxBatch = positive('maxBatch', opts.maxBatch, 'items') ?? envPositive(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'items') ?? DEFAULT_MAX_BATCH;
  const delayMillis = positive('delayMillis', opts.delayMillis) ?? envPositive(env, 'OTEL_BSP_SCHEDULE_DELAY') ?? DEFAULT_DELAY;
  // A batch larger than the queue could never fill (the SDK's BatchSpanProcessor clamps it the same way),
  // which a smaller queue alone, from OTEL_BSP_MAX_QUEUE_SIZE, would otherwise cause.
  return { ...transport, maxQueue, maxBatch: Math.min(maxBatch, maxQueue), delayMillis };
}

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/** Whether `id` is `length` lowercase hex digits (a loop, cheaper than a regular expression per id). */
function isHexId(id: string, length: number): boolean {
  if (id.length !== length) return false;
  for (let i = 0; i < length; i++) {
    const c = id.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** The serializers turn ids into bytes without a check: a malformed id would go out as garbage bytes. */
function valid(s: SpanInput): boolean {
  return (
    isHexId(s.traceId, 32) &&
    s.traceId !== ZERO_TRACE_ID &&
    isHexId(s.spanId, 16) &&
    s.spanId !== ZERO_SPAN_ID &&
    (s.parentSpanId === undefined || isHexId(s.parentSpanId, 16)) &&
    s.startUnixNano >= 0n &&
    s.durationNanos >= 0n
  );
}

const NANOS_PER_SECOND = 1_000_000_000n;
/** Seconds and nanoseconds apart: as one number of nanoseconds, a time of today is past 2^53 and would lose its last digits. */
const hrTime = (ns: bigint): HrTime => [Number(ns / NANOS_PER_SECOND), Number(ns % NANOS_PER_SECOND)];

// Read by the serializers, never written: one instance serves every span.
const UNSET: SpanStatus = { code: SpanStatusCode.UNSET };
const NO_LINKS: Link[] = [];
const NO_EVENTS: TimedEvent[] = [];

/**
 * A finished span as the SDK's exporters read it, from what the kernel recorded. Its fields are
 * made when read: our serializer (http/protobuf, grpc) reads only `input`, `resource` and the scope;
 * the SDK's JSON serializer reads the rest. Made up front, the times (three BigInt divisions) and
 * contexts of every span were a tenth of the export's cost.
 */
class KernelSpan implements ReadableSpan {
  readonly kind = SpanKind.INTERNAL;
  readonly status = UNSET;
  readonly links = NO_LINKS;
  readonly events = NO_EVENTS;
  readonly ended = true;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;

  constructor(
    /** What the span was made from: what our serializer writes from. */
    readonly input: SpanInput,
    readonly resource: Resource,
    readonly instrumentationScope: InstrumentationScope,
  ) {}

  get name(): string {
    return this.input.name;
  }

  get attributes(): Record<string, string> {
    return this.input.attributes;
  }

  get startTime(): HrTime {
    return hrTime(this.input.startUnixNano);
  }

  get endTime(): HrTime {
    return hrTime(this.input.startUnixNano + this.input.durationNanos);
  }

  get duration(): HrTime {
    return hrTime(this.input.durationNanos);
  }

  get parentSpanContext(): SpanContext | undefined {
    const s = this.input;
    return s.parentSpanId === undefined || s.parentSpanId === ZERO_SPAN_ID ? undefined : { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: TraceFlags.SAMPLED };
  }

  spanContext(): SpanContext {
    // Sampled: the kernel program chose to record it, and a span without the flag is one a collector may drop.
    return { traceId: this.input.traceId, spanId: this.input.spanId, traceFlags: TraceFlags.SAMPLED };
  }
}

/** Past this many service names, the resources made for them are forgotten and made again when needed. */
const MAX_RESOURCES = 256;

/**
 * The SDK's OTLP trace exporter for the protocol. For http/protobuf and grpc, the SDK's transport
 * (retries, timeouts, compression, OTEL_* variables) with our serializer: the SDK's built each span's
 * message through its object model at ~18 µs a span (BENCHMARKS.md, "All the way to a collector").
 */
function traceExporterFor(s: SpanExportSettings): SdkSpanExporter {
  const common = { url: s.url, timeoutMillis: s.timeoutMillis };
  switch (s.protocol) {
    case 'http/json':
      return new JsonTraceExporter({ ...common, headers: s.headers });
    case 'grpc': {
      const options = convertLegacyOtlpGrpcOptions({ ...common, metadata: s.headers === undefined ? undefined : grpcMetadata(s.headers) }, 'TRACES');
      return new OTLPExporterBase(
        createOtlpGrpcExportDelegate(options, SPAN_SERIALIZER, 'otlp_grpc_span_exporter', TraceExporterMetricsHelper, undefined, 'TraceExportService', '/opentelemetry.proto.collector.trace.v1.TraceService/Export'),
      );
    }
    case 'http/protobuf': {
      const options = convertLegacyHttpOptions({ ...common, headers: s.headers }, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' });
      return new OTLPExporterBase(createOtlpHttpExportDelegate(options, SPAN_SERIALIZER, 'otlp_http_span_exporter', TraceExporterMetricsHelper, undefined));
    }
  }
}

/** OTLP's SpanKind numbering (the API's plus one) and Span.flags: W3C sampled, and "is_remote known (false)". */
const OTLP_KIND_INTERNAL = 1;
const SPAN_FLAGS = 0x001 | 0x100;

/**
 * An ExportTraceServiceRequest written from the spans' inputs: a ResourceSpans per resource (in
 * the order first met), one ScopeSpans each, the spans with their ids, parent, name, kind, times,
 * attributes, an unset status and flags, as the SDK's serializer writes them. Responses are the SDK's.
 */
const SPAN_SERIALIZER: ISerializer<ReadableSpan[], IExportTraceServiceResponse> = {
  serializeRequest(spans) {
    const groups = new Map<Resource, KernelSpan[]>();
    for (const span of spans) {
      if (!(span instanceof KernelSpan)) return ProtobufTraceSerializer.serializeRequest(spans);
      const g = groups.get(span.resource);
      if (g === undefined) groups.set(span.resource, [span]);
      else g.push(span);
    }
    const w = new PbWriter(256 + spans.length * 160);
    for (const [resource, group] of groups) {
      w.message(1, () => {
        w.message(1, () => keyValues(w, 1, resource.attributes));
        w.message(2, () => {
          const scope = group[0].instrumentationScope;
          w.message(1, () => {
            w.string(1, scope.name);
            if (scope.version !== undefined) w.string(2, scope.version);
          });
          for (const span of group) w.message(2, () => writeSpan(w, span.input));
        });
      });
    }
    return w.result();
  },
  deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
};

function writeSpan(w: PbWriter, s: SpanInput): void {
  idField(w, 1, s.traceId);
  idField(w, 2, s.spanId);
  if (s.parentSpanId !== undefined && s.parentSpanId !== ZERO_SPAN_ID) idField(w, 4, s.parentSpanId);
  w.string(5, s.name);
  w.varint(tag(6, VARINT));
  w.varint(OTLP_KIND_INTERNAL);
  fixed64Field(w, 7, s.startUnixNano);
  fixed64Field(w, 8, s.startUnixNano + s.durationNanos);
  keyValues(w, 9, s.attributes);
  w.message(15, () => {}); // status: unset
  w.varint(tag(16, I32));
  w.reserve(4);
  w.pos = w.buf.writeUInt32LE(SPAN_FLAGS, w.pos);
}

const I32 = 5;

/** An id (hex digits, checked by `add`) as a bytes field. */
function idField(w: PbWriter, field: number, hex: string): void {
  const n = hex.length >>> 1;
  w.varint(tag(field, LEN));
  w.varint(n);
  w.reserve(n);
  w.pos += w.buf.write(hex, w.pos, 'hex');
}

function fixed64Field(w: PbWriter, field: number, v: bigint): void {
  w.varint(tag(field, I64));
  w.fixed64Big(v);
}

/**
 * Queues spans and exports them in batches: a request when maxBatch spans wait, or when the oldest has
 * waited delayMillis; one request at a time.
 */
export class SpanExporter {
  readonly settings: SpanExportSettings;
  readonly stats: SpanExportStats = { queued: 0, inFlight: 0, exported: 0, dropped: { queueFull: 0, exportFailed: 0, invalid: 0, shutdown: 0 } };

  private readonly exporter: SdkSpanExporter;
  /** How long shutdown may take: the timeout of one request, as the exporter package resolves it. */
  private readonly shutdownMillis: number;
  private readonly base: Resource;
  private readonly resources = new Map<string, Resource>();
  private readonly scope: InstrumentationScope;

  // The waiting spans: a ring of maxQueue slots, allocated once, with when each was queued (performance.now()).
  private readonly ring: (SpanInput | undefined)[];
  private readonly queuedAt: Float64Array;
  private head = 0;
  /** Spans accepted, and spans taken out of the ring (sent or discarded), since the start: forceFlush waits for the one to reach the other. */
  private accepted = 0;
  private taken = 0;

  private sending: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private closing: Promise<void> | undefined;
  /** Whether the last request failed: a collector that stays down is logged once, not once per batch. */
  private failing = false;
  /** Set once shutdown gave up on the request in flight: its spans are counted as dropped already. */
  private abandoned = false;

  constructor(opts: SpanExportOptions & { resource?: Resource } = {}) {
    installOtelLogging();
    const s = (this.settings = resolveSpanExportSettings(opts));
    this.exporter = traceExporterFor(s);
    this.shutdownMillis = s.timeoutMillis ?? getSharedConfigurationFromEnvironment('TRACES').timeoutMillis ?? getSharedConfigurationDefaults().timeoutMillis;
    this.base = opts.resource ?? buildResource();
    this.scope = { name: SCOPE_NAME, version: exporterVersion() };
    this.ring = new Array<SpanInput | undefined>(s.maxQueue).fill(undefined);
    this.queuedAt = new Float64Array(s.maxQueue);
    logger.info(
      {
        source: 'opentelemetry',
        protocol: s.protocol,
        endpoint: s.url ?? '(environment or default)',
        maxQueue: s.maxQueue,
        maxBatch: s.maxBatch,
        delayMs: s.delayMillis,
      },
      'OTLP span export started',
    );
  }

  /**
   * Queue one span; false when it is dropped (counted in `stats.dropped`). Never blocks; memory stays
   * within maxQueue spans. The span is held as given (not copied) until its request is built: it must not
   * change after this.
   */
  add(span: SpanInput): boolean {
    const st = this.stats;
    if (this.closing !== undefined) {
      st.dropped.shutdown++;
      return false;
    }
    if (!valid(span)) {
      st.dropped.invalid++;
      return false;
    }
    if (st.queued + st.inFlight >= this.settings.maxQueue) {
      st.dropped.queueFull++;
      return false;
    }
    const slot = (this.head + st.queued) % this.ring.length;
    this.ring[slot] = span;
    this.queuedAt[slot] = performance.now();
    st.queued++;
    this.accepted++;
    this.schedule();
    return true;
  }

  /** Export every span queued so far, a batch at a time; resolves once each batch has succeeded or failed. */
  async forceFlush(): Promise<void> {
    const target = this.accepted;
    for (;;) {
      // Spans leave the ring in order: once `target` have been taken and no request is pending, they are all done.
      if (this.sending !== undefined) {
        await this.sending;
        continue;
      }
      if (this.taken >= target) return;
      this.send();
    }
  }

  /**
   * Refuse further spans, export those queued, close the exporter. Bounded by the request timeout: what
   * is still queued or in flight then is dropped (counted in `dropped.shutdown`). Never rejects; once only.
   */
  shutdown(): Promise<void> {
    return (this.closing ??= this.close());
  }

  private async close(): Promise<void> {
    this.stopTimers();
    const deadline = performance.now() + this.shutdownMillis;
    const flushed = await within(this.forceFlush(), this.shutdownMillis);
    if (!flushed) {
      // The pending request's result, when it comes, no longer counts: its spans are counted here.
      const lost = this.stats.queued + this.stats.inFlight;
      this.discardQueued();
      this.stats.dropped.shutdown += this.stats.inFlight;
      this.stats.inFlight = 0;
      this.abandoned = true;
      logger.warn({ source: 'opentelemetry', spans: lost, timeoutMs: this.shutdownMillis }, 'OTLP span export: shutdown timed out, spans dropped');
    }
    const left = Math.max(0, deadline - performance.now());
    await within(
      this.exporter.shutdown().catch((err: unknown) => logger.error({ source: 'opentelemetry', err }, 'OTLP span exporter shutdown failed')),
      left,
    );
  }

  /** Start a request now if a batch is full, else make sure a timer will when the oldest span is due. */
  private schedule(): void {
    if (this.sending !== undefined || this.closing !== undefined || this.stats.queued === 0) return;
    if (this.stats.queued >= this.settings.maxBatch) {
      // Not from inside add(): building and serializing a batch is work for its own turn, not the caller's.
      this.immediate ??= setImmediate(() => {
        this.immediate = undefined;
        this.send();
      }).unref();
      return;
    }
    if (this.timer !== undefined) return;
    const due = this.queuedAt[this.head] + this.settings.delayMillis - performance.now();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.send();
      },
      Math.max(0, due),
    ).unref();
  }

  private stopTimers(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
  }

  /** Hand the oldest spans, up to maxBatch, to the exporter, unless a request is pending already. */
  private send(): void {
    const st = this.stats;
    if (this.sending !== undefined || st.queued === 0) return;
    this.stopTimers();
    const n = Math.min(st.queued, this.settings.maxBatch);
    // Resources are told apart by identity when the request is built: one per service name.
    if (this.resources.size > MAX_RESOURCES) this.resources.clear();
    const batch = new Array<KernelSpan>(n);
    for (let i = 0; i < n; i++) {
      const span = this.ring[this.head] as SpanInput;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.ring.length;
      batch[i] = new KernelSpan(span, this.resourceOf(span.service), this.scope);
    }
    st.queued -= n;
    st.inFlight = n;
    this.taken += n;
    this.sending = new Promise<void>((resolve) => {
      let settled = false;
      const done = (result: ExportResult): void => {
        if (settled) return;
        settled = true;
        this.sending = undefined;
        this.finished(n, result);
        resolve();
        this.schedule();
      };
      try {
        this.exporter.export(batch, done);
      } catch (e) {
        // The exporter serializes before it returns: a throw there is this batch's failure, not the caller's.
        done({ code: ExportResultCode.FAILED, error: e instanceof Error ? e : new Error(String(e)) });
      }
    });
  }

  private finished(n: number, result: ExportResult): void {
    if (this.abandoned) return;
    const st = this.stats;
    st.inFlight = 0;
    if (result.code === ExportResultCode.SUCCESS) {
      st.exported += n;
      if (this.failing) logger.info({ source: 'opentelemetry' }, 'OTLP span export recovered');
      this.failing = false;
      return;
    }
    st.dropped.exportFailed += n;
    const fields = { source: 'opentelemetry', spans: n, err: result.error };
    if (this.failing) logger.debug(fields, 'OTLP span export failed, spans dropped');
    else logger.warn(fields, 'OTLP span export failed, spans dropped');
    this.failing = true;
  }

  private discardQueued(): void {
    const st = this.stats;
    for (let i = 0; i < st.queued; i++) this.ring[(this.head + i) % this.ring.length] = undefined;
    st.dropped.shutdown += st.queued;
    this.taken += st.queued;
    st.queued = 0;
  }

  private resourceOf(service: string): Resource {
    let r = this.resources.get(service);
    if (r === undefined) {
      // Merged last, service.name wins over the base's (its own, or OTEL_SERVICE_NAME's).
      r = this.base.merge(resourceFromAttributes({ 'service.name': service }));
      this.resources.set(service, r);
    }
    return r;
  }
}

/** Whether `p` settled within `ms` (it is not cancelled when it did not). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

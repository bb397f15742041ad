/**
 * OTLP receivers for tests. The trace receiver: node:http (http/protobuf, http/json) or grpc-js (grpc) on
 * 127.0.0.1, keeping every request. Protobuf bodies are decoded with the OTel project's own
 * definitions (@opentelemetry/otlp-transformer 0.52 under the dev-only alias otlp-proto-definitions),
 * JSON bodies parsed; both are brought to one shape (ids as hex, times as decimal strings).
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';

interface ProtoType {
  decode(b: Uint8Array): unknown;
  toObject(m: unknown, o: { longs: StringConstructor; defaults: boolean }): unknown;
}
const otlpRoot = createRequire(import.meta.url)('otlp-proto-definitions/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: ProtoType } } } } };
};
const { ExportTraceServiceRequest } = otlpRoot.opentelemetry.proto.collector.trace.v1;

type KeyValue = { key: string; value: { stringValue?: string } };
/** A span as either encoding has it: ids are bytes in protobuf and hex in JSON, times are strings in both here. */
interface RawSpan {
  traceId: Uint8Array | string;
  spanId: Uint8Array | string;
  parentSpanId?: Uint8Array | string;
  name: string;
  kind?: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: KeyValue[];
  status?: { code?: number };
  flags?: number;
}
interface RawRequest {
  resourceSpans: { resource: { attributes: KeyValue[] }; scopeSpans: { scope: { name: string; version?: string }; spans: RawSpan[] }[] }[];
}

export interface WireSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Record<string, string | undefined>;
  status: number;
}
export interface WireGroup {
  resource: Record<string, string | undefined>;
  scope: { name: string; version?: string };
  spans: WireSpan[];
}

const hex = (v: Uint8Array | string): string => (typeof v === 'string' ? v : Buffer.from(v).toString('hex'));
const attrs = (kvs: KeyValue[] | undefined): Record<string, string | undefined> => Object.fromEntries((kvs ?? []).map((a) => [a.key, a.value.stringValue]));

export function decode(body: Buffer, json: boolean): WireGroup[] {
  const req = (
    json ? JSON.parse(body.toString('utf8')) : ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(body), { longs: String, defaults: false })
  ) as RawRequest;
  return req.resourceSpans.flatMap((rs) =>
    rs.scopeSpans.map((ss) => ({
      resource: attrs(rs.resource.attributes),
      scope: ss.scope,
      spans: ss.spans.map((s) => ({
        traceId: hex(s.traceId),
        spanId: hex(s.spanId),
        ...(s.parentSpanId === undefined || hex(s.parentSpanId) === '' ? {} : { parentSpanId: hex(s.parentSpanId) }),
        name: s.name,
        kind: s.kind ?? 0,
        startTimeUnixNano: String(s.startTimeUnixNano),
        endTimeUnixNano: String(s.endTimeUnixNano),
        attributes: attrs(s.attributes),
        status: s.status?.code ?? 0,
      })),
    })),
  );
}

export const SPAN_KIND_INTERNAL = 1; // OTLP's SpanKind numbering: 0 is unspecified
export const STATUS_UNSET = 0;

/**
 * Span.flags of every span of a JSON body. Only JSON: the 0.52 protobuf definitions predate the field
 * (number 16), so their decoder skips it.
 */
export const jsonFlags = (body: Buffer): (number | undefined)[] =>
  (JSON.parse(body.toString('utf8')) as RawRequest).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => s.flags)));
export const SAMPLED = 0x1;
export const HAS_IS_REMOTE = 0x100;

export interface Received {
  path: string;
  contentType: string;
  headers: IncomingHttpHeaders | Record<string, unknown>;
  body: Buffer;
}

/** ok: 200; hang: never answer; a number: that status (with Retry-After when given). */
export type Reply = 'ok' | 'hang' | { status: number; retryAfter?: string };

export interface Receiver {
  endpoint: string;
  got: Received[];
  reply: Reply;
  /** Resolves once `n` requests have arrived; fails after `ms`. */
  waitFor(n: number, ms?: number): Promise<void>;
  /** The groups of request `i`. */
  groups(i: number): WireGroup[];
  /** How many spans each request carried. */
  sizes(): number[];
  close(): Promise<void>;
}

/** Waits on a list of requests that grows: `notify` after each push, `waitFor(n)` resolves once `n` are there. */
export function waiter(got: readonly unknown[]): { notify(): void; waitFor(n: number, ms?: number): Promise<void> } {
  const waiting = new Set<() => void>();
  return {
    notify: () => waiting.forEach((w) => w()),
    waitFor: (n, ms = 5000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (got.length < n) return;
          clearTimeout(timer);
          waiting.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiting.delete(check);
          reject(new Error(`receiver: ${got.length} of ${n} requests after ${ms}ms`));
        }, ms);
        waiting.add(check);
        check();
      }),
  };
}

function receiverOf(endpoint: string, got: Received[], close: () => Promise<void>): { rx: Receiver; notify(): void } {
  const w = waiter(got);
  const rx: Receiver = {
    endpoint,
    got,
    reply: 'ok',
    waitFor: w.waitFor,
    groups: (i) => decode(got[i].body, got[i].contentType.includes('json')),
    sizes: () => got.map((_, i) => rx.groups(i).reduce((n, g) => n + g.spans.length, 0)),
    close,
  };
  return { rx, notify: w.notify };
}

export async function httpReceiver(): Promise<Receiver> {
  const got: Received[] = [];
  const held: ServerResponse[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const contentType = req.headers['content-type'] ?? '';
      got.push({ path: req.url ?? '', contentType, headers: req.headers, body: Buffer.concat(chunks) });
      const reply = r.rx.reply;
      if (reply === 'hang') held.push(res);
      else if (reply !== 'ok') res.writeHead(reply.status, reply.retryAfter === undefined ? {} : { 'retry-after': reply.retryAfter }).end();
      // An empty ExportTraceServiceResponse: full success.
      else if (contentType.includes('json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      r.notify();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const r = receiverOf(`http://127.0.0.1:${port}`, got, () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  return r.rx;
}

export const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

export async function grpcReceiver(): Promise<Receiver> {
  const got: Received[] = [];
  const server = new grpc.Server();
  const raw = (b: Buffer) => b;
  server.addService(
    { export: { path: TRACE_EXPORT_PATH, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
    {
      export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
        got.push({ path: TRACE_EXPORT_PATH, contentType: 'application/grpc', headers: call.metadata.getMap(), body: call.request });
        done(null, Buffer.alloc(0));
        r.notify();
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const r = receiverOf(`http://127.0.0.1:${port}`, got, async () => server.forceShutdown());
  return r.rx;
}

/** A port nothing listens on: bound, then closed. */
export async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

import { Registry } from 'prom-client';
import { loadConfig, parseConfig } from '../src/config/parse.js';
import { ConfigErrors } from '../src/yaml/errors.js';
import type { Config } from '../src/config/types.js';
import { Daemon } from '../src/collect/daemon.js';
import { CheckpointError } from '../src/collect/checkpoint.js';
import { ExpositionCache } from '../src/publish/prometheus.js';
import { registerProcessMetrics, SelfMetrics } from '../src/publish/self-metrics.js';
import { RegistryProducer, SnapshotProducer, startOtel, type Otel } from '../src/publish/otel.js';
import { createExporterServer, ScrapeGate } from '../src/server/http.js';
import { describeWeb, LiveWeb, loadWeb, warnValidity, type LoadedWeb } from '../src/server/live-web.js';
import { logger } from '../src/log.js';
import { describeCompat, loadCompat, type CompatRef } from '../src/compat/load.js';
import { setMmapThreshold } from '../src/bpf/libbpf.js';
import { startExternalGc } from '../src/util/external-gc.js';
import { responding } from '../src/util/slices.js';
import { encodePointsAhead } from '../src/publish/otlp-encode.js';
import { SpanExporter, type SpanExportStats, type SpanInput } from '../src/publish/otel-spans.js';

const EMPTY_SPAN_STATS: SpanExportStats = { queued: 0, inFlight: 0, exported: 0, dropped: { queueFull: 0, exportFailed: 0, invalid: 0, shutdown: 0 } };

export interface RunOptions {
  config?: string;
  /** ebpf_exporter's configs (--config.dir, --config.names), instead of `config`. */
  compat?: CompatRef;
  /** --web.listen-address, once or more: a server on each. */
  listen: string[];
  /** TLS, headers and basic auth (exporter-toolkit's web config format). */
  webConfig?: string;
  /** --web.max-connections; absent: derived from the fd limit (src/server/connections.ts). */
  maxConnections?: number;
  /** --web.telemetry-path: where the metrics are served. */
  telemetryPath: string;
  /** --web.max-requests: scrapes answered at once (0: no limit). */
  maxRequests: number;
  /** --web.disable-exporter-metrics: no process metrics (process_*, nodejs_*). */
  disableExporterMetrics: boolean;
  inventory: boolean;
  version: string;
}

const STOP_DEADLINE_MS = 4_500;

function parseListen(listen: string): { host: string | undefined; port: number } {
  const m = /^(?:\[?([^\]]*)\]?)?:(\d+)$/.exec(listen);
  if (m === null || Number(m[2]) > 65535) throw new Error('bad listen address');
  return { host: m[1] === '' || m[1] === undefined ? undefined : m[1], port: Number(m[2]) };
}

/** `run`: the daemon. Resolves with the exit code once it has stopped. */
export async function run(opts: RunOptions): Promise<number> {
  // The config, read at start and at every SIGHUP.
  const load = (): Config => {
    if (opts.compat === undefined) return opts.config === undefined ? parseConfig('maps: []\n', '(no config)') : loadConfig(opts.config);
    const { config: translated, notes } = loadCompat(opts.compat);
    for (const n of notes) logger.warn({ at: `${n.at.file}:${n.at.line}:${n.at.column}` }, n.message);
    return translated;
  };
  let config: Config;
  try {
    config = load();
  } catch (e) {
    if (!(e instanceof ConfigErrors)) throw e;
    for (const err of e.errors) console.error(err.message);
    return 2;
  }
  const listen: { text: string; host: string | undefined; port: number }[] = [];
  for (const text of opts.listen) {
    try {
      listen.push({ text, ...parseListen(text) });
    } catch {
      console.error(`bpf-map-exporter: --web.listen-address must be HOST:PORT or :PORT, not ${JSON.stringify(text)}`);
      return 2;
    }
  }
  // Checked before anything starts: a broken web config is exit 2 with its lines, like a broken config.
  let web: LoadedWeb | undefined;
  if (opts.webConfig !== undefined) {
    try {
      web = loadWeb(opts.webConfig);
    } catch (e) {
      if (!(e instanceof ConfigErrors)) throw e;
      for (const err of e.errors) console.error(err.message);
      return 2;
    }
  }

  setMmapThreshold(128 * 1024);
  // Collected between responses: a forced collection's pause (10-30 ms at 100,000 series) delays no scrape being written.
  const stopGc = startExternalGc({ busy: responding });
  const registry = new Registry();
  // CPU, memory, fds, event-loop lag, GC...: before any job publishes, so a clash is caught at set().
  // Their names stay reserved without them, so a config means the same either way.
  if (!opts.disableExporterMetrics) registerProcessMetrics(registry);
  const exposition = new ExpositionCache(registry);
  // Registered up front: a reload may add maps to a config that had none, or drop them all.
  const self = new SelfMetrics(registry, { version: opts.version, inventory: true });
  // OTLP push runs when the config has an otel section or the standard variables name an endpoint.
  const otlpEnv = process.env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const producer = config.otel === undefined && otlpEnv === undefined ? undefined : new SnapshotProducer({ version: opts.version });
  // Spans of ring buffer jobs: the exporter is made when the first span comes (a reload may add the
  // first spans job), over the same OTLP settings as metrics, with the TRACES variables.
  let spanExporter: SpanExporter | undefined;
  const spans = {
    add: (span: SpanInput): boolean => (spanExporter ??= new SpanExporter({ ...config.otel })).add(span),
    get stats() {
      return spanExporter?.stats ?? EMPTY_SPAN_STATS;
    },
  };
  // --inventory holds for the process; the config's `inventory:` is read again at every reload.
  const daemon = new Daemon(config, { exposition, self, producer, inventory: opts.inventory, spans });
  try {
    daemon.start();
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw e;
    console.error(`bpf-map-exporter: ${e.message}`);
    return 2;
  }
  // The registry goes over OTLP too (self-metrics, inventory, process metrics): all that /metrics shows.
  const otel: Otel | undefined =
    producer === undefined ? undefined : startOtel([producer, new RegistryProducer(registry, { version: opts.version })], { ...config.otel, serviceVersion: opts.version });
  // Our protobuf serializer copies each series' point message, encoded once: new series are encoded
  // as their snapshot arrives, between turns of the loop, not all in the export's one turn.
  if (producer !== undefined && otel?.settings.protocol !== 'http/json') producer.onFamily = (cols, bounds) => void encodePointsAhead(cols.table, bounds);

  const live = web === undefined || opts.webConfig === undefined ? undefined : new LiveWeb(opts.webConfig, web);
  const notReady = (): string | undefined => daemon.notReady() ?? (exposition.hasDocument() ? undefined : 'the first /metrics document is being rendered');
  // One server per address, sharing the cache, the readiness, the fd limit and the scrape limit.
  const scrapes = new ScrapeGate(opts.maxRequests);
  const servers = listen.map(() =>
    createExporterServer({ exposition, notReady, version: opts.version, web: live, maxConnections: opts.maxConnections, listeners: listen.length, telemetryPath: opts.telemetryPath, scrapes, status: () => self.status() }),
  );
  // SIGTERM and SIGINT are ours from here on, before the servers listen: a signal that comes as
  // start-up ends (a kubelet's, or a test's that waits for `listening`) gets the final drain and
  // checkpoint, never the default action that kills the process with its drained records unsaved.
  let reloading = Promise.resolve();
  let stopping = false;
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping: final drain, checkpoint, OTLP flush');
      const deadline = setTimeout(() => {
        logger.error('stop took too long; exiting');
        resolve(1);
      }, STOP_DEADLINE_MS);
      deadline.unref();
      for (const http of servers) http.close();
      stopGc();
      let unsaved: string | undefined;
      reloading
        .then(() => daemon.stop())
        .then((why) => {
          unsaved = why;
          return Promise.all([otel?.shutdown(), spanExporter?.shutdown()]);
        })
        .then(() => {
          clearTimeout(deadline);
          // The final checkpoint failed: what was drained since the last good one is not on disk.
          if (unsaved !== undefined) logger.error({ err: unsaved }, 'stopped, but the drain state could not be saved');
          resolve(unsaved === undefined ? 0 : 1);
        })
        .catch((err: unknown) => {
          logger.error({ err }, 'stop failed');
          resolve(1);
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

  for (const [k, http] of servers.entries()) {
    if (stopping) break;
    await new Promise<void>((resolve, reject) => {
      http.server.once('error', reject);
      http.server.listen(listen[k].port, listen[k].host, () => resolve());
    }).catch((e: NodeJS.ErrnoException) => {
      console.error(`bpf-map-exporter: cannot listen on ${listen[k].text}: ${e.code ?? e.message}`);
      process.exit(1);
    });
    // Stopped while this one was being opened: its close came before it listened.
    if (stopping) http.close();
  }
  // Before the listening lines, which tests (and people) take as the end of start-up.
  if (web !== undefined) warnValidity(web);
  for (const http of servers) {
    if (stopping) break;
    const addr = http.server.address();
    logger.info(
      { address: typeof addr === 'object' && addr !== null ? `${addr.address}:${addr.port}` : addr, scheme: http.scheme, maxConnections: http.connections.cap, maps: config.maps.length, config: opts.compat === undefined ? (opts.config ?? null) : describeCompat(opts.compat), ...(web === undefined ? {} : describeWeb(web)) },
      'listening',
    );
  }

  process.on('SIGHUP', () => {
    // The web config is followed on its own; a SIGHUP makes it look at once.
    live?.refresh('now');
    reloading = reloading.then(async () => {
      if (opts.config === undefined && opts.compat === undefined) return;
      let next: Config;
      try {
        next = load();
      } catch (e) {
        if (!(e instanceof ConfigErrors)) throw e;
        logger.error({ problems: e.errors.map((x) => x.message) }, 'reload refused: the new config has problems; the old one keeps running');
        return;
      }
      await daemon.reload(next);
      logger.info({ maps: next.maps.length }, 'config reloaded');
      // OTLP export (metrics and spans) keeps the settings it started with: say so when they changed.
      if (canonical(next.otel ?? null) !== canonical(config.otel ?? null)) {
        logger.warn({ source: 'opentelemetry' }, 'reload: the otel section changed; OTLP export keeps the settings it started with until the exporter restarts');
      }
    }).catch((err: unknown) => logger.error({ err }, 'reload failed'));
  });

  return stopped;
}

/** JSON with every object's keys in order: equal settings written in another order compare equal. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_, x: unknown) => (x !== null && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x));
}

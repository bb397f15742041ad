/**
 * The paths the server answers and its scrape limit: constants the CLI checks its flags against
 * before anything else loads (this module imports nothing).
 */

/** The paths the exporter answers besides the telemetry path, which may not take one of them. */
export const RESERVED_PATHS: ReadonlySet<string> = new Set(['/', '/healthz', '/readyz']);

/** Scrapes answered at once unless --web.max-requests says otherwise (Prometheus exporters' default). */
export const DEFAULT_MAX_REQUESTS = 40;

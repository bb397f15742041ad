import { isatty } from 'node:tty';
import pino, { type DestinationStream, type Logger } from 'pino';

/** How log lines are written: logfmt (what Prometheus exporters write) or JSON lines. */
export type LogFormat = 'logfmt' | 'json';

/** LOG_FORMAT when set; otherwise logfmt at a terminal (a person reads it) and JSON elsewhere (a collector does). */
export function logFormat(env: string | undefined = process.env.LOG_FORMAT, tty: boolean = isatty(2)): LogFormat {
  if (env === 'logfmt' || env === 'json') return env;
  return tty ? 'logfmt' : 'json';
}

/** A logfmt value: bare when it can be, else in double quotes with `\`, `"` and control characters escaped. */
function logfmtValue(v: unknown): string {
  const s = typeof v === 'string' ? v : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  if (s !== '' && !/[\s"=\\\p{Cc}]/u.test(s)) return s;
  return JSON.stringify(s);
}

/**
 * One pino JSON line as a logfmt line: `time=<ISO> level=<name> msg=<text>`, then the other fields in
 * their order (objects as JSON, an error as its message). pid, hostname and name are left out: one
 * process writes this stream.
 */
export function toLogfmt(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const { time, level, msg, ...rest } = rec;
  for (const k of OMITTED) delete rest[k];
  const parts = [`time=${typeof time === 'number' ? new Date(time).toISOString() : logfmtValue(time)}`, `level=${logfmtValue(level)}`];
  if (msg !== undefined) parts.push(`msg=${logfmtValue(msg)}`);
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined) continue;
    const err = k === 'err' && typeof v === 'object' && v !== null && 'message' in v ? (v as { message: unknown }).message : undefined;
    parts.push(`${k}=${logfmtValue(err ?? v)}`);
  }
  return `${parts.join(' ')}\n`;
}

/** pino's fields that logfmt leaves out: one process writes the stream. */
const OMITTED = ['pid', 'hostname', 'name'];

/** Writes each line to `fd` as logfmt, through the same synchronous stream as JSON (it waits out a full pipe). */
function logfmtDestination(fd: number): DestinationStream {
  const out = pino.destination({ fd, sync: true });
  return { write: (line: string) => void out.write(toLogfmt(line.endsWith('\n') ? line.slice(0, -1) : line)) };
}

/** A logger writing to `fd` in `format`, level names (not pino's numbers) in both formats. */
export function createLogger(format: LogFormat, level: string, fd = 2): Logger {
  return pino(
    { name: 'bpf-map-exporter', level, formatters: { level: (label) => ({ level: label }) } },
    format === 'logfmt' ? logfmtDestination(fd) : pino.destination({ fd, sync: true }),
  );
}

/**
 * The process-wide structured logger on stderr. Level from LOG_LEVEL (default info), format from
 * LOG_FORMAT (see logFormat); the CLI sets both from --log.level and --log.format.
 */
export const logger: Logger = createLogger(logFormat(), process.env.LOG_LEVEL ?? 'info');

export type { Logger };

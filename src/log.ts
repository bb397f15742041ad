import pino, { type Logger } from 'pino';

/** The process-wide structured logger (JSON lines on stderr). Level from LOG_LEVEL, default info. */
export const logger: Logger = pino(
  { name: 'bpf-map-exporter', level: process.env.LOG_LEVEL ?? 'info' },
  pino.destination({ fd: 2, sync: true }),
);

export type { Logger };

import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SeriesState } from '../aggregate/types.js';
import { ExporterError } from '../util/errors.js';

/** What a state file holds: per drain job, per metric, the totals drained so far. */
export interface Checkpoint {
  version: 1;
  savedAt: string;
  jobs: Record<string, Record<string, SeriesState[]>>;
  /** Per drain job, the last drain journal record counted in its totals (absent in older files). */
  journal?: Record<string, number>;
}

/** The totals and journal positions of a state file. */
export type Saved = Required<Pick<Checkpoint, 'jobs' | 'journal'>> & { savedAt?: string };

export class CheckpointError extends ExporterError {
  declare readonly code: 'ERR_CHECKPOINT';
  /** The errno behind it (ENOSPC, EROFS...), or 'none' for a file of the wrong shape. */
  readonly errnoName: string;
  constructor(message: string, errnoName = 'none') {
    super('ERR_CHECKPOINT', message);
    this.errnoName = errnoName;
  }
}

/**
 * Write the checkpoint atomically: a temporary file beside the target, fsynced, then renamed over
 * it, and the folder fsynced, so a crash leaves either the old or the new file, never half of one.
 */
export function saveCheckpoint(path: string, jobs: Checkpoint['jobs'], journal: Record<string, number> = {}): void {
  const body: Checkpoint = { version: 1, savedAt: new Date().toISOString(), jobs, journal };
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(body));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    syncFolder(path);
  } catch (e) {
    // A full disk must not leave the half-written temporary file behind for good.
    rmSync(tmp, { force: true });
    const errno = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(`cannot write state file ${path}: ${errno ?? (e as Error).message}`, errno);
  }
}

/** Make a rename into `path`'s folder durable: fsync the folder. */
export function syncFolder(path: string): void {
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** The saved totals, or an empty checkpoint when there is no file yet. A corrupt file is an error, not a reset. */
export function loadCheckpoint(path: string): Saved {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { jobs: {}, journal: {} };
    throw new CheckpointError(`cannot read state file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CheckpointError(`state file ${path} is not valid JSON; move it away to start from zero`);
  }
  const shape = checkpointShape(parsed);
  if (shape !== undefined) throw new CheckpointError(`state file ${path}: ${shape}; move it away to start from zero`);
  const c = parsed as Checkpoint;
  return { jobs: c.jobs, journal: c.journal ?? {}, savedAt: c.savedAt };
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;

/**
 * What is wrong with the shape of a parsed state file (the first thing found), or undefined. Every
 * total is checked: a string or a missing field would otherwise surface as a TypeError every cycle,
 * or as totals turned into strings.
 */
function checkpointShape(c: unknown): string | undefined {
  if (!isObject(c) || c.version !== 1) return 'not a version 1 checkpoint';
  if (!isObject(c.jobs)) return 'jobs is not an object';
  if (c.journal !== undefined && (!isObject(c.journal) || !Object.values(c.journal).every((n) => Number.isSafeInteger(n) && (n as number) >= 0))) return 'journal is not an object of record numbers';
  for (const [job, metrics] of Object.entries(c.jobs)) {
    if (!isObject(metrics)) return `jobs.${job} is not an object`;
    for (const [metric, series] of Object.entries(metrics)) {
      const at = `jobs.${job}.${metric}`;
      if (!Array.isArray(series)) return `${at} is not a list`;
      for (let i = 0; i < series.length; i++) {
        const s: unknown = series[i];
        const where = `${at}[${i}]`;
        if (!isObject(s)) return `${where} is not an object`;
        if (!isObject(s.labels) || !Object.values(s.labels).every((v) => typeof v === 'string')) return `${where}.labels is not an object of strings`;
        if (typeof s.value !== 'number' || !Number.isFinite(s.value)) return `${where}.value is ${JSON.stringify(s.value) ?? 'missing'}, expected a number`;
        if (typeof s.sum !== 'number' || !Number.isFinite(s.sum)) return `${where}.sum is ${JSON.stringify(s.sum) ?? 'missing'}, expected a number`;
        if (!Array.isArray(s.counts) || !s.counts.every(isCount)) return `${where}.counts is not a list of numbers >= 0`;
      }
    }
  }
  return undefined;
}

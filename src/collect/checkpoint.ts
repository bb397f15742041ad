import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SeriesState } from '../aggregate/types.js';

/** What a state file holds: per drain job, per metric, the totals drained so far. */
export interface Checkpoint {
  version: 1;
  savedAt: string;
  jobs: Record<string, Record<string, SeriesState[]>>;
}

export class CheckpointError extends Error {
  readonly code = 'ERR_CHECKPOINT';
}

/**
 * Write the checkpoint atomically: a temporary file beside the target, fsynced, then renamed over
 * it, and the folder fsynced, so a crash leaves either the old or the new file, never half of one.
 */
export function saveCheckpoint(path: string, jobs: Checkpoint['jobs']): void {
  const body: Checkpoint = { version: 1, savedAt: new Date().toISOString(), jobs };
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
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch (e) {
    throw new CheckpointError(`cannot write state file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The saved totals, or an empty checkpoint when there is no file yet. A corrupt file is an error, not a reset. */
export function loadCheckpoint(path: string): Checkpoint['jobs'] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CheckpointError(`cannot read state file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CheckpointError(`state file ${path} is not valid JSON; move it away to start from zero`);
  }
  const c = parsed as Partial<Checkpoint>;
  if (c.version !== 1 || typeof c.jobs !== 'object' || c.jobs === null) {
    throw new CheckpointError(`state file ${path} is not a version 1 checkpoint; move it away to start from zero`);
  }
  return c.jobs;
}

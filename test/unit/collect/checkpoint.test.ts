import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError, loadCheckpoint, saveCheckpoint } from '../../../src/collect/checkpoint.js';

const dir = mkdtempSync(join(tmpdir(), 'bme-checkpoint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const series = (over: Record<string, unknown> = {}) => ({ labels: { k: 'a' }, value: 12, sum: 0, counts: [], ...over });
function load(body: unknown): string | Record<string, unknown> {
  const f = join(dir, 'state.json');
  writeFileSync(f, typeof body === 'string' ? body : JSON.stringify(body));
  try {
    return loadCheckpoint(f).jobs;
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw e;
    return e.message.replace(f, 'FILE');
  }
}

describe('loadCheckpoint', () => {
  it('reads back what saveCheckpoint wrote', () => {
    const jobs = { flows: { flow_bytes_total: [series(), series({ labels: { k: 'b' }, value: 5 })] } };
    saveCheckpoint(join(dir, 'state.json'), jobs, { flows: 17 });
    expect(loadCheckpoint(join(dir, 'state.json'))).toMatchObject({ jobs, journal: { flows: 17 } });
    // A file from before the journal has no positions: every record counts.
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ version: 1, savedAt: 'x', jobs }));
    expect(loadCheckpoint(join(dir, 'state.json')).journal).toEqual({});
  });

  it('refuses a file of the wrong shape in one line that says where, instead of failing every cycle', () => {
    const v1 = (jobs: unknown) => ({ version: 1, savedAt: 'x', jobs });
    expect(load('null')).toBe('state file FILE: not a version 1 checkpoint; move it away to start from zero');
    expect(load(v1(null))).toBe('state file FILE: jobs is not an object; move it away to start from zero');
    expect(load(v1({ flows: { m: [{ labels: { k: 'a' }, value: 1, sum: 0 }] } }))).toBe('state file FILE: jobs.flows.m[0].counts is not a list of numbers >= 0; move it away to start from zero');
    expect(load(v1({ flows: { m: [series({ value: '5' })] } }))).toBe('state file FILE: jobs.flows.m[0].value is "5", expected a number; move it away to start from zero');
    expect(load(v1({ flows: { m: [series({ labels: { k: 7 } })] } }))).toBe('state file FILE: jobs.flows.m[0].labels is not an object of strings; move it away to start from zero');
    expect(load({ version: 1, savedAt: 'x', jobs: {}, journal: { flows: '3' } })).toBe('state file FILE: journal is not an object of record numbers; move it away to start from zero');
    expect(load(v1({ flows: { m: {} } }))).toBe('state file FILE: jobs.flows.m is not a list; move it away to start from zero');
    expect(load(v1({ flows: { m: [series(), series({ value: -3 })] } }))).toEqual({ flows: { m: [series(), series({ value: -3 })] } });
  });
});

describe('saveCheckpoint', () => {
  it('leaves no temporary file behind when it cannot write', () => {
    const folder = mkdtempSync(join(dir, 'blocked-'));
    const target = join(folder, 'state.json');
    // A directory where the file goes: the temporary file is written, then the rename fails.
    mkdirSync(target);
    expect(() => saveCheckpoint(target, {})).toThrow(CheckpointError);
    expect(readdirSync(folder)).toEqual(['state.json']);
  });
});

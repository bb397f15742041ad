import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Journal } from '../../../src/collect/journal.js';

const dir = mkdtempSync(join(tmpdir(), 'bme-journal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const fresh = () => join(dir, `j${n++}`);
/** A batch of `count` entries: 4-byte keys i, 8-byte values i * 10. */
function batch(count: number, from = 0): { keys: Buffer; values: Buffer } {
  const keys = Buffer.alloc(4 * count + 12); // room past `count`, as the reader's buffers have
  const values = Buffer.alloc(8 * count + 24);
  for (let i = 0; i < count; i++) {
    keys.writeUInt32LE(from + i, 4 * i);
    values.writeBigUInt64LE(BigInt((from + i) * 10), 8 * i);
  }
  return { keys, values };
}

describe('Journal', () => {
  it('gives back what was appended, numbered after the state file, with only the entries taken', async () => {
    const path = fresh();
    const { journal, records } = Journal.open(path, 41);
    expect(records).toEqual([]);
    const a = batch(3);
    const b = batch(2, 3);
    expect(journal.append('flows', a.keys, a.values, 3, 4, 8)).toBe(42);
    expect(journal.append('other/job', b.keys, b.values, 2, 4, 8)).toBe(43);
    await journal.commit();
    journal.close();
    const again = Journal.open(path, 0);
    expect(again.records.map((r) => [r.seq, r.job, r.count, r.keySize, r.valueSize])).toEqual([
      [42, 'flows', 3, 4, 8],
      [43, 'other/job', 2, 4, 8],
    ]);
    expect(again.records[0].keys).toEqual(a.keys.subarray(0, 12));
    expect(again.records[1].values).toEqual(b.values.subarray(0, 16));
    // Numbering goes on after the highest record read.
    expect(again.journal.append('flows', a.keys, a.values, 1, 4, 8)).toBe(44);
    again.journal.close();
  });

  it('cuts a torn or corrupt tail and appends after the whole records', () => {
    const path = fresh();
    const { journal } = Journal.open(path, 0);
    const a = batch(4);
    journal.append('flows', a.keys, a.values, 4, 4, 8);
    journal.append('flows', a.keys, a.values, 4, 4, 8);
    journal.close();
    const whole = statSync(path).size;
    // A crash in the middle of the second record.
    truncateSync(path, whole - 5);
    const torn = Journal.open(path, 0);
    expect(torn.records.map((r) => r.seq)).toEqual([1]);
    expect(statSync(path).size).toBe(whole / 2);
    torn.journal.append('flows', a.keys, a.values, 4, 4, 8);
    torn.journal.close();
    // A flipped byte fails its checksum: that record and everything after it are cut.
    const bytes = readFileSync(path);
    bytes[whole / 2 + 30] ^= 0xff;
    writeFileSync(path, bytes);
    expect(Journal.open(path, 0).records.map((r) => r.seq)).toEqual([1]);
    appendFileSync(path, Buffer.alloc(7));
    const j = Journal.open(path, 0);
    expect(j.records.map((r) => r.seq)).toEqual([1]);
    j.journal.close();
  });

  it('after a checkpoint keeps only the records not yet counted, and sets aside what cannot be', () => {
    const path = fresh();
    const { journal } = Journal.open(path, 0);
    const a = batch(2);
    journal.append('flows', a.keys, a.values, 2, 4, 8);
    journal.compact([]);
    expect(statSync(path).size).toBe(0);
    const waiting = { seq: 7, job: 'late', keySize: 4, valueSize: 8, count: 2, keys: a.keys.subarray(0, 8), values: a.values.subarray(0, 16) };
    journal.compact([waiting]);
    expect(Journal.open(path, 0).records).toEqual([waiting]);
    // New records go after the kept ones.
    expect(journal.append('flows', a.keys, a.values, 1, 4, 8)).toBe(2);
    journal.close();
    expect(Journal.open(path, 0).records.map((r) => r.seq)).toEqual([7, 2]);
    const { journal: j2 } = Journal.open(path, 0);
    const aside = j2.setAside('gone job', [waiting]);
    j2.close();
    expect(aside.startsWith(`${path}.gone_job.`)).toBe(true);
    expect(Journal.open(aside, 0).records).toEqual([waiting]);
    expect(readdirSync(dir).filter((f) => f.includes('tmp-'))).toEqual([]);
  });

  it('lets appends of several jobs share one sync', async () => {
    const { journal } = Journal.open(fresh(), 0);
    const a = batch(1);
    journal.append('x', a.keys, a.values, 1, 4, 8);
    const first = journal.commit();
    journal.append('y', a.keys, a.values, 1, 4, 8);
    const second = journal.commit();
    await Promise.all([first, second]);
    journal.close();
  });
});

import { closeSync, fdatasync, mkdirSync, fstatSync, ftruncateSync, openSync, readFileSync, renameSync, rmSync, writevSync, fsyncSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { syncFolder } from './checkpoint.js';
import { ExporterError } from '../util/errors.js';

/**
 * The drain journal: every batch a drain takes out of a map is appended here, as the kernel gave it
 * (keys and values), and made durable before the next batch call. The state file holds totals up to
 * a sequence number per job; the journal holds what came after. After a crash the records past the
 * state file's numbers are added again, so a crash loses at most the one batch whose call returned
 * but whose record was not yet written. A checkpoint that saved the totals empties the journal.
 *
 * Record: magic u32 | body length u32 | crc32 of the body u32 | body, little-endian; body: seq f64 |
 * keySize u32 | valueSize u32 | count u32 | job name length u16 | job (utf8) | keys | values.
 */
export interface JournalRecord {
  seq: number;
  job: string;
  keySize: number;
  /** Bytes per entry in `values` (all CPU slots of a per-CPU map). */
  valueSize: number;
  count: number;
  keys: Buffer;
  values: Buffer;
}

export class JournalError extends ExporterError {
  declare readonly code: 'ERR_JOURNAL';
  readonly errnoName: string;
  constructor(message: string, errnoName: string) {
    super('ERR_JOURNAL', message);
    this.errnoName = errnoName;
  }
}

const MAGIC = 0x4a454d42;
const PREFIX = 12;
const FIXED_BODY = 8 + 4 + 4 + 4 + 2;

const errnoOf = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

export class Journal {
  readonly path: string;
  private fd: number;
  /** Bytes of whole records in the file; a failed append is cut back to this. */
  private size: number;
  private nextSeq: number;
  /** Bytes written / made durable: a commit waits until everything written before it is synced. */
  private written = 0;
  private synced = 0;
  private syncing: Promise<void> | undefined;
  /** A failed append could not be cut back: the tail must be cut before anything is appended again. */
  private torn = false;

  private constructor(path: string, fd: number, size: number, nextSeq: number) {
    this.path = path;
    this.fd = fd;
    this.size = size;
    this.nextSeq = nextSeq;
  }

  /**
   * Open (or create) the journal and read its records. A torn tail (a crash in the middle of an
   * append) is cut off: its batch is the one a crash may lose. `afterSeq` is the highest sequence
   * number the state file knows of; new records are numbered after it and after every record read.
   */
  static open(path: string, afterSeq: number): { journal: Journal; records: JournalRecord[]; cutBytes: number } {
    let fd: number;
    let bytes: Buffer;
    try {
      mkdirSync(dirname(path), { recursive: true });
      fd = openSync(path, 'a+', 0o600);
      bytes = readFileSync(fd);
    } catch (e) {
      throw new JournalError(`cannot open drain journal ${path}: ${errnoOf(e)}`, errnoOf(e));
    }
    const records: JournalRecord[] = [];
    let at = 0;
    while (at + PREFIX <= bytes.length) {
      const length = bytes.readUInt32LE(at + 4);
      if (bytes.readUInt32LE(at) !== MAGIC || length < FIXED_BODY || at + PREFIX + length > bytes.length) break;
      const body = bytes.subarray(at + PREFIX, at + PREFIX + length);
      if (crc32(body) !== bytes.readUInt32LE(at + 8)) break;
      const record = decode(body);
      if (record === undefined) break;
      records.push(record);
      at += PREFIX + length;
    }
    const journal = new Journal(path, fd, at, records.reduce((n, r) => Math.max(n, r.seq), afterSeq) + 1);
    if (at < bytes.length) journal.cut();
    return { journal, records, cutBytes: bytes.length - at };
  }

  /** Append one drained batch; returns its sequence number. Durable once commit() resolves. */
  append(job: string, keys: Uint8Array, values: Uint8Array, count: number, keySize: number, valueSize: number): number {
    if (this.torn) this.cut();
    const seq = this.nextSeq++;
    const parts = encode({ seq, job, keySize, valueSize, count, keys: keys.subarray(0, count * keySize), values: values.subarray(0, count * valueSize) });
    const total = parts.reduce((n, p) => n + p.length, 0);
    let done = 0;
    try {
      done = writevSync(this.fd, parts);
    } catch (e) {
      this.cut();
      throw new JournalError(`cannot append to drain journal ${this.path}: ${errnoOf(e)}`, errnoOf(e));
    }
    if (done !== total) {
      // A short write is a full disk that has not said so yet.
      this.cut();
      throw new JournalError(`cannot append to drain journal ${this.path}: ENOSPC (short write)`, 'ENOSPC');
    }
    this.size += total;
    this.written += total;
    return seq;
  }

  /** Resolves once everything appended so far is on disk. Appends of several jobs share one sync. */
  async commit(): Promise<void> {
    const need = this.written;
    while (this.synced < need) {
      this.syncing ??= this.sync();
      await this.syncing;
    }
  }

  private async sync(): Promise<void> {
    const upTo = this.written;
    const fd = this.fd;
    try {
      await new Promise<void>((resolve, reject) => fdatasync(fd, (e) => (e === null ? resolve() : reject(e))));
      this.synced = Math.max(this.synced, upTo);
    } catch (e) {
      throw new JournalError(`cannot sync drain journal ${this.path}: ${errnoOf(e)}`, errnoOf(e));
    } finally {
      this.syncing = undefined;
    }
  }

  /**
   * After a checkpoint saved every total: start the journal again with only `keep` (records not yet
   * added to any total, e.g. of a map that is not open yet). With nothing to keep the file is just
   * emptied (a stale record is harmless: its number is at or below the state file's); otherwise the
   * kept records are written to a new file that replaces the old one whole.
   */
  compact(keep: readonly JournalRecord[]): void {
    // Everything appended so far is in the saved totals now: a commit waiting for it may go on.
    this.synced = this.written;
    if (keep.length === 0) {
      try {
        ftruncateSync(this.fd, 0);
        this.size = 0;
        this.torn = false;
      } catch {
        // Left for the next checkpoint: the records in it are already counted in the state file.
      }
      return;
    }
    const tmp = `${this.path}.tmp-${process.pid}`;
    try {
      rmSync(tmp, { force: true });
      const fd = openSync(tmp, 'a+', 0o600);
      let size = 0;
      try {
        for (const r of keep) size += writevSync(fd, encode(r));
        fsyncSync(fd);
      } catch (e) {
        closeSync(fd);
        throw e;
      }
      renameSync(tmp, this.path);
      syncFolder(this.path);
      const old = this.fd;
      // A sync still running on the old file finishes before it is closed.
      if (this.syncing === undefined) closeSync(old);
      else void this.syncing.catch(() => undefined).finally(() => closeSync(old));
      this.fd = fd;
      this.size = size;
      this.torn = false;
    } catch {
      rmSync(tmp, { force: true });
    }
  }

  /**
   * Records that cannot be counted (their job is gone, or its map changed shape) go to a file of
   * their own beside the journal, in the same format, rather than being dropped. Returns its path.
   */
  setAside(job: string, records: readonly JournalRecord[]): string {
    const file = `${this.path}.${job.replace(/[^A-Za-z0-9_.-]/g, '_')}.${Date.now()}`;
    let created = false;
    try {
      const fd = openSync(file, 'wx', 0o600);
      created = true;
      try {
        for (const r of records) writevSync(fd, encode(r));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      if (created) rmSync(file, { force: true });
      throw new JournalError(`cannot write ${file}: ${errnoOf(e)}`, errnoOf(e));
    }
    return file;
  }

  close(): void {
    closeSync(this.fd);
  }

  /** Cut the file back to its whole records; if that fails too, try again before the next append. */
  private cut(): void {
    try {
      ftruncateSync(this.fd, this.size);
      this.torn = fstatSync(this.fd).size !== this.size;
    } catch {
      this.torn = true;
    }
  }
}

/** A record as the buffers to write: its prefix and header, then its keys and values as they are. */
function encode(r: Omit<JournalRecord, 'keys' | 'values'> & { keys: Uint8Array; values: Uint8Array }): Uint8Array[] {
  const name = Buffer.from(r.job);
  const head = Buffer.alloc(PREFIX + FIXED_BODY + name.length);
  head.writeDoubleLE(r.seq, PREFIX);
  head.writeUInt32LE(r.keySize, PREFIX + 8);
  head.writeUInt32LE(r.valueSize, PREFIX + 12);
  head.writeUInt32LE(r.count, PREFIX + 16);
  head.writeUInt16LE(name.length, PREFIX + 20);
  name.copy(head, PREFIX + FIXED_BODY);
  head.writeUInt32LE(MAGIC, 0);
  head.writeUInt32LE(FIXED_BODY + name.length + r.keys.length + r.values.length, 4);
  head.writeUInt32LE(crc32(r.values, crc32(r.keys, crc32(head.subarray(PREFIX)))), 8);
  return [head, r.keys, r.values];
}

function decode(body: Buffer): JournalRecord | undefined {
  const seq = body.readDoubleLE(0);
  const keySize = body.readUInt32LE(8);
  const valueSize = body.readUInt32LE(12);
  const count = body.readUInt32LE(16);
  const nameLength = body.readUInt16LE(20);
  const keysAt = FIXED_BODY + nameLength;
  const valuesAt = keysAt + count * keySize;
  if (valuesAt + count * valueSize !== body.length || !Number.isSafeInteger(seq)) return undefined;
  return {
    seq,
    job: body.toString('utf8', FIXED_BODY, keysAt),
    keySize,
    valueSize,
    count,
    // Copies: the records outlive the file's buffer only as long as they wait to be added.
    keys: Buffer.from(body.subarray(keysAt, valuesAt)),
    values: Buffer.from(body.subarray(valuesAt)),
  };
}

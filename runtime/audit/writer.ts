/**
 * The file side of the log: appends sealed records to the newest file with one write and one fdatasync,
 * rotates to a new file (starting with an anchor) past `rotateBytes`, and deletes the oldest files past
 * `retainFiles`. One call at a time: the committer serializes them.
 *
 * At open, a torn tail (a last line without its newline, or lines of NUL bytes: power loss or a kill during
 * a write, never acknowledged since a record is acknowledged only after the sync) is appended to
 * `<file>.torn` and cut off with a warning (files.ts, tornTailStart), and the chain
 * continues from the last good record. Complete but invalid lines at the end are left in place as
 * evidence (verify reports them) and the log moves on to a new file anchored to the last good record.
 */
import { type FileHandle, mkdir, open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { ClawboxError } from '../errors.js';
import { isoTimestamp } from '../system/timestamps.js';
import { type AuditFile, auditFile, listAuditFiles, parseLine, readLines, tornTailStart } from './files.js';
import { type AuditAnchor, type AuditLine, type AuditRecord, GENESIS, hashLine, isAuditLine, type RecordBody, sealAnchor, sealRecord } from './record.js';

export interface WriterOptions {
  logger: Logger;
  /** Rotate once the newest file reaches this size. */
  rotateBytes: number;
  /** Files kept, the newest included; 0 keeps all. */
  retainFiles: number;
  now?: () => Date;
}

export interface WriterHead {
  seq: number;
  hash: string;
  file: AuditFile;
  /** Durable bytes of the newest file. */
  bytes: number;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function appendDurably(file: string, data: Buffer): Promise<void> {
  const handle = await open(file, 'a', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function lineText(line: AuditLine): string {
  return `${JSON.stringify(line)}\n`;
}

export class AuditWriter {
  readonly dir: string;
  readonly #options: WriterOptions;
  readonly #now: () => Date;
  #handle: FileHandle;
  #file: AuditFile;
  #bytes: number;
  #seq: number;
  #hash: string;
  #broken: Error | null = null;
  #holds = 0;

  private constructor(dir: string, options: WriterOptions, handle: FileHandle, file: AuditFile, bytes: number, seq: number, hash: string) {
    this.dir = dir;
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
    this.#handle = handle;
    this.#file = file;
    this.#bytes = bytes;
    this.#seq = seq;
    this.#hash = hash;
  }

  static async open(dir: string, options: WriterOptions): Promise<AuditWriter> {
    const log = options.logger;
    const now = options.now ?? (() => new Date());
    try {
      await mkdir(dir, { recursive: true, mode: 0o750 });
    } catch (error) {
      throw new ClawboxError('STATE_UNWRITABLE', `cannot create the audit folder ${dir}: ${(error as Error).message}`, { path: dir }, { cause: error });
    }
    const files = await listAuditFiles(dir);
    while (files.length > 0) {
      const newest = files.at(-1)!;
      const buffer = await readFile(newest.path);
      const bytes = tornTailStart(buffer);
      const torn = buffer.subarray(bytes);
      const lines = bytes === 0 ? [] : buffer.subarray(0, bytes - 1).toString('utf8').split('\n');
      if (torn.length > 0) {
        // Kept beside the log for whoever investigates, out of the chain.
        await appendDurably(`${newest.path}.torn`, Buffer.concat([torn, Buffer.from('\n')]));
        log.warn(
          { code: 'STATE_CORRUPT', file: newest.name, line: lines.length + 1, bytes: torn.length },
          `${newest.name}: cut off a torn tail from line ${lines.length + 1} (a write interrupted by a crash); moved to ${newest.name}.torn`,
        );
      }
      const handle = await open(newest.path, 'a', 0o600);
      if (torn.length > 0) {
        await handle.truncate(bytes);
        await handle.datasync();
      }
      if (lines.length === 0) {
        // A rotation that crashed before its anchor was durable: the previous file is still the newest.
        await handle.close();
        await unlink(newest.path);
        await syncDir(dir);
        log.warn({ file: newest.name }, `${newest.name}: removed an empty audit file left by an interrupted rotation`);
        files.pop();
        continue;
      }
      let last: AuditLine | null = null;
      let lastIndex = lines.length - 1;
      let lastSeq = 0;
      for (; lastIndex >= 0; lastIndex--) {
        const parsed = parseLine(lines[lastIndex]!);
        if (!isAuditLine(parsed)) continue;
        lastSeq = Math.max(lastSeq, parsed.seq);
        if (hashLine(parsed) === parsed.hash) {
          last = parsed;
          break;
        }
      }
      const writer = new AuditWriter(dir, options, handle, newest, bytes, last?.seq ?? lastSeq, last?.hash ?? GENESIS);
      if (lastIndex !== lines.length - 1) {
        log.error(
          { code: 'STATE_CORRUPT', file: newest.name, continues_from_seq: last?.seq ?? null },
          `${newest.name}: the last lines are not valid audit records (edited or damaged); left in place for verify, continuing in a new file`,
        );
        await writer.#rotate();
      }
      return writer;
    }
    const first = auditFile(dir, 1);
    const anchor = sealAnchor({ seq: 0, time: isoTimestamp(now().getTime()), file: 1, oldest: 1, prev: GENESIS });
    const { handle, bytes } = await AuditWriter.#create(first, anchor);
    return new AuditWriter(dir, options, handle, first, bytes, anchor.seq, anchor.hash);
  }

  static async #create(file: AuditFile, anchor: AuditAnchor): Promise<{ handle: FileHandle; bytes: number }> {
    const handle = await open(file.path, 'wx', 0o600);
    try {
      const text = lineText(anchor);
      await handle.writeFile(text);
      await handle.datasync();
      await syncDir(path.dirname(file.path));
      return { handle, bytes: Buffer.byteLength(text) };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  get head(): WriterHead {
    return { seq: this.#seq, hash: this.#hash, file: this.#file, bytes: this.#bytes };
  }

  /** Seals and appends the records in one write; resolves once they are on disk. */
  async append(bodies: readonly RecordBody[]): Promise<AuditRecord[]> {
    if (this.#broken) throw new ClawboxError('STATE_UNWRITABLE', `the audit log cannot be written: ${this.#broken.message}`);
    let seq = this.#seq;
    let prev = this.#hash;
    const records = bodies.map((body) => {
      const record = sealRecord(body, ++seq, prev);
      prev = record.hash;
      return record;
    });
    const text = records.map(lineText).join('');
    try {
      await this.#handle.writeFile(text);
      await this.#handle.datasync();
    } catch (error) {
      await this.#undo(error as Error);
      throw new ClawboxError('STATE_UNWRITABLE', `cannot write the audit log ${this.#file.name}: ${(error as Error).message}`, { path: this.#file.path }, { cause: error });
    }
    this.#bytes += Buffer.byteLength(text);
    this.#seq = seq;
    this.#hash = prev;
    if (this.#bytes >= this.#options.rotateBytes) {
      // The records are durable already; a failed rotation is retried after the next write.
      await this.#rotate().catch((error: unknown) => this.#options.logger.error({ err: error }, 'audit log rotation failed; still writing the current file'));
    }
    return records;
  }

  // A failed write may have left part of the batch in the file: cut back to the last durable record, or
  // refuse further writes when even that fails, so the chain never continues past a hole.
  async #undo(cause: Error): Promise<void> {
    try {
      await this.#handle.truncate(this.#bytes);
      await this.#handle.datasync();
    } catch {
      this.#broken = cause;
    }
  }

  /**
   * Age-based retention: deletes the oldest files whose newest line is older than `cutoff`, never the file
   * being written. It first rotates to a new file whose anchor says the log now starts after them, so the
   * chain still verifies. Returns the deleted file names (none while a verification holds the files).
   */
  async retireBefore(cutoff: Date): Promise<string[]> {
    if (this.#holds > 0) return [];
    let last = 0;
    for (const file of await listAuditFiles(this.dir)) {
      if (file.index >= this.#file.index) break;
      const { lines } = await readLines(file.path);
      const newest = lines.length > 0 ? (parseLine(lines[lines.length - 1]!) as { time?: unknown } | null) : null;
      const time = typeof newest?.time === 'string' ? Date.parse(newest.time) : Number.NaN;
      if (!(time < cutoff.getTime())) break;
      last = file.index;
    }
    if (last === 0) return [];
    await this.#rotate(last + 1);
    const old = (await listAuditFiles(this.dir)).filter((f) => f.index <= last);
    for (const file of old) await unlink(file.path).catch(() => {});
    await syncDir(this.dir).catch(() => {});
    return old.map((f) => f.name);
  }

  async #rotate(keepFrom = 0): Promise<void> {
    const next = auditFile(this.dir, this.#file.index + 1);
    const retain = this.#options.retainFiles;
    const existing = await listAuditFiles(this.dir);
    const kept = existing.map((f) => f.index).filter((index) => index >= keepFrom && (retain === 0 || index > next.index - retain));
    const anchor = sealAnchor({ seq: this.#seq, time: isoTimestamp(this.#now().getTime()), file: next.index, oldest: Math.min(next.index, ...kept), prev: this.#hash });
    const { handle, bytes } = await AuditWriter.#create(next, anchor);
    const old = this.#handle;
    this.#handle = handle;
    this.#file = next;
    this.#bytes = bytes;
    this.#hash = anchor.hash;
    await old.close();
    await this.#prune();
  }

  /** Defers retention deletes (while a verification reads the files) until the returned release. */
  hold(): () => Promise<void> {
    this.#holds++;
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      this.#holds--;
      await this.#prune();
    };
  }

  async #prune(): Promise<void> {
    const retain = this.#options.retainFiles;
    if (retain === 0 || this.#holds > 0) return;
    const old = (await listAuditFiles(this.dir)).filter((f) => f.index <= this.#file.index - retain);
    if (old.length === 0) return;
    for (const file of old) {
      await unlink(file.path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') this.#options.logger.warn({ err: error, file: file.name }, `cannot delete the old audit file ${file.name}`);
      });
    }
    await syncDir(this.dir).catch(() => {});
    this.#options.logger.info({ deleted: old.map((f) => f.name) }, `audit retention: deleted ${old.length} old file(s)`);
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}

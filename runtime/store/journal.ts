/**
 * An append-only journal of JSON records (one per line) beside a state document: a durable change costs
 * one small synchronous write (O_DSYNC) instead of rewriting the whole document (temp file, fsync, rename,
 * fsync of the directory). The owner replays the records over its document at start and folds them in
 * (`reset()` after the document is written) when the journal grows.
 *
 * Several appends may be in flight at once (a disk overlaps synchronous writes; waiting for one before
 * starting the next puts a whole write on the path of every change made meanwhile). Each append gets its
 * own byte range, reserved when it is called, so the file holds the records in call order whatever order
 * the writes finish in; and every record carries a sequence number from its owner, so replay orders by
 * that and not by the file (a record put back after a failed write is written again later).
 *
 * Power loss can tear a write or leave the range of an unfinished one empty (zeros) while a later one is on
 * disk: neither was acknowledged (`append` resolves only once its write is synced). Such bytes are skipped
 * with a warning, a torn last line is cut off on open, and nothing unreadable is fatal.
 */
import { constants } from 'node:fs';
import { type FileHandle, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

/** Writes that return only once the data is durable (Linux, macOS); 0 where the platform lacks it. */
const DSYNC = constants.O_DSYNC ?? 0;
const NEWLINE = 0x0a;
/** Lines end at a newline; zeros are the empty range of a write that never reached the disk. */
const SEPARATORS = /[\n\0]+/;

/** What a journal holds: records its owner numbers in the order of the changes they describe. */
export interface JournalRecord {
  seq: number;
}

export class Journal<T extends JournalRecord> {
  #handle: FileHandle;
  #records: number;
  /** Where the next append's bytes go (bytes reserved so far, written or in flight). */
  #end: number;
  readonly #inFlight = new Set<Promise<unknown>>();

  private constructor(
    readonly file: string,
    handle: FileHandle,
    records: number,
    end: number,
  ) {
    this.#handle = handle;
    this.#records = records;
    this.#end = end;
  }

  /**
   * Opens (creating) the journal and returns the valid records it holds in sequence order, and the
   * highest sequence number found (0 when none): the owner numbers its next records above it.
   */
  static async open<T extends JournalRecord>(
    file: string,
    options: { logger: Logger; valid: (record: unknown) => record is T },
  ): Promise<{ journal: Journal<T>; records: T[]; lastSeq: number }> {
    let bytes: Buffer = Buffer.alloc(0);
    try {
      bytes = await readFile(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    // Everything after the last newline is a torn write (or nothing).
    const kept = bytes.lastIndexOf(NEWLINE) + 1;
    const torn = bytes.subarray(kept);
    if (torn.some((byte) => byte !== 0 && byte !== NEWLINE)) {
      options.logger.warn({ file, bytes: torn.length }, `${path.basename(file)}: dropped a torn last record (power loss during a write)`);
    }
    const records: T[] = [];
    let skipped = 0;
    let lastSeq = 0;
    for (const line of bytes.toString('utf8', 0, kept).split(SEPARATORS)) {
      if (!line.trim()) continue;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        skipped++;
        continue;
      }
      // A line without a number (written before records had one) keeps its place in the file.
      if (typeof record === 'object' && record !== null && typeof (record as JournalRecord).seq !== 'number') {
        (record as JournalRecord).seq = lastSeq;
      }
      if (!options.valid(record)) {
        skipped++;
        continue;
      }
      records.push(record);
      lastSeq = Math.max(lastSeq, record.seq);
    }
    if (skipped > 0) options.logger.warn({ code: 'STATE_CORRUPT', file, skipped }, `${path.basename(file)}: skipped ${skipped} unreadable records`);
    // Stable: records of equal number (old unnumbered lines) stay in file order.
    records.sort((a, b) => a.seq - b.seq);
    // O_DSYNC: each write is on disk when it returns (one thread-pool job per append instead of a write
    // and an fdatasync one after the other); where the flag is missing, append syncs. No O_APPEND: each
    // append writes at the offset it reserved, so appends can overlap.
    const handle = await open(file, constants.O_RDWR | constants.O_CREAT | DSYNC, 0o600);
    // Cut the torn tail so the next append starts on a line of its own.
    if (torn.length > 0) await handle.truncate(kept);
    return { journal: new Journal<T>(file, handle, records.length, kept), records, lastSeq };
  }

  /** Records appended since the last reset (including those found at open and those in flight). */
  get records(): number {
    return this.#records;
  }

  get bytes(): number {
    return this.#end;
  }

  /** Appends in flight. */
  get writing(): number {
    return this.#inFlight.size;
  }

  /**
   * Appends the records in one write; resolves once they are on disk. Calls may overlap: each write has
   * the byte range reserved at its call, and resolves on its own (a later one may resolve first).
   */
  append(records: readonly T[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    let text = '';
    for (const record of records) text += `${JSON.stringify(record)}\n`;
    const data = Buffer.from(text);
    const at = this.#end;
    this.#end += data.length;
    this.#records += records.length;
    const write = this.#write(data, at);
    this.#inFlight.add(write);
    void write.then(
      () => this.#inFlight.delete(write),
      () => this.#inFlight.delete(write),
    );
    return write;
  }

  async #write(data: Buffer, at: number): Promise<void> {
    let done = 0;
    // A regular file takes the whole write at once; a short write (a full disk, say) is finished or fails.
    while (done < data.length) {
      const { bytesWritten } = await this.#handle.write(data, done, data.length - done, at + done);
      done += bytesWritten;
    }
    if (!DSYNC) await this.#handle.datasync();
  }

  /** Empties the journal once the appends in flight are done; call only once what it held is durable elsewhere. */
  async reset(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    await this.#handle.truncate(0);
    await this.#handle.sync();
    this.#records = 0;
    this.#end = 0;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    await this.#handle.close();
  }
}

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
 *
 * With `preallocate` (bytes), the file is extended ahead of the appends with zeros, written and synced in
 * the background: an append then overwrites blocks the file already has, and its synchronous write need not
 * also commit the file system's metadata (a new size, new blocks), which costs the disk a second flush per
 * append on ext4. The zeros go past every byte reserved when the extension starts, so they never overwrite
 * a record; an append that reaches them before they are written waits for that write (once per
 * `preallocate` bytes at most). Zeros after the last record are the file's spare room, not damage.
 */
import { constants, write, writev } from 'node:fs';
import { type FileHandle, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

/** Writes that return only once the data is durable (Linux, macOS); 0 where the platform lacks it. */
const DSYNC = constants.O_DSYNC ?? 0;
const NEWLINE = 0x0a;
/** The zero buffer the room ahead of the appends is written from (repeated in one writev). */
const ZERO_CHUNK = 64 * 1024;
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
  /** Bytes the file has (records and the zeros ahead of them); appends below this overwrite in place. */
  #allocated: number;
  /** How far ahead of the appends the file is extended (0: never). */
  readonly #preallocate: number;
  /** The extension being written, and where it starts: an append reaching past that waits for it. */
  #extending: Promise<void> | null = null;
  #extendingFrom = 0;

  private constructor(
    readonly file: string,
    handle: FileHandle,
    records: number,
    end: number,
    allocated: number,
    preallocate: number,
  ) {
    this.#handle = handle;
    this.#records = records;
    this.#end = end;
    this.#allocated = allocated;
    this.#preallocate = preallocate;
  }

  /**
   * Opens (creating) the journal and returns the valid records it holds in sequence order, and the
   * highest sequence number found (0 when none): the owner numbers its next records above it.
   */
  static async open<T extends JournalRecord>(
    file: string,
    options: { logger: Logger; valid: (record: unknown) => record is T; preallocate?: number },
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
    // Zeros only: the spare room of a preallocated journal (or a write that never reached the disk).
    const damaged = torn.some((byte) => byte !== 0 && byte !== NEWLINE);
    if (damaged) {
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
    // Cut a torn tail so the next append starts on a line of its own; zeros are overwritten as they are.
    if (damaged) await handle.truncate(kept);
    // Room is made once appends come (a journal that waits its turn needs none).
    const journal = new Journal<T>(file, handle, records.length, kept, damaged ? kept : bytes.length, options.preallocate ?? 0);
    return { journal, records, lastSeq };
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
   * `toLine` gives a record's line (JSON, no newline) where its owner has the text at hand already.
   */
  append<R extends T>(records: readonly R[], toLine: (record: R) => string = JSON.stringify): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    let text = '';
    for (const record of records) text += `${toLine(record)}\n`;
    const data = Buffer.from(text);
    const at = this.#end;
    this.#end += data.length;
    this.#records += records.length;
    const extending = this.#extending;
    const write = extending && at + data.length > this.#extendingFrom ? extending.then(() => this.#write(data, at)) : this.#write(data, at);
    this.#extendIfNeeded();
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
    while (done < data.length) done += await this.#writeAt(data, done, at + done);
    if (!DSYNC) await this.#handle.datasync();
  }

  /**
   * Zeros from `position`, in one synchronous write where the file takes it whole: one small zero buffer
   * given several times (a buffer the size of the room would be a large allocation now and then).
   */
  async #writeZeros(position: number, length: number): Promise<void> {
    const zeros = Buffer.alloc(Math.min(ZERO_CHUNK, length));
    for (let done = 0; done < length; ) {
      const left = length - done;
      const buffers = Array.from({ length: Math.ceil(left / zeros.length) }, (_, i) =>
        i < Math.floor(left / zeros.length) ? zeros : zeros.subarray(0, left % zeros.length),
      );
      done += await new Promise<number>((resolve, reject) => {
        writev(this.#handle.fd, buffers, position + done, (error, written) => (error ? reject(error) : resolve(written)));
      });
    }
  }

  /** One write on the descriptor: the callback API costs the event loop less per call than FileHandle.write. */
  #writeAt(data: Buffer, from: number, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      write(this.#handle.fd, data, from, data.length - from, position, (error, written) => (error ? reject(error) : resolve(written)));
    });
  }

  /** The file's size: records and the zeros ahead of them. */
  get allocated(): number {
    return this.#allocated;
  }

  /**
   * Extends the file with zeros once the appends come within a quarter of `preallocate` of its end. The
   * zeros start an eighth of it past every byte reserved so far: the appends of the next moments (those
   * right after a reset, say) go below them and need not wait (see the header).
   */
  #extendIfNeeded(): void {
    if (this.#preallocate <= 0 || this.#extending || this.#allocated - this.#end > this.#preallocate / 4) return;
    const from = Math.max(this.#allocated, this.#end + Math.floor(this.#preallocate / 8));
    const to = from + this.#preallocate;
    this.#extendingFrom = from;
    this.#extending = (async () => {
      try {
        // The descriptor is O_DSYNC: the zeros (and the new size) are on disk when this returns.
        await this.#writeZeros(from, to - from);
        this.#allocated = to;
      } catch {
        // No room, say: the appends grow the file as they would without preallocation.
      } finally {
        this.#extending = null;
      }
    })();
  }

  /** Empties the journal once the appends in flight are done; call only once what it held is durable elsewhere. */
  async reset(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    await this.#extending;
    await this.#handle.truncate(0);
    await this.#handle.sync();
    this.#records = 0;
    this.#end = 0;
    this.#allocated = 0;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    await this.#extending;
    await this.#handle.close();
  }
}

/**
 * An append-only journal of JSON records (one per line) beside a state document: a durable change costs
 * one small synchronous append (O_DSYNC) instead of rewriting the whole document (temp file, fsync, rename,
 * fsync of the directory); bench:commands measured what that did to command latency (bench/README.md,
 * "Device commands", before/after). The owner replays the records over its document at start and folds them in
 * (`reset()` after the document is written) when the journal grows.
 *
 * Power loss can tear the last line; it is dropped on open (it was never acknowledged: `append` resolves
 * only after the sync). Other unreadable or invalid lines are skipped with a warning, never fatal.
 */
import { constants } from 'node:fs';
import { type FileHandle, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

/** Writes that return only once the data is durable (Linux, macOS); 0 where the platform lacks it. */
const DSYNC = constants.O_DSYNC ?? 0;

export class Journal<T> {
  #handle: FileHandle;
  #records: number;
  #bytes: number;

  private constructor(
    readonly file: string,
    handle: FileHandle,
    records: number,
    bytes: number,
  ) {
    this.#handle = handle;
    this.#records = records;
    this.#bytes = bytes;
  }

  /** Opens (creating) the journal and returns the valid records it holds, oldest first. */
  static async open<T>(file: string, options: { logger: Logger; valid: (record: unknown) => record is T }): Promise<{ journal: Journal<T>; records: T[] }> {
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const lines = text.split('\n');
    // Everything after the last newline is a torn append (or nothing).
    const torn = lines.pop() ?? '';
    if (torn.trim()) options.logger.warn({ file, bytes: torn.length }, `${path.basename(file)}: dropped a torn last record (power loss during a write)`);
    const records: T[] = [];
    let skipped = 0;
    for (const line of lines) {
      if (!line.trim()) continue;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        skipped++;
        continue;
      }
      if (options.valid(record)) records.push(record);
      else skipped++;
    }
    if (skipped > 0) options.logger.warn({ code: 'STATE_CORRUPT', file, skipped }, `${path.basename(file)}: skipped ${skipped} unreadable records`);
    // O_DSYNC: each append is on disk when its write returns (one thread-pool job per group commit
    // instead of a write and an fdatasync one after the other); where the flag is missing, append syncs.
    const handle = await open(file, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | DSYNC, 0o600);
    // Cut the torn tail so the next append starts on a line of its own.
    const kept = Buffer.byteLength(text) - Buffer.byteLength(torn);
    if (torn.length > 0) await handle.truncate(kept);
    return { journal: new Journal<T>(file, handle, records.length, kept), records };
  }

  /** Records appended since the last reset (including those found at open). */
  get records(): number {
    return this.#records;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Appends the records in one write; resolves once they are on disk. */
  async append(records: readonly T[]): Promise<void> {
    if (records.length === 0) return;
    const text = records.map((r) => `${JSON.stringify(r)}\n`).join('');
    await this.#handle.write(text);
    if (!DSYNC) await this.#handle.datasync();
    this.#records += records.length;
    this.#bytes += Buffer.byteLength(text);
  }

  /** Empties the journal; call only once what it held is durable elsewhere. */
  async reset(): Promise<void> {
    await this.#handle.truncate(0);
    await this.#handle.sync();
    this.#records = 0;
    this.#bytes = 0;
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}

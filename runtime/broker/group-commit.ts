/**
 * Group commit for the broker's LevelDB: every write the persistence makes resolves only once it is in
 * LevelDB's log and fsynced, and the writes of one event-loop turn (and all that arrive while a commit is
 * being synced) share one batch and one fsync.
 *
 * The guarantee: what a write's promise resolved for survives kill -9 of the process and a crash of the
 * OS or a power cut, as far as the disk honours fsync. LevelDB's default (`sync: false`) only survives
 * kill -9 (the log write reaches the OS page cache) and loses the last writes on a power cut; the broker
 * acknowledges messages only after these promises resolve (durable-acks.ts), so the stronger promise is
 * what an acknowledgement means.
 *
 * Writes are applied in call order (one batch at a time, operations in a batch in order), which LevelDB
 * alone does not ensure for concurrent puts on one key: two retained messages on one topic stored as
 * two quick puts could land in either order.
 *
 * This wraps the database handle under aedes-persistence-level, so the persistence itself (and aedes'
 * persistence interface above it) is unchanged. It implements the part of the abstract-level API that
 * aedes-persistence-level uses: get, values, put, del, batch (array and chained), clear, close.
 */
import type { Level } from 'level';

type Value = Buffer | string;

interface EncodingOptions {
  valueEncoding?: string;
}

export type WriteOp = { type: 'put'; key: string; value: Value; valueEncoding?: string } | { type: 'del'; key: string };

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

/** The next batch to commit, or a clear that must run between two batches (it cannot join one). */
type Job = { kind: 'batch'; ops: WriteOp[]; waiters: Waiter[] } | { kind: 'clear'; range: Record<string, unknown>; waiters: Waiter[] };

/** What `batch()` without arguments returns: collects operations, `write()` commits them together. */
export interface ChainedBatch {
  put(key: string, value: Value, options?: EncodingOptions): ChainedBatch;
  del(key: string): ChainedBatch;
  write(): Promise<void>;
  close(): Promise<void>;
  readonly length: number;
}

export interface GroupCommitStats {
  /** Batches written (each one fsync). */
  commits: number;
  /** Operations written in them. */
  ops: number;
}

export class GroupCommitDb {
  readonly #db: Level<string, Value>;
  readonly #jobs: Job[] = [];
  #running = false;
  #closed = false;
  readonly stats: GroupCommitStats = { commits: 0, ops: 0 };

  constructor(db: Level<string, Value>) {
    this.#db = db;
  }

  get status(): string {
    return this.#db.status;
  }

  get(key: string, options?: EncodingOptions): Promise<Value | undefined> {
    return this.#db.get(key, options as never) as Promise<Value | undefined>;
  }

  values(options: Record<string, unknown>): AsyncIterable<Value> {
    return this.#db.values(options as never) as unknown as AsyncIterable<Value>;
  }

  put(key: string, value: Value, options?: EncodingOptions): Promise<void> {
    return this.write([putOp(key, value, options)]);
  }

  del(key: string): Promise<void> {
    return this.write([{ type: 'del', key }]);
  }

  batch(): ChainedBatch;
  batch(ops: readonly WriteOp[], options?: EncodingOptions): Promise<void>;
  batch(ops?: readonly WriteOp[], options?: EncodingOptions): ChainedBatch | Promise<void> {
    if (ops === undefined) return this.#chained();
    const encoding = options?.valueEncoding;
    return this.write(ops.map((op) => (op.type === 'put' && encoding && !op.valueEncoding ? { ...op, valueEncoding: encoding } : op)));
  }

  /** Queues operations for the next commit; resolves when they are synced. */
  write(ops: readonly WriteOp[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the broker store is closed'));
    if (ops.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let job = this.#jobs.at(-1);
      // Only a batch that has not started can take more; the one being written is no longer queued.
      if (job?.kind !== 'batch') {
        job = { kind: 'batch', ops: [], waiters: [] };
        this.#jobs.push(job);
      }
      job.ops.push(...ops);
      job.waiters.push({ resolve, reject });
      this.#kick();
    });
  }

  /** Runs after the writes queued before it and before those queued after it. */
  clear(range: Record<string, unknown>): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the broker store is closed'));
    return new Promise((resolve, reject) => {
      this.#jobs.push({ kind: 'clear', range, waiters: [{ resolve, reject }] });
      this.#kick();
    });
  }

  /** Commits what is queued, then closes the database. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#running || this.#jobs.length > 0) await new Promise((resolve) => setImmediate(resolve));
    await this.#db.close();
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = true;
    // One turn's writes (every message of a socket read, say) join the first batch.
    setImmediate(() => void this.#drain());
  }

  async #drain(): Promise<void> {
    for (let job = this.#jobs.shift(); job; job = this.#jobs.shift()) {
      try {
        if (job.kind === 'batch') {
          await this.#db.batch(job.ops as never, { sync: true });
          this.stats.commits++;
          this.stats.ops += job.ops.length;
        } else {
          await this.#db.clear(job.range as never);
        }
      } catch (error) {
        for (const waiter of job.waiters) waiter.reject(error as Error);
        continue;
      }
      for (const waiter of job.waiters) waiter.resolve();
    }
    this.#running = false;
  }

  #chained(): ChainedBatch {
    const ops: WriteOp[] = [];
    const chained: ChainedBatch = {
      put: (key, value, options) => {
        ops.push(putOp(key, value, options));
        return chained;
      },
      del: (key) => {
        ops.push({ type: 'del', key });
        return chained;
      },
      write: () => this.write(ops.splice(0)),
      close: async () => {
        ops.length = 0;
      },
      get length() {
        return ops.length;
      },
    };
    return chained;
  }
}

function putOp(key: string, value: Value, options?: EncodingOptions): WriteOp {
  return options?.valueEncoding ? { type: 'put', key, value, valueEncoding: options.valueEncoding } : { type: 'put', key, value };
}

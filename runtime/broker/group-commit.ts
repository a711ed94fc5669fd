/**
 * Group commit for the broker's LevelDB: writes are committed with fsync, and the writes of one event-loop
 * turn (and all that arrive while a commit is being synced) share one batch and one fsync.
 *
 * Two kinds of write:
 * - strict (the default): the promise resolves once the write is committed. What it resolved for survives
 *   kill -9 of the process and a crash of the OS or a power cut, as far as the disk honours fsync
 *   (LevelDB's default, `sync: false`, loses the last writes on a power cut).
 * - deferred (keys the `deferrable` option accepts: the message path's retained messages and queues):
 *   the promise resolves as soon as the write is queued, so aedes goes on with the client's next packets
 *   instead of waiting for the disk; `synced()` then says when everything queued so far is committed. The
 *   broker sends the PUBACK of a message only after that (durable-acks.ts), so an acknowledgement still
 *   means "on disk". Reads see queued writes at once (`get` looks at them first; a range read waits until
 *   they are committed). At most `maxDeferredOps` deferred operations wait at a time; beyond that a write
 *   is strict, which slows the publishers down to what the disk takes.
 *
 * The last `recentValues` committed values of deferrable keys are kept for `get`: a message queued for a
 * persistent session is read back twice right after it was written (when it is sent, when its PUBACK
 * comes), and each LevelDB read is a round trip through the thread pool. Every write goes through here,
 * so what is kept cannot be stale.
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
type Job = (
  | { kind: 'batch'; ops: WriteOp[]; waiters: Waiter[]; deferred: number }
  | { kind: 'clear'; range: Record<string, unknown>; waiters: Waiter[]; deferred: 0 }
) & {
  /** Callers of synced(), with the failure count when they asked. */
  syncWaiters?: { resolve: () => void; reject: (error: Error) => void; failures: number }[];
};

/** A queued write as reads see it until it is committed: the value, or a deletion. */
interface Pending {
  job: Job;
  value: Value | undefined;
}

export interface GroupCommitOptions {
  /** Keys whose writes may resolve before they are committed (see above); none by default. */
  deferrable?: (key: string) => boolean;
  /** Bound on deferred operations waiting for their commit. */
  maxDeferredOps?: number;
  /** How many committed values of deferrable keys `get` answers from memory (deletions count too). */
  recentValues?: number;
}

const DEFAULT_MAX_DEFERRED_OPS = 20_000;
const DEFAULT_RECENT_VALUES = 4096;

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
  /** The job being written, if any. */
  #current: Job | undefined;
  #running = false;
  #closed = false;
  /** Queued and in-flight writes by key, for reads. */
  readonly #pending = new Map<string, Pending>();
  /** Recently committed values of deferrable keys (undefined: deleted), oldest first. */
  readonly #recent = new Map<string, Value | undefined>();
  readonly #recentMax: number;
  #deferredOps = 0;
  /** Failed commits so far: a synced() caller is told if one failed after it asked. */
  #failures = 0;
  readonly #deferrable: ((key: string) => boolean) | undefined;
  readonly #maxDeferredOps: number;
  readonly stats: GroupCommitStats = { commits: 0, ops: 0 };

  constructor(db: Level<string, Value>, options: GroupCommitOptions = {}) {
    this.#db = db;
    this.#deferrable = options.deferrable;
    this.#maxDeferredOps = options.maxDeferredOps ?? DEFAULT_MAX_DEFERRED_OPS;
    this.#recentMax = options.recentValues ?? DEFAULT_RECENT_VALUES;
  }

  get status(): string {
    return this.#db.status;
  }

  get(key: string, options?: EncodingOptions): Promise<Value | undefined> {
    const pending = this.#pending.get(key);
    if (pending) {
      const value = encode(pending.value, options?.valueEncoding);
      if (value !== NOT_CONVERTIBLE) return Promise.resolve(value);
      return this.#afterPending(() => this.#db.get(key, options as never) as Promise<Value | undefined>);
    }
    if (this.#recent.has(key)) {
      const value = encode(this.#recent.get(key), options?.valueEncoding);
      if (value !== NOT_CONVERTIBLE) return Promise.resolve(value);
    }
    return this.#db.get(key, options as never) as Promise<Value | undefined>;
  }

  /** A range read: if writes in its range are queued, it starts once they are committed, so it sees them. */
  values(options: Record<string, unknown>): AsyncIterable<Value> {
    const db = this.#db;
    const pending = this.#queuedIn(options) ? this.synced() : undefined;
    if (!pending) return db.values(options as never) as unknown as AsyncIterable<Value>;
    return (async function* () {
      await pending.catch(() => {});
      yield* db.values(options as never) as unknown as AsyncIterable<Value>;
    })();
  }

  /**
   * Resolves once every write queued so far is committed (rejects if a commit since this call failed);
   * undefined when nothing is queued, so a caller with nothing to wait for goes on in the same turn.
   */
  synced(): Promise<void> | undefined {
    const last = this.#jobs.at(-1) ?? this.#current;
    if (!last) return undefined;
    last.syncWaiters ??= [];
    const waiters = last.syncWaiters;
    return new Promise((resolve, reject) => {
      waiters.push({ resolve, reject, failures: this.#failures });
    });
  }

  /** Deferred operations waiting for their commit. */
  get deferredOps(): number {
    return this.#deferredOps;
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

  /**
   * Queues operations for the next commit. Resolves when they are committed, or at once for deferred
   * keys (see above).
   */
  write(ops: readonly WriteOp[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the broker store is closed'));
    if (ops.length === 0) return Promise.resolve();
    let job = this.#jobs.at(-1);
    // Only a batch that has not started can take more; the one being written is no longer queued.
    if (job?.kind !== 'batch') {
      job = { kind: 'batch', ops: [], waiters: [], deferred: 0 };
      this.#jobs.push(job);
    }
    for (const op of ops) {
      job.ops.push(op);
      this.#pending.set(op.key, { job, value: op.type === 'put' ? op.value : undefined });
    }
    this.#kick();
    if (this.#isDeferred(ops)) {
      job.deferred += ops.length;
      this.#deferredOps += ops.length;
      return Promise.resolve();
    }
    const batch = job;
    return new Promise((resolve, reject) => batch.waiters.push({ resolve, reject }));
  }

  /** Runs after the writes queued before it and before those queued after it. */
  clear(range: Record<string, unknown>): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the broker store is closed'));
    return new Promise((resolve, reject) => {
      const job: Job = { kind: 'clear', range, waiters: [{ resolve, reject }], deferred: 0 };
      // Queued writes in the range are gone for reads from now on, as they will be once the clear runs.
      for (const [key, pending] of this.#pending) {
        if (!inRange(key, range)) continue;
        pending.job = job;
        pending.value = undefined;
      }
      for (const key of this.#recent.keys()) {
        if (!inRange(key, range)) continue;
        this.#recent.delete(key);
        if (!this.#pending.has(key)) this.#pending.set(key, { job, value: undefined });
      }
      this.#jobs.push(job);
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

  /** Keeps a committed value of a deferrable key for `get`, dropping the oldest beyond the bound. */
  #remember(key: string, value: Value | undefined): void {
    if (this.#recentMax <= 0 || !this.#deferrable?.(key)) return;
    this.#recent.delete(key);
    this.#recent.set(key, value);
    if (this.#recent.size > this.#recentMax) this.#recent.delete(this.#recent.keys().next().value!);
  }

  #isDeferred(ops: readonly WriteOp[]): boolean {
    const deferrable = this.#deferrable;
    if (!deferrable || this.#deferredOps + ops.length > this.#maxDeferredOps) return false;
    for (const op of ops) if (!deferrable(op.key)) return false;
    return true;
  }

  #queuedIn(range: Record<string, unknown>): boolean {
    for (const key of this.#pending.keys()) if (inRange(key, range)) return true;
    return false;
  }

  async #afterPending<T>(read: () => Promise<T>): Promise<T> {
    await this.synced()?.catch(() => {});
    return read();
  }

  async #drain(): Promise<void> {
    for (let job = this.#jobs.shift(); job; job = this.#jobs.shift()) {
      this.#current = job;
      let failure: Error | undefined;
      try {
        if (job.kind === 'batch') {
          await this.#db.batch(job.ops as never, { sync: true });
          this.stats.commits++;
          this.stats.ops += job.ops.length;
        } else {
          await this.#db.clear(job.range as never);
        }
      } catch (error) {
        failure = error as Error;
        this.#failures++;
      }
      this.#settle(job, failure);
    }
    this.#current = undefined;
    this.#running = false;
  }

  /** After a job: reads go to LevelDB again, and its waiters learn how it went. */
  #settle(job: Job, failure: Error | undefined): void {
    if (job.kind === 'batch') {
      for (const op of job.ops) {
        const pending = this.#pending.get(op.key);
        if (pending?.job !== job) continue;
        this.#pending.delete(op.key);
        if (!failure) this.#remember(op.key, pending.value);
      }
    } else {
      for (const [key, pending] of this.#pending) if (pending.job === job) this.#pending.delete(key);
    }
    this.#deferredOps -= job.deferred;
    for (const waiter of job.waiters) failure ? waiter.reject(failure) : waiter.resolve();
    for (const waiter of job.syncWaiters ?? []) {
      if (this.#failures > waiter.failures) waiter.reject(failure ?? new Error('an earlier commit of the broker store failed'));
      else waiter.resolve();
    }
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

const NOT_CONVERTIBLE = Symbol('not convertible');

/** A queued or recent value as `get` with this encoding would return it from LevelDB. */
function encode(value: Value | undefined, encoding = 'utf8'): Value | undefined | typeof NOT_CONVERTIBLE {
  if (value === undefined) return undefined;
  if (encoding === 'buffer' || encoding === 'binary') return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  if (encoding === 'utf8') return typeof value === 'string' ? value : value.toString('utf8');
  return NOT_CONVERTIBLE;
}

/** Whether `key` lies in an abstract-level range (gt/gte/lt/lte; string keys). */
function inRange(key: string, range: Record<string, unknown>): boolean {
  const { gt, gte, lt, lte } = range as Record<string, string | undefined>;
  if (gt !== undefined && !(key > gt)) return false;
  if (gte !== undefined && !(key >= gte)) return false;
  if (lt !== undefined && !(key < lt)) return false;
  if (lte !== undefined && !(key <= lte)) return false;
  return true;
}

function putOp(key: string, value: Value, options?: EncodingOptions): WriteOp {
  return options?.valueEncoding ? { type: 'put', key, value, valueEncoding: options.valueEncoding } : { type: 'put', key, value };
}

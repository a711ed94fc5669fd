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
 * - write-behind (writes made inside `writeBehind(fn)`: retained messages whose publisher keeps them durable
 *   itself and publishes them again at every start, the device states): the promise resolves at once, the
 *   write does not start a commit of its own and is not synced; it goes out with the next commit of any
 *   other write, or within `writeBehindMs`, or as soon as something waits for it (`synced()`, a range read,
 *   close). Written without fsync it still survives kill -9 (the OS has it); a power cut can lose the last
 *   ones, which their publisher then restores. Of several writes of one key waiting for the same commit
 *   only the last is written (the batch is atomic, so the earlier ones would change nothing).
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

/**
 * A value made only when it is written or read (`putBehind`): of several writes of one key waiting for
 * the same commit, only the last one's value is ever made.
 */
class Later {
  #make: (() => Buffer) | null;
  #value: Buffer | undefined;

  constructor(make: () => Buffer) {
    this.#make = make;
  }

  get value(): Buffer {
    if (this.#make) {
      this.#value = this.#make();
      this.#make = null;
    }
    return this.#value!;
  }
}

/** A value as queued: given, or made when needed. */
type QueuedValue = Value | Later;

const made = (value: QueuedValue | undefined): Value | undefined => (value instanceof Later ? value.value : value);

interface EncodingOptions {
  valueEncoding?: string;
}

export type WriteOp = { type: 'put'; key: string; value: Value; valueEncoding?: string } | { type: 'del'; key: string };
/** An operation as queued: a put's value may still have to be made. */
type QueuedOp = { type: 'put'; key: string; value: QueuedValue; valueEncoding?: string } | { type: 'del'; key: string };

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

/** The next batch to commit, or a clear that must run between two batches (it cannot join one). */
type Job = (
  | {
      kind: 'batch';
      ops: QueuedOp[];
      /** Where each key's last operation is in `ops`: a later write of the key replaces it. */
      index: Map<string, number>;
      waiters: Waiter[];
      deferred: number;
      /** False while the batch holds write-behind writes only: it is committed without fsync. */
      sync: boolean;
      /** False while it holds write-behind writes only and nothing waits for it: it is not written yet. */
      due: boolean;
    }
  | { kind: 'clear'; range: Record<string, unknown>; waiters: Waiter[]; deferred: 0; due: true }
) & {
  /** Callers of synced(), with the failure count when they asked. */
  syncWaiters?: { resolve: () => void; reject: (error: Error) => void; failures: number }[];
};

/** A queued write as reads see it until it is committed: the value, or a deletion. */
interface Pending {
  job: Job;
  value: QueuedValue | undefined;
}

export interface GroupCommitOptions {
  /** Keys whose writes may resolve before they are committed (see above); none by default. */
  deferrable?: (key: string) => boolean;
  /** Bound on deferred operations waiting for their commit. */
  maxDeferredOps?: number;
  /** How many committed values of deferrable keys `get` answers from memory (deletions count too). */
  recentValues?: number;
  /** How long a write-behind write may wait for another write to commit with (see above). */
  writeBehindMs?: number;
}

const DEFAULT_MAX_DEFERRED_OPS = 20_000;
const DEFAULT_RECENT_VALUES = 4096;
const DEFAULT_WRITE_BEHIND_MS = 1000;

/** What `batch()` without arguments returns: collects operations, `write()` commits them together. */
export interface ChainedBatch {
  put(key: string, value: Value, options?: EncodingOptions): ChainedBatch;
  del(key: string): ChainedBatch;
  write(): Promise<void>;
  close(): Promise<void>;
  readonly length: number;
}

export interface GroupCommitStats {
  /** Batches written (each one fsync, unless it held write-behind writes only). */
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
  /** True while `writeBehind(fn)` runs fn. */
  #behind = false;
  readonly #writeBehindMs: number;
  /** Makes a waiting write-behind batch due; one at a time (only the last job can be one). */
  #behindTimer: NodeJS.Timeout | undefined;
  readonly stats: GroupCommitStats = { commits: 0, ops: 0 };

  constructor(db: Level<string, Value>, options: GroupCommitOptions = {}) {
    this.#db = db;
    this.#deferrable = options.deferrable;
    this.#maxDeferredOps = options.maxDeferredOps ?? DEFAULT_MAX_DEFERRED_OPS;
    this.#recentMax = options.recentValues ?? DEFAULT_RECENT_VALUES;
    this.#writeBehindMs = options.writeBehindMs ?? DEFAULT_WRITE_BEHIND_MS;
  }

  get status(): string {
    return this.#db.status;
  }

  get(key: string, options?: EncodingOptions): Promise<Value | undefined> {
    const pending = this.#pending.get(key);
    if (pending) {
      const value = encode(made(pending.value), options?.valueEncoding);
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
    this.#makeDue(last);
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
   * Runs `fn`; the writes it makes before it returns (its synchronous part) are write-behind writes (see
   * above). For a caller that keeps what it writes durable elsewhere and writes it again after a crash.
   */
  writeBehind<T>(fn: () => T): T {
    const outer = this.#behind;
    this.#behind = true;
    try {
      return fn();
    } finally {
      this.#behind = outer;
    }
  }

  /**
   * A write-behind put (as inside `writeBehind`) whose value `make` is called only when the put is
   * written or read: for a key written often, most values are replaced before their commit and are
   * never made. `make` must give what the value would have been at this call.
   */
  putBehind(key: string, make: () => Buffer, options?: EncodingOptions): void {
    void this.writeBehind(() => this.write([{ type: 'put', key, value: new Later(make), ...(options?.valueEncoding ? { valueEncoding: options.valueEncoding } : {}) }]));
  }

  /**
   * Queues operations for the next commit. Resolves when they are committed, or at once for deferred
   * keys and write-behind writes (see above).
   */
  write(ops: readonly QueuedOp[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the broker store is closed'));
    if (ops.length === 0) return Promise.resolve();
    const behind = this.#behind;
    let job = this.#jobs.at(-1);
    // Only a batch that has not started can take more; the one being written is no longer queued.
    if (job?.kind !== 'batch') {
      job = { kind: 'batch', ops: [], index: new Map(), waiters: [], deferred: 0, sync: false, due: false };
      this.#jobs.push(job);
    }
    let added = 0;
    for (const op of ops) {
      const at = job.index.get(op.key);
      if (at === undefined) {
        job.index.set(op.key, job.ops.length);
        job.ops.push(op);
        added++;
      } else {
        job.ops[at] = op;
      }
      this.#pending.set(op.key, { job, value: op.type === 'put' ? op.value : undefined });
    }
    if (behind) {
      job.deferred += added;
      this.#deferredOps += added;
      // Over the bound it is committed now instead of lingering (memory stays bounded).
      if (this.#deferredOps > this.#maxDeferredOps) this.#makeDue(job);
      else if (!job.due) this.#lingerUntilDue(job);
      return Promise.resolve();
    }
    job.sync = true;
    this.#makeDue(job);
    if (this.#isDeferred(ops)) {
      job.deferred += added;
      this.#deferredOps += added;
      return Promise.resolve();
    }
    const batch = job;
    return new Promise((resolve, reject) => batch.waiters.push({ resolve, reject }));
  }

  /** Runs after the writes queued before it and before those queued after it. */
  clear(range: Record<string, unknown>): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the broker store is closed'));
    return new Promise((resolve, reject) => {
      // A waiting write-behind batch goes first: the clear must not overtake it.
      const last = this.#jobs.at(-1);
      if (last) this.#makeDue(last);
      const job: Job = { kind: 'clear', range, waiters: [{ resolve, reject }], deferred: 0, due: true };
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
    const last = this.#jobs.at(-1);
    if (last) this.#makeDue(last);
    while (this.#running || this.#jobs.length > 0) await new Promise((resolve) => setImmediate(resolve));
    await this.#db.close();
  }

  /** The job is written with the next commit (a write-behind batch that waited stops waiting). */
  #makeDue(job: Job): void {
    if (!job.due) {
      job.due = true;
      if (this.#behindTimer) clearTimeout(this.#behindTimer);
      this.#behindTimer = undefined;
    }
    if (job !== this.#current) this.#kick();
  }

  /** A batch of write-behind writes only: due after writeBehindMs unless something else makes it due first. */
  #lingerUntilDue(job: Job): void {
    if (this.#behindTimer) return;
    this.#behindTimer = setTimeout(() => {
      this.#behindTimer = undefined;
      if (!this.#closed) this.#makeDue(job);
    }, this.#writeBehindMs);
    // A waiting write-behind batch must not keep the process alive (close() writes it).
    this.#behindTimer.unref();
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

  #isDeferred(ops: readonly QueuedOp[]): boolean {
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
    // A write-behind batch that is not due yet is always the last job: it waits for its timer or the next write.
    for (let job = this.#nextDue(); job; job = this.#nextDue()) {
      this.#current = job;
      let failure: Error | undefined;
      try {
        if (job.kind === 'batch') {
          const ops = job.ops.map((op) => (op.type === 'put' && op.value instanceof Later ? { ...op, value: op.value.value } : op));
          await this.#db.batch(ops as never, { sync: job.sync });
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

  #nextDue(): Job | undefined {
    return this.#jobs[0]?.due ? this.#jobs.shift() : undefined;
  }

  /** After a job: reads go to LevelDB again, and its waiters learn how it went. */
  #settle(job: Job, failure: Error | undefined): void {
    if (job.kind === 'batch') {
      for (const op of job.ops) {
        const pending = this.#pending.get(op.key);
        if (pending?.job !== job) continue;
        this.#pending.delete(op.key);
        if (!failure) this.#remember(op.key, made(pending.value));
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

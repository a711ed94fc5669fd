/**
 * Group commit: records handed in during one event-loop turn (and any that arrive while a write is in
 * flight) go to disk in one write and one fdatasync, in the order they were handed in. The queue is
 * bounded: when the disk cannot keep up, new records are refused with BUSY instead of piling up in memory.
 */
import { ClawboxError } from '../errors.js';
import type { AuditRecord, RecordBody } from './record.js';
import type { AuditWriter } from './writer.js';

interface Waiting {
  body: RecordBody;
  resolve: (record: AuditRecord) => void;
  reject: (error: unknown) => void;
}

export interface CommitterOptions {
  /** Records waiting for the disk, at most (the batch being written not counted). */
  maxPending: number;
  /** Records in one write, at most. */
  maxBatch?: number;
  onCommitted?: (records: readonly AuditRecord[]) => void;
}

export class GroupCommitter {
  readonly #writer: AuditWriter;
  readonly #options: CommitterOptions;
  #waiting: Waiting[] = [];
  #loop: Promise<void> | null = null;
  #exclusive: Promise<void> | null = null;

  constructor(writer: AuditWriter, options: CommitterOptions) {
    this.#writer = writer;
    this.#options = options;
  }

  get pending(): number {
    return this.#waiting.length;
  }

  submit(body: RecordBody): Promise<AuditRecord> {
    if (this.#waiting.length >= this.#options.maxPending) {
      return Promise.reject(
        new ClawboxError('BUSY', `the audit log cannot keep up: ${this.#waiting.length} records are waiting for the disk`, {
          retry_after_ms: 100,
          pending: this.#waiting.length,
        }),
      );
    }
    const promise = new Promise<AuditRecord>((resolve, reject) => this.#waiting.push({ body, resolve, reject }));
    // setImmediate: everything handed in during this turn joins the same batch.
    this.#loop ??= (this.#exclusive ?? Promise.resolve()).then(() => new Promise<void>((resolve) => setImmediate(resolve))).then(() => this.#run());
    return promise;
  }

  /** Runs `work` on the writer alone: after the writes in flight, before those handed in meanwhile. */
  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.drain().then(work);
    const gate = run.then(
      () => {},
      () => {},
    );
    this.#exclusive = gate;
    try {
      return await run;
    } finally {
      if (this.#exclusive === gate) this.#exclusive = null;
    }
  }

  async #run(): Promise<void> {
    const max = this.#options.maxBatch ?? 1000;
    while (this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, max);
      let records: AuditRecord[];
      try {
        records = await this.#writer.append(batch.map((w) => w.body));
      } catch (error) {
        for (const w of batch) w.reject(error);
        continue;
      }
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(records[i]!);
      this.#options.onCommitted?.(records);
    }
    this.#loop = null;
  }

  /** Resolves once every record handed in so far is on disk (or failed). */
  async drain(): Promise<void> {
    while (this.#loop) await this.#loop;
  }
}

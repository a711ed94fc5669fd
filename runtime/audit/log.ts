/**
 * AuditLog: the runtime component around the audit files. Callers report each world-changing operation
 * and agent decision with `record(entry)`, which resolves once the record is on disk; the component owns
 * the writer and group committer, checks the chain in the background at start, and publishes the `audit`
 * status section and Prometheus figures.
 */
import type { Logger } from 'pino';
import type { Component, RuntimeContext } from '../context.js';
import { ClawboxError } from '../errors.js';
import { isoTimestamp } from '../system/timestamps.js';
import { GroupCommitter } from './committer.js';
import { AUDIT_DEFAULTS, type AuditConfig } from './config-schema.js';
import { auditDir } from './files.js';
import { AuditMetrics } from './metrics.js';
import { type AuditQuery, queryAuditDir, tailAuditDir } from './read.js';
import { RecentCounter } from './recent.js';
import { type AuditEntry, type AuditRecord, toBody } from './record.js';
import { type VerifyResult, verifyAuditDir } from './verify.js';
import { AuditWriter } from './writer.js';

export interface AuditLogOptions {
  /** Overrides the config section (tests); otherwise ctx.config.audit. */
  config?: Partial<AuditConfig>;
  /** Overrides <stateDir>/audit. */
  dir?: string;
  /** Stores principals under a pseudonym and shows them back (data rights); ids are stored as given without it. */
  principals?: PrincipalProtector;
}

/**
 * How principals are written and read back. A stored pseudonym keeps the chain verifiable after the person
 * behind it is erased; only the link to them is destroyed.
 */
export interface PrincipalProtector {
  /** The id to store for this principal when it is at hand now; null when it must first be made (storedId). */
  knownId(principal: { kind: string; id: string }): string | null;
  storedId(principal: { kind: string; id: string }): Promise<string>;
  /** The id to show for a stored one. */
  shownId(principal: { kind: string; id: string }): string;
}

export interface AuditVerification {
  state: 'not_run' | 'running' | 'passed' | 'failed' | 'incomplete';
  /** When the last verification finished, ISO 8601. */
  at: string | null;
  result: VerifyResult | null;
}

export interface AuditStatus {
  enabled: boolean;
  running: boolean;
  dir: string | null;
  file: string | null;
  seq: number | null;
  head: string | null;
  pending: number;
  records_last_minute: number;
  verification: AuditVerification;
}

interface Running {
  config: AuditConfig;
  dir: string;
  logger: Logger;
  writer: AuditWriter;
  committer: GroupCommitter;
  metrics: AuditMetrics;
  unregister: () => void;
  abort: AbortController;
}

function stateOf(result: VerifyResult): AuditVerification['state'] {
  if (!result.ok) return 'failed';
  return result.complete ? 'passed' : 'incomplete';
}

export class AuditLog implements Component {
  readonly name = 'audit';
  readonly #options: AuditLogOptions;
  #running: Running | null = null;
  #disabled: { unregister: () => void } | null = null;
  #stopping = false;
  #recent = new RecentCounter();
  #waitingForKey: Promise<void> | null = null;
  #verification: AuditVerification = { state: 'not_run', at: null, result: null };
  #background: Promise<AuditVerification> = Promise.resolve(this.#verification);

  constructor(options: AuditLogOptions = {}) {
    this.#options = options;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    const section = this.#options.config ?? (ctx.config as { audit?: Partial<AuditConfig> }).audit ?? {};
    const config: AuditConfig = { ...AUDIT_DEFAULTS, ...section };
    const logger = ctx.logger('audit');
    this.#stopping = false;
    this.#recent = new RecentCounter();
    this.#verification = { state: 'not_run', at: null, result: null };
    this.#background = Promise.resolve(this.#verification);
    if (!config.enabled) {
      this.#disabled = { unregister: ctx.status.register('audit', () => this.status()) };
      logger.info('audit log disabled');
      return;
    }
    const dir = this.#options.dir ?? auditDir(ctx.stateDir);
    const writer = await AuditWriter.open(dir, { logger, rotateBytes: config.rotate_bytes, retainFiles: config.retain_files });
    let metrics: AuditMetrics | null = null;
    const committer = new GroupCommitter(writer, {
      maxPending: config.max_pending,
      onCommitted: (records) => {
        metrics?.committed(records.length);
        this.#recent.add(records.length);
      },
    });
    metrics = new AuditMetrics(ctx.metrics, () => committer.pending);
    const unregister = ctx.status.register('audit', () => this.status());
    this.#running = { config, dir, logger, writer, committer, metrics, unregister, abort: new AbortController() };
    if (config.verify_at_start_ms > 0) {
      this.#background = this.verify({ deadline: Date.now() + config.verify_at_start_ms }).then(
        () => this.#verification,
        (error: unknown) => {
          logger.error({ err: error }, 'audit verification at start could not run');
          return this.#verification;
        },
      );
    }
    const head = writer.head;
    logger.info({ dir, file: head.file.name, seq: head.seq }, `audit log ready at seq ${head.seq} (${head.file.name})`);
  }

  get enabled(): boolean {
    return this.#disabled === null;
  }

  /**
   * Appends one record; resolves with it (seq, time, prev, hash filled in) once it is on disk. Records are
   * written in call order. Rejects PAYLOAD_INVALID for a malformed entry, BUSY when the log is not running
   * or the disk cannot keep up, STATE_UNWRITABLE when the write fails. With the log disabled it resolves
   * at once with seq 0 and empty prev and hash: nothing is kept.
   */
  record(entry: AuditEntry): Promise<AuditRecord> {
    const protector = this.#options.principals;
    const principal = entry?.principal;
    if (!protector || !principal || typeof principal !== 'object' || principal.kind === 'system') return this.#inOrder(entry, null);
    const known = protector.knownId(principal);
    if (known !== null) return this.#inOrder({ ...entry, principal: { ...principal, id: known } }, null);
    // The first record about someone waits for their key to be on disk; later records wait behind it.
    return this.#inOrder(entry, protector.storedId(principal).then((id) => ({ ...entry, principal: { ...principal, id } })));
  }

  /**
   * Hands records to the committer in call order: at once while no record waits for a pseudonym, else
   * behind the last one that does.
   */
  #inOrder(entry: AuditEntry, pending: Promise<AuditEntry> | null): Promise<AuditRecord> {
    const now = new Date();
    if (pending === null && this.#waitingForKey === null) return this.#submit(entry, now);
    const submitted = (this.#waitingForKey ?? Promise.resolve())
      .then(() => pending ?? entry)
      .then((ready) => ({ record: this.#submit(ready, now) }));
    const tail = submitted.then(
      () => {},
      () => {},
    );
    this.#waitingForKey = tail;
    void tail.then(() => {
      if (this.#waitingForKey === tail) this.#waitingForKey = null;
    });
    return submitted.then((handed) => handed.record);
  }

  #submit(entry: AuditEntry, now: Date): Promise<AuditRecord> {
    let body: ReturnType<typeof toBody>;
    try {
      body = toBody(entry, now);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#disabled) return Promise.resolve({ seq: 0, ...body, prev: '', hash: '' });
    if (!this.#running || this.#stopping) return Promise.reject(new ClawboxError('BUSY', 'the audit log is not running', { retry_after_ms: 1000 }));
    return this.#running.committer.submit(body);
  }

  /** Deletes the audit files whose records are all older than `cutoff` (see AuditWriter.retireBefore). */
  async retireBefore(cutoff: Date): Promise<string[]> {
    const running = this.#require();
    const deleted = await running.committer.exclusive(() => running.writer.retireBefore(cutoff));
    if (deleted.length > 0) running.logger.info({ deleted }, `audit retention: deleted ${deleted.length} file(s) older than ${isoTimestamp(cutoff.getTime())}`);
    return deleted;
  }

  /** The last `n` records, oldest first, with principals as people read them. */
  tail(n: number): Promise<AuditRecord[]> {
    return tailAuditDir(this.#require().dir, n, this.#shownId());
  }

  /** The newest matching records (query.limit, default 100), oldest first; principals matched as shown. */
  query(query: AuditQuery): Promise<AuditRecord[]> {
    return queryAuditDir(this.#require().dir, query, this.#shownId());
  }

  #shownId(): ((principal: { kind: string; id: string }) => string) | undefined {
    const protector = this.#options.principals;
    return protector ? (principal) => protector.shownId(principal) : undefined;
  }

  /**
   * Verifies the chain as it was durable when called (retention waits meanwhile); updates the status
   * section and the figures.
   */
  async verify(options: { deadline?: number } = {}): Promise<VerifyResult> {
    const running = this.#require();
    const head = running.writer.head;
    const release = running.writer.hold();
    this.#verification = { ...this.#verification, state: 'running' };
    try {
      const result = await verifyAuditDir(running.dir, {
        ...options,
        signal: running.abort.signal,
        upTo: { file: head.file.index, bytes: head.bytes },
      });
      const at = new Date();
      this.#verification = { state: stateOf(result), at: isoTimestamp(at.getTime()), result };
      running.metrics.verified(result, at);
      if (result.problem) {
        const { file, line, reason } = result.problem;
        running.logger.error({ code: 'STATE_CORRUPT', ...result.problem }, `audit chain verification failed at ${file}:${line}: ${reason}`);
      } else if (!result.complete) {
        running.logger.warn({ records: result.records }, `audit chain verification stopped at its time bound after ${result.records} records, none bad`);
      }
      return result;
    } finally {
      await release();
    }
  }

  /** The verification started at start(), once it has finished. */
  whenVerified(): Promise<AuditVerification> {
    return this.#background;
  }

  status(): AuditStatus {
    const running = this.#running;
    const head = running?.writer.head;
    return {
      enabled: this.enabled,
      running: running !== null && !this.#stopping,
      dir: running?.dir ?? null,
      file: head?.file.name ?? null,
      seq: head?.seq ?? null,
      head: head?.hash ?? null,
      pending: running?.committer.pending ?? 0,
      records_last_minute: this.#recent.lastMinute(),
      verification: this.#verification,
    };
  }

  /** Writes every record already handed in, then closes the file. */
  async stop(): Promise<void> {
    this.#disabled?.unregister();
    this.#disabled = null;
    const running = this.#running;
    if (!running) return;
    this.#stopping = true;
    running.abort.abort();
    await running.committer.drain();
    await this.#background;
    await running.writer.close();
    running.unregister();
    running.metrics.remove();
    this.#running = null;
    this.#stopping = false;
  }

  #require(): Running {
    if (!this.#running) throw new ClawboxError('BUSY', 'the audit log is not running', { retry_after_ms: 1000 });
    return this.#running;
  }
}

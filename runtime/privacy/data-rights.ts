/**
 * DataRights: the people's data rights over what the box keeps about them. Every part that keeps personal
 * data registers a DataHolder (chat inbox and pairing, audit log, logs, conversation memory, ...); the
 * component answers:
 *
 * - export(subject): one JSON bundle of everything each holder keeps about that person, with the region;
 * - erase(subject): each holder deletes what it keeps; the person's pseudonym key is destroyed, so audit
 *   records about them stay (and their chain verifies) but no longer name anyone;
 * - retention: a job at start and every `sweep_interval_minutes` asks each holder to drop what is older
 *   than its class's retention;
 * - the outbound policy: an outbound processor (a remote brain) is used only in the box's data region and
 *   never for a person who opted out of sharing (CCPA).
 */
import type { Logger } from 'pino';
import type { PrincipalProtector } from '../audit/log.js';
import type { Component, RuntimeContext } from '../context.js';
import { ClawboxError } from '../errors.js';
import type { StoreDocument } from '../store/state-store.js';
import { isoTimestamp } from '../system/timestamps.js';
import { DATA_DEFAULTS, type DataConfig } from './config-schema.js';
import { type Subject, subjectOfPrincipal } from './subject.js';
import { SubjectKeys } from './subject-keys.js';

export const DATA_CLASSES = ['chat', 'audit', 'logs', 'identity'] as const;
export type DataClass = (typeof DATA_CLASSES)[number];

export interface DataHolder {
  /** Short, stable: the key of this holder's part of an export (`chat-inbox`, `audit`). */
  readonly name: string;
  readonly dataClass: DataClass;
  /** One sentence for the inventory: what is kept, where, and for what. */
  readonly describes: string;
  exportSubject(subject: Subject, signal: AbortSignal): Promise<unknown>;
  /** Deletes what it keeps about the subject; how many items went. */
  eraseSubject(subject: Subject, signal: AbortSignal): Promise<number>;
  /** Deletes what is older than `before`; how many items went. None: the class has no time-based retention here. */
  sweep?(before: Date, signal: AbortSignal): Promise<number>;
}

export interface InventoryEntry {
  holder: string;
  data_class: DataClass;
  describes: string;
  retention_days: number | null;
}

export interface DataExport {
  subject: Subject;
  region: string | null;
  generated_at: string;
  opted_out_of_sharing: boolean;
  /** Whether audit records can still name this person (they have a pseudonym key). */
  pseudonym: string | null;
  holders: Record<string, { data_class: DataClass; data: unknown }>;
}

export interface ErasureReport {
  subject: Subject;
  erased_at: string;
  removed: Record<string, number>;
  /** Audit records about the person stay, under a pseudonym whose key is now destroyed. */
  pseudonym_key_destroyed: boolean;
}

export interface SweepReport {
  at: string;
  removed: Record<string, number>;
  failed: Record<string, string>;
}

/** Someone who receives personal data from the box. */
export interface OutboundProcessor {
  name: string;
  /** The region it declares; null when it declares none. */
  region: string | null;
}

interface OptOuts {
  subjects: Subject[];
}

const MAX_OPT_OUTS = 100_000;

export class DataRights implements Component {
  readonly name = 'data';
  readonly #holders = new Map<string, DataHolder>();
  #config: DataConfig = DATA_DEFAULTS;
  #keys: SubjectKeys | null = null;
  #optOuts: StoreDocument<OptOuts> | null = null;
  #logger: Logger | null = null;
  #timer: NodeJS.Timeout | null = null;
  #sweeping: Promise<SweepReport> | null = null;
  #lastSweep: SweepReport | null = null;
  #abort = new AbortController();
  #unregister: (() => void) | null = null;

  /** Stores audit principals under erasable pseudonyms; ids pass through until this component started. */
  readonly principals: PrincipalProtector = {
    knownId: (principal) => {
      const subject = this.#subjectOf(principal);
      if (subject === null || !this.#keys) return principal.id;
      return this.#keys.pseudonymIfKnown(subject);
    },
    storedId: async (principal) => {
      const subject = this.#subjectOf(principal);
      return subject === null || !this.#keys ? principal.id : this.#keys.pseudonym(subject);
    },
    shownId: ({ kind, id }) => {
      if (!this.#keys?.isPseudonym(id)) return id;
      const subject = this.#keys.reveal(id);
      // The record shows the principal's own id, as it would have been stored without pseudonyms.
      if (subject === 'erased') return `erased-${id.slice('subject:'.length, 'subject:'.length + 8)}`;
      return kind === 'chat' ? subject : subject.slice(subject.indexOf(':') + 1);
    },
  };

  addHolder(holder: DataHolder): () => void {
    if (this.#holders.has(holder.name)) throw new Error(`a data holder named "${holder.name}" is already registered`);
    this.#holders.set(holder.name, holder);
    return () => this.#holders.delete(holder.name);
  }

  async start(ctx: RuntimeContext): Promise<void> {
    const section = (ctx.config as { data?: Partial<DataConfig> }).data ?? {};
    this.#config = { ...DATA_DEFAULTS, ...section, retention: { ...DATA_DEFAULTS.retention, ...section.retention } };
    this.#logger = ctx.logger('data');
    this.#abort = new AbortController();
    this.#keys = await SubjectKeys.open(ctx.stateDir, { maxSubjects: this.#config.max_subjects });
    this.#optOuts = await ctx.store.open<OptOuts>('privacy-opt-outs', () => ({ subjects: [] }));
    this.#unregister = ctx.status.register('data', () => this.status());
    // The first sweep runs once everything has started (holders of later components are registered by then).
    this.#timer = setTimeout(() => this.#sweepAndReschedule(), 1_000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#sweeping?.catch(() => {});
    this.#unregister?.();
    this.#unregister = null;
    this.#keys = null;
  }

  inventory(): InventoryEntry[] {
    return [...this.#holders.values()].map((holder) => ({
      holder: holder.name,
      data_class: holder.dataClass,
      describes: holder.describes,
      retention_days: holder.sweep ? this.#retentionDays(holder.dataClass) : null,
    }));
  }

  async export(subject: Subject, signal: AbortSignal): Promise<DataExport> {
    const keys = this.#require();
    const holders: DataExport['holders'] = {};
    for (const holder of this.#holders.values()) {
      signal.throwIfAborted();
      holders[holder.name] = { data_class: holder.dataClass, data: await holder.exportSubject(subject, signal) };
    }
    return {
      subject,
      region: this.#config.region,
      generated_at: isoTimestamp(),
      opted_out_of_sharing: this.optedOut(subject),
      pseudonym: keys.pseudonymIfKnown(subject),
      holders,
    };
  }

  /**
   * Every holder deletes what it keeps about the subject, then the pseudonym key goes. A holder that fails
   * stops the erasure with its error before the key is destroyed, so running it again finishes the job.
   */
  async erase(subject: Subject, signal: AbortSignal): Promise<ErasureReport> {
    const keys = this.#require();
    const removed: Record<string, number> = {};
    for (const holder of this.#holders.values()) {
      signal.throwIfAborted();
      removed[holder.name] = await holder.eraseSubject(subject, signal);
    }
    await this.#setOptOut(subject, false);
    const destroyed = await keys.erase(subject);
    this.#logger?.info({ removed, pseudonym_key_destroyed: destroyed }, 'erased a data subject on request');
    return { subject, erased_at: isoTimestamp(), removed, pseudonym_key_destroyed: destroyed };
  }

  optedOut(subject: Subject): boolean {
    return this.#optOuts?.data.subjects.includes(subject) ?? false;
  }

  /** Records that the person opted out of (or back into) sharing their data with outbound processors. */
  async setOptOut(subject: Subject, optedOut: boolean): Promise<{ subject: Subject; opted_out: boolean }> {
    this.#require();
    await this.#setOptOut(subject, optedOut);
    return { subject, opted_out: optedOut };
  }

  async #setOptOut(subject: Subject, optedOut: boolean): Promise<void> {
    const doc = this.#optOuts;
    if (!doc) return;
    const has = doc.data.subjects.includes(subject);
    if (has === optedOut) return;
    if (optedOut && doc.data.subjects.length >= MAX_OPT_OUTS) {
      throw new ClawboxError('LIMIT_REACHED', `${MAX_OPT_OUTS} people have opted out already`);
    }
    await doc.update((d) => {
      d.subjects = optedOut ? [...d.subjects, subject] : d.subjects.filter((s) => s !== subject);
    });
  }

  /**
   * Throws DATA_POLICY_REFUSED unless the processor declares this box's region and the person (if any)
   * has not opted out of sharing. A box without a region sends nothing out.
   */
  checkProcessor(processor: OutboundProcessor, principal: { kind: string; id: string } | null): void {
    const region = this.#config.region;
    if (region === null) {
      throw new ClawboxError('DATA_POLICY_REFUSED', `no data region is set (data.region), so nothing is sent to ${processor.name}`, { processor: processor.name });
    }
    if (processor.region !== region) {
      throw new ClawboxError(
        'DATA_POLICY_REFUSED',
        `${processor.name} declares region ${processor.region ?? '(none)'}, this box's data stays in ${region}`,
        { processor: processor.name, processor_region: processor.region, region },
      );
    }
    const subject = principal ? this.#subjectOf(principal) : null;
    if (subject !== null && this.optedOut(subject)) {
      throw new ClawboxError('DATA_POLICY_REFUSED', `the sender opted out of sharing; ${processor.name} is not used for them`, { processor: processor.name });
    }
  }

  /** checkProcessor as a yes/no, for routing: a refusal keeps the work on the box. */
  mayLeave(processor: OutboundProcessor, principal: { kind: string; id: string } | null): boolean {
    try {
      this.checkProcessor(processor, principal);
      return true;
    } catch {
      return false;
    }
  }

  /** Runs the retention job now (also what the timer runs); one at a time. */
  sweep(): Promise<SweepReport> {
    this.#sweeping ??= this.#sweepOnce().finally(() => {
      this.#sweeping = null;
    });
    return this.#sweeping;
  }

  async #sweepOnce(): Promise<SweepReport> {
    const removed: Record<string, number> = {};
    const failed: Record<string, string> = {};
    const signal = this.#abort.signal;
    for (const holder of this.#holders.values()) {
      const days = this.#retentionDays(holder.dataClass);
      if (!holder.sweep || days === 0 || signal.aborted) continue;
      try {
        removed[holder.name] = await holder.sweep(new Date(Date.now() - days * 86_400_000), signal);
      } catch (error) {
        failed[holder.name] = error instanceof Error ? error.message : String(error);
        this.#logger?.warn({ err: error, holder: holder.name }, `retention sweep of ${holder.name} failed; it is tried again at the next sweep`);
      }
    }
    this.#lastSweep = { at: isoTimestamp(), removed, failed };
    const total = Object.values(removed).reduce((a, b) => a + b, 0);
    if (total > 0) this.#logger?.info({ removed }, `retention: removed ${total} item(s) past their retention`);
    return this.#lastSweep;
  }

  #sweepAndReschedule(): void {
    this.sweep()
      .catch(() => {})
      .finally(() => {
        if (this.#abort.signal.aborted) return;
        this.#timer = setTimeout(() => this.#sweepAndReschedule(), this.#config.retention.sweep_interval_minutes * 60_000);
        this.#timer.unref();
      });
  }

  status(): Record<string, unknown> {
    return {
      region: this.#config.region,
      retention_days: {
        chat: this.#config.retention.chat_days,
        audit: this.#config.retention.audit_days,
        logs: this.#config.retention.logs_days,
      },
      last_sweep: this.#lastSweep,
      next_sweep_in_minutes: this.#config.retention.sweep_interval_minutes,
      subjects_with_keys: this.#keys?.size ?? 0,
      opted_out: this.#optOuts?.data.subjects.length ?? 0,
      holders: [...this.#holders.keys()],
    };
  }

  #retentionDays(dataClass: DataClass): number {
    const r = this.#config.retention;
    if (dataClass === 'chat') return r.chat_days;
    if (dataClass === 'audit') return r.audit_days;
    if (dataClass === 'logs') return r.logs_days;
    return 0;
  }

  #subjectOf(principal: { kind: string; id: string }): Subject | null {
    return typeof principal.id === 'string' ? subjectOfPrincipal(principal) : null;
  }

  #require(): SubjectKeys {
    if (!this.#keys) throw new ClawboxError('BUSY', 'data rights are not running yet', { retry_after_ms: 1000 });
    return this.#keys;
  }
}

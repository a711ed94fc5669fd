/**
 * Model management for a running box (the web app's Models page, `models.*` operations): the catalogue
 * of configured models, a sha256 + GGUF check of one file, one background pull at a time (cancellable,
 * with progress), and switching the main model. Pulled models and the chosen main model are recorded in
 * the state directory (model-choices.ts), so the next start loads the same model; the config file is
 * not rewritten (on the appliance it is read-only to the runtime).
 */
import path from 'node:path';
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logging.js';
import { type ModelConfigEntry, withModelDefaults } from './config-schema.js';
import { hashCacheKey } from './hash-cache-file.js';
import { MAX_MODELS, type ModelChoices, applyChoices, configMainName } from './model-choices.js';
import { type PullProgress, checkModelUri, displayUri, pullModel } from './pull.js';
import { type HashCache, type ModelRecord, type VerifiedModel, ModelRegistry, modelNameFromUri, verifyModelFile } from './registry.js';

/** The part of ModelService that activation needs. */
export interface MainSlot {
  /** Name of the model in the main slot now (loaded or not). */
  mainName(): string | null;
  /** Whether that model is loaded and answering. */
  mainReady(): boolean;
  /**
   * Loads `model` and, once loaded and `commit` succeeded, puts it in the main slot; the model there
   * before keeps serving until then and is unloaded when its requests finished. Throws the load's
   * coded error (nothing changed then).
   */
  replaceMain(model: VerifiedModel, signal: AbortSignal, commit: () => Promise<void>): Promise<void>;
}

export type PullPhase = PullProgress['phase'] | 'adding' | 'loading' | 'cancelled';

/** One pull as the status page and GET /api/models show it. */
export interface PullJobView {
  id: number;
  uri: string;
  name: string;
  role: ModelConfigEntry['role'];
  phase: PullPhase;
  file: string | null;
  downloaded_bytes: number;
  total_bytes: number;
  speed_bps: number;
  eta_s: number | null;
  started_at: number;
  finished_at: number | null;
  error: { code: string; message: string } | null;
}

/** Long work on one model (hashing a file, loading one), for progress on the page. */
export interface ModelWorkView {
  name: string;
  phase: 'hashing' | 'loading';
  done_bytes: number;
  total_bytes: number;
}

export interface VerifyResult {
  name: string;
  file: string;
  ok: boolean;
  sha256: string | null;
  /** The hash the config expects; null when the entry has none (the computed one is then only reported). */
  expected: string | null;
  architecture?: string | null;
  quantization?: string | null;
  size_bytes?: number;
  error?: { code: string; message: string };
}

/** Where the run-time choices live (a state-store document; a plain object in tests). */
export interface ChoicesStore {
  readonly data: ModelChoices;
  update(change: (data: ModelChoices) => void): Promise<void>;
}

export interface ModelManagerOptions {
  /** The config's `models:` entries (as the runtime loaded them). */
  configEntries: readonly ModelConfigEntry[];
  /** Folder that relative model paths resolve against (the config file's). */
  baseDir: string;
  choices: ChoicesStore;
  stateDir: string;
  hashCache?: HashCache | undefined;
  logger: Logger;
  slot: MainSlot;
  /** Told about every pull step worth showing (phase changes, each 10 %). */
  onPull?: (view: PullJobView) => void;
  /** For `hf:` URIs (tests point it at a local server); default node-llama-cpp's. */
  huggingFaceEndpoint?: string;
  keepFreeBytes?: number;
}

export class ModelManager {
  readonly #o: ModelManagerOptions;
  #job: PullJobView | null = null;
  #jobAbort: AbortController | null = null;
  #jobDone: Promise<void> = Promise.resolve();
  #nextJobId = 1;
  #work: ModelWorkView | null = null;
  #activating = false;
  #stopped = false;

  constructor(options: ModelManagerOptions) {
    this.#o = options;
  }

  /** The models the box knows: the config's, with the pulled ones and the chosen main model laid over them. */
  catalogue(): ModelRecord[] {
    return new ModelRegistry(applyChoices(this.#o.configEntries, this.#o.choices.data), this.#o.baseDir).list();
  }

  #record(name: string): ModelRecord {
    const record = this.catalogue().find((r) => r.entry.name === name);
    if (!record) throw new ClawboxError('NOT_FOUND', `no model named "${name.slice(0, 64)}" in the config`);
    return record;
  }

  view(): { pull: PullJobView | null; work: ModelWorkView | null } {
    return { pull: this.#job ? { ...this.#job } : null, work: this.#work ? { ...this.#work } : null };
  }

  /**
   * Reads the GGUF header, then hashes the whole file (never the hash cache: the point is to read the
   * bytes again) and compares with the config's sha256. A problem is reported, not thrown.
   */
  async verify(name: string, signal: AbortSignal): Promise<VerifyResult> {
    const record = this.#record(name);
    const expected = record.entry.sha256 ?? null;
    if (this.#work) throw new ClawboxError('BUSY', `${this.#work.name} is being ${this.#work.phase === 'hashing' ? 'checked' : 'loaded'}; try again when it is done`, { retry_after_ms: 5_000 });
    this.#work = { name, phase: 'hashing', done_bytes: 0, total_bytes: 0 };
    try {
      const { summary, sha256 } = await verifyModelFile(record.file, expected ?? undefined, {
        hash: true,
        signal,
        onHashProgress: (bytes, total) => {
          if (this.#work) Object.assign(this.#work, { done_bytes: bytes, total_bytes: total });
        },
      });
      if (sha256) await this.#remember(record.file, sha256);
      return { name, file: record.file, ok: true, sha256, expected, architecture: summary.architecture, quantization: summary.quantization, size_bytes: summary.file_size };
    } catch (error) {
      // The caller went away: nothing to report to anyone.
      if (signal.aborted) throw signal.reason instanceof Error ? toClawboxError(signal.reason) : new ClawboxError('DEADLINE_EXCEEDED', 'verification was cancelled');
      const typed = toClawboxError(error);
      const sha256 = typeof typed.details.sha256 === 'string' ? typed.details.sha256 : null;
      return { name, file: record.file, ok: false, sha256, expected, error: { code: typed.code, message: typed.message } };
    } finally {
      this.#work = null;
    }
  }

  async #remember(file: string, sha256: string): Promise<void> {
    const key = await hashCacheKey(file);
    if (key) await Promise.resolve(this.#o.hashCache?.set(key, sha256)).catch(() => {});
  }

  /**
   * Makes a configured model the main one: checks the file (header; sha256 when the config has one),
   * loads it while the current one keeps serving, records the choice in the state directory, then switches.
   * Any failure leaves everything as it was, with the coded error.
   */
  async activate(name: string, signal: AbortSignal): Promise<{ name: string; previous: string | null; changed: boolean }> {
    const record = this.#record(name);
    const previous = this.#o.slot.mainName();
    // The main model already serving: nothing to do. One that failed to load (a file since fixed) loads again.
    if (record.entry.role === 'main' && previous === name && this.#o.slot.mainReady()) return { name, previous, changed: false };
    if (record.entry.role === 'small') {
      throw new ClawboxError('PAYLOAD_INVALID', `"${name}" is the small (fallback) model; give another model that role first, or make it standby in the config`);
    }
    if (this.#activating || this.#work) throw new ClawboxError('BUSY', 'another model is being checked or loaded; try again when it is done', { retry_after_ms: 5_000 });
    this.#activating = true;
    this.#work = { name, phase: 'hashing', done_bytes: 0, total_bytes: 0 };
    try {
      const { summary, sha256 } = await verifyModelFile(record.file, record.entry.sha256, {
        hash: 'if-expected',
        signal,
        ...(this.#o.hashCache ? { hashCache: this.#o.hashCache } : {}),
        onHashProgress: (bytes, total) => {
          if (this.#work) Object.assign(this.#work, { done_bytes: bytes, total_bytes: total });
        },
      });
      signal.throwIfAborted();
      this.#work = { name, phase: 'loading', done_bytes: 0, total_bytes: summary.file_size };
      const model: VerifiedModel = { entry: { ...record.entry, role: 'main' }, file: record.file, summary, sha256 };
      await this.#o.slot.replaceMain(model, signal, () => this.#recordMain(name));
      this.#o.logger.info({ model: name, previous }, `main model is now ${name}${previous ? ` (was ${previous})` : ''}`);
      return { name, previous, changed: true };
    } finally {
      this.#activating = false;
      this.#work = null;
    }
  }

  /** The config's own main model needs no record; any other is remembered with the one it replaced. */
  async #recordMain(name: string): Promise<void> {
    const over = configMainName(this.#o.configEntries);
    try {
      await this.#o.choices.update((data) => {
        data.main = name === over ? null : { name, over };
      });
    } catch (error) {
      throw new ClawboxError('STATE_UNWRITABLE', `cannot record the main model in the state directory: ${(error as Error).message}`, {}, { cause: error });
    }
  }

  /**
   * Starts downloading `uri` in the background and answers at once with the job; BUSY while another
   * runs. When it completes the model is added to the config (as `main` when there is none, which then
   * loads, else as `standby`).
   */
  startPull(input: { uri: string; name?: string | undefined; sha256?: string | undefined }): PullJobView {
    if (this.#stopped) throw new ClawboxError('BUSY', 'the model service is stopping');
    if (this.#job && !this.#job.finished_at) {
      throw new ClawboxError('BUSY', `${this.#job.name} is being pulled; cancel it or wait for it to finish`, { retry_after_ms: 10_000 });
    }
    checkModelUri(input.uri);
    const name = input.name ?? modelNameFromUri(input.uri);
    const catalogue = this.catalogue();
    const role: ModelConfigEntry['role'] = catalogue.some((r) => r.entry.role === 'main') ? 'standby' : 'main';
    if (catalogue.some((r) => r.entry.name === name)) throw new ClawboxError('USAGE', `a model named "${name}" is already configured; give this one another name`);
    if (catalogue.length >= MAX_MODELS) throw new ClawboxError('LIMIT_REACHED', `the box knows ${catalogue.length} models, the most it keeps; remove one from the config first`);
    const job: PullJobView = {
      id: this.#nextJobId++,
      uri: displayUri(input.uri),
      name,
      role,
      phase: 'resolving',
      file: null,
      downloaded_bytes: 0,
      total_bytes: 0,
      speed_bps: 0,
      eta_s: null,
      started_at: Date.now(),
      finished_at: null,
      error: null,
    };
    const abort = new AbortController();
    this.#job = job;
    this.#jobAbort = abort;
    this.#jobDone = this.#runPull(job, input, abort.signal);
    return { ...job };
  }

  /** Stops the running pull (the partial file is kept, so pulling the same URI again resumes it). */
  cancelPull(): PullJobView {
    if (!this.#job || this.#job.finished_at) throw new ClawboxError('NOT_FOUND', 'no model is being pulled');
    this.#jobAbort?.abort(new ClawboxError('MODEL_DOWNLOAD_FAILED', 'the download was cancelled; the partial file is kept and pulling the same URI resumes it', { interrupted: true }));
    return { ...this.#job };
  }

  async #runPull(job: PullJobView, input: { uri: string; sha256?: string | undefined }, signal: AbortSignal): Promise<void> {
    const { logger } = this.#o;
    let lastStep = '';
    const step = (change: Partial<PullJobView>) => {
      Object.assign(job, change);
      const tenth = job.total_bytes > 0 ? Math.floor((job.downloaded_bytes / job.total_bytes) * 10) : 0;
      const key = `${job.phase}:${job.phase === 'downloading' ? tenth : ''}`;
      if (key === lastStep) return;
      lastStep = key;
      const fields = { event: 'model.pull', model: job.name, uri: job.uri, phase: job.phase, downloaded_bytes: job.downloaded_bytes, total_bytes: job.total_bytes };
      if (job.phase === 'failed') logger.warn({ ...fields, code: job.error?.code }, `pull of ${job.name} failed: ${job.error?.code}: ${job.error?.message}`);
      else logger.info(fields, job.phase === 'downloading' ? `pulling ${job.name}: ${tenth * 10}%` : `pull of ${job.name}: ${job.phase}`);
      this.#o.onPull?.({ ...job });
    };
    try {
      const result = await pullModel({
        uri: input.uri,
        dir: path.join(this.#o.stateDir, 'models'),
        signal,
        ...(input.sha256 ? { sha256: input.sha256 } : {}),
        ...(this.#o.keepFreeBytes !== undefined ? { keepFreeBytes: this.#o.keepFreeBytes } : {}),
        ...(this.#o.huggingFaceEndpoint ? { huggingFaceEndpoint: this.#o.huggingFaceEndpoint } : {}),
        onProgress: (p) => {
          // pullModel's own "done" is ours only once the model is in the config.
          if (p.phase === 'done' || p.phase === 'failed') return;
          step({ phase: p.phase, file: p.file, downloaded_bytes: p.downloaded_bytes, total_bytes: p.total_bytes, speed_bps: p.speed_bps, eta_s: p.eta_s });
        },
      });
      signal.throwIfAborted();
      step({ phase: 'adding' });
      const contextSize = Math.max(128, Math.min(result.summary.context_length ?? 2048, 4096));
      const entry = withModelDefaults({ name: job.name, path: result.file, sha256: result.sha256, source: job.uri, role: 'standby', context_size: contextSize });
      await this.#o.choices.update((data) => {
        data.added = [...data.added.filter((e) => e.name !== entry.name), entry].slice(-MAX_MODELS);
      });
      await this.#remember(result.file, result.sha256);
      if (job.role === 'main') {
        step({ phase: 'loading' });
        await this.#loadFirstMain(job.name, signal);
      }
      step({ phase: 'done', finished_at: Date.now() });
    } catch (error) {
      const cancelled = signal.aborted;
      const typed = cancelled && signal.reason instanceof ClawboxError ? signal.reason : toClawboxError(error);
      step({ phase: cancelled ? 'cancelled' : 'failed', error: { code: typed.code, message: typed.message }, finished_at: Date.now(), speed_bps: 0, eta_s: null });
    } finally {
      if (this.#jobAbort?.signal === signal) this.#jobAbort = null;
    }
  }

  /** A box without a main model uses the first one pulled at once. */
  async #loadFirstMain(name: string, signal: AbortSignal): Promise<void> {
    const record = this.#record(name);
    const { summary, sha256 } = await verifyModelFile(record.file, record.entry.sha256, { hash: false, signal });
    await this.#o.slot.replaceMain({ entry: { ...record.entry, role: 'main' }, file: record.file, summary, sha256: sha256 ?? record.entry.sha256 ?? null }, signal, () => this.#recordMain(name));
  }

  /** Cancels a running pull and waits for it to wind down (the partial file stays for the next pull). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#jobAbort?.abort(new ClawboxError('MODEL_DOWNLOAD_FAILED', 'the runtime stopped during the download; pulling the same URI again resumes it', { interrupted: true }));
    await this.#jobDone.catch(() => {});
  }
}

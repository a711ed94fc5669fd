/**
 * ModelService: the runtime component that owns the local models. At start it verifies and loads the
 * `main` model (then the `small` one, if configured) in the background, so the broker and the fast path
 * serve at once; any model error is logged with its code and the runtime stays up in no-model mode.
 * It reports the `model` status section and gives the agent and the scheduler the loaded engines.
 */
import path from 'node:path';
import type { Llama } from 'node-llama-cpp';
import type { Component, RuntimeContext } from '../runtime/context.js';
import { ClawboxError, type ErrorCode, toClawboxError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logging.js';
import type { SelectBackendOptions } from './engine/backend.js';
import type { EngineStatus, ModelEngine } from './engine/engine.js';
import { type HashCache, type ModelRecord, ModelRegistry, type VerifiedModel } from './registry.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';
import type { MqttAdapter } from '../runtime/operations/mqtt-adapter.js';
import { modelOperations } from './operations.js';
import { type DownloadView, downloadsChangedAt, readDownloads } from './download-progress.js';
import { type ChoicesStore, type MainSlot, ModelManager, type PullJobView } from './management.js';
import { type ModelChoices, applyChoices, emptyChoices, sanitizeChoices } from './model-choices.js';

export type ModelState = 'idle' | 'no-model' | 'verifying' | 'loading' | 'ready' | 'error' | 'stopped';
export type ModelRole = 'main' | 'small';

export interface ModelStateEvent {
  role: ModelRole;
  name: string | null;
  state: ModelState;
  progress?: number;
  error?: { code: ErrorCode; message: string };
}

declare module '../runtime/events.js' {
  interface RuntimeEvents {
    'model.state': [ModelStateEvent];
    /** A `clawbox models pull` moved on (phase change or another 10 %), seen through the state dir. */
    'model.download': [DownloadView];
    /** A pull started from the web app or the API moved on (phase change or another 10 %). */
    'model.pull': [PullJobView];
  }
}

export interface ModelServiceDeps {
  /** Backend selection overrides (tests inject a failing GPU loader). */
  backend?: SelectBackendOptions;
  /** Share an existing llama.cpp backend instead of creating one. */
  llama?: Llama;
  /** Where file hashes are remembered; defaults to the `models` state-store document. */
  hashCache?: HashCache;
  /** Folder relative model paths resolve against; defaults to the config file's folder. */
  baseDir?: string;
  /** Also load the `small` model (default true). */
  loadSmall?: boolean;
  /** How often `threads: auto` is re-checked against free cores (ms; 0 disables). Default 30 s. */
  threadRecheckMs?: number;
  /** How often the state dir is checked for `models pull` progress (ms; 0 disables). Default 2 s. */
  downloadPollMs?: number;
  /** Where models.list is declared and reached over MQTT (none in unit tests). */
  api?: { frontDoor: FrontDoor; mqtt: MqttAdapter } | null;
  /** Bytes a pull from the API keeps free (default pull.ts's). */
  keepFreeBytes?: number;
}

interface Slot {
  role: ModelRole;
  record: ModelRecord | null;
  state: ModelState;
  progress: number;
  error: { code: ErrorCode; message: string } | null;
  engine: ModelEngine | null;
}

export class ModelService implements Component, MainSlot {
  readonly name = 'models';
  readonly #deps: ModelServiceDeps;
  readonly #slots: Record<ModelRole, Slot> = {
    main: { role: 'main', record: null, state: 'idle', progress: 0, error: null, engine: null },
    small: { role: 'small', record: null, state: 'idle', progress: 0, error: null, engine: null },
  };
  #ctx: RuntimeContext | null = null;
  #logger: Logger | null = null;
  #abort = new AbortController();
  #loading: Promise<void> = Promise.resolve();
  #unregister: (() => void) | null = null;
  #registry: ModelRegistry | null = null;
  #recheckTimer: NodeJS.Timeout | null = null;
  #downloadTimer: NodeJS.Timeout | null = null;
  #downloads: DownloadView[] = [];
  #manager: ModelManager | null = null;
  /** Engines replaced by an activation, unloaded once their requests finished. */
  readonly #retiring = new Set<Promise<void>>();
  /** Per download id: the phase and tenth last reported, so each step is logged once. */
  readonly #downloadSteps = new Map<string, string>();

  constructor(deps: ModelServiceDeps = {}) {
    this.#deps = deps;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    this.#ctx = ctx;
    this.#logger = ctx.logger('models');
    this.#abort = new AbortController();
    const baseDir = this.#deps.baseDir ?? (ctx.configSource ? path.dirname(path.resolve(ctx.configSource)) : process.cwd());
    // Models pulled and the main model chosen in the web app, laid over the config (model-choices.ts).
    const choices = await this.#openChoices(ctx);
    this.#registry = new ModelRegistry(applyChoices(ctx.config.models, choices.data), baseDir);
    for (const problem of this.#registry.problems()) this.#logger.warn({ code: 'CONFIG_INVALID' }, problem);
    if (choices.data.main && this.#registry.byRole('main')?.entry.name === choices.data.main.name) {
      this.#logger.info({ model: choices.data.main.name }, `main model ${choices.data.main.name} as chosen in the web app (the config names ${choices.data.main.over ?? 'none'})`);
    }
    const unregisterStatus = ctx.status.register('model', () => this.status());
    const hashCache = this.#deps.hashCache ?? (await this.#storeHashCache(ctx));
    const logger = this.#logger;
    this.#manager = new ModelManager({
      configEntries: ctx.config.models,
      baseDir,
      choices,
      stateDir: ctx.stateDir,
      hashCache,
      logger,
      slot: this,
      onPull: (view) => ctx.bus.emit('model.pull', view),
      ...(this.#deps.keepFreeBytes !== undefined ? { keepFreeBytes: this.#deps.keepFreeBytes } : {}),
    });
    const unregisterApi: Array<() => void> = [];
    if (this.#deps.api) {
      const { frontDoor, mqtt } = this.#deps.api;
      for (const operation of modelOperations(this, this.#manager)) unregisterApi.push(frontDoor.register(operation));
      unregisterApi.push(mqtt.bridge('models', 'models.list'));
      for (const [topic, operation] of MODEL_BRIDGE_REQUESTS) unregisterApi.push(mqtt.bridge(topic, operation));
    }
    this.#unregister = () => {
      unregisterStatus();
      for (const off of unregisterApi) off();
    };
    this.#watchDownloads(ctx.stateDir);
    this.#slots.main.record = this.#registry.byRole('main') ?? null;
    this.#slots.small.record = this.#deps.loadSmall === false ? null : (this.#registry.byRole('small') ?? null);
    if (!this.#slots.main.record) {
      this.#set(this.#slots.main, 'no-model');
      this.#logger.info('no main model configured; running without a local model (fast path only)');
    }
    if (!this.#slots.small.record) this.#slots.small.state = 'no-model';
    // Load in the background: a multi-gigabyte model must not hold up the broker or the status page.
    this.#loading = (async () => {
      for (const slot of [this.#slots.main, this.#slots.small]) {
        if (slot.record && !this.#abort.signal.aborted) await this.#load(slot, hashCache);
      }
    })();
  }

  async #openChoices(ctx: RuntimeContext): Promise<ChoicesStore> {
    try {
      const doc = await ctx.store.open<ModelChoices>('model-choices', emptyChoices);
      let current = sanitizeChoices(doc.data);
      return {
        get data() {
          return current;
        },
        // Changed in a copy, taken only once written: a failed write leaves the choices as they were.
        update: async (change) => {
          const next = structuredClone(current);
          change(next);
          await doc.update((data) => Object.assign(data, next));
          current = next;
        },
      };
    } catch (error) {
      this.#logger?.warn({ err: error }, 'model choices unavailable; models pulled or chosen in the web app last until the next restart');
      const data = emptyChoices();
      return { data, update: async (change) => change(data) };
    }
  }

  async #storeHashCache(ctx: RuntimeContext): Promise<HashCache | undefined> {
    try {
      const doc = await ctx.store.open<{ hashes: Record<string, string> }>('models', () => ({ hashes: {} }));
      return {
        get: (key) => doc.data.hashes[key],
        set: (key, sha256) =>
          doc.update((data) => {
            data.hashes[key] = sha256;
            // Keep the document small: only recent files matter.
            const keys = Object.keys(data.hashes);
            for (const old of keys.slice(0, Math.max(0, keys.length - 32))) delete data.hashes[old];
          }),
      };
    } catch (error) {
      this.#logger?.warn({ err: error }, 'model hash cache unavailable; files are hashed at every start');
      return undefined;
    }
  }

  /**
   * `clawbox models pull` runs in its own process and records its progress under the state dir; a stat
   * of that folder every few seconds (it changes with every record written) brings it to the status
   * page, the event bus and the log.
   */
  #watchDownloads(stateDir: string): void {
    const every = this.#deps.downloadPollMs ?? 2_000;
    if (every <= 0) return;
    let seen: number | null = null;
    let busy = false;
    const check = async () => {
      const changed = await downloadsChangedAt(stateDir);
      if (changed === seen) return;
      seen = changed;
      this.#downloads = await readDownloads(stateDir);
      for (const download of this.#downloads) this.#reportDownload(download);
    };
    this.#downloadTimer = setInterval(() => {
      if (busy) return;
      busy = true;
      check()
        .catch(() => {})
        .finally(() => {
          busy = false;
        });
    }, every);
    this.#downloadTimer.unref();
  }

  #reportDownload(download: DownloadView): void {
    const tenth = download.total_bytes > 0 ? Math.floor((download.downloaded_bytes / download.total_bytes) * 10) : 0;
    const step = `${download.phase}:${download.phase === 'downloading' ? tenth : ''}`;
    const first = !this.#downloadSteps.has(download.id);
    if (this.#downloadSteps.get(download.id) === step) return;
    this.#downloadSteps.set(download.id, step);
    // Finished records from before this start are history, not news.
    if (first && (download.phase === 'done' || download.phase === 'failed' || download.phase === 'interrupted')) return;
    if (this.#downloadSteps.size > 64) this.#downloadSteps.delete(this.#downloadSteps.keys().next().value!);
    this.#ctx?.bus.emit('model.download', download);
    const fields = {
      event: 'model.download',
      uri: download.uri,
      model: download.name,
      phase: download.phase,
      downloaded_bytes: download.downloaded_bytes,
      total_bytes: download.total_bytes,
      ...(download.error ? { code: download.error.code } : {}),
    };
    const what = download.name ?? download.uri;
    if (download.phase === 'failed') this.#logger?.warn(fields, `download of ${what} failed: ${download.error?.code ?? 'error'}: ${download.error?.message ?? ''}`);
    else if (download.phase === 'done') this.#logger?.info(fields, `model ${what} downloaded and added to the config; it loads at the next start`);
    else if (download.phase === 'downloading') this.#logger?.info(fields, `downloading ${what}: ${tenth * 10}%`);
    else this.#logger?.info(fields, `download of ${what}: ${download.phase}`);
  }

  #set(slot: Slot, state: ModelState, extra: Partial<Pick<Slot, 'progress' | 'error'>> = {}): void {
    slot.state = state;
    if (extra.progress !== undefined) slot.progress = extra.progress;
    if (extra.error !== undefined) slot.error = extra.error;
    this.#ctx?.bus.emit('model.state', {
      role: slot.role,
      name: slot.record?.entry.name ?? null,
      state,
      ...(state === 'loading' ? { progress: slot.progress } : {}),
      ...(slot.error && state === 'error' ? { error: slot.error } : {}),
    });
  }

  async #load(slot: Slot, hashCache: HashCache | undefined): Promise<void> {
    const record = slot.record!;
    const logger = this.#logger!;
    const name = record.entry.name;
    try {
      this.#set(slot, 'verifying', { error: null });
      let lastHashLog = 0;
      const verified = await this.#registry!.verify(record, {
        hash: 'if-expected',
        ...(hashCache ? { hashCache } : {}),
        onHashProgress: (bytes, total) => {
          if (total > 256 << 20 && bytes - lastHashLog > total / 10) {
            lastHashLog = bytes;
            logger.info({ model: name, progress: Math.round((bytes / total) * 100) }, `checking sha256 of ${name}`);
          }
        },
      });
      if (this.#abort.signal.aborted) return;
      this.#set(slot, 'loading', { progress: 0 });
      logger.info(
        { model: name, file: record.file, architecture: verified.summary.architecture, quantization: verified.summary.quantization },
        `loading ${slot.role} model ${name} (${verified.summary.architecture} ${verified.summary.quantization}, ${(verified.summary.file_size / (1 << 20)).toFixed(1)} MiB)`,
      );
      let lastProgressLog = 0;
      const engine = await (await engineModule()).ModelEngine.load({
        entry: { ...record.entry, path: record.file },
        logger,
        signal: this.#abort.signal,
        ...(this.#deps.llama ? { llama: this.#deps.llama } : {}),
        ...(this.#deps.backend ? { backend: this.#deps.backend } : {}),
        details: {
          ...(verified.sha256 ? { sha256: verified.sha256 } : {}),
          quantization: verified.summary.quantization,
          architecture: verified.summary.architecture,
          parameters: verified.summary.parameters,
        },
        onProgress: (fraction) => {
          slot.progress = fraction;
          if (verified.summary.file_size > 64 << 20 && fraction - lastProgressLog >= 0.25) {
            lastProgressLog = fraction;
            logger.info({ model: name, progress: Math.round(fraction * 100) }, `loading ${name}: ${Math.round(fraction * 100)}%`);
          }
        },
      });
      // Stopped meanwhile, or an activation put another model in this slot: this one is not needed.
      if (this.#abort.signal.aborted || slot.record !== record) {
        await engine.dispose();
        return;
      }
      slot.engine = engine;
      this.#set(slot, 'ready', { progress: 1 });
      this.#scheduleThreadRecheck();
    } catch (error) {
      if (this.#abort.signal.aborted || slot.record !== record) return;
      const typed = toClawboxError(error);
      slot.error = { code: typed.code, message: typed.message };
      this.#set(slot, 'error');
      logger.error(
        { code: typed.code, model: name, file: record.file, ...typed.details },
        `${slot.role} model ${name} not loaded: ${typed.code}: ${typed.message}; running without it`,
      );
    }
  }

  /**
   * Free cores change at run time (another process takes one): re-measure them now and then and move
   * `auto` thread counts with them, so busy-waiting threads never fight for a taken core.
   */
  #scheduleThreadRecheck(): void {
    const every = this.#deps.threadRecheckMs ?? 30_000;
    if (every <= 0 || this.#recheckTimer) return;
    const auto = (slot: Slot) => slot.record && (slot.record.entry.threads === 'auto' || slot.record.entry.batch_threads === 'auto');
    this.#recheckTimer = setInterval(() => {
      for (const slot of [this.#slots.main, this.#slots.small]) {
        const engine = slot.engine;
        if (!engine || !auto(slot)) continue;
        const before = engine.threads;
        engine
          .recheckThreads(slot.record!.entry)
          .then((after) => {
            if (after.threads !== before.threads || after.batchThreads !== before.batchThreads) {
              this.#logger?.info({ model: slot.record!.entry.name, threads: after.threads, batch_threads: after.batchThreads, reason: after.reason }, 'thread counts changed with free cores');
            }
          })
          .catch(() => {});
      }
    }, every);
    this.#recheckTimer.unref();
  }

  /** Resolves when the start-up load attempts finished (successfully or not). */
  async whenSettled(): Promise<void> {
    await this.#loading;
  }

  /** The configured models (name, role, path as written in the config), as the config file has them now. */
  configured(): Array<{ name: string; role: string; path: string; sha256: string | null; source: string | null }> {
    const records = this.#manager?.catalogue() ?? this.#registry?.list() ?? [];
    return records.map(({ entry }) => ({ name: entry.name, role: entry.role, path: entry.path, sha256: entry.sha256 ?? null, source: entry.source ?? null }));
  }

  mainName(): string | null {
    return this.#slots.main.record?.entry.name ?? null;
  }

  mainReady(): boolean {
    return this.#slots.main.state === 'ready' && this.#slots.main.engine !== null;
  }

  /**
   * Loads `model` beside the main one, which keeps serving; once loaded and `commit` (recording the
   * change) succeeded, new requests go to it and the old engine is unloaded when its requests finished.
   */
  async replaceMain(model: VerifiedModel, signal: AbortSignal, commit: () => Promise<void>): Promise<void> {
    if (!this.#ctx || this.#abort.signal.aborted) throw new ClawboxError('BUSY', 'the model service is not running');
    const logger = this.#logger!;
    const slot = this.#slots.main;
    logger.info({ model: model.entry.name, file: model.file }, `loading ${model.entry.name} to replace the main model`);
    const engine = await (await engineModule()).ModelEngine.load({
      entry: { ...model.entry, path: model.file },
      logger,
      signal: AbortSignal.any([signal, this.#abort.signal]),
      ...(this.#deps.llama ? { llama: this.#deps.llama } : {}),
      ...(this.#deps.backend ? { backend: this.#deps.backend } : {}),
      details: {
        ...(model.sha256 ? { sha256: model.sha256 } : {}),
        quantization: model.summary.quantization,
        architecture: model.summary.architecture,
        parameters: model.summary.parameters,
      },
    });
    try {
      signal.throwIfAborted();
      this.#abort.signal.throwIfAborted();
      await commit();
    } catch (error) {
      await engine.dispose();
      throw error;
    }
    const old = slot.engine;
    slot.record = { entry: model.entry, file: model.file };
    slot.engine = engine;
    this.#set(slot, 'ready', { progress: 1, error: null });
    this.#scheduleThreadRecheck();
    if (old) {
      const retired = retireWhenIdle(old, this.#abort.signal).finally(() => this.#retiring.delete(retired));
      this.#retiring.add(retired);
    }
  }

  /** Pulls, checks and activation for the operations; null before start. */
  get manager(): ModelManager | null {
    return this.#manager;
  }

  /** The loaded engine for a role, or null (no model, still loading, or failed). */
  engine(role: ModelRole = 'main'): ModelEngine | null {
    return this.#slots[role].engine;
  }

  state(role: ModelRole = 'main'): { state: ModelState; error: { code: ErrorCode; message: string } | null } {
    return { state: this.#slots[role].state, error: this.#slots[role].error };
  }

  status(): Record<string, unknown> {
    const describe = (slot: Slot) => {
      const engine: EngineStatus | null = slot.engine?.status() ?? null;
      return {
        name: slot.record?.entry.name ?? null,
        state: slot.state,
        ...(slot.state === 'loading' ? { progress: Math.round(slot.progress * 100) / 100 } : {}),
        ...(slot.error ? { error: slot.error } : {}),
        ...(engine
          ? {
              backend: engine.info.backend,
              requested_backend: engine.info.requested_backend,
              fallback: engine.info.fallback,
              devices: engine.info.devices,
              vram: engine.info.vram,
              gpu_layers: engine.info.gpu_layers,
              layers: engine.info.layers,
              threads: engine.info.threads,
              batch_threads: engine.info.batch_threads,
              context_size: engine.info.context_size,
              sequences: engine.sequences,
              file: engine.info.file,
              quantization: engine.info.quantization,
              architecture: engine.info.architecture,
              parameters: engine.info.parameters,
              load_ms: engine.info.load_ms,
              rates: engine.rates,
              requests: engine.requests,
            }
          : {}),
      };
    };
    const main = describe(this.#slots.main);
    const downloads = this.#downloads.length > 0 ? { downloads: this.#downloads.map(({ pid: _pid, ...view }) => view) } : {};
    const managed = this.#manager?.view() ?? { pull: null, work: null };
    const jobs = { ...(managed.pull ? { pull: managed.pull } : {}), ...(managed.work ? { work: managed.work } : {}) };
    return this.#slots.small.record ? { ...main, small: describe(this.#slots.small), ...downloads, ...jobs } : { ...main, ...downloads, ...jobs };
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#manager?.stop();
    await Promise.allSettled([...this.#retiring]);
    if (this.#recheckTimer) clearInterval(this.#recheckTimer);
    this.#recheckTimer = null;
    if (this.#downloadTimer) clearInterval(this.#downloadTimer);
    this.#downloadTimer = null;
    await this.#loading.catch(() => {});
    for (const slot of [this.#slots.main, this.#slots.small]) {
      const engine = slot.engine;
      slot.engine = null;
      if (engine) await engine.dispose();
      if (slot.record) slot.state = 'stopped';
    }
    this.#unregister?.();
    this.#unregister = null;
  }
}

/** Bridge requests (`<base>/bridge/request/<topic>`) for the management operations. */
const MODEL_BRIDGE_REQUESTS: ReadonlyArray<[string, string]> = [
  ['models/verify', 'models.verify'],
  ['models/activate', 'models.activate'],
  ['models/pull', 'models.pull'],
  ['models/pull/cancel', 'models.pull.cancel'],
];

/** How long a replaced engine may finish its requests before it is unloaded anyway. */
const RETIRE_GRACE_MS = 120_000;

/** Unloads an engine once no request uses or waits for it (or after the grace period, or at once when the service stops). */
async function retireWhenIdle(engine: ModelEngine, stopping: AbortSignal): Promise<void> {
  const until = Date.now() + RETIRE_GRACE_MS;
  while (Date.now() < until && !stopping.aborted) {
    const { busy, waiting } = engine.sequences();
    if (busy === 0 && waiting === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await engine.dispose();
}

/** The engine's code (node-llama-cpp's wrapper, backend choice, rates), loaded with the first model: a box without one never needs it. */
function engineModule(): Promise<typeof import('./engine/engine.js')> {
  return import('./engine/engine.js');
}

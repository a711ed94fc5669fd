/**
 * The inference engine: one model, one context with N sequences (concurrent sessions), token-level
 * generation with optional JSON-Schema grammar, prefix KV reuse, AbortSignal cancellation, per-request
 * timings and measured service rates for the scheduler.
 *
 * Prefix reuse: every request is [BOS] + prefix tokens + prompt tokens. A sequence keeps what it last
 * evaluated; a new request erases only what differs and evaluates the rest, so a fixed system prefix is
 * evaluated once per sequence (warmPrefix does it ahead of time) and reused until it changes.
 */
import type {
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaGrammar,
  LlamaGrammarEvaluationState,
  LlamaJsonSchemaGrammar,
  LlamaModel,
  Token,
} from 'node-llama-cpp';
import { ClawboxError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logging.js';
import type { ModelConfigEntry } from '../config-schema.js';
import { type BackendSelection, type SelectBackendOptions, backendName, message, selectBackend } from './backend.js';
import { mapLoadError } from './load-errors.js';
import { loadNodeLlamaCpp } from './llama-module.js';
import { type RateSnapshot, ServiceRates } from './rates.js';
import { type ThreadChoice, availableCpus, chooseThreads, sampleFreeCores } from './threads.js';

export interface EngineLoadOptions {
  /** The model entry with `path` already resolved to an absolute file. */
  entry: ModelConfigEntry;
  logger: Logger;
  /** Reuse a backend (tests and benchmarks share one); otherwise one is selected from entry.gpu. */
  llama?: Llama;
  backend?: SelectBackendOptions;
  signal?: AbortSignal;
  /** Load progress 0..1 (large files take seconds). */
  onProgress?: (fraction: number) => void;
  /** Extra figures for the info block (sha256, header summary). */
  details?: { sha256?: string; quantization?: string; architecture?: string | null; parameters?: number };
}

export interface ModelInfo {
  name: string;
  file: string;
  sha256: string | null;
  architecture: string | null;
  quantization: string | null;
  parameters: number | null;
  backend: string;
  requested_backend: string;
  fallback: { from: string; reason: string } | null;
  devices: string[];
  vram: { total: number; used: number; free: number } | null;
  gpu_layers: number;
  layers: number | null;
  threads: number;
  batch_threads: number;
  threads_reason: string;
  context_size: number;
  train_context_size: number;
  sequences: number;
  load_ms: number;
}

export interface Timings {
  queue_ms: number;
  prefill_ms: number;
  decode_ms: number;
  total_ms: number;
}

/** A compiled JSON-Schema grammar, made by ModelEngine.grammarFor. */
export interface JsonGrammar {
  readonly schema: object;
  readonly grammar: LlamaJsonSchemaGrammar<never>;
}

/**
 * Jump-forward decoding: a guide knows the output's structure. It names the grammar for the next sampled
 * token and, after each one, may force text that has only one possible continuation (JSON keys, the rest
 * of an enum value, punctuation): forced text is evaluated in one batch instead of sampled token by token.
 */
export interface DecodeGuide {
  /** Forced right after the prompt (evaluated together with it). */
  readonly start: string;
  /** The grammar for the next sampled token; may change after a step. */
  grammar(): LlamaGrammar | null;
  /** Called with the output so far (start + sampled + forced text). */
  step(text: string): { force?: string; done?: boolean };
}

export interface GenerateRequest {
  /** Fixed, cacheable part (system prompt, device list). Reused across requests on a sequence. */
  prefix?: string;
  /** The variable part (history + user text). */
  prompt: string;
  maxTokens: number;
  grammar?: JsonGrammar;
  /** Prefer the sequence this session used last (its history is still in the KV cache). */
  session?: string;
  /** 0 (default) is greedy. */
  temperature?: number;
  seed?: number;
  stop?: readonly string[];
  signal?: AbortSignal;
  /** Called with each piece of text as it is generated. */
  /** `forced`: text the guide appended (evaluated in one batch), not a sampled token. */
  onText?: (text: string, forced?: boolean) => void;
  /** Jump-forward decoding (replaces `grammar`). */
  guide?: DecodeGuide;
}

export interface GenerateResult {
  text: string;
  /** Parsed JSON when a grammar was used and the output parsed. */
  json?: unknown;
  stop_reason: 'eos' | 'grammar' | 'stop' | 'max_tokens';
  prompt_tokens: number;
  cached_tokens: number;
  evaluated_tokens: number;
  generated_tokens: number;
  /** Tokens appended by jump-forward instead of being sampled. */
  forced_tokens: number;
  sequence: number;
  timings: Timings;
}

export interface EngineStatus {
  info: ModelInfo;
  rates: RateSnapshot;
  sequences: { total: number; busy: number; waiting: number };
  requests: { completed: number; aborted: number; failed: number };
}

interface Slot {
  index: number;
  sequence: LlamaContextSequence;
  busy: boolean;
  session: string | null;
  lastUsed: number;
}

interface Waiter {
  resolve: (slot: Slot) => void;
  reject: (error: unknown) => void;
  pick: (free: Slot[]) => Slot;
}

function abortError(signal: AbortSignal): ClawboxError {
  const reason: unknown = signal.reason;
  if (reason instanceof ClawboxError) return reason;
  return new ClawboxError('DEADLINE_EXCEEDED', reason instanceof Error ? reason.message : 'the request was cancelled');
}

export class ModelEngine {
  readonly rates = new ServiceRates();
  readonly #llama: Llama;
  readonly #ownsLlama: boolean;
  readonly #model: LlamaModel;
  readonly #context: LlamaContext;
  readonly #slots: Slot[];
  readonly #waiters: Waiter[] = [];
  readonly #logger: Logger;
  /** node-llama-cpp's class, from the module load() imported (it is not imported at start-up). */
  readonly #GrammarEvaluationState: typeof LlamaGrammarEvaluationState;
  readonly #prefixTokens = new Map<string, Token[]>();
  readonly #grammars = new Map<string, Promise<JsonGrammar>>();
  readonly #gbnf = new Map<string, Promise<LlamaGrammar>>();
  #threads: ThreadChoice;
  #activePrefills = 0;
  #disposed = false;
  #counts = { completed: 0, aborted: 0, failed: 0 };
  info: ModelInfo;

  private constructor(parts: {
    llama: Llama;
    ownsLlama: boolean;
    model: LlamaModel;
    context: LlamaContext;
    logger: Logger;
    threads: ThreadChoice;
    info: ModelInfo;
    GrammarEvaluationState: typeof LlamaGrammarEvaluationState;
  }) {
    this.#GrammarEvaluationState = parts.GrammarEvaluationState;
    this.#llama = parts.llama;
    this.#ownsLlama = parts.ownsLlama;
    this.#model = parts.model;
    this.#context = parts.context;
    this.#logger = parts.logger;
    this.#threads = parts.threads;
    this.info = parts.info;
    this.#slots = Array.from({ length: parts.context.totalSequences }, (_, index) => ({
      index,
      sequence: parts.context.getSequence(),
      busy: false,
      session: null,
      lastUsed: 0,
    }));
    this.#applyThreads();
  }

  /** Loads the model and creates its context. Throws ClawboxError with a MODEL_* code. */
  static async load(options: EngineLoadOptions): Promise<ModelEngine> {
    const { entry, logger } = options;
    const started = performance.now();
    // Imported here, on the first load, not when the runtime starts (see llama-module.ts).
    const { LlamaGrammarEvaluationState: GrammarEvaluationState } = await loadNodeLlamaCpp();
    let selection: BackendSelection;
    if (options.llama) {
      selection = { llama: options.llama, requested: entry.gpu, backend: backendName(options.llama), fallback: null };
    } else {
      selection = await selectBackend(entry.gpu, logger, options.backend);
    }
    const ownsLlama = !options.llama;
    try {
      const loaded = await ModelEngine.#loadOn(selection, options).catch(async (error: unknown) => {
        // A GPU backend that initialised but cannot load this model: one warning, then CPU.
        if (selection.backend === 'cpu' || options.llama || options.signal?.aborted) throw error;
        const reason = message(error);
        logger.warn(
          { code: 'MODEL_BACKEND_UNAVAILABLE', backend: selection.backend, reason },
          `loading on ${selection.backend} failed (${reason}); falling back to CPU`,
        );
        await selection.llama.dispose().catch(() => {});
        selection = await selectBackend('cpu', logger, options.backend);
        selection.fallback = { from: String(entry.gpu), reason };
        selection.requested = entry.gpu;
        return ModelEngine.#loadOn(selection, options);
      });
      const devices = await selection.llama.getGpuDeviceNames().catch(() => []);
      const vram = selection.backend === 'cpu' ? null : await selection.llama.getVramState().catch(() => null);
      const info: ModelInfo = {
        name: entry.name,
        file: entry.path,
        sha256: options.details?.sha256 ?? entry.sha256 ?? null,
        architecture: options.details?.architecture ?? null,
        quantization: options.details?.quantization ?? null,
        parameters: options.details?.parameters ?? null,
        backend: selection.backend,
        requested_backend: entry.gpu,
        fallback: selection.fallback,
        devices,
        vram: vram ? { total: vram.total, used: vram.used, free: vram.free } : null,
        gpu_layers: loaded.model.gpuLayers,
        layers: loaded.model.fileInsights.totalLayers ?? null,
        threads: loaded.threads.threads,
        batch_threads: loaded.threads.batchThreads,
        threads_reason: loaded.threads.reason,
        context_size: loaded.context.contextSize,
        train_context_size: loaded.model.trainContextSize,
        sequences: loaded.context.totalSequences,
        load_ms: Math.round(performance.now() - started),
      };
      logger.info(
        {
          model: entry.name,
          backend: info.backend,
          gpu_layers: info.gpu_layers,
          threads: info.threads,
          batch_threads: info.batch_threads,
          sequences: info.sequences,
          context_size: info.context_size,
          load_ms: info.load_ms,
        },
        `model ${entry.name} loaded on ${info.backend} in ${info.load_ms} ms`,
      );
      return new ModelEngine({ llama: selection.llama, ownsLlama, logger, info, GrammarEvaluationState, ...loaded });
    } catch (error) {
      if (ownsLlama) await selection.llama.dispose().catch(() => {});
      if (options.signal?.aborted) throw abortError(options.signal);
      throw mapLoadError(error, entry.path);
    }
  }

  static async #loadOn(
    selection: BackendSelection,
    options: EngineLoadOptions,
  ): Promise<{ model: LlamaModel; context: LlamaContext; threads: ThreadChoice }> {
    const { entry, logger } = options;
    const llama = selection.llama;
    let lastLogged = -1;
    const model = await llama.loadModel({
      modelPath: entry.path,
      gpuLayers: selection.backend === 'cpu' ? 0 : entry.gpu_layers,
      ...(options.signal ? { loadSignal: options.signal } : {}),
      onLoadProgress: (fraction) => {
        options.onProgress?.(fraction);
        const decile = Math.floor(fraction * 10);
        if (decile > lastLogged) {
          lastLogged = decile;
          logger.debug({ model: entry.name, progress: Math.round(fraction * 100) }, `loading ${entry.name}: ${Math.round(fraction * 100)}%`);
        }
      },
    });
    try {
      const threads = await resolveThreads(entry, llama);
      // The context's thread ceiling is the larger of the two; llama.maxThreads picks the one in use.
      llama.maxThreads = Math.max(threads.threads, threads.batchThreads);
      const context = await model.createContext({
        contextSize: entry.context_size,
        sequences: entry.sequences,
        threads: Math.max(threads.threads, threads.batchThreads),
      });
      return { model, context, threads };
    } catch (error) {
      await model.dispose().catch(() => {});
      throw error;
    }
  }

  get model(): LlamaModel {
    return this.#model;
  }

  get llama(): Llama {
    return this.#llama;
  }

  get threads(): ThreadChoice {
    return this.#threads;
  }

  /** Changes thread counts at run time (the scheduler calls this after re-measuring free cores). */
  setThreads(choice: Pick<ThreadChoice, 'threads' | 'batchThreads'> & { reason?: string }): void {
    const cap = this.#context.idealThreads;
    this.#threads = {
      threads: Math.max(1, Math.min(cap, Math.floor(choice.threads))),
      batchThreads: Math.max(1, Math.min(cap, Math.floor(choice.batchThreads))),
      reason: choice.reason ?? 'set at run time',
    };
    this.info = { ...this.info, threads: this.#threads.threads, batch_threads: this.#threads.batchThreads, threads_reason: this.#threads.reason };
    this.#applyThreads();
  }

  /** Re-measures free cores and applies the thread counts they allow (unless the config fixed them). */
  async recheckThreads(entry?: Pick<ModelConfigEntry, 'threads' | 'batch_threads'>, sampleMs = 250): Promise<ThreadChoice> {
    const choice = chooseThreads({ mathCores: this.#llama.cpuMathCores, availableCpus: availableCpus(), freeCores: await sampleFreeCores(sampleMs) });
    const threads = entry && entry.threads !== 'auto' ? entry.threads : choice.threads;
    const batchThreads = entry && entry.batch_threads !== 'auto' ? entry.batch_threads : choice.batchThreads;
    this.setThreads({ threads, batchThreads, reason: choice.reason });
    return this.#threads;
  }

  /** Prompt evaluation uses batch threads while any sequence is in prefill; decoding uses `threads`. */
  #applyThreads(): void {
    if (this.#disposed) return;
    this.#llama.maxThreads = this.#activePrefills > 0 ? this.#threads.batchThreads : this.#threads.threads;
  }

  tokenize(text: string): Token[] {
    return this.#model.tokenize(text);
  }

  detokenize(tokens: readonly Token[]): string {
    return this.#model.detokenize(tokens);
  }

  /** Compiles (and caches) a grammar for a JSON Schema in node-llama-cpp's supported subset. */
  grammarFor(schema: object): Promise<JsonGrammar> {
    const key = JSON.stringify(schema);
    let grammar = this.#grammars.get(key);
    if (!grammar) {
      grammar = this.#llama
        // biome-ignore lint/suspicious/noExplicitAny: node-llama-cpp types the schema as a const-generic GbnfJsonSchema
        .createGrammarForJsonSchema(schema as any)
        .then((g) => ({ schema, grammar: g as unknown as LlamaJsonSchemaGrammar<never> }));
      grammar.catch(() => this.#grammars.delete(key));
      this.#grammars.set(key, grammar);
      if (this.#grammars.size > 32) this.#grammars.delete(this.#grammars.keys().next().value as string);
    }
    return grammar;
  }

  /** Compiles (and caches) a GBNF grammar. */
  gbnf(text: string): Promise<LlamaGrammar> {
    let grammar = this.#gbnf.get(text);
    if (!grammar) {
      grammar = this.#llama.createGrammar({ grammar: text });
      grammar.catch(() => this.#gbnf.delete(text));
      this.#gbnf.set(text, grammar);
      if (this.#gbnf.size > 64) this.#gbnf.delete(this.#gbnf.keys().next().value as string);
    }
    return grammar;
  }

  #prefix(prefix: string | undefined): Token[] {
    const bos = this.#model.tokens.bos;
    const head = bos === null ? [] : [bos];
    if (!prefix) return head;
    let tokens = this.#prefixTokens.get(prefix);
    if (!tokens) {
      tokens = [...head, ...this.#model.tokenize(prefix)];
      this.#prefixTokens.set(prefix, tokens);
      if (this.#prefixTokens.size > 8) this.#prefixTokens.delete(this.#prefixTokens.keys().next().value as string);
    }
    return tokens;
  }

  #inputTokens(request: Pick<GenerateRequest, 'prefix' | 'prompt'>): Token[] {
    return [...this.#prefix(request.prefix), ...this.#model.tokenize(request.prompt)];
  }

  /** Sequences free right now, and requests waiting for one (for admission control). */
  sequences(): { total: number; busy: number; waiting: number } {
    return { total: this.#slots.length, busy: this.#slots.filter((s) => s.busy).length, waiting: this.#waiters.length };
  }

  #pickSlot(free: Slot[], input: Token[], session: string | undefined): Slot {
    if (session) {
      const own = free.find((s) => s.session === session);
      if (own) return own;
    }
    let best = free[0]!;
    let bestShared = -1;
    for (const slot of free) {
      const shared = slot.sequence.compareContextTokens(input).firstDifferentIndex;
      // Prefer the longest reusable prefix; among equals, a slot no live session is attached to, then LRU.
      const better =
        shared > bestShared ||
        (shared === bestShared && (slot.session === null) > (best.session === null)) ||
        (shared === bestShared && (slot.session === null) === (best.session === null) && slot.lastUsed < best.lastUsed);
      if (better) {
        best = slot;
        bestShared = shared;
      }
    }
    return best;
  }

  #acquire(pick: (free: Slot[]) => Slot, signal?: AbortSignal): Promise<Slot> {
    if (this.#disposed) return Promise.reject(new ClawboxError('MODEL_NOT_LOADED', 'the model was unloaded'));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const free = this.#slots.filter((s) => !s.busy);
    if (free.length > 0 && this.#waiters.length === 0) {
      const slot = pick(free);
      slot.busy = true;
      return Promise.resolve(slot);
    }
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, pick };
      this.#waiters.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          const at = this.#waiters.indexOf(waiter);
          if (at >= 0) {
            this.#waiters.splice(at, 1);
            reject(abortError(signal));
          }
        },
        { once: true },
      );
    });
  }

  #release(slot: Slot): void {
    slot.busy = false;
    slot.lastUsed = performance.now();
    const waiter = this.#waiters.shift();
    if (waiter) {
      const next = waiter.pick(this.#slots.filter((s) => !s.busy));
      next.busy = true;
      waiter.resolve(next);
    }
  }

  /**
   * The token work a request would cost now, for admission control: prompt tokens, and how many of them
   * a free sequence already holds (prefix or session history). Tokenizes; evaluates nothing.
   */
  shape(request: Pick<GenerateRequest, 'prefix' | 'prompt' | 'session' | 'guide'>): { prompt_tokens: number; cached_tokens: number } {
    const startTokens = request.guide?.start ? this.#model.tokenize(request.guide.start, false, 'trimLeadingSpace') : [];
    const input = [...this.#inputTokens(request), ...startTokens];
    const free = this.#slots.filter((s) => !s.busy);
    const slot = free.length > 0 ? this.#pickSlot(free, input, request.session) : null;
    const cached = slot ? Math.min(slot.sequence.compareContextTokens(input).firstDifferentIndex, input.length - 1) : 0;
    return { prompt_tokens: input.length, cached_tokens: Math.max(0, cached) };
  }

  /** Makes the sequence hold exactly `input[0..keep)` and returns how many tokens were reused. */
  async #reuse(slot: Slot, input: Token[]): Promise<number> {
    const seq = slot.sequence;
    // Keep at least one token to evaluate: its logits give the first sampled token.
    const keep = Math.min(seq.compareContextTokens(input).firstDifferentIndex, input.length - 1);
    if (seq.nextTokenIndex > keep) await seq.eraseContextTokenRanges([{ start: keep, end: seq.nextTokenIndex }]);
    return keep;
  }

  /**
   * Evaluates `prefix` into every idle sequence ahead of time so the first request on each is warm.
   * Busy sequences are skipped; they pay on their next request.
   */
  async warmPrefix(prefix: string): Promise<{ sequences: number; tokens: number; ms: number }> {
    const started = performance.now();
    const input = this.#prefix(prefix);
    const idle = this.#slots.filter((s) => !s.busy);
    for (const slot of idle) slot.busy = true;
    let warmed = 0;
    this.#activePrefills++;
    this.#applyThreads();
    try {
      await Promise.all(
        idle.map(async (slot) => {
          const seq = slot.sequence;
          const keep = Math.min(seq.compareContextTokens(input).firstDifferentIndex, input.length);
          if (seq.nextTokenIndex > keep) await seq.eraseContextTokenRanges([{ start: keep, end: seq.nextTokenIndex }]);
          if (keep < input.length) {
            await seq.evaluateWithoutGeneratingNewTokens(input.slice(keep));
            warmed++;
          }
          slot.session = null;
        }),
      );
    } finally {
      this.#activePrefills--;
      this.#applyThreads();
      for (const slot of idle) this.#release(slot);
    }
    const ms = performance.now() - started;
    if (warmed > 0) this.#logger.debug({ sequences: warmed, tokens: input.length, ms: Math.round(ms) }, 'prefix evaluated');
    return { sequences: warmed, tokens: input.length, ms };
  }

  async generate(request: GenerateRequest): Promise<GenerateResult> {
    const arrived = performance.now();
    if (!Number.isInteger(request.maxTokens) || request.maxTokens < 1) {
      throw new ClawboxError('PAYLOAD_INVALID', 'maxTokens must be a positive integer');
    }
    const guide = request.guide;
    // Text forced after the prompt is tokenized on its own, as a continuation (no leading space).
    const startTokens = guide?.start ? this.#model.tokenize(guide.start, false, 'trimLeadingSpace') : [];
    const input = [...this.#inputTokens(request), ...startTokens];
    const contextSize = this.#context.contextSize;
    if (input.length + request.maxTokens > contextSize) {
      throw new ClawboxError(
        'PAYLOAD_TOO_LARGE',
        `prompt of ${input.length} tokens + ${request.maxTokens} to generate exceeds the context of ${contextSize}`,
        { prompt_tokens: input.length, context_size: contextSize },
      );
    }
    const signal = request.signal;
    const slot = await this.#acquire((free) => this.#pickSlot(free, input, request.session), signal);
    const acquired = performance.now();
    let firstTokenAt = 0;
    let lastTokenAt = 0;
    let inPrefill = false;
    const generated: Token[] = [];
    let forced = 0;
    let text = guide?.start ?? '';
    let json: unknown;
    let stopReason: GenerateResult['stop_reason'] = 'eos';
    let cached = 0;
    try {
      if (signal?.aborted) throw abortError(signal);
      cached = await this.#reuse(slot, input);
      slot.session = request.session ?? null;
      let grammarState: LlamaGrammarEvaluationState | (() => LlamaGrammarEvaluationState | undefined) | undefined;
      if (guide) {
        // A fresh evaluation state whenever the guide moves to another grammar.
        let current: LlamaGrammar | null = null;
        let state: LlamaGrammarEvaluationState | undefined;
        grammarState = () => {
          const grammar = guide.grammar();
          if (grammar !== current) {
            current = grammar;
            state = grammar ? new this.#GrammarEvaluationState({ model: this.#model, grammar }) : undefined;
          }
          return state;
        };
      } else if (request.grammar) {
        grammarState = new this.#GrammarEvaluationState({ model: this.#model, grammar: request.grammar.grammar });
      }
      this.#activePrefills++;
      inPrefill = true;
      this.#applyThreads();
      const iterator = slot.sequence.evaluate(input.slice(cached), {
        temperature: request.temperature ?? 0,
        ...(request.seed !== undefined ? { seed: request.seed } : {}),
        ...(grammarState ? { grammarEvaluationState: grammarState } : {}),
      });
      let afterForce = false;
      try {
        let step = await iterator.next();
        while (!step.done) {
          const token = step.value;
          const now = performance.now();
          if (inPrefill) {
            inPrefill = false;
            this.#activePrefills--;
            this.#applyThreads();
            firstTokenAt = now;
            this.rates.observePrefill(input.length - cached, now - acquired);
          } else if (!afterForce) {
            // A gap that included a forced batch is not a decode step.
            this.rates.observeDecodeGap(now - lastTokenAt);
          }
          lastTokenAt = now;
          afterForce = false;
          const piece = this.#model.detokenize([token], false, generated.slice(-4));
          generated.push(token);
          text += piece;
          if (request.onText && piece) request.onText(piece);
          if (signal?.aborted) throw abortError(signal);
          let replacement: Token[] | undefined;
          if (guide) {
            const { force, done } = guide.step(text);
            if (force) {
              text += force;
              request.onText?.(force, true);
            }
            if (done) {
              stopReason = 'grammar';
              break;
            }
            if (force) {
              const tokens = this.#model.tokenize(force, false, 'trimLeadingSpace');
              forced += tokens.length;
              replacement = [token, ...tokens];
              afterForce = true;
            }
          } else if (request.grammar && /[}\]]\s*$/.test(text)) {
            try {
              json = JSON.parse(text);
              stopReason = 'grammar';
              break;
            } catch {
              // Not complete yet: a closing brace of an inner object.
            }
          }
          if (request.stop?.some((s) => text.includes(s))) {
            stopReason = 'stop';
            break;
          }
          if (generated.length >= request.maxTokens) {
            stopReason = 'max_tokens';
            break;
          }
          step = await iterator.next(replacement);
        }
      } finally {
        await iterator.return();
      }
      if (signal?.aborted) throw abortError(signal);
      if (request.stop && stopReason === 'stop') {
        const cut = Math.min(...request.stop.map((s) => text.indexOf(s)).filter((i) => i >= 0));
        text = text.slice(0, cut);
      }
      if ((request.grammar || guide) && json === undefined) {
        try {
          json = JSON.parse(text);
        } catch {
          // Left undefined: the caller reports MODEL_OUTPUT_INVALID (usually max_tokens cut the JSON).
        }
      }
      this.#counts.completed++;
    } catch (error) {
      if (signal?.aborted) {
        this.#counts.aborted++;
        throw abortError(signal);
      }
      this.#counts.failed++;
      throw error instanceof ClawboxError ? error : new ClawboxError('INTERNAL', `generation failed: ${message(error)}`, {}, { cause: error });
    } finally {
      if (inPrefill) {
        this.#activePrefills--;
        this.#applyThreads();
      }
      this.#release(slot);
    }
    const end = performance.now();
    const timings: Timings = {
      queue_ms: acquired - arrived,
      prefill_ms: (firstTokenAt || end) - acquired,
      decode_ms: firstTokenAt ? end - firstTokenAt : 0,
      total_ms: end - arrived,
    };
    return {
      text,
      ...(json !== undefined ? { json } : {}),
      stop_reason: stopReason,
      prompt_tokens: input.length,
      cached_tokens: cached,
      evaluated_tokens: input.length - cached,
      generated_tokens: generated.length,
      forced_tokens: forced,
      sequence: slot.index,
      timings,
    };
  }

  /** Forgets a session's affinity (its KV stays until the sequence is reused). */
  releaseSession(session: string): void {
    for (const slot of this.#slots) if (slot.session === session) slot.session = null;
  }

  status(): EngineStatus {
    return { info: this.info, rates: this.rates.snapshot(), sequences: this.sequences(), requests: { ...this.#counts } };
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(new ClawboxError('MODEL_NOT_LOADED', 'the model was unloaded'));
    await this.#context.dispose().catch(() => {});
    await this.#model.dispose().catch(() => {});
    if (this.#ownsLlama) await this.#llama.dispose().catch(() => {});
  }
}

async function resolveThreads(entry: ModelConfigEntry, llama: Llama): Promise<ThreadChoice> {
  const needsSample = entry.threads === 'auto' || entry.batch_threads === 'auto';
  const auto = chooseThreads({
    mathCores: llama.cpuMathCores,
    availableCpus: availableCpus(),
    ...(needsSample ? { freeCores: await sampleFreeCores(200) } : {}),
  });
  const threads = entry.threads === 'auto' ? auto.threads : entry.threads;
  const batchThreads = entry.batch_threads === 'auto' ? Math.max(auto.batchThreads, threads) : entry.batch_threads;
  const fixed = entry.threads !== 'auto' && entry.batch_threads !== 'auto';
  return { threads, batchThreads, reason: fixed ? 'configured' : auto.reason };
}

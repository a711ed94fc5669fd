/**
 * The thin adapter between the engine-agnostic scheduler and the model layer (models/): a Lane that runs
 * admitted work on a ModelEngine, and the helpers that put the Agent behind the scheduler.
 *
 * - ModelLane wraps the engine per job: the job's AbortSignal and output budget go into every generate()
 *   call, inter-token gaps (timed between streamed text pieces) go to the stall watch as they happen, and
 *   each result's prefill/decode figures go to the lane's service-time model.
 * - One service model per loaded engine (backend/model); it starts from the engine's own measured rates
 *   when there are some, else the scheduler probes with one request at a time until it has measured.
 * - A stall also asks the engine to re-check its thread count against free cores (at most every 10 s).
 */
import type { Agent, AgentEngine, AgentRequest, AgentResponse } from '../agent.js';
import type { GenerateRequest, GenerateResult, JsonGrammar, RateSnapshot } from '../../models/index.js';
import { ClawboxError } from '../../runtime/errors.js';
import { type Clock, systemClock } from './clock.js';
import type { FastPathMatcher, Lane, LaneJob, Outcome, Scheduler, Submission } from './scheduler.js';
import { EwmaServiceModel, type ServiceTimeModel, type WorkPlan } from './service-model.js';

/** What the lane needs from an engine; ModelEngine provides all of it. */
export interface LaneEngine {
  generate(request: GenerateRequest): Promise<GenerateResult>;
  grammarFor(schema: object): Promise<JsonGrammar>;
  warmPrefix?(prefix: string): Promise<unknown>;
  /** GBNF grammars: with them the agent decodes tool calls jump-forward (AgentEngine.gbnf). */
  gbnf?: AgentEngine['gbnf'];
  tokenize(text: string): readonly unknown[];
  sequences(): { total: number; busy: number; waiting: number };
  readonly rates?: { snapshot(): RateSnapshot };
  recheckThreads?(): Promise<unknown>;
}

export interface ModelLaneOptions<Req, Res> {
  /** The engine to run on now, or null while none is loaded (the ladder then skips this lane). */
  engine: () => LaneEngine | null;
  /** Runs one admitted job; must use `engine` (the instrumented one) for generation. */
  run: (job: LaneJob<Req>, engine: AgentEngine) => Promise<Res>;
  clock?: Clock;
  stall_factor?: number;
  /** Called with the figures of each finished generation (benchmarks, logs). */
  onResult?: (result: GenerateResult) => void;
}

export class ModelLane<Req, Res> implements Lane<Req, Res> {
  readonly #options: ModelLaneOptions<Req, Res>;
  readonly #clock: Clock;
  readonly #models = new WeakMap<LaneEngine, EwmaServiceModel>();
  /** Stands in while no engine is loaded (never consulted: the lane is unavailable then). */
  readonly #none: EwmaServiceModel;
  #lastRecheck = Number.NEGATIVE_INFINITY;
  #seenStalls = 0;

  constructor(options: ModelLaneOptions<Req, Res>) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#none = new EwmaServiceModel({ clock: this.#clock });
  }

  /** The service model of the engine in use. */
  get model(): ServiceTimeModel {
    const engine = this.#options.engine();
    return engine ? this.#modelFor(engine) : this.#none;
  }

  #modelFor(engine: LaneEngine): EwmaServiceModel {
    let model = this.#models.get(engine);
    if (!model) {
      const rates = engine.rates?.snapshot();
      const seed =
        rates?.prefill_tok_s && rates.decode_tok_s
          ? { prefill_ms_per_token: 1000 / rates.prefill_tok_s, decode_ms_per_token: 1000 / rates.decode_tok_s, prefill_overhead_ms: rates.overhead_ms ?? 0 }
          : undefined;
      model = new EwmaServiceModel({
        clock: this.#clock,
        ...(this.#options.stall_factor ? { stall_factor: this.#options.stall_factor } : {}),
        ...(seed ? { seed } : {}),
      });
      this.#models.set(engine, model);
    }
    return model;
  }

  available(): boolean {
    return this.#options.engine() !== null;
  }

  maxSequences(): number {
    return this.#options.engine()?.sequences().total ?? 1;
  }

  /**
   * Measures the engine with a few short generations (sequential, at one sequence) so admission has
   * figures before the first real request; call it after a model loads, before warming a prefix.
   */
  async calibrate(options: { runs?: number; prefix?: string; prompt?: string; maxTokens?: number } = {}): Promise<void> {
    const engine = this.#options.engine();
    if (!engine) return;
    const model = this.#modelFor(engine);
    for (let i = 0; i < (options.runs ?? 3); i++) {
      const result = await engine.generate({
        ...(options.prefix ? { prefix: options.prefix } : {}),
        prompt: `${options.prompt ?? 'calibration request number'} ${i}`,
        maxTokens: options.maxTokens ?? 8,
      });
      model.observe({
        evaluated_tokens: result.evaluated_tokens,
        prefill_ms: result.timings.prefill_ms,
        generated_tokens: result.generated_tokens,
        decode_ms: result.timings.decode_ms,
        concurrency: 1,
      });
    }
  }

  async run(job: LaneJob<Req>): Promise<Res> {
    const engine = this.#options.engine();
    if (!engine) throw new ClawboxError('MODEL_NOT_LOADED', 'the model was unloaded');
    return this.#options.run(job, this.#instrument(engine, job));
  }

  /** The engine as the job sees it: bounded output, the job's abort signal, measured as it runs. */
  #instrument(engine: LaneEngine, job: LaneJob<Req>): AgentEngine {
    const generate = async (request: GenerateRequest): Promise<GenerateResult> => {
      let last: number | null = null;
      const onText = (text: string, forced?: boolean) => {
        const now = performance.now();
        // The first piece ends the prefill; gaps between later sampled pieces are decode steps. The step
        // after forced text also evaluates that batch, so it is not a decode gap.
        if (last !== null && !forced) {
          job.report.tokenGap(now - last);
          if (this.#stalled(engine)) void engine.recheckThreads?.().catch(() => {});
        }
        last = forced ? null : now;
        request.onText?.(text, forced);
      };
      const signal = request.signal ? AbortSignal.any([request.signal, job.signal]) : job.signal;
      const result = await engine.generate({
        ...request,
        maxTokens: Math.max(1, Math.min(request.maxTokens, job.grant.max_output_tokens)),
        signal,
        onText,
      });
      job.report.done({
        evaluated_tokens: result.evaluated_tokens,
        prefill_ms: result.timings.prefill_ms,
        generated_tokens: result.generated_tokens,
        decode_ms: result.timings.decode_ms,
      });
      this.#options.onResult?.(result);
      return result;
    };
    return {
      underlying: engine,
      generate,
      grammarFor: (schema) => engine.grammarFor(schema),
      ...(engine.warmPrefix ? { warmPrefix: (prefix: string) => engine.warmPrefix!(prefix) } : {}),
      // Without it the agent falls back to one JSON grammar (3-4x slower per tool call in bench:model).
      ...(engine.gbnf ? { gbnf: (text: string) => engine.gbnf!(text) } : {}),
    };
  }

  /** True when the model saw a new stall and the threads were not re-checked in the last 10 s. */
  #stalled(engine: LaneEngine): boolean {
    const stalls = this.#modelFor(engine).stalls;
    const now = this.#clock.now();
    if (stalls === this.#seenStalls || now - this.#lastRecheck < 10_000) return false;
    this.#seenStalls = stalls;
    this.#lastRecheck = now;
    return true;
  }
}

// ---- the Agent behind the scheduler ---------------------------------------------------------------

export interface AgentLaneOptions {
  clock?: Clock;
  stall_factor?: number;
}

/** A lane that runs the agent's model path on `engine()` (main or small), with the granted budget. */
export function agentLane(agent: Pick<Agent, 'handle'>, engine: () => LaneEngine | null, options: AgentLaneOptions = {}): ModelLane<AgentRequest, AgentResponse> {
  return new ModelLane<AgentRequest, AgentResponse>({
    engine,
    ...options,
    run: (job, instrumented) =>
      agent.handle(
        { ...job.request, signal: job.signal, commit: job.commit },
        { path: 'model', maxTokens: job.grant.max_output_tokens, engine: instrumented, brief: !job.grant.explain },
      ),
  });
}

/** The agent's fast path as the scheduler's first check: a match runs without the model. */
export function agentFastPath(agent: Pick<Agent, 'canAnswerFast' | 'handle'>): FastPathMatcher<AgentRequest, AgentResponse> {
  // The session matters: a follow-up ("the first one", "turn it off") is a fast-path request only in context.
  // So are a calculation and a question about the documents, when the caller may use the tool or the knowledge base.
  return async (request) => ((await agent.canAnswerFast(request)) ? () => agent.handle(request, { path: 'fast' }) : null);
}

export interface AgentPlanOptions {
  /** Output budget of a full answer (the agent's default is 96). */
  max_output_tokens?: number;
  /** Budget of a brief answer (rung 2: replies cut short; the agent's BRIEF_OUTPUT_TOKENS); unset: no rung 2. */
  short_output_tokens?: number;
  /** Tokens the conversation template adds around the user text (tokenizer fallback only). */
  template_tokens?: number;
  /**
   * The agent, when it can price a request itself (`estimate`: prompt tokens with its real template and
   * session history, and how many a free sequence already holds); else the user text is tokenized.
   */
  agent?: { estimate?(request: AgentRequest): Promise<{ prompt_tokens: number; cached_tokens: number; max_tokens: number } | null> };
}

/** Work shape of an agent request: tokens to evaluate (prompt minus what is cached) and the output budget. */
export function agentPlanner(engine: () => LaneEngine | null, options: AgentPlanOptions = {}): (request: AgentRequest) => WorkPlan | Promise<WorkPlan> {
  const template = options.template_tokens ?? 12;
  const max = options.max_output_tokens ?? 96;
  const short = options.short_output_tokens !== undefined ? { short_output_tokens: options.short_output_tokens } : {};
  const fromText = (request: AgentRequest): WorkPlan => {
    const text = typeof request.text === 'string' ? request.text : '';
    const current = engine();
    const tokens = current ? current.tokenize(text).length : Math.ceil(text.length / 3);
    return { prompt_tokens: tokens + template, prefix_cached: true, max_output_tokens: max, ...short, kind: 'tool' };
  };
  const estimate = options.agent?.estimate?.bind(options.agent);
  if (!estimate) return fromText;
  return async (request) => {
    const shape = await estimate(request);
    if (!shape) return fromText(request);
    return {
      prompt_tokens: Math.max(1, shape.prompt_tokens - shape.cached_tokens),
      max_output_tokens: Math.min(max, shape.max_tokens),
      ...short,
      kind: 'tool',
    };
  };
}

/** An agent response with the scheduler's view: its queue time, total time, path and any degradation. */
export type ScheduledAgentResponse = Omit<AgentResponse, 'path'> & {
  path: 'fast' | 'model' | 'remote';
  degraded?: Exclude<Outcome<AgentResponse>['rung'], 'none'>;
  deadline_ms: number;
};

/**
 * The handler for the agent topic (agent/agent-topic.ts `AgentTopic({handle})`) and other callers:
 * {text, session?, transaction?, deadline_ms?, source} -> scheduler -> agent.
 */
export function agentHandler(
  scheduler: Pick<Scheduler<AgentRequest, AgentResponse>, 'submit'>,
): (request: AgentRequest & { source?: string; deadline_ms?: number }) => Promise<ScheduledAgentResponse> {
  return async (request) => {
    const { source, deadline_ms, ...agentRequest } = request;
    const submission: Submission<AgentRequest> = {
      request: agentRequest,
      ...(source ? { source } : {}),
      ...(deadline_ms !== undefined ? { deadline_ms } : {}),
      ...(agentRequest.signal ? { signal: agentRequest.signal } : {}),
    };
    const outcome = await scheduler.submit(submission);
    const response = outcome.result;
    return {
      ...response,
      path: outcome.path,
      timings: { ...response.timings, queue_ms: outcome.timings.queue_ms + response.timings.queue_ms, total_ms: outcome.timings.total_ms },
      ...(outcome.rung !== 'none' ? { degraded: outcome.rung } : {}),
      deadline_ms: outcome.deadline_ms,
    };
  };
}

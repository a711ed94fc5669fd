/**
 * The agent: turns a request ({text, session?, transaction?}) into validated device actions.
 *   1. Fast path: the deterministic intent matcher; matched intents run without the model: one or several
 *      actions (each through the same checks as a model proposal), questions about device state (answered
 *      from the last reported state, never acting), or a question back when a name fits several devices.
 *   2. Model path: system prompt + device list (a cached KV prefix) + session history, output constrained
 *      by a grammar built from the devices' command schemas.
 * Every proposal — fast or model — is checked against the caller's permissions and validated with ajv
 * against the device's schema before it is executed through the device directory; invalid proposals are
 * refused with an explanation and never executed.
 */
import { randomUUID } from 'node:crypto';
import { ClawboxError, type ErrorCode, toClawboxError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logging.js';
import type { LlamaGrammar } from 'node-llama-cpp';
import type { GenerateRequest, GenerateResult, JsonGrammar, Timings } from '../models/index.js';
import type { AgentDevice, DeviceDirectory, JsonSchema, StateValue } from './directory.js';
import { type FastMatch, IntentMatcher, type MatchContext, resolveAdjust } from './intents.js';
import { english } from './lang-en.js';
import { chinese } from './lang-zh.js';
import type { IntentLanguage } from './language.js';
import { NO_DEVICE, type ToolCall, conversationPrompt, salvageReply, sanitizeUserText, systemPrompt, toolCallSchema } from './prompt.js';
import { type CompletionRequest, type ToolCallOut, completionPrefix, completionPrompt, runCompletion } from './completion.js';
import { replyTextStream } from './reply-stream.js';
import { BRIEF_OUTPUT_TOKENS, BRIEF_REPLY_CHARS } from './brief.js';
import { type SessionOptions, SessionStore } from './sessions.js';
import { ToolCallPlan } from './tool-guide.js';
import { mathExpression } from './compute-questions.js';
import { knowledgeQuestion } from './knowledge-questions.js';
import {
  type AgentTool,
  type KnowledgePassage,
  citation,
  formatToolResult,
  isToolId,
  passageAnswer,
  passagesPrompt,
  toolDevices,
  toolPrompt,
} from './tools.js';
import { CommandValidator } from './validate.js';

/** What the agent needs from an engine (ModelEngine provides it; the scheduler may wrap it). */
export interface AgentEngine {
  generate(request: GenerateRequest): Promise<GenerateResult>;
  grammarFor(schema: object): Promise<JsonGrammar>;
  warmPrefix?(prefix: string): Promise<unknown>;
  /** GBNF grammars, for jump-forward decoding of tool calls (without it the agent uses one JSON grammar). */
  gbnf?(text: string): Promise<LlamaGrammar>;
  /**
   * The engine this one stands for, when it is a per-request wrapper (the scheduler's instrumented
   * view): warmed prefixes and compiled grammars are remembered per underlying engine, not per wrapper.
   */
  readonly underlying?: object;
  /** Token work of a request (for `estimate`). */
  shape?(request: Pick<GenerateRequest, 'prefix' | 'prompt' | 'session'>): { prompt_tokens: number; cached_tokens: number };
}

export interface AgentRequest {
  text: string;
  session?: string;
  /** Who asks (principal kind and id): the data policy decides by it whether the work may leave the box. Never sent out. */
  caller?: { kind: string; id: string };
  transaction?: string | number;
  /** Device ids this caller may control; all when absent. */
  allow?: readonly string[];
  signal?: AbortSignal;
  /**
   * Runs one validated action as the caller: the front door checks the caller's permission and the
   * device's safety policy, and audits it. Absent: the directory executes it directly (tests, benches).
   */
  act?: (device: string, command: Record<string, StateValue>) => Promise<ActOutcome>;
  /** From the scheduler (LaneJob.commit): false means the deadline passed, so nothing may be started. */
  commit?: () => boolean;
  /** Searches the knowledge base as the caller (kb.search); null when this caller has none to search. */
  lookup?: (query: string) => Promise<KnowledgePassage[] | null>;
  /** Calls a plugin tool ("plugin/tool") as the caller (plugin.call: permission, schema checks, audit). */
  callTool?: (tool: string, args: Record<string, unknown>) => Promise<unknown>;
  /** The caller streams: the model's reply text goes here as it is generated (see reply-stream.ts). */
  onText?: (text: string) => void;
  /** A client's own conversation and functions (OpenAI `tools`): answered by completion.ts, never acting. */
  completion?: CompletionRequest;
}

/** What became of one action handed to `act`. */
export type ActOutcome = { kind: 'done'; result: unknown } | { kind: 'confirm'; confirmation: PendingConfirmation };

/** An action that waits for the caller's confirmation (agent.confirm with `id`, before `expires_at`). */
export interface PendingConfirmation {
  id: string;
  device: string;
  command: Record<string, StateValue>;
  expires_at: string;
}

export interface AgentAction {
  device: string;
  command: Record<string, StateValue>;
  /** What the device layer returned, or {error: {code, message}} when execution failed. */
  result: unknown;
}

export interface AgentRefusal {
  device: string | null;
  command: unknown;
  code: ErrorCode;
  reason: string;
}

export interface AgentResponse {
  text: string;
  actions: AgentAction[];
  path: 'fast' | 'model';
  timings: Timings;
  /** Proposals that were not executed, with the reason. */
  refused?: AgentRefusal[];
  /** Fast-path questions: the values read (last reported state; null when not reported yet). */
  answers?: Array<{ device: string; property: string; value: StateValue | null }>;
  /** Fast path: the request named several devices; the session's next message may answer which. */
  question?: { subject: string; candidates: string[] };
  /** Actions that wait for the caller's confirmation (the device's safety policy says `confirm`). */
  confirmations?: PendingConfirmation[];
  /** The documents the answer is based on (knowledge base passages), cited in `text`. */
  sources?: Array<Pick<KnowledgePassage, 'source' | 'title' | 'heading'>>;
  /** A plugin tool the answer came from, with its validated arguments and result. */
  tool?: { id: string; args: Record<string, unknown>; result: unknown };
  /** Model path only: token counts (forced: appended by jump-forward instead of sampled). */
  tokens?: { prompt: number; cached: number; generated: number; forced: number };
  /** A completion's calls of the client's functions (the client runs them). */
  tool_calls?: ToolCallOut[];
  transaction?: string | number;
}

/** One proposal's result, as both paths report it. */
interface ActionOutcome {
  text: string;
  actions: AgentAction[];
  refused: AgentRefusal[];
  confirmations?: PendingConfirmation[];
  sources?: AgentResponse['sources'];
  tool?: AgentResponse['tool'];
}

export interface HandleOptions {
  /** auto: fast path, then model. fast: fast path only (NOT_FOUND if no match). model: skip the fast path. */
  path?: 'auto' | 'fast' | 'model';
  /** Output budget for the model path (the scheduler shortens it under load). */
  maxTokens?: number;
  /** Use this engine instead of the default one (e.g. the small model). */
  engine?: AgentEngine;
  /**
   * The scheduler's short rung (no free-text explanation): a reply is cut at BRIEF_REPLY_CHARS, so with
   * jump-forward decoding (the engine's default) BRIEF_OUTPUT_TOKENS is enough output budget. Device
   * actions are unchanged: they carry no free text.
   */
  brief?: boolean;
}

export { BRIEF_OUTPUT_TOKENS, BRIEF_REPLY_CHARS };

export interface AgentOptions {
  directory: DeviceDirectory;
  /** The current main engine, or null when no model is loaded (fast path only). */
  engine?: () => AgentEngine | null;
  /** Languages for the fast path, tried in order (default: English, Chinese); the first also words the model path's replies. */
  languages?: readonly IntentLanguage[];
  sessions?: SessionOptions;
  logger?: Logger;
  /** Default output budget of a tool call. */
  maxTokens?: number;
  /** Longest accepted request text. */
  maxTextChars?: number;
  /** Jump-forward decoding of tool calls (default true): sample only where there is a choice. */
  jumpForward?: boolean;
  /** Longest reply of a brief answer (default BRIEF_REPLY_CHARS). */
  briefReplyChars?: number;
  /** Plugin tools offered to the model (each call still needs the caller's permission). */
  tools?: () => readonly AgentTool[];
  /** Knowledge-base passages put into a model request (default 2; 0: none). */
  passages?: number;
}

interface Snapshot {
  signature: string;
  devices: Array<{ device: AgentDevice; schema: JsonSchema | undefined }>;
  /** The devices plus the tools as pseudo devices: what the model may answer with. */
  modelDevices: Array<{ device: AgentDevice; schema: JsonSchema | undefined }>;
  tools: readonly AgentTool[];
  matchers: Array<{ language: IntentLanguage; matcher: IntentMatcher }>;
  prefix: string;
  toolSchema: JsonSchema;
  briefToolSchema: JsonSchema;
}

/** The phrasing pass may only reply. */
const REPLY_ONLY_SCHEMA = {
  type: 'object',
  properties: { device: { const: NO_DEVICE }, reply: { type: 'string', maxLength: 120 } },
  required: ['device', 'reply'],
};

const ZERO_TIMINGS: Omit<Timings, 'total_ms'> = { queue_ms: 0, prefill_ms: 0, decode_ms: 0 };

export class Agent {
  readonly sessions: SessionStore;
  readonly #directory: DeviceDirectory;
  readonly #engine: () => AgentEngine | null;
  readonly #languages: readonly IntentLanguage[];
  readonly #validator = new CommandValidator();
  readonly #logger: Logger | undefined;
  readonly #maxTokens: number;
  readonly #maxTextChars: number;
  #snapshot: Snapshot | null = null;
  #building: Promise<Snapshot> | null = null;
  #warmed = new WeakMap<object, string>();
  #plans = new WeakMap<object, { signature: string; plan: Promise<ToolCallPlan> }>();
  readonly #jumpForward: boolean;
  readonly #briefReplyChars: number;
  readonly #tools: () => readonly AgentTool[];
  readonly #passages: number;
  #unsubscribe: (() => void) | null = null;

  constructor(options: AgentOptions) {
    this.#directory = options.directory;
    this.#engine = options.engine ?? (() => null);
    this.#languages = options.languages && options.languages.length > 0 ? options.languages : [english, chinese];
    this.#logger = options.logger;
    this.#maxTokens = options.maxTokens ?? 96;
    this.#maxTextChars = options.maxTextChars ?? 1000;
    this.#jumpForward = options.jumpForward ?? true;
    this.#briefReplyChars = options.briefReplyChars ?? BRIEF_REPLY_CHARS;
    this.#tools = options.tools ?? (() => []);
    this.#passages = options.passages ?? 2;
    this.sessions = new SessionStore(options.sessions);
    this.#unsubscribe =
      options.directory.onChange?.(() => {
        this.#snapshot = null;
      }) ?? null;
  }

  get #say() {
    return this.#languages[0]!.say;
  }

  /** Device list, schemas, matchers and prompt; rebuilt when the device list changes. */
  async #current(): Promise<Snapshot> {
    const listed = await this.#directory.list();
    const tools = this.#tools();
    const signature = JSON.stringify([listed.map((d) => [d.id, d.name, d.aliases ?? [], d.area ?? null, d.capabilities]), tools.map((t) => [t.id, t.description, t.arguments])]);
    if (this.#snapshot?.signature === signature) return this.#snapshot;
    if (this.#building) return this.#building;
    this.#building = (async () => {
      const devices = await Promise.all(listed.map(async (device) => ({ device, schema: await this.#directory.commandSchema(device.id) })));
      const modelDevices = [...devices, ...toolDevices(tools)];
      const snapshot: Snapshot = {
        signature,
        devices,
        modelDevices,
        tools,
        matchers: this.#languages.map((language) => ({ language, matcher: new IntentMatcher(devices, language) })),
        prefix: systemPrompt(devices) + toolPrompt(tools),
        toolSchema: toolCallSchema(modelDevices),
        briefToolSchema: toolCallSchema(modelDevices, this.#briefReplyChars),
      };
      this.#snapshot = snapshot;
      return snapshot;
    })().finally(() => {
      this.#building = null;
    });
    return this.#building;
  }

  /** The fast-path match for a text, without executing it (the scheduler's first rung); `session` for follow-ups. */
  async match(text: string, session?: string): Promise<FastMatch | null> {
    const clean = this.#checkText(text);
    const snapshot = await this.#current();
    return this.#matchFast(clean, snapshot, session)?.match ?? null;
  }

  #matchFast(text: string, snapshot: Snapshot, session: string | undefined): { match: FastMatch; language: IntentLanguage } | null {
    const context = (session !== undefined ? (this.sessions.context(session) as MatchContext | undefined) : undefined) ?? {};
    // An answer to a question back is read in the language the question was asked in.
    const pending = context.pending?.language;
    const ordered = pending ? [...snapshot.matchers].sort((a, b) => Number(b.language.code === pending) - Number(a.language.code === pending)) : snapshot.matchers;
    for (const { language, matcher } of ordered) {
      const match = matcher.match(text, context);
      if (match) return { match, language };
    }
    return null;
  }

  /**
   * Gets an engine ready for the current devices before the first request pays for it: evaluates the
   * prompt prefix into the idle sequences and compiles the jump-forward grammars.
   */
  async refreshPrefix(engine: AgentEngine | null = this.#engine()): Promise<void> {
    const snapshot = await this.#current();
    if (!engine) return;
    if (this.#jumpForward && engine.gbnf) await this.#plan(engine, snapshot);
    const key = identity(engine);
    if (engine.warmPrefix && this.#warmed.get(key) !== snapshot.prefix) {
      this.#warmed.set(key, snapshot.prefix);
      await engine.warmPrefix(snapshot.prefix);
    }
  }

  #checkText(text: unknown): string {
    if (typeof text !== 'string') throw new ClawboxError('PAYLOAD_INVALID', 'text must be a string');
    const clean = text.trim();
    if (clean.length === 0) throw new ClawboxError('PAYLOAD_INVALID', 'text is empty');
    if (clean.length > this.#maxTextChars) {
      throw new ClawboxError('PAYLOAD_TOO_LARGE', `text is longer than ${this.#maxTextChars} characters`);
    }
    return clean;
  }

  async handle(request: AgentRequest, options: HandleOptions = {}): Promise<AgentResponse> {
    const started = performance.now();
    if (request.completion) return this.#complete(request, request.completion, options, started);
    const text = this.#checkText(request.text);
    if (request.session !== undefined && (typeof request.session !== 'string' || request.session.length > 128)) {
      throw new ClawboxError('PAYLOAD_INVALID', 'session must be a string of at most 128 characters');
    }
    const snapshot = await this.#current();
    const mode = options.path ?? 'auto';
    if (mode !== 'model') {
      const found = this.#matchFast(text, snapshot, request.session);
      if (found) {
        const response = await this.#runFast(found.match, found.language, snapshot, request, started);
        if (request.session) this.sessions.append(request.session, sanitizeUserText(text), response.text, found.match.context);
        return response;
      }
      const answered = await this.#answerWithoutModel(text, request, started);
      if (answered) {
        if (request.session) this.sessions.append(request.session, sanitizeUserText(text), answered.text);
        return answered;
      }
      if (mode === 'fast') throw new ClawboxError('NOT_FOUND', 'no device command matches this text');
    }
    const engine = options.engine ?? this.#engine();
    if (!engine) throw new ClawboxError('MODEL_NOT_LOADED', this.#say.noModel());
    return this.#runModel(engine, text, snapshot, request, options, started);
  }

  /**
   * Whether the fast path answers this request: a device command or question, a calculation (with a
   * tool caller) or a question about the documents (with a knowledge lookup). For the scheduler's first rung.
   */
  async canAnswerFast(request: AgentRequest): Promise<boolean> {
    if (request.completion) return false;
    if (await this.match(request.text, request.session)) return true;
    return (!!request.callTool && mathExpression(request.text) !== null) || (!!request.lookup && knowledgeQuestion(request.text) !== null);
  }

  /** Calculations (compute plugin) and "what does the manual say about X" (knowledge base), without a model. */
  async #answerWithoutModel(text: string, request: AgentRequest, started: number): Promise<AgentResponse | null> {
    const maths = request.callTool ? mathExpression(text) : null;
    if (maths) {
      const args = { expression: maths.expression };
      let result: unknown;
      try {
        result = await request.callTool!('compute/evaluate', args);
      } catch (error) {
        // No plugin host (or no compute plugin): not a fast-path answer after all.
        if (toClawboxError(error).code === 'REQUEST_UNKNOWN' || (error as { code?: unknown }).code === 'REQUEST_UNKNOWN') return null;
        throw error;
      }
      const answer = formatToolResult(result);
      return this.#clean(this.#finish({ text: `${maths.asked} = ${answer}`, actions: [], path: 'fast', tool: { id: 'compute/evaluate', args, result } }, request, started));
    }
    const asked = request.lookup ? knowledgeQuestion(text) : null;
    if (asked) {
      const hits = await request.lookup!(asked.query);
      if (hits === null) return null;
      const best = hits[0];
      const response = best
        ? { text: passageAnswer(best), sources: [{ source: best.source, title: best.title, heading: best.heading }] }
        : { text: `The documents say nothing about ${asked.about}.` };
      return this.#clean(this.#finish({ ...response, actions: [], path: 'fast' }, request, started));
    }
    return null;
  }

  #finish(response: Omit<AgentResponse, 'timings'> & { timings?: Omit<Timings, 'total_ms'> }, request: AgentRequest, started: number): AgentResponse {
    const timings = { ...(response.timings ?? ZERO_TIMINGS), total_ms: performance.now() - started };
    return {
      ...response,
      timings,
      ...(response.refused && response.refused.length > 0 ? { refused: response.refused } : { refused: undefined }),
      ...(request.transaction !== undefined ? { transaction: request.transaction } : {}),
    };
  }

  async #runFast(match: FastMatch, language: IntentLanguage, snapshot: Snapshot, request: AgentRequest, started: number): Promise<AgentResponse> {
    const say = language.say;
    if (match.kind === 'ask' && match.ask) {
      const candidates = match.ask.candidates;
      const text = say.which(match.ask.subject, candidates.map((d) => d.name));
      const question = { subject: match.ask.subject, candidates: candidates.map((d) => d.id) };
      return this.#clean(this.#finish({ text, actions: [], path: 'fast', question }, request, started));
    }
    // Questions and relative changes read the last reported state (fresh from the directory, not the cached snapshot).
    const fresh = new Map((await this.#directory.list()).map((d) => [d.id, d]));
    if (match.kind === 'query') {
      const answers: NonNullable<AgentResponse['answers']> = [];
      const texts: string[] = [];
      for (const { device, property } of match.queries) {
        const value = fresh.get(device.id)?.state?.[property] ?? null;
        answers.push({ device: device.id, property, value });
        texts.push(value === null ? say.unknownReading(device.name, property) : say.reading(device.name, property, value, unitOf(device, property)));
      }
      return this.#clean(this.#finish({ text: texts.join(' '), actions: [], path: 'fast', answers }, request, started));
    }
    const combined: ActionOutcome = { text: '', actions: [], refused: [], confirmations: [] };
    const texts: string[] = [];
    for (const action of match.actions) {
      let command: Record<string, StateValue> = action.command;
      if (action.adjust) {
        const value = resolveAdjust(action.adjust, fresh.get(action.device.id)?.state ?? action.device.state);
        if (value === null) {
          const reason = say.unknownReading(action.device.name, action.adjust.property).replace(/[.。]$/, '');
          texts.push(say.refused(reason));
          combined.refused.push({ device: action.device.id, command: { [action.adjust.property]: null }, code: 'COMMAND_INVALID', reason });
          continue;
        }
        command = { [action.adjust.property]: value };
      }
      // Every action, one by one, through the same checks and the caller's front door as a model proposal.
      const outcome = await this.#execute(action.device.id, command, snapshot, request, language);
      texts.push(outcome.text);
      combined.actions.push(...outcome.actions);
      combined.refused.push(...outcome.refused);
      combined.confirmations!.push(...(outcome.confirmations ?? []));
    }
    combined.text = texts.join(' ');
    return this.#clean(this.#finish({ ...combined, path: 'fast' }, request, started));
  }

  /** Permission, validation and execution of one proposal; shared by both paths. */
  async #execute(
    deviceId: string,
    command: unknown,
    snapshot: Snapshot,
    request: AgentRequest,
    language: IntentLanguage,
  ): Promise<ActionOutcome> {
    const say = language.say;
    const entry = snapshot.devices.find((d) => d.device.id === deviceId);
    const refuse = (code: ErrorCode, reason: string) => ({
      text: say.refused(reason),
      actions: [],
      refused: [{ device: entry ? deviceId : null, command, code, reason }],
    });
    if (!entry) return refuse('DEVICE_NOT_FOUND', `there is no device "${deviceId}"`);
    if (request.allow && !request.allow.includes(deviceId)) return refuse('FORBIDDEN', `you may not control ${entry.device.name}`);
    if (!entry.schema) return refuse('COMMAND_INVALID', `${entry.device.name} accepts no commands`);
    if (!command || typeof command !== 'object' || Array.isArray(command)) return refuse('COMMAND_INVALID', 'the command is not an object');
    const validation = this.#validator.validate(entry.schema, command);
    if (!validation.ok) return refuse('COMMAND_INVALID', `${entry.device.name}: ${validation.reason}`);
    const valid = command as Record<string, StateValue>;
    // The last moment to drop the action honestly: once committed, it runs and is reported, however late.
    if (request.signal?.aborted || (request.commit && !request.commit())) {
      return refuse('DEADLINE_EXCEEDED', `not run: the request ran out of time before ${entry.device.name} was commanded`);
    }
    try {
      const outcome: ActOutcome = request.act
        ? await request.act(deviceId, valid)
        : {
            kind: 'done',
            result: await this.#directory.execute(deviceId, valid, {
              source: 'agent',
              ...(request.transaction !== undefined ? { transaction: request.transaction } : {}),
            }),
          };
      if (outcome.kind === 'confirm') {
        return { text: say.confirm(entry.device.name, valid, outcome.confirmation.id), actions: [], refused: [], confirmations: [outcome.confirmation] };
      }
      return { text: say.done(entry.device.name, valid), actions: [{ device: deviceId, command: valid, result: outcome.result }], refused: [] };
    } catch (error) {
      // A directory may throw plain errors that carry a catalog code; keep the code.
      const code = (error as { code?: unknown }).code;
      const typed =
        error instanceof ClawboxError || typeof code !== 'string' ? toClawboxError(error) : new ClawboxError(code as ErrorCode, (error as Error).message);
      // Refused before anything ran (permission, policy, a deadline while queued): say so, not "failed".
      if (typed.code === 'FORBIDDEN' || typed.details.not_run === true) {
        this.#logger?.info({ code: typed.code, device: deviceId }, `agent action not run: ${typed.message}`);
        return refuse(typed.code, typed.code === 'FORBIDDEN' ? `you may not control ${entry.device.name}` : typed.message);
      }
      this.#logger?.warn({ code: typed.code, device: deviceId }, `agent command failed: ${typed.message}`);
      return {
        text: say.failed(entry.device.name, typed.message),
        actions: [{ device: deviceId, command: valid, result: { error: { code: typed.code, message: typed.message } } }],
        refused: [],
      };
    }
  }

  /**
   * What the model path would cost for this request now (no fast-path check, nothing evaluated): prompt
   * tokens, tokens already in a free sequence's KV cache, and the output budget. For admission control.
   */
  async estimate(request: AgentRequest, options: HandleOptions = {}): Promise<{ prompt_tokens: number; cached_tokens: number; max_tokens: number } | null> {
    const engine = options.engine ?? this.#engine();
    if (!engine?.shape) return null;
    if (request.completion) {
      const shape = engine.shape({ prefix: completionPrefix(request.completion), prompt: completionPrompt(request.completion) });
      return { ...shape, max_tokens: options.maxTokens ?? this.#maxTokens };
    }
    const snapshot = await this.#current();
    const history = request.session ? this.sessions.history(request.session) : [];
    const shape = engine.shape({
      prefix: snapshot.prefix,
      prompt: conversationPrompt(history, sanitizeUserText(this.#checkText(request.text))),
      ...(request.session ? { session: request.session } : {}),
    });
    return { ...shape, max_tokens: options.maxTokens ?? this.#maxTokens };
  }

  async #runModel(
    engine: AgentEngine,
    text: string,
    snapshot: Snapshot,
    request: AgentRequest,
    options: HandleOptions,
    started: number,
  ): Promise<AgentResponse> {
    const language = this.#languages[0]!;
    const decoding =
      this.#jumpForward && engine.gbnf
        ? { guide: (await this.#plan(engine, snapshot)).guide(options.brief ? { replyChars: this.#briefReplyChars } : {}) }
        : { grammar: await engine.grammarFor(options.brief ? snapshot.briefToolSchema : snapshot.toolSchema) };
    if (engine.warmPrefix && this.#warmed.get(identity(engine)) !== snapshot.prefix) {
      // The device list changed (or first use): fill the idle sequences with the new prefix in the background.
      this.#warmed.set(identity(engine), snapshot.prefix);
      engine.warmPrefix(snapshot.prefix).catch((error: unknown) => this.#logger?.warn({ err: error }, 'prefix warm-up failed'));
    }
    const userText = sanitizeUserText(text);
    const history = request.session ? this.sessions.history(request.session) : [];
    // Passages of the documents that fit the request go into the prompt; the answer cites the first.
    const passages = request.lookup && this.#passages > 0 ? ((await request.lookup(userText)) ?? []).slice(0, this.#passages) : [];
    // The engine reports what it generates, not the guide's forced start: the stream reads it first.
    const streamReply = request.onText ? replyTextStream(request.onText) : undefined;
    if (streamReply && 'guide' in decoding && decoding.guide) streamReply(decoding.guide.start);
    const result = await engine.generate({
      prefix: snapshot.prefix,
      prompt: passagesPrompt(passages) + conversationPrompt(history, userText),
      maxTokens: options.maxTokens ?? this.#maxTokens,
      ...decoding,
      ...(request.session ? { session: request.session } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
      ...(streamReply ? { onText: streamReply } : {}),
    });
    const timings = { queue_ms: result.timings.queue_ms, prefill_ms: result.timings.prefill_ms, decode_ms: result.timings.decode_ms };
    const tokens = { prompt: result.prompt_tokens, cached: result.cached_tokens, generated: result.generated_tokens, forced: result.forced_tokens };
    let outcome: ActionOutcome;
    // A reply cut by the output budget is still an answer: close it rather than refuse it.
    const call = (result.json ?? (result.stop_reason === 'max_tokens' ? salvageReply(result.text) : undefined)) as ToolCall | undefined;
    if (!call || typeof call !== 'object' || typeof call.device !== 'string') {
      const reason = result.stop_reason === 'max_tokens' ? 'the model ran out of output budget before finishing its answer' : 'the model did not produce a valid tool call';
      outcome = { text: language.say.refused(reason), actions: [], refused: [{ device: null, command: result.text, code: 'MODEL_OUTPUT_INVALID', reason }] };
    } else if (call.device === NO_DEVICE) {
      const reply = typeof call.reply === 'string' && call.reply.trim() ? call.reply.trim() : '…';
      outcome = passages[0]
        ? { text: `${reply} ${citation(passages[0])}`, actions: [], refused: [], sources: passages.map((p) => ({ source: p.source, title: p.title, heading: p.heading })) }
        : { text: reply, actions: [], refused: [] };
    } else if (isToolId(call.device)) {
      outcome = await this.#runTool(call.device, call.command, snapshot, request, language);
      if (outcome.tool) {
        const prompt = `${passagesPrompt(passages)}${conversationPrompt(history, userText)}${JSON.stringify({ device: call.device, command: call.command })}\n`;
        outcome.text = (await this.#phrase(engine, snapshot.prefix, prompt, outcome.tool.result, outcome.text, request)) ?? outcome.text;
      }
    } else {
      outcome = await this.#execute(call.device, call.command, snapshot, request, language);
    }
    if (request.session) this.sessions.append(request.session, userText, result.text.trim());
    if (outcome.refused.length > 0) this.#logger?.info({ refused: outcome.refused }, 'model proposal refused');
    return this.#clean(this.#finish({ ...outcome, path: 'model', timings, tokens }, request, started));
  }

  /**
   * A tool call the model proposed: the arguments checked against the tool's own schema, the call run as
   * the caller (plugin.call), the result checked against the tool's result schema before it is answered.
   */
  async #runTool(device: string, command: unknown, snapshot: Snapshot, request: AgentRequest, language: IntentLanguage): Promise<ActionOutcome> {
    const id = device.slice('tool:'.length);
    const tool = snapshot.tools.find((t) => t.id === id);
    const refuse = (code: ErrorCode, reason: string): ActionOutcome => ({ text: language.say.refused(reason), actions: [], refused: [{ device, command, code, reason }] });
    if (!tool) return refuse('NOT_FOUND', `there is no tool "${id}"`);
    if (!request.callTool) return refuse('FORBIDDEN', `tools are not available to this caller`);
    const args = (command as { args?: unknown } | null)?.args;
    const checked = this.#validator.validate(tool.arguments, args);
    if (!checked.ok) return refuse('PAYLOAD_INVALID', `${id}: ${checked.reason}`);
    if (request.signal?.aborted || (request.commit && !request.commit())) return refuse('DEADLINE_EXCEEDED', `not run: the request ran out of time before ${id} was called`);
    let result: unknown;
    try {
      result = await request.callTool(id, args as Record<string, unknown>);
    } catch (error) {
      const typed = toClawboxError(error);
      const code = (error as { code?: unknown }).code;
      return refuse(typeof code === 'string' && !(error instanceof ClawboxError) ? (code as ErrorCode) : typed.code, `${id}: ${typed.message}`);
    }
    if (tool.result) {
      const valid = this.#validator.validate(tool.result, result);
      if (!valid.ok) return refuse('MODEL_OUTPUT_INVALID', `${id} returned an unexpected result: ${valid.reason}`);
    }
    return { text: formatToolResult(result), actions: [], refused: [], tool: { id, args: args as Record<string, unknown>, result } };
  }

  /** Client tools (completion.ts): the model answers the client's conversation with text or a call of its functions. */
  async #complete(request: AgentRequest, completion: CompletionRequest, options: HandleOptions, started: number): Promise<AgentResponse> {
    const engine = options.engine ?? this.#engine();
    if (!engine) throw new ClawboxError('MODEL_NOT_LOADED', this.#say.noModel());
    const { text, tool_calls, result } = await runCompletion(engine, completion, {
      maxTokens: options.maxTokens ?? this.#maxTokens,
      newId: () => `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`,
      ...(request.signal ? { signal: request.signal } : {}),
      ...(request.onText ? { onText: request.onText } : {}),
      ...(request.session ? { session: request.session } : {}),
    });
    const timings = { queue_ms: result.timings.queue_ms, prefill_ms: result.timings.prefill_ms, decode_ms: result.timings.decode_ms };
    const tokens = { prompt: result.prompt_tokens, cached: result.cached_tokens, generated: result.generated_tokens, forced: result.forced_tokens };
    return this.#clean(this.#finish({ text, actions: [], path: 'model', timings, tokens, ...(tool_calls.length > 0 ? { tool_calls } : {}) }, request, started));
  }

  /**
   * A second, short pass that puts a checked tool result into words ("There are 3 rows in the readings
   * table."). The model's sentence is used only when it carries the result's own text, so a small model
   * cannot misquote a number; otherwise (or on any failure, or without time left) null: the plain result.
   */
  async #phrase(engine: AgentEngine, prefix: string, prompt: string, result: unknown, plain: string, request: AgentRequest): Promise<string | null> {
    if (request.signal?.aborted) return null;
    try {
      const grammar = await engine.grammarFor(REPLY_ONLY_SCHEMA);
      const answer = await engine.generate({
        prefix,
        prompt: `${prompt}Tool result: ${sanitizeUserText(JSON.stringify(result ?? null), 400)}\nAssistant: `,
        maxTokens: 48,
        grammar,
        ...(request.session ? { session: request.session } : {}),
        ...(request.signal ? { signal: request.signal } : {}),
      });
      const reply = (answer.json as ToolCall | undefined)?.reply?.trim();
      return reply && plain && reply.includes(plain) ? reply : null;
    } catch (error) {
      this.#logger?.debug({ err: error }, 'tool result not phrased; the plain result is the answer');
      return null;
    }
  }

  /** Compiled jump-forward grammars for this engine and device list. */
  #plan(engine: AgentEngine, snapshot: Snapshot): Promise<ToolCallPlan> {
    const key = identity(engine);
    const cached = this.#plans.get(key);
    if (cached?.signature === snapshot.signature) return cached.plan;
    const compiler = { gbnf: (text: string) => engine.gbnf!(text), grammarFor: (schema: object) => engine.grammarFor(schema) };
    const plan = ToolCallPlan.build(snapshot.modelDevices, compiler);
    plan.catch(() => this.#plans.delete(key));
    this.#plans.set(key, { signature: snapshot.signature, plan });
    return plan;
  }

  #clean(response: AgentResponse): AgentResponse {
    if (response.refused === undefined) delete response.refused;
    if (!response.confirmations || response.confirmations.length === 0) delete response.confirmations;
    return response;
  }

  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }
}

/** What per-engine caches are keyed by: the engine behind a per-request wrapper. */
function identity(engine: AgentEngine): object {
  return engine.underlying ?? engine;
}

function unitOf(device: AgentDevice, property: string): string | undefined {
  for (const cap of device.capabilities) {
    const reading = cap.readings?.find((r) => r.property === property);
    if (reading) return reading.unit;
  }
  if (/temperature/.test(property)) return '°C';
  if (['humidity', 'brightness', 'position'].includes(property)) return '%';
  return undefined;
}

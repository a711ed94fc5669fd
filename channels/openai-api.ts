/**
 * The OpenAI-compatible API, on the HTTP server behind its auth (a client's API key is the `http.token`):
 *
 *   GET  /v1/models               {"object":"list","data":[{id, object:"model", created, owned_by}]}
 *   GET  /v1/models/{id}          one model, or 404 model_not_found
 *   POST /v1/chat/completions     {model, messages[], stream?, stream_options?, user?, n?, tools?, tool_choice?}
 *
 * Model ids: `clawbox` (the agent: fast path, then the local model) and the name of every configured model
 * (answered by the same agent). The last user message is what the agent reads; `user` (or "openai") names
 * the chat session. `stream: true` answers as server-sent `chat.completion.chunk` events as the reply is
 * generated, then `data: [DONE]`. Sampling options (temperature, max_tokens, ...) are accepted and left to
 * the agent; options this API cannot honour are refused with 400 naming the parameter, never ignored:
 * `n` above 1, a `response_format` other than text. `tools` are honoured: with tools (and `tool_choice`
 * auto, required or a named function) the model answers the client's own conversation with text or one call
 * of its functions, under a grammar made from their JSON Schemas, arguments checked against them
 * (agent/completion.ts, operation agent.complete); the client runs the function. Nothing acts on devices.
 *
 * Errors have OpenAI's shape, `{"error":{"message","type","param","code"}}`, with statuses the official
 * SDKs handle: a permanent condition is a 4xx they do not retry (no model installed: 422
 * `model_not_loaded`), a passing one a 503 with Retry-After and retry-after-ms (busy, model still
 * loading); `x-should-retry` says which, and the SDKs obey it over their own rules. Client errors are logged at debug, busy answers at info, only unexpected failures at error.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { ClawboxError, toClientError } from '../runtime/errors.js';
import type { HttpMethod, RouteHandler, RouteRequest } from '../runtime/http/http-server.js';
import type { Logger } from '../runtime/logging.js';
import { assertValid, expectSchema } from '../runtime/operations/validator.js';
import { type ChatReply, type Converse, remainderOf } from './channel.js';
import { SseResponse } from './sse.js';

const BODY_LIMIT = 256 * 1024;
/** The agent itself: always listed, answered with or without a model (the fast path). */
export const AGENT_MODEL_ID = 'clawbox';

/** What the API lists as models; the composition root wires it to the model service. */
export interface ModelCatalog {
  /** Configured model names. */
  names(): string[];
  /** True while a model is still being verified or loaded (MODEL_NOT_LOADED then passes). */
  loading(): boolean;
}

const textPart = {
  type: 'object',
  required: ['type'],
  properties: { type: { type: 'string' }, text: { type: 'string' } },
} as const;

const completionSchema = {
  type: 'object',
  required: ['model', 'messages'],
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    messages: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { enum: ['system', 'developer', 'user', 'assistant', 'tool', 'function'] },
          content: { anyOf: [{ type: 'string' }, { type: 'null' }, { type: 'array', maxItems: 100, items: textPart }] },
          name: { type: 'string', maxLength: 256 },
          tool_call_id: { type: 'string', maxLength: 256 },
          tool_calls: {
            type: 'array',
            maxItems: 16,
            items: {
              type: 'object',
              required: ['function'],
              properties: {
                id: { type: 'string', maxLength: 256 },
                function: { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 64 }, arguments: { type: 'string' } } },
              },
            },
          },
        },
      },
    },
    stream: { anyOf: [{ type: 'boolean' }, { type: 'null' }] },
    stream_options: { anyOf: [{ type: 'object', properties: { include_usage: { type: 'boolean' } } }, { type: 'null' }] },
    user: { type: 'string', pattern: '^[A-Za-z0-9._@-]{1,128}$' },
    parallel_tool_calls: { type: 'boolean' },
    n: { anyOf: [{ type: 'integer', minimum: 1, maximum: 128 }, { type: 'null' }] },
    tools: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        required: ['type', 'function'],
        properties: {
          type: { const: 'function' },
          function: {
            type: 'object',
            required: ['name'],
            properties: {
              name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
              description: { type: 'string', maxLength: 2000 },
              parameters: { type: 'object' },
            },
          },
        },
      },
    },
    tool_choice: {
      anyOf: [
        { enum: ['auto', 'none', 'required'] },
        { type: 'object', required: ['type', 'function'], properties: { type: { const: 'function' }, function: { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 64 } } } } },
      ],
    },
    response_format: { anyOf: [{ type: 'object', required: ['type'], properties: { type: { type: 'string' } } }, { type: 'null' }] },
  },
} as const;

interface CompletionBody {
  model: string;
  messages: {
    role: string;
    content?: string | null | { type: string; text?: string }[];
    name?: string;
    tool_call_id?: string;
    tool_calls?: { id?: string; function: { name: string; arguments?: string } }[];
  }[];
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  user?: string;
  n?: number | null;
  tools?: { type: 'function'; function: { name: string; description?: string; parameters?: Record<string, unknown> } }[];
  tool_choice?: 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };
  response_format?: { type: string } | null;
}

/** An OpenAI-shaped error: status, body, and for passing conditions the retry headers. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null,
    readonly param: string | null = null,
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
  }
}

function contentText(content: CompletionBody['messages'][number]['content']): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (p.type === 'text' && typeof p.text === 'string' ? p.text : '')).join('');
  return '';
}

export interface OpenAiRoutesOptions {
  http: { addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void };
  converse: () => Converse | null;
  models?: ModelCatalog;
  logger?: Logger;
}

/** Registers the /v1 routes; returns their removers. */
export function registerOpenAiRoutes(options: OpenAiRoutesOptions): (() => void)[] {
  const { http, logger } = options;
  // Checked on the first completion request; the build precompiles it.
  expectSchema(completionSchema);
  const created = Math.floor(Date.now() / 1000);
  const ids = () => [AGENT_MODEL_ID, ...(options.models?.names() ?? []).filter((n) => n !== AGENT_MODEL_ID)];
  const model = (id: string) => ({ id, object: 'model', created, owned_by: 'clawbox' });
  const guarded = (handler: (request: RouteRequest) => Promise<unknown>): RouteHandler => async (request) => {
    try {
      return await handler(request);
    } catch (error) {
      const api = toApiError(error, options.models);
      log(logger, api, error, request);
      send(request.res, api);
      return undefined;
    }
  };
  return [
    http.addRoute('GET', '/v1/models', guarded(async () => ({ object: 'list', data: ids().map(model) }))),
    http.addRoute(
      'GET',
      '/v1/models/:id',
      guarded(async ({ params }) => {
        const id = params.id ?? '';
        if (!ids().includes(id)) throw modelNotFound(id);
        return model(id);
      }),
    ),
    http.addRoute(
      'POST',
      '/v1/chat/completions',
      guarded(async (request) => {
        const body = assertValid<CompletionBody>(completionSchema, await request.json(BODY_LIMIT), 'PAYLOAD_INVALID', 'a chat completion request');
        refuseUnsupported(body);
        if (!ids().includes(body.model)) throw modelNotFound(body.model);
        const lastUser = [...body.messages].reverse().find((m) => m.role === 'user');
        const text = lastUser ? contentText(lastUser.content).trim() : '';
        if (!text) throw new ApiError(400, 'messages must contain a user message with text content', 'invalid_request_error', 'invalid_value', 'messages');
        const converse = options.converse();
        if (!converse) throw new ClawboxError('BUSY', 'the chat channel is not connected', { retry_after_ms: 1000 });
        const head = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: body.model };
        const completion = completionOf(body);
        const ask = (onText?: (t: string) => void) =>
          converse(
            { sender_id: body.user ?? 'openai', text, ...(completion ? { completion } : {}) },
            { caller: request.principal, signal: request.signal, source: 'openai', ...(onText ? { onText } : {}) },
          );
        if (body.stream === true) {
          await streamCompletion(request, head, ask, body.stream_options?.include_usage === true, text, options.models, logger);
          return undefined;
        }
        const reply = await ask();
        const calls = toolCallsOf(reply);
        return {
          ...head,
          object: 'chat.completion',
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: calls ? null : reply.text, refusal: null, ...(calls ? { tool_calls: calls } : {}) },
              finish_reason: calls ? 'tool_calls' : 'stop',
              logprobs: null,
            },
          ],
          usage: usageOf(text, reply.text),
        };
      }),
    ),
  ];
}

/** Options this API cannot honour: a clear 400 naming the parameter. */
function refuseUnsupported(body: CompletionBody): void {
  if (typeof body.n === 'number' && body.n > 1) {
    throw new ApiError(400, 'n > 1 is not supported: this box answers each request once; send the request again for another answer', 'invalid_request_error', 'unsupported_value', 'n');
  }
  if (body.tool_choice && body.tool_choice !== 'none' && !(body.tools && body.tools.length > 0)) {
    throw new ApiError(400, 'tool_choice needs tools', 'invalid_request_error', 'invalid_value', 'tool_choice');
  }
  const named = typeof body.tool_choice === 'object' ? body.tool_choice.function.name : null;
  if (named !== null && !body.tools?.some((t) => t.function.name === named)) {
    throw new ApiError(400, `tool_choice names "${named.slice(0, 64)}", which is not among the tools`, 'invalid_request_error', 'invalid_value', 'tool_choice');
  }
  if (body.response_format && body.response_format.type !== 'text') {
    throw new ApiError(400, `response_format "${String(body.response_format.type).slice(0, 32)}" is not supported; only "text"`, 'invalid_request_error', 'unsupported_value', 'response_format');
  }
}

/**
 * With tools (and tool_choice other than "none") the model answers the client's own conversation with text
 * or a call of one of its functions (agent.complete); without, the agent answers the last user message.
 */
function completionOf(body: CompletionBody) {
  if (!body.tools || body.tools.length === 0 || body.tool_choice === 'none') return null;
  const namesById = new Map<string, string>();
  const messages = body.messages.map((m) => {
    const role = m.role === 'function' ? 'tool' : (m.role as 'system' | 'developer' | 'user' | 'assistant' | 'tool');
    const calls = (m.tool_calls ?? []).map((c) => {
      if (c.id) namesById.set(c.id, c.function.name);
      return { name: c.function.name, arguments: c.function.arguments ?? '{}' };
    });
    const name = m.name ?? (m.tool_call_id ? namesById.get(m.tool_call_id) : undefined);
    return { role, content: contentText(m.content), ...(name && role === 'tool' ? { name } : {}), ...(calls.length > 0 ? { tool_calls: calls } : {}) };
  });
  const tools = body.tools.map((t) => ({
    name: t.function.name,
    ...(t.function.description ? { description: t.function.description } : {}),
    ...(t.function.parameters ? { parameters: t.function.parameters } : {}),
  }));
  const choice = body.tool_choice;
  const tool_choice = typeof choice === 'object' ? { name: choice.function.name } : (choice ?? 'auto');
  return { messages, tools, tool_choice };
}

/** The reply's calls of the client's functions, in OpenAI's shape; null when it answered with text. */
function toolCallsOf(reply: ChatReply) {
  if (!reply.tool_calls || reply.tool_calls.length === 0) return null;
  return reply.tool_calls.map((call) => ({ id: call.id, type: 'function' as const, function: { name: call.name, arguments: call.arguments } }));
}

/** Token counts are estimates (characters / 4): the agent's own prompt is not the client's. */
function usageOf(prompt: string, completion: string) {
  const promptTokens = Math.ceil(prompt.length / 4);
  const completionTokens = Math.ceil(completion.length / 4);
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

/**
 * `stream: true`: a chunk per piece of the reply as it is generated. The head goes out with the first
 * piece, so an error before it (busy, no model) is still a plain HTTP error; after it, an error is one
 * `data: {"error": ...}` event (the SDKs raise it) and the stream ends without [DONE].
 */
async function streamCompletion(
  request: RouteRequest,
  head: { id: string; created: number; model: string },
  ask: (onText: (t: string) => void) => Promise<ChatReply>,
  includeUsage: boolean,
  prompt: string,
  models: ModelCatalog | undefined,
  logger: Logger | undefined,
): Promise<void> {
  const sse = new SseResponse(request.res);
  const chunk = (delta: object, finish: string | null = null) =>
    sse.send({ ...head, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  let streamed = '';
  const piece = (text: string) => {
    if (!sse.started) chunk({ role: 'assistant', content: '' });
    streamed += text;
    chunk({ content: text });
  };
  try {
    const reply = await ask(piece);
    const calls = toolCallsOf(reply);
    if (calls) {
      if (!sse.started) chunk({ role: 'assistant', content: null });
      chunk({ tool_calls: calls.map((call, index) => ({ index, ...call })) });
      chunk({}, 'tool_calls');
    } else {
      const rest = remainderOf(streamed, reply.text);
      if (rest) piece(rest);
      chunk({}, 'stop');
    }
    if (includeUsage) sse.send({ ...head, object: 'chat.completion.chunk', choices: [], usage: usageOf(prompt, reply.text) });
    sse.send('[DONE]');
    sse.end();
  } catch (error) {
    if (!sse.started) throw error;
    const api = toApiError(error, models);
    log(logger, api, error, request);
    sse.send({ error: { message: api.message, type: api.type, param: api.param, code: api.code } });
    sse.end();
  }
}

function modelNotFound(id: string): ApiError {
  return new ApiError(404, `The model "${id.slice(0, 128)}" does not exist on this box; GET /v1/models lists the ones that do`, 'invalid_request_error', 'model_not_found', 'model');
}

function toApiError(error: unknown, models: ModelCatalog | undefined): ApiError {
  if (error instanceof ApiError) return error;
  const err = toClientError(error);
  const retry = typeof err.details.retry_after_ms === 'number' ? err.details.retry_after_ms : null;
  const code = err.code.toLowerCase();
  switch (err.code) {
    case 'BUSY':
      return new ApiError(503, err.message, 'server_error', code, null, retry ?? 1000);
    case 'MODEL_NOT_LOADED':
      // Still loading: it passes. None installed (or it failed to load): the SDKs must not retry.
      return models?.loading()
        ? new ApiError(503, `${err.message} (the model is still loading)`, 'server_error', code, null, 2000)
        : new ApiError(422, err.message, 'invalid_request_error', code);
    case 'UNAUTHORIZED':
      return new ApiError(401, err.message, 'authentication_error', code);
    case 'FORBIDDEN':
      return new ApiError(403, err.message, 'permission_error', code);
    default: {
      const status = err.spec.http;
      return new ApiError(status, err.message, status >= 500 ? 'server_error' : 'invalid_request_error', code, null, retry);
    }
  }
}

function send(res: ServerResponse, api: ApiError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // The official SDKs obey this header over their own status rules: a permanent condition is never retried.
  res.setHeader('x-should-retry', String(api.retryAfterMs !== null));
  if (api.retryAfterMs !== null) {
    res.setHeader('Retry-After', String(Math.max(1, Math.ceil(api.retryAfterMs / 1000))));
    res.setHeader('retry-after-ms', String(Math.max(1, Math.round(api.retryAfterMs))));
  }
  const body = JSON.stringify({ error: { message: api.message, type: api.type, param: api.param, code: api.code } });
  res.writeHead(api.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** A client's mistake is not the box's: debug; busy or cut short: info; only what nobody expected: error. */
function log(logger: Logger | undefined, api: ApiError, error: unknown, request: RouteRequest): void {
  if (!logger) return;
  const fields = { status: api.status, code: api.code, path: request.url.pathname };
  if (api.status < 500) logger.debug(fields, `openai api: ${api.message}`);
  else if (api.code === 'internal' || !(error instanceof ClawboxError || error instanceof ApiError)) logger.error({ ...fields, err: error }, 'openai api request failed');
  else logger.info(fields, `openai api: ${api.message}`);
}

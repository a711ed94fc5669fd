/**
 * The HTTP chat channels, behind the HTTP server's auth (so `local`: no pairing):
 *
 *   POST /api/chat               {"text", "session"?} -> {"status":"ok","data":{text, actions, path, session}}
 *   POST /v1/chat/completions    OpenAI-compatible: {model, messages[], stream?, user?} -> a
 *                                `chat.completion` object; the last user message is what the agent reads,
 *                                `user` (or "openai") names the session. `stream: true` answers as
 *                                server-sent `chat.completion.chunk` events ending in `data: [DONE]`; the
 *                                agent's answer is whole before it is sent (a tool call is validated and
 *                                executed first), so it comes as one content chunk, and an error before it
 *                                is still a plain HTTP error.
 *
 * Bodies are validated with ajv; errors use the runtime's JSON error shape, and BUSY answers 503 with a
 * Retry-After header. The caller waits on its reply: the gateway sends it here by message id.
 */
import type { ServerResponse } from 'node:http';
import { Ajv } from 'ajv';
import { ClawboxError, ERROR_CATALOG, type ErrorCode } from '../runtime/errors.js';
import type { HttpMethod, RouteHandler } from '../runtime/http/http-server.js';
import type { Channel, InboundMessage, MessageListener, OutboundMessage } from './channel.js';

const BODY_LIMIT = 256 * 1024;
const REPLY_TIMEOUT_MS = 120_000;
const EARLY_REPLY_TTL_MS = 60_000;

const chatSchema = {
  type: 'object',
  required: ['text'],
  additionalProperties: false,
  properties: {
    text: { type: 'string', minLength: 1, maxLength: 100000 },
    session: { type: 'string', pattern: '^[A-Za-z0-9._@-]{1,128}$' },
  },
} as const;

const textPart = {
  type: 'object',
  required: ['type'],
  properties: { type: { type: 'string' }, text: { type: 'string' } },
} as const;

const completionSchema = {
  type: 'object',
  required: ['model', 'messages'],
  // Clients send many sampling options (temperature, max_tokens...): accepted and ignored.
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
        },
      },
    },
    stream: { type: 'boolean' },
    stream_options: { type: 'object', properties: { include_usage: { type: 'boolean' } } },
    user: { type: 'string', pattern: '^[A-Za-z0-9._@-]{1,128}$' },
  },
} as const;

interface ChatBody {
  text: string;
  session?: string;
}

interface CompletionBody {
  model: string;
  messages: { role: string; content?: string | null | { type: string; text?: string }[] }[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  user?: string;
}

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const validateChat = ajv.compile<ChatBody>(chatSchema);
const validateCompletion = ajv.compile<CompletionBody>(completionSchema);

function check<T>(validate: ((v: unknown) => v is T) & { errors?: unknown }, body: unknown, what: string): T {
  if (validate(body)) return body;
  const errors = (validate.errors ?? []) as { instancePath: string; message?: string }[];
  const detail = errors.map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`).join('; ');
  throw new ClawboxError('PAYLOAD_INVALID', `${what}: ${detail}`);
}

function contentText(content: CompletionBody['messages'][number]['content']): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (p.type === 'text' && typeof p.text === 'string' ? p.text : '')).join('');
  return '';
}

/** The OpenAI streaming shape: role + content, then the finish reason, optional usage, then [DONE]. */
function streamCompletion(res: ServerResponse, head: { id: string; created: number; model: string }, text: string, usage: object | null): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const event = (choices: object[], extra: object = {}) =>
    res.write(`data: ${JSON.stringify({ ...head, object: 'chat.completion.chunk', choices, ...extra })}\n\n`);
  event([{ index: 0, delta: { role: 'assistant', content: text }, finish_reason: null, logprobs: null }]);
  event([{ index: 0, delta: {}, finish_reason: 'stop', logprobs: null }]);
  if (usage) event([], { usage });
  res.end('data: [DONE]\n\n');
}

export interface HttpChatChannelOptions {
  http: { addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void };
  maxTextChars?: number;
}

export class HttpChatChannel implements Channel {
  readonly name = 'http';
  readonly local = true;
  readonly interactive = true;
  readonly #options: HttpChatChannelOptions;
  #listener: MessageListener | null = null;
  #removers: (() => void)[] = [];
  readonly #waiters = new Map<string, (reply: OutboundMessage) => void>();
  readonly #early = new Map<string, OutboundMessage>();

  constructor(options: HttpChatChannelOptions) {
    this.#options = options;
  }

  onMessage(listener: MessageListener): void {
    this.#listener = listener;
  }

  async connect(): Promise<void> {
    const { http } = this.#options;
    this.#removers = [
      http.addRoute('POST', '/api/chat', async ({ json, res }) => {
        const body = check(validateChat, await json(BODY_LIMIT), 'a chat request is {"text", "session"?}');
        const sessionName = body.session ?? 'default';
        const reply = await this.#converse({ sender: { channel: this.name, sender_id: sessionName }, text: body.text }, res);
        return { status: 'ok', data: { text: reply.text, actions: reply.actions ?? [], path: reply.path ?? null, session: `http:${sessionName}` } };
      }),
      http.addRoute('POST', '/v1/chat/completions', async ({ json, res }) => {
        const body = check(validateCompletion, await json(BODY_LIMIT), 'not a chat completion request');
        const lastUser = [...body.messages].reverse().find((m) => m.role === 'user');
        const text = lastUser ? contentText(lastUser.content).trim() : '';
        if (!text) throw new ClawboxError('PAYLOAD_INVALID', 'messages must contain a user message with text content');
        const senderId = body.user ?? 'openai';
        const reply = await this.#converse({ sender: { channel: this.name, sender_id: senderId }, text }, res);
        const promptTokens = Math.ceil(text.length / 4);
        const completionTokens = Math.ceil(reply.text.length / 4);
        // Token counts are estimates (characters / 4).
        const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
        const head = { id: `chatcmpl-${reply.in_reply_to ?? Date.now()}`, created: Math.floor(Date.now() / 1000), model: body.model };
        if (body.stream === true) {
          streamCompletion(res, head, reply.text, body.stream_options?.include_usage ? usage : null);
          return undefined;
        }
        return {
          ...head,
          object: 'chat.completion',
          choices: [{ index: 0, message: { role: 'assistant', content: reply.text }, finish_reason: 'stop', logprobs: null }],
          usage,
        };
      }),
    ];
  }

  async disconnect(): Promise<void> {
    for (const remove of this.#removers.splice(0)) remove();
    const gone: OutboundMessage = { text: '', error: { code: 'BUSY', message: 'the runtime is stopping', retry_after_ms: 1000 } };
    for (const resolve of this.#waiters.values()) resolve(gone);
    this.#waiters.clear();
    this.#early.clear();
  }

  async send(_sessionId: string, message: OutboundMessage): Promise<void> {
    const id = message.in_reply_to;
    if (!id) return; // notices (pairing) never happen on a local channel
    const waiter = this.#waiters.get(id);
    if (waiter) {
      this.#waiters.delete(id);
      waiter(message);
      return;
    }
    // The answer can be ready before the request handler starts waiting; keep it a while. Replies to
    // requests from before a restart have no caller any more and expire here.
    this.#early.set(id, message);
    setTimeout(() => this.#early.delete(id), EARLY_REPLY_TTL_MS).unref();
  }

  /** Hands the message to the gateway and waits for its reply; errors become HTTP errors. */
  async #converse(message: InboundMessage, res: ServerResponse): Promise<OutboundMessage> {
    if (!this.#listener) throw new ClawboxError('BUSY', 'the chat channel is not connected', { retry_after_ms: 1000 });
    const max = this.#options.maxTextChars;
    if (max !== undefined && message.text.length > max) {
      throw new ClawboxError('PAYLOAD_TOO_LARGE', `messages are at most ${max} characters`, { limit_chars: max });
    }
    const acceptance = await this.#listener(message);
    if (acceptance.status === 'rejected') {
      throw new ClawboxError(acceptance.code in ERROR_CATALOG ? (acceptance.code as ErrorCode) : 'PAYLOAD_INVALID', acceptance.message);
    }
    if (acceptance.status === 'pairing') throw new ClawboxError('FORBIDDEN', 'this sender is not paired');
    const reply = await this.#waitFor(acceptance.id);
    if (reply.error) {
      const code: ErrorCode = reply.error.code in ERROR_CATALOG ? (reply.error.code as ErrorCode) : 'INTERNAL';
      const retryAfter = reply.error.retry_after_ms;
      if (code === 'BUSY') res.setHeader('Retry-After', String(Math.max(1, Math.ceil((retryAfter ?? 1000) / 1000))));
      throw new ClawboxError(code, reply.error.message, retryAfter !== undefined ? { retry_after_ms: retryAfter } : {});
    }
    return reply;
  }

  #waitFor(id: string): Promise<OutboundMessage> {
    const early = this.#early.get(id);
    if (early) {
      this.#early.delete(id);
      return Promise.resolve(early);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(id);
        resolve({ text: '', error: { code: 'DEADLINE_EXCEEDED', message: 'no answer in time' } });
      }, REPLY_TIMEOUT_MS);
      timer.unref();
      this.#waiters.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
    });
  }
}

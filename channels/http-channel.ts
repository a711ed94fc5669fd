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
 * Transport only: each request becomes one chat.message, run at once as the sender `http:<session or
 * user>` with no more permissions than the HTTP caller, and cancelled when the client disconnects.
 * Nothing is stored: the caller waits on its answer. Bodies are validated with the one validator
 * factory; errors use the one envelope (CONTENT_BLOCKED 422 for a message content safety refuses), and
 * BUSY answers 503 with a Retry-After header.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import type { HttpMethod, RouteHandler, RouteRequest } from '../runtime/http/http-server.js';
import { okEnvelope } from '../runtime/operations/envelope.js';
import { assertValid } from '../runtime/operations/validator.js';
import { CHAT_MESSAGE_SCHEMA, type ChatReply, type Converse, type InteractiveChannel } from './channel.js';

const BODY_LIMIT = 256 * 1024;

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
}

export class HttpChatChannel implements InteractiveChannel {
  readonly name = 'http';
  readonly local = true;
  readonly #options: HttpChatChannelOptions;
  #converse: Converse | null = null;
  #removers: (() => void)[] = [];

  constructor(options: HttpChatChannelOptions) {
    this.#options = options;
  }

  onConverse(converse: Converse): void {
    this.#converse = converse;
  }

  async connect(): Promise<void> {
    const { http } = this.#options;
    this.#removers = [
      http.addRoute('POST', '/api/chat', async (request) => {
        const body = assertValid<ChatBody>(CHAT_MESSAGE_SCHEMA, await request.json(BODY_LIMIT), 'PAYLOAD_INVALID', 'a chat request {"text", "session"?}');
        const sessionName = body.session ?? 'default';
        const reply = await this.#ask(request, sessionName, body.text);
        return okEnvelope({ ...reply, path: reply.path ?? null, session: `http:${sessionName}` });
      }),
      http.addRoute('POST', '/v1/chat/completions', async (request) => {
        const body = assertValid<CompletionBody>(completionSchema, await request.json(BODY_LIMIT), 'PAYLOAD_INVALID', 'a chat completion request');
        const lastUser = [...body.messages].reverse().find((m) => m.role === 'user');
        const text = lastUser ? contentText(lastUser.content).trim() : '';
        if (!text) throw new ClawboxError('PAYLOAD_INVALID', 'messages must contain a user message with text content');
        const reply = await this.#ask(request, body.user ?? 'openai', text);
        const promptTokens = Math.ceil(text.length / 4);
        const completionTokens = Math.ceil(reply.text.length / 4);
        // Token counts are estimates (characters / 4).
        const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
        const head = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: body.model };
        if (body.stream === true) {
          streamCompletion(request.res, head, reply.text, body.stream_options?.include_usage ? usage : null);
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
    this.#converse = null;
  }

  /** One message as the HTTP caller's sender; BUSY gets its Retry-After header. */
  async #ask(request: RouteRequest, senderId: string, text: string): Promise<ChatReply> {
    const converse = this.#converse;
    if (!converse) throw new ClawboxError('BUSY', 'the chat channel is not connected', { retry_after_ms: 1000 });
    try {
      return await converse({ sender_id: senderId, text }, { caller: request.principal, signal: request.signal });
    } catch (error) {
      const err = toClawboxError(error);
      const retryAfter = err.details.retry_after_ms;
      if (err.code === 'BUSY') request.res.setHeader('Retry-After', String(Math.max(1, Math.ceil((typeof retryAfter === 'number' ? retryAfter : 1000) / 1000))));
      throw err;
    }
  }
}

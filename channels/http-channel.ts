/**
 * The HTTP chat channels, behind the HTTP server's auth (so `local`: no pairing):
 *
 *   POST /api/chat               {"text", "session"?} -> {"status":"ok","data":{text, actions, path, session}}
 *   POST /api/chat/stream        the same request, answered as server-sent events while it is generated:
 *                                `event: token` {"text"} for each piece of the reply, then `event: reply`
 *                                with what /api/chat answers (the tokens joined are its text); an error
 *                                before the first event is a plain HTTP error, after it `event: error`
 *                                {"code","message","retry_after_ms"?}
 *   /v1/...                      the OpenAI-compatible API (openai-api.ts)
 *
 * Transport only: each request becomes one chat.message, run at once as the sender `http:<session or
 * user>` with no more permissions than the HTTP caller, and cancelled when the client disconnects.
 * Nothing is stored: the caller waits on its answer. Bodies are validated with the one validator
 * factory; errors use the one envelope (CONTENT_BLOCKED 422 for a message content safety refuses), and
 * BUSY answers 503 with a Retry-After header.
 */
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import type { HttpMethod, RouteHandler, RouteRequest } from '../runtime/http/http-server.js';
import type { Logger } from '../runtime/logging.js';
import { sendError } from '../runtime/http/respond.js';
import { okEnvelope } from '../runtime/operations/envelope.js';
import { assertValid, expectSchema } from '../runtime/operations/validator.js';
import { CHAT_MESSAGE_SCHEMA, type ChatReply, type Converse, type InteractiveChannel, remainderOf } from './channel.js';
import { type ModelCatalog, registerOpenAiRoutes } from './openai-api.js';
import { SseResponse } from './sse.js';

const BODY_LIMIT = 256 * 1024;

interface ChatBody {
  text: string;
  session?: string;
}

export interface HttpChatChannelOptions {
  http: { addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void };
  /** The models /v1/models lists (besides the agent itself). */
  models?: ModelCatalog;
  logger?: Logger;
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
    // Checked on the first request; the build precompiles it.
    expectSchema(CHAT_MESSAGE_SCHEMA);
    const read = async (request: RouteRequest) =>
      assertValid<ChatBody>(CHAT_MESSAGE_SCHEMA, await request.json(BODY_LIMIT), 'PAYLOAD_INVALID', 'a chat request {"text", "session"?}');
    this.#removers = [
      http.addRoute('POST', '/api/chat', this.#answered(async (request) => {
        const body = await read(request);
        const sessionName = body.session ?? 'default';
        const reply = await this.#ask(request, sessionName, body.text);
        return okEnvelope({ ...reply, path: reply.path ?? null, session: `http:${sessionName}` });
      })),
      http.addRoute('POST', '/api/chat/stream', this.#answered(async (request) => {
        const body = await read(request);
        const sessionName = body.session ?? 'default';
        const sse = new SseResponse(request.res);
        let streamed = '';
        const token = (text: string) => {
          streamed += text;
          sse.send({ text }, 'token');
        };
        try {
          const reply = await this.#ask(request, sessionName, body.text, token);
          const rest = remainderOf(streamed, reply.text);
          if (rest) token(rest);
          sse.send({ ...reply, path: reply.path ?? null, session: `http:${sessionName}` }, 'reply');
          sse.end();
        } catch (error) {
          if (!sse.started) throw error;
          const err = toClawboxError(error);
          sse.send(err.toJSON(), 'error');
          sse.end();
        }
        return undefined;
      })),
      ...registerOpenAiRoutes({
        http,
        converse: () => this.#converse,
        ...(this.#options.models ? { models: this.#options.models } : {}),
        ...(this.#options.logger ? { logger: this.#options.logger } : {}),
      }),
    ];
  }

  async disconnect(): Promise<void> {
    for (const remove of this.#removers.splice(0)) remove();
    this.#converse = null;
  }

  /**
   * Errors answered here with the one envelope and status, so a busy box or a client's mistake is not
   * logged as a server failure: 4xx at debug, passing conditions (busy, no model, deadline) at info; only
   * what nobody expected goes on to the server's error log.
   */
  #answered(handler: RouteHandler): RouteHandler {
    return async (request) => {
      try {
        return await handler(request);
      } catch (error) {
        const err = toClawboxError(error);
        if (err.code === 'INTERNAL' || request.res.headersSent) throw error;
        const fields = { code: err.code, path: request.url.pathname };
        if (err.spec.http < 500) this.#options.logger?.debug(fields, `chat request refused: ${err.message}`);
        else this.#options.logger?.info(fields, `chat request not answered: ${err.message}`);
        // A body over the limit may still be arriving: do not keep the connection for another request.
        if (err.code === 'PAYLOAD_TOO_LARGE') request.res.setHeader('Connection', 'close');
        sendError(request.res, err);
        return undefined;
      }
    };
  }

  /** One message as the HTTP caller's sender; BUSY gets its Retry-After header. */
  async #ask(request: RouteRequest, senderId: string, text: string, onText?: (text: string) => void): Promise<ChatReply> {
    const converse = this.#converse;
    if (!converse) throw new ClawboxError('BUSY', 'the chat channel is not connected', { retry_after_ms: 1000 });
    try {
      return await converse({ sender_id: senderId, text }, { caller: request.principal, signal: request.signal, source: 'chat', ...(onText ? { onText } : {}) });
    } catch (error) {
      const err = toClawboxError(error);
      const retryAfter = err.details.retry_after_ms;
      if (err.code === 'BUSY' && !request.res.headersSent) {
        request.res.setHeader('Retry-After', String(Math.max(1, Math.ceil((typeof retryAfter === 'number' ? retryAfter : 1000) / 1000))));
      }
      throw err;
    }
  }
}

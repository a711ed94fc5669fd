/**
 * The status page's chat: a WebSocket at `/api/chat/ws` on the HTTP server (behind the page's auth and
 * same-origin check, see HttpServer.addUpgrade), one JSON message per frame.
 *
 *   client -> {"text": "...", "session"?: "name"}      (at most MAX_FRAME_BYTES; schema-validated)
 *   server -> {"type":"token","text","in_reply_to"}  (pieces of a model reply as it is generated; joined, its text)
 *             then {"type":"reply","text","actions","path","in_reply_to"} | {"type":"error","error":{"code","message"},"in_reply_to"}
 *
 * Transport only: each frame becomes one chat.message, run at once as the sender (the socket, a new
 * session per browser tab, unless the page names a session) with no more permissions than the HTTP
 * caller that opened the socket. A socket's frames are answered in order; closing it cancels its work.
 * Bad input gets an error frame and changes nothing; the socket stays open.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { ClawboxError, toClientError } from '../runtime/errors.js';
import type { CallerUpgradeHandler } from '../runtime/http/http-server.js';
import { wsLibrary } from '../runtime/http/ws-library.js';
import type { Principal } from '../runtime/operations/principal.js';
import { validatorFor } from '../runtime/operations/validator.js';
import { CHAT_MESSAGE_SCHEMA, type Converse, type InteractiveChannel, remainderOf } from './channel.js';

export const WS_CHAT_PATH = '/api/chat/ws';
const MAX_FRAME_BYTES = 16 * 1024;
const MAX_CLIENTS = 64;
/** Frames waiting for their turn on one socket; more are refused at once. */
const MAX_QUEUED_PER_SOCKET = 16;

export interface UpgradeHost {
  addUpgrade(path: string, handler: CallerUpgradeHandler, options?: { auth?: boolean }): () => void;
}

export interface WsChatOptions {
  http: UpgradeHost;
  /** True when every socket is already trusted (HTTP on loopback, or the page's auth required). */
  local: boolean;
}

export class WsChatChannel implements InteractiveChannel {
  readonly name = 'ws-chat';
  readonly local: boolean;
  readonly #http: UpgradeHost;
  #wss: WebSocketServer | null = null;
  #remove: (() => void) | null = null;
  #converse: Converse | null = null;

  constructor(options: WsChatOptions) {
    this.#http = options.http;
    this.local = options.local;
  }

  onConverse(converse: Converse): void {
    this.#converse = converse;
  }

  async connect(): Promise<void> {
    // The server (and the `ws` library) is made on the first upgrade: most boxes never open the chat.
    const server = (): WebSocketServer => {
      this.#wss ??= new (wsLibrary().WebSocketServer)({ noServer: true, maxPayload: MAX_FRAME_BYTES, clientTracking: true });
      return this.#wss;
    };
    const handler: CallerUpgradeHandler = {
      handleUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer, caller: Principal) => {
        const wss = server();
        if (wss.clients.size >= MAX_CLIENTS) {
          socket.write('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', () => socket.destroy());
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, caller));
      },
    };
    this.#remove = this.#http.addUpgrade(WS_CHAT_PATH, handler, { auth: true });
  }

  async disconnect(): Promise<void> {
    this.#remove?.();
    this.#remove = null;
    const wss = this.#wss;
    this.#wss = null;
    this.#converse = null;
    if (!wss) return;
    for (const ws of wss.clients) ws.close(1001, 'the runtime is stopping');
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    for (const ws of wss.clients) ws.terminate();
  }

  #accept(ws: WebSocket, caller: Principal): void {
    let senderId = `tab-${randomUUID()}`;
    const closed = new AbortController();
    let chain: Promise<void> = Promise.resolve();
    let queued = 0;
    ws.on('error', () => ws.terminate()); // oversized frames, resets: never the runtime's problem
    ws.on('close', () => closed.abort(new ClawboxError('DEADLINE_EXCEEDED', 'the chat socket closed')));
    ws.on('message', (data, isBinary) => {
      const id = randomUUID();
      const body = isBinary ? undefined : parse(data.toString());
      const validate = validatorFor<{ text: string; session?: string }>(CHAT_MESSAGE_SCHEMA);
      if (!validate(body)) {
        return sendFrame(ws, errorFrame('PAYLOAD_INVALID', 'a chat message is a JSON text frame {"text": "...", "session"?: "name"}', id));
      }
      if (queued >= MAX_QUEUED_PER_SOCKET) {
        return sendFrame(ws, errorFrame('LIMIT_REACHED', `at most ${MAX_QUEUED_PER_SOCKET} messages may wait on one socket`, id));
      }
      if (body.session !== undefined) senderId = body.session;
      const sender = senderId;
      queued++;
      chain = chain.then(async () => {
        try {
          const converse = this.#converse;
          if (!converse) throw new ClawboxError('BUSY', 'the chat is not connected', { retry_after_ms: 1000 });
          let streamed = '';
          const onText = (text: string) => {
            streamed += text;
            sendFrame(ws, { type: 'token', text, in_reply_to: id });
          };
          const reply = await converse({ sender_id: sender, text: body.text }, { caller, signal: closed.signal, onText });
          // Token frames only while the model generates; a fast-path answer is the reply frame alone.
          const rest = streamed ? remainderOf(streamed, reply.text) : '';
          if (rest) onText(rest);
          sendFrame(ws, { type: 'reply', text: reply.text, actions: reply.actions ?? [], path: reply.path ?? null, in_reply_to: id });
        } catch (error) {
          // chat.message goes through the front door, which logs what nobody expected.
          const err = toClientError(error);
          sendFrame(ws, errorFrame(err.code, err.message, id));
        } finally {
          queued--;
        }
      });
    });
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorFrame(code: string, message: string, inReplyTo: string): Record<string, unknown> {
  return { type: 'error', error: { code, message }, in_reply_to: inReplyTo };
}

function sendFrame(ws: WebSocket, frame: Record<string, unknown>): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(frame));
}

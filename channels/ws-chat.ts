/**
 * The status page's chat: a WebSocket at `/api/chat/ws` on the HTTP server (behind the page's auth and
 * same-origin check, see HttpServer.addUpgrade), one JSON message per frame.
 *
 *   client -> {"text": "...", "session"?: "name"}      (at most MAX_FRAME_BYTES; ajv-validated)
 *   server -> {"type":"reply","text","actions","path"} | {"type":"error","error":{"code","message"}}
 *
 * The sender is the socket (a new session per browser tab) unless the page names a session. Bad input
 * gets an error frame and changes nothing; the socket stays open.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Ajv } from 'ajv';
import { type WebSocket, WebSocketServer } from 'ws';
import type { UpgradeHandler } from '../runtime/http/http-server.js';
import { type Channel, type MessageListener, type OutboundMessage, senderIdOf } from './channel.js';

export const WS_CHAT_PATH = '/api/chat/ws';
const MAX_FRAME_BYTES = 16 * 1024;
const MAX_CLIENTS = 64;

const validateMessage = new Ajv({ allErrors: true, strict: true }).compile<{ text: string; session?: string }>({
  type: 'object',
  required: ['text'],
  additionalProperties: false,
  properties: {
    text: { type: 'string', minLength: 1, maxLength: 100000 },
    session: { type: 'string', pattern: '^[A-Za-z0-9._@-]{1,128}$' },
  },
});

export interface UpgradeHost {
  addUpgrade(path: string, handler: UpgradeHandler, options?: { auth?: boolean }): () => void;
}

export interface WsChatOptions {
  http: UpgradeHost;
  /** True when every socket is already trusted (HTTP on loopback, or the page's auth required). */
  local: boolean;
}

export class WsChatChannel implements Channel {
  readonly name = 'ws-chat';
  readonly local: boolean;
  readonly #http: UpgradeHost;
  #wss: WebSocketServer | null = null;
  #remove: (() => void) | null = null;
  #listener: MessageListener | null = null;
  /** Open sockets by sender id (a named session may be open in several tabs). */
  readonly #sockets = new Map<string, Set<WebSocket>>();

  constructor(options: WsChatOptions) {
    this.#http = options.http;
    this.local = options.local;
  }

  onMessage(listener: MessageListener): void {
    this.#listener = listener;
  }

  async connect(): Promise<void> {
    const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, clientTracking: true });
    this.#wss = wss;
    const handler: UpgradeHandler = {
      handleUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (wss.clients.size >= MAX_CLIENTS) {
          socket.write('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', () => socket.destroy());
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws));
      },
    };
    this.#remove = this.#http.addUpgrade(WS_CHAT_PATH, handler, { auth: true });
  }

  async disconnect(): Promise<void> {
    this.#remove?.();
    this.#remove = null;
    const wss = this.#wss;
    this.#wss = null;
    this.#listener = null;
    if (!wss) return;
    for (const ws of wss.clients) ws.close(1001, 'the runtime is stopping');
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    for (const ws of wss.clients) ws.terminate();
    this.#sockets.clear();
  }

  async send(sessionId: string, message: OutboundMessage): Promise<void> {
    const open = [...(this.#sockets.get(senderIdOf(sessionId)) ?? [])].filter((ws) => ws.readyState === ws.OPEN);
    if (!open.length) throw new Error(`no open chat socket for ${sessionId}`);
    const frame = message.error
      ? { type: 'error', error: { code: message.error.code, message: message.error.message }, in_reply_to: message.in_reply_to ?? null }
      : { type: 'reply', text: message.text, actions: message.actions ?? [], path: message.path ?? null, in_reply_to: message.in_reply_to ?? null };
    const text = JSON.stringify(frame);
    for (const ws of open) ws.send(text);
  }

  #accept(ws: WebSocket): void {
    let senderId = `tab-${randomUUID()}`;
    this.#join(senderId, ws);
    ws.on('error', () => ws.terminate()); // oversized frames, resets: never the runtime's problem
    ws.on('close', () => this.#leave(senderId, ws));
    ws.on('message', (data, isBinary) => {
      void (async () => {
        const body = isBinary ? undefined : parse(data.toString());
        if (!validateMessage(body)) {
          return sendError(ws, 'PAYLOAD_INVALID', 'a chat message is a JSON text frame {"text": "...", "session"?: "name"}');
        }
        if (body.session !== undefined && body.session !== senderId) {
          this.#leave(senderId, ws);
          senderId = body.session;
          this.#join(senderId, ws);
        }
        const listener = this.#listener;
        if (!listener) return sendError(ws, 'BUSY', 'the chat is not connected');
        try {
          const acceptance = await listener({ sender: { channel: this.name, sender_id: senderId }, text: body.text });
          if (acceptance.status === 'rejected') sendError(ws, acceptance.code, acceptance.message);
        } catch (error) {
          sendError(ws, 'BUSY', `the message was not taken: ${(error as Error).message}`);
        }
      })();
    });
  }

  #join(senderId: string, ws: WebSocket): void {
    const set = this.#sockets.get(senderId) ?? new Set();
    set.add(ws);
    this.#sockets.set(senderId, set);
  }

  #leave(senderId: string, ws: WebSocket): void {
    const set = this.#sockets.get(senderId);
    set?.delete(ws);
    if (set && !set.size) this.#sockets.delete(senderId);
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function sendError(ws: WebSocket, code: string, message: string): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'error', error: { code, message } }));
}

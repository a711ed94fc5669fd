/**
 * iMessage through a BlueBubbles server (a Mac running BlueBubbles; clawbox holds its URL and password),
 * on the server's documented API:
 *   - GET /api/v1/ping?password=… to check the server and the password at connect;
 *   - socket.io with the password in the handshake query; `new-message` events carry each message
 *     (guid, text, isFromMe, handle.address, chats[].guid, attachments[]);
 *   - POST /api/v1/message/text?password=… {chatGuid, tempGuid, message, method} to answer.
 * Direct chats only (a group chat guid has `;+;`); our own messages and repeats (same guid) are skipped.
 * socket.io reconnects on its own with backoff (1 s to 30 s); when the server itself closes the socket it
 * is reconnected here. Replies over 4000 characters are split (BlueBubbles documents no limit; long
 * bubbles are hard to read); a 429 or 5xx answer is retried after its Retry-After.
 */
import { randomUUID } from 'node:crypto';
import { type Socket, io } from 'socket.io-client';
import { Backoff, RetryLater, splitMessage, withRetry } from '../../channel-kit.js';
import type { ChannelContext, ChannelDefinition, ChannelOutbound } from '../../sdk.js';

export const IMESSAGE_MAX_CHARS = 4000;
const REQUEST_TIMEOUT_MS = 30_000;
/** Remembered message guids (repeats are dropped) and sender → chat guid; both bounded. */
const MAX_REMEMBERED = 2000;

export interface BlueBubblesConfig {
  server_url: string;
  method: 'apple-script' | 'private-api';
}

interface BlueBubblesMessage {
  guid?: unknown;
  text?: unknown;
  isFromMe?: unknown;
  handle?: { address?: unknown } | null;
  chats?: { guid?: unknown }[];
  attachments?: { mimeType?: unknown }[];
}

export class BlueBubblesChannel implements ChannelDefinition {
  #ctx: ChannelContext | null = null;
  #socket: Socket | null = null;
  #seen = new Set<string>();
  #chatOf = new Map<string, string>();
  #stopped = true;
  #backoff = new Backoff(1000, 30_000);
  #timer: NodeJS.Timeout | undefined;

  async connect(ctx: ChannelContext): Promise<void> {
    this.#ctx = ctx;
    this.#stopped = false;
    const { server_url: server } = ctx.config as unknown as BlueBubblesConfig;
    const password = ctx.credentials.password ?? '';
    const ping = await fetch(this.#url('/api/v1/ping'), { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }).catch((error: unknown) => {
      throw new Error(`the BlueBubbles server cannot be reached: ${(error as Error).message}`);
    });
    if (ping.status === 401) throw new Error('the BlueBubbles server refused the password');
    if (!ping.ok) throw new Error(`the BlueBubbles server answered ${ping.status} to ping`);
    const socket = io(server, {
      query: { password },
      transports: ['websocket'],
      reconnectionDelay: 1000,
      reconnectionDelayMax: 30_000,
    });
    this.#socket = socket;
    socket.on('connect', () => {
      this.#backoff.reset();
      ctx.state({ state: 'connected', detail: server });
    });
    socket.on('disconnect', (reason) => {
      if (this.#stopped) return;
      // socket.io reconnects by itself, except when the server closed the socket: then it is up to us.
      if (reason === 'io server disconnect') {
        const delay = this.#backoff.next();
        ctx.state({ state: 'reconnecting', detail: `the server closed the connection; again in ${Math.round(delay / 1000)} s` });
        this.#timer = setTimeout(() => !this.#stopped && socket.connect(), delay);
      } else {
        ctx.state({ state: 'reconnecting', detail: `connection lost (${reason})` });
      }
    });
    socket.on('connect_error', (error) => !this.#stopped && ctx.state({ state: 'reconnecting', detail: `cannot connect: ${error.message}` }));
    socket.on('new-message', (message: BlueBubblesMessage) => void this.#onMessage(message));
    ctx.state({ state: 'connecting', detail: server });
  }

  async disconnect(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#socket?.removeAllListeners();
    this.#socket?.disconnect();
    this.#socket = null;
  }

  async send(to: { sender_id: string }, message: ChannelOutbound, signal: AbortSignal): Promise<void> {
    const config = this.#ctx?.config as unknown as BlueBubblesConfig | undefined;
    if (!config) throw Object.assign(new Error('iMessage is not connected'), { code: 'BUSY' });
    const chatGuid = this.#chatOf.get(to.sender_id) ?? `iMessage;-;${to.sender_id}`;
    const text = message.error ? `⚠ ${message.text}` : message.text;
    for (const part of splitMessage(text, IMESSAGE_MAX_CHARS)) {
      // One tempGuid per part, reused on retry: BlueBubbles refuses a tempGuid already queued, so a retry never doubles.
      const tempGuid = randomUUID();
      await withRetry(
        async () => {
          const response = await fetch(this.#url('/api/v1/message/text'), {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ chatGuid, tempGuid, message: part, method: config.method }),
            signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
          });
          if (!response.ok) throw new HttpStatusError(response.status, response.headers.get('retry-after'), await response.text().catch(() => ''));
        },
        { signal, classify: retryable, onWait: (ms) => this.#ctx?.log.warn(`BlueBubbles asked to wait ${ms} ms before sending`) },
      );
    }
  }

  async #onMessage(message: BlueBubblesMessage): Promise<void> {
    const ctx = this.#ctx;
    if (!ctx || this.#stopped || typeof message !== 'object' || message === null) return;
    const guid = typeof message.guid === 'string' ? message.guid : null;
    const address = typeof message.handle?.address === 'string' ? message.handle.address : null;
    const chatGuid = typeof message.chats?.[0]?.guid === 'string' ? message.chats[0].guid : null;
    if (message.isFromMe === true || !address || chatGuid?.includes(';+;')) return;
    if (guid) {
      if (this.#seen.has(guid)) return;
      remember(this.#seen, guid);
    }
    if (chatGuid) {
      this.#chatOf.delete(address);
      this.#chatOf.set(address, chatGuid);
      if (this.#chatOf.size > MAX_REMEMBERED) this.#chatOf.delete(this.#chatOf.keys().next().value as string);
    }
    const media = (Array.isArray(message.attachments) ? message.attachments : []).map((a) => ({ kind: kindOf(a?.mimeType) }));
    const text = typeof message.text === 'string' ? message.text.replace(/\uFFFC/g, '').trim() : '';
    try {
      const acceptance = await ctx.receive({ sender_id: address, text, ...(media.length > 0 ? { media } : {}) });
      if (acceptance.status === 'rejected') await this.send({ sender_id: address }, { text: acceptance.message }, new AbortController().signal);
    } catch (error) {
      if (guid) this.#seen.delete(guid); // not stored: a repeat of it may come through
      ctx.log.warn(`an iMessage was not stored: ${(error as Error).message}`);
    }
  }

  /** A server URL with the password as BlueBubbles expects it (query); never logged. */
  #url(pathname: string): string {
    const config = this.#ctx!.config as unknown as BlueBubblesConfig;
    const url = new URL(pathname, config.server_url.replace(/\/+$/, '/'));
    url.searchParams.set('password', this.#ctx!.credentials.password ?? '');
    return url.toString();
  }
}

class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly retryAfter: string | null,
    body: string,
  ) {
    super(`BlueBubbles answered ${status}: ${body.slice(0, 200)}`);
  }
}

function retryable(error: unknown): RetryLater | null {
  if (error instanceof HttpStatusError) {
    if (error.status !== 429 && error.status < 500) return null;
    const seconds = Number(error.retryAfter);
    return new RetryLater(error.message, Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined);
  }
  // fetch failed (network): another try.
  if (error instanceof TypeError) return new RetryLater(error.message, undefined);
  return null;
}

function kindOf(mime: unknown): string {
  const m = typeof mime === 'string' ? mime : '';
  if (m.startsWith('image/')) return 'photo';
  if (m.startsWith('audio/')) return 'voice';
  if (m.startsWith('video/')) return 'video';
  return 'file';
}

function remember(set: Set<string>, value: string): void {
  set.add(value);
  if (set.size > MAX_REMEMBERED) set.delete(set.values().next().value as string);
}

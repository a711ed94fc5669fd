/**
 * WhatsApp as a linked device through Baileys (the WhatsApp Web protocol). The box pairs once: Baileys
 * emits a QR code (`connection.update` with `qr`), shown on the terminal and the status document; the
 * phone scans it under "Linked devices". The login stays in the channel's data folder (auth-state.ts,
 * 0600 files).
 *
 * Connection handling, by Baileys' DisconnectReason (the codes users of such gateways meet most):
 *   - 408 connectionLost/timedOut, 428 connectionClosed, 440 connectionReplaced, 499, 500 badSession,
 *     503 unavailableService, or no code (network): reconnect with backoff (1 s doubling to 60 s);
 *   - 515 restartRequired (asked for right after pairing): reconnect at once;
 *   - 401 loggedOut: the phone removed this device. Stop, delete the worthless keys, state `logged_out`:
 *     the owner restarts the channel to get a new QR code;
 *   - 403 forbidden: stop, state `failed`.
 * Messages: `messages.upsert` of type `notify`, direct chats only (groups, broadcasts, newsletters and
 * our own messages are skipped); a message is marked read once the gateway stored it. Replies over
 * 4096 characters are split; a rate-limited send (429 / rate-overlimit) is retried with backoff.
 *
 * The socket is made by an injectable factory (Baileys' makeWASocket by default), which is how the tests
 * put a fake socket emitting Baileys' own events in its place: WhatsApp's servers cannot be reached here.
 */
import path from 'node:path';
import type { AuthenticationState } from '@whiskeysockets/baileys';
import type { ILogger } from '@whiskeysockets/baileys/lib/Utils/logger.js';
import { Backoff, RetryLater, splitMessage, withRetry } from '../../channel-kit.js';
import type { ChannelContext, ChannelDefinition, ChannelOutbound } from '../../sdk.js';
import { type PrivateAuthState, clearAuthState, privateAuthState } from './auth-state.js';

export const WHATSAPP_MAX_CHARS = 4096;
/** Close codes after which the channel reconnects (with backoff); 515 reconnects at once. */
export const RECONNECT_CODES: readonly number[] = [408, 428, 440, 499, 500, 503, 515];
const LOGGED_OUT = 401;
const RESTART_REQUIRED = 515;
const SEND_WAIT_FOR_OPEN_MS = 30_000;

/** The part of Baileys' socket this channel uses. */
export interface WhatsAppSocket {
  // biome-ignore lint/suspicious/noExplicitAny: Baileys types each event's argument; the handlers here check what they read.
  ev: { on(event: string, listener: (arg: any) => void): unknown };
  sendMessage(jid: string, content: { text: string }): Promise<unknown>;
  readMessages(keys: unknown[]): Promise<unknown>;
  end(error: Error | undefined): unknown;
}

export type SocketFactory = (options: { auth: AuthenticationState; logger: ILogger }) => WhatsAppSocket | Promise<WhatsAppSocket>;

export interface WhatsAppOptions {
  /** Default: Baileys' makeWASocket. */
  makeSocket?: SocketFactory;
  /** Default: 1 s doubling to 60 s. */
  backoff?: Backoff;
}

interface ConnectionUpdate {
  connection?: 'open' | 'connecting' | 'close';
  lastDisconnect?: { error?: unknown };
  qr?: string;
}

interface IncomingMessage {
  key?: { remoteJid?: string | null; fromMe?: boolean | null; id?: string | null };
  pushName?: string | null;
  message?: Record<string, unknown> | null;
}

export class WhatsAppChannel implements ChannelDefinition {
  readonly #options: WhatsAppOptions;
  #ctx: ChannelContext | null = null;
  #auth: PrivateAuthState | null = null;
  #socket: WhatsAppSocket | null = null;
  #open = false;
  #stopped = true;
  #backoff: Backoff;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #openWaiters = new Set<() => void>();

  constructor(options: WhatsAppOptions = {}) {
    this.#options = options;
    this.#backoff = options.backoff ?? new Backoff(1000, 60_000);
  }

  get authDir(): string {
    return path.join(this.#ctx?.dataDir ?? '.', 'auth');
  }

  async connect(ctx: ChannelContext): Promise<void> {
    this.#ctx = ctx;
    this.#stopped = false;
    this.#auth = null; // read from disk once per connect; reconnects keep the one in memory (saves may be under way)
    await this.#openSocket();
  }

  async disconnect(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    this.#closeSocket();
    this.#wakeSenders();
  }

  async send(to: { sender_id: string }, message: ChannelOutbound, signal: AbortSignal): Promise<void> {
    const text = message.error ? `⚠ ${message.text}` : message.text;
    for (const part of splitMessage(text, WHATSAPP_MAX_CHARS)) {
      await withRetry(
        async () => {
          const socket = await this.#whenOpen(signal);
          await socket.sendMessage(to.sender_id, { text: part });
        },
        { signal, classify: retryable, onWait: (ms) => this.#ctx?.log.warn(`WhatsApp rate-limited a send; again in ${ms} ms`) },
      );
    }
  }

  async #openSocket(): Promise<void> {
    const ctx = this.#ctx!;
    this.#auth ??= await privateAuthState(this.authDir);
    const makeSocket = this.#options.makeSocket ?? (await defaultFactory());
    ctx.state({ state: 'connecting' });
    const socket = await makeSocket({ auth: this.#auth.state, logger: silentLogger });
    this.#socket = socket;
    const auth = this.#auth;
    socket.ev.on('creds.update', () => void auth.saveCreds().catch((error: unknown) => ctx.log.error(`could not save the WhatsApp login: ${(error as Error).message}`)));
    socket.ev.on('connection.update', (update: ConnectionUpdate) => this.#onConnection(socket, update));
    socket.ev.on('messages.upsert', (event: { messages?: IncomingMessage[]; type?: string }) => void this.#onMessages(socket, event));
  }

  #onConnection(socket: WhatsAppSocket, update: ConnectionUpdate): void {
    if (socket !== this.#socket || this.#stopped) return;
    const ctx = this.#ctx!;
    if (update.qr) ctx.state({ state: 'pairing', detail: 'scan the QR code with WhatsApp: Settings > Linked devices > Link a device', qr: update.qr });
    if (update.connection === 'open') {
      this.#open = true;
      this.#backoff.reset();
      ctx.state({ state: 'connected' });
      this.#wakeSenders();
      return;
    }
    if (update.connection !== 'close') return;
    this.#open = false;
    this.#socket = null;
    const code = statusCodeOf(update.lastDisconnect?.error);
    if (code === LOGGED_OUT) {
      this.#stopped = true;
      ctx.state({ state: 'logged_out', detail: 'WhatsApp logged this box out (the device was removed on the phone); restart the channel to pair again with a new QR code' });
      this.#auth = null;
      void clearAuthState(this.authDir);
      this.#wakeSenders();
      return;
    }
    if (code !== undefined && !RECONNECT_CODES.includes(code)) {
      this.#stopped = true;
      ctx.state({ state: 'failed', detail: `WhatsApp closed the connection with code ${code}; not reconnecting` });
      this.#wakeSenders();
      return;
    }
    const delay = code === RESTART_REQUIRED ? 0 : this.#backoff.next();
    ctx.state({ state: 'reconnecting', detail: `connection closed (${code ?? 'network'}); again in ${Math.round(delay / 1000)} s` });
    this.#reconnectTimer = setTimeout(() => {
      if (this.#stopped) return;
      this.#openSocket().catch((error: unknown) => {
        ctx.state({ state: 'failed', detail: `could not reconnect: ${(error as Error).message}` });
      });
    }, delay);
  }

  async #onMessages(socket: WhatsAppSocket, event: { messages?: IncomingMessage[]; type?: string }): Promise<void> {
    if (event.type !== 'notify' || !Array.isArray(event.messages)) return;
    const ctx = this.#ctx!;
    for (const message of event.messages) {
      const jid = message.key?.remoteJid;
      if (!jid || message.key?.fromMe || !isDirectChat(jid) || !message.message) continue;
      const { text, media } = contentOf(message.message);
      if (text === '' && media.length === 0) continue; // receipts, reactions, protocol messages
      try {
        const acceptance = await ctx.receive({
          sender_id: jid,
          ...(message.pushName ? { display_name: message.pushName } : {}),
          text,
          ...(media.length > 0 ? { media } : {}),
        });
        if (ctx.config.mark_read !== false && socket === this.#socket) await socket.readMessages([message.key]).catch(() => {});
        if (acceptance.status === 'rejected') {
          await this.send({ sender_id: jid }, { text: acceptance.message }, new AbortController().signal).catch(() => {});
        }
      } catch (error) {
        ctx.log.warn(`a WhatsApp message was not stored (WhatsApp does not deliver it again): ${(error as Error).message}`);
      }
    }
  }

  /** The open socket; waits for a reconnect a while, then fails BUSY. */
  async #whenOpen(signal: AbortSignal): Promise<WhatsAppSocket> {
    const until = Date.now() + SEND_WAIT_FOR_OPEN_MS;
    while (!(this.#open && this.#socket)) {
      if (this.#stopped || Date.now() >= until || signal.aborted) {
        throw Object.assign(new Error('WhatsApp is not connected'), { code: 'BUSY', details: { retry_after_ms: 5000 } });
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#openWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(1, until - Date.now()));
        this.#openWaiters.add(done);
      });
    }
    return this.#socket;
  }

  #wakeSenders(): void {
    for (const waiter of [...this.#openWaiters]) waiter();
  }

  #closeSocket(): void {
    const socket = this.#socket;
    this.#socket = null;
    this.#open = false;
    try {
      socket?.end(undefined);
    } catch {
      // closing a dead socket
    }
  }
}

/** 1:1 chats: phone-number jids and WhatsApp's newer LIDs. */
function isDirectChat(jid: string): boolean {
  return jid.endsWith('@s.whatsapp.net') || jid.endsWith('@lid');
}

const MEDIA_KINDS: [string, string][] = [
  ['imageMessage', 'photo'],
  ['videoMessage', 'video'],
  ['audioMessage', 'voice'],
  ['documentMessage', 'file'],
  ['stickerMessage', 'sticker'],
  ['locationMessage', 'location'],
  ['contactMessage', 'contact'],
];

function contentOf(message: Record<string, unknown>): { text: string; media: { kind: string }[] } {
  const extended = message.extendedTextMessage as { text?: unknown } | undefined;
  const media = MEDIA_KINDS.filter(([key]) => message[key]).map(([, kind]) => ({ kind }));
  const caption = MEDIA_KINDS.map(([key]) => (message[key] as { caption?: unknown } | undefined)?.caption).find((c) => typeof c === 'string');
  const text = [message.conversation, extended?.text, caption].find((t): t is string => typeof t === 'string') ?? '';
  return { text, media };
}

/** Baileys closes with a Boom error: the code is `output.statusCode`. */
export function statusCodeOf(error: unknown): number | undefined {
  const code = (error as { output?: { statusCode?: unknown } } | undefined)?.output?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

function retryable(error: unknown): RetryLater | null {
  const code = statusCodeOf(error);
  const text = String((error as Error)?.message ?? '');
  if (code === 429 || /rate-overlimit/i.test(text)) return new RetryLater(text || 'rate limited', undefined);
  return null;
}

const silentLogger: ILogger = {
  level: 'silent',
  child: () => silentLogger,
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

/** Baileys itself, imported only when a real socket is made. */
async function defaultFactory(): Promise<SocketFactory> {
  const { default: makeWASocket, Browsers } = await import('@whiskeysockets/baileys');
  return ({ auth, logger }) =>
    makeWASocket({
      auth,
      logger,
      browser: Browsers.ubuntu('clawbox'),
      markOnlineOnConnect: false,
      syncFullHistory: false,
    }) as unknown as WhatsAppSocket;
}

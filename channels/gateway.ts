/**
 * The channel gateway: every chat channel's messages become the one operation `chat.message`
 * (operations.ts), run by the front door as the sender: a chat principal, kind `chat`, id
 * `<channel>:<sender_id>`, holding channels.permissions (and, on an HTTP channel, no more than the HTTP
 * caller). chat.message applies content safety in and out and asks the agent (`agent.request`).
 *
 *   interactive channel (HTTP, OpenAI, WebSocket) --converse--> chat.message --> reply to the waiting caller
 *   durable channel (line chat, platforms) --message--> validate, pairing, safety, persist to `chat-inbox`,
 *       THEN acknowledge --(per session, in order)--> chat.message --reply--> channel.send --> removed
 *       from the inbox (at-least-once: a crash before that replays it at the next start).
 *
 * An interactive caller waits on its answer and can never be answered later, so its message is never
 * stored; its cancellation (a closed HTTP request or socket) reaches the agent as the operation's signal.
 *
 * Pairing: an unknown sender on a non-local channel gets a pairing code and is ignored until the owner
 * approves the code (approve(), or POST /api/channels/pairings/:code/approve); config allowlist skips it.
 *
 * Bounds (each answered LIMIT_REACHED past it): pairing requests waiting per channel (MAX_PAIRING_REQUESTS,
 * expiring after PAIRING_TTL_MS), unanswered messages stored per channel (MAX_PENDING), sessions per channel
 * (MAX_SESSIONS; sessions idle for SESSION_IDLE_MS make room).
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { Component, RuntimeContext } from '../runtime/context.js';
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import { HttpAuth, isLoopbackHost } from '../runtime/http/auth.js';
import type { CallerUpgradeHandler, HttpMethod, RouteHandler } from '../runtime/http/http-server.js';
import type { Logger } from '../runtime/logging.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';
import { type Principal, principalWithFilters } from '../runtime/operations/principal.js';
import type { StoreDocument } from '../runtime/store/state-store.js';
import {
  type Acceptance,
  type Channel,
  type ChatReply,
  type Conversation,
  type ConverseOptions,
  type InboundMessage,
  type InteractiveChannel,
  type OutboundMessage,
  type SenderIdentity,
  isInteractive,
  sessionIdOf,
} from './channel.js';
import { type ChannelsConfig, resolveChannelsConfig } from './config-schema.js';
import { MEDIA_REFUSED, dmPolicyOf, onAllowlist } from './dm-policy.js';
import { type OpenPlatform, type PlatformChannel, type PlatformProblem, openPlatforms } from './platforms.js';
import { HttpChatChannel } from './http-channel.js';
import { LineChatChannel } from './line-chat.js';
import type { ModelCatalog } from './openai-api.js';
import { type ChatMessageInput, type SafetyCheck, chatOperations, pairingOperations, screen } from './operations.js';
import { WsChatChannel } from './ws-chat.js';

export type { SafetyCheck } from './operations.js';
export type { ModelCatalog } from './openai-api.js';

export interface RouteHost {
  addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void;
  /** WebSocket upgrades behind the page's auth (HttpServer has it); the ws chat needs it. */
  addUpgrade?(path: string, handler: CallerUpgradeHandler, options?: { auth?: boolean }): () => void;
}

export interface ChannelGatewayDeps {
  /** Where chat.message (and the pairing operations) are registered and run. */
  frontDoor: FrontDoor;
  /** Where the HTTP channels and the pairing endpoints are registered; none without it. */
  http?: RouteHost;
  /** Extra channels (platform plugins); the built-ins come from config. */
  channels?: (Channel | InteractiveChannel)[];
  /** The raw `channels:` section; defaults to ctx.config.channels. */
  config?: unknown;
  /** Content safety for every message in and every reply out; a function is asked at start. */
  safety?: SafetyCheck | (() => SafetyCheck | null) | null;
  /** Opens a chat platform's channel plugin (the plugin host's openChannel); channels.platforms names them. */
  openPlatform?: OpenPlatform;
  /** For platform credentials kept as files (systemd LoadCredential=); default $CREDENTIALS_DIRECTORY. */
  credentialsDir?: string;
  /** The models the OpenAI-compatible API lists (the agent itself is always listed). */
  models?: ModelCatalog;
}

interface PendingMessage {
  id: string;
  session: string;
  sender: SenderIdentity;
  text: string;
  received_at: number;
}

interface Inbox {
  pending: PendingMessage[];
}

interface PairingRequest {
  code: string;
  sender: SenderIdentity;
  requested_at: number;
}

interface Pairing {
  approved: string[];
  requests: PairingRequest[];
}

interface SessionFigures {
  last_seen: number;
  received: number;
  answered: number;
}

const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
/** Pairing requests waiting per channel; older than PAIRING_TTL_MS they lapse (the sender asks again). */
export const MAX_PAIRING_REQUESTS = 100;
export const PAIRING_TTL_MS = 24 * 60 * 60 * 1000;
/** Unanswered messages stored per durable channel. */
export const MAX_PENDING = 1000;
/** Sessions per channel; idle ones make room for new ones. */
export const MAX_SESSIONS = 10_000;
export const SESSION_IDLE_MS = 24 * 60 * 60 * 1000;
const MAX_BUSY_WAIT_MS = 30_000;
const STOP_GRACE_MS = 2_000;
const validSenderId = (id: string) => id.length >= 1 && id.length <= 128 && ![...id].some((c) => c.charCodeAt(0) < 0x20);

export class ChannelGateway implements Component {
  readonly name = 'channels';
  readonly #deps: ChannelGatewayDeps;
  readonly #channels = new Map<string, Channel | InteractiveChannel>();
  readonly #chains = new Map<string, Promise<void>>();
  /** Per channel, per session: figures, and the bound on sessions. Not persisted. */
  readonly #sessions = new Map<string, Map<string, SessionFigures>>();
  #log: Logger | null = null;
  #config: ChannelsConfig = resolveChannelsConfig(undefined);
  #safety: SafetyCheck | null = null;
  #inbox: StoreDocument<Inbox> | null = null;
  #pairing: StoreDocument<Pairing> | null = null;
  #stopping = new AbortController();
  #cleanup: (() => void)[] = [];
  #platforms: PlatformChannel[] = [];
  #platformProblems: PlatformProblem[] = [];
  #connected: (Channel | InteractiveChannel)[] = [];

  constructor(deps: ChannelGatewayDeps) {
    this.#deps = deps;
    for (const channel of deps.channels ?? []) this.addChannel(channel);
  }

  /** Adds a channel before start (platform plugins). */
  addChannel(channel: Channel | InteractiveChannel): void {
    if (!/^[a-z0-9-]{1,32}$/.test(channel.name)) throw new Error(`bad channel name "${channel.name}"`);
    if (this.#channels.has(channel.name)) throw new Error(`channel "${channel.name}" is added twice`);
    this.#channels.set(channel.name, channel);
  }

  channel<T extends Channel | InteractiveChannel = Channel>(name: string): T | undefined {
    return this.#channels.get(name) as T | undefined;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    this.#log = ctx.logger('channels');
    this.#stopping = new AbortController();
    const raw = this.#deps.config ?? (ctx.config as unknown as { channels?: unknown }).channels;
    this.#config = resolveChannelsConfig(raw);
    const safety = this.#deps.safety;
    this.#safety = typeof safety === 'function' ? safety() : (safety ?? null);
    if (!this.#safety) this.#log.info('no content safety for chat messages (the content-safety plugin is not loaded)');
    this.#inbox = await ctx.store.open<Inbox>('chat-inbox', () => ({ pending: [] }));
    this.#pairing = await ctx.store.open<Pairing>('chat-pairing', () => ({ approved: [], requests: [] }));
    this.#addBuiltins(ctx);
    this.#addPlatforms();
    this.#cleanup.push(ctx.status.register('channels', () => this.figures()));
    const { frontDoor } = this.#deps;
    for (const operation of [...chatOperations({ safety: () => this.#safety }), ...pairingOperations(this)]) {
      this.#cleanup.push(frontDoor.register(operation));
    }
    if (this.#deps.http) this.#cleanup.push(...this.#pairingRoutes(this.#deps.http));

    for (const channel of this.#channels.values()) {
      if (isInteractive(channel)) channel.onConverse((message, options) => this.#converse(channel, message, options));
      else channel.onMessage((message) => this.#receive(channel, message));
      await channel.connect();
      this.#connected.push(channel);
    }
    const replay = [...(this.#inbox.data.pending ?? [])].sort((a, b) => a.received_at - b.received_at);
    if (replay.length) this.#log.info({ count: replay.length }, `replaying ${replay.length} unanswered chat message(s)`);
    for (const entry of replay) {
      this.#touchSession(entry.sender.channel, entry.session, entry.received_at, { force: true });
      this.#enqueue(entry);
    }
  }

  async stop(): Promise<void> {
    this.#stopping.abort(new ClawboxError('BUSY', 'the runtime is stopping', { retry_after_ms: 5000 }));
    for (const channel of this.#connected.reverse()) {
      await channel.disconnect().catch((error: unknown) => this.#log?.warn({ err: error, channel: channel.name }, 'channel disconnect failed'));
    }
    this.#connected = [];
    for (const platform of this.#platforms) this.#channels.delete(platform.name);
    this.#platforms = [];
    // Let in-flight answers finish briefly; what is still pending stays in the inbox for the next start.
    const grace = new Promise<void>((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref());
    await Promise.race([Promise.allSettled([...this.#chains.values()]), grace]);
    this.#chains.clear();
    this.#sessions.clear();
    for (const undo of this.#cleanup.splice(0)) undo();
  }

  /** Approves a pairing code: the sender may talk from now on. NOT_FOUND for an unknown code. */
  async approve(code: string): Promise<SenderIdentity> {
    const pairing = this.#need(this.#pairing);
    const wanted = code.trim().toUpperCase();
    const request = pairing.data.requests.find((r) => r.code === wanted && !lapsed(r));
    if (!request) throw new ClawboxError('NOT_FOUND', `no pending pairing with code "${wanted.slice(0, 16)}"`);
    await pairing.update((d) => {
      d.requests = d.requests.filter((r) => r.code !== wanted && !lapsed(r));
      const session = sessionIdOf(request.sender);
      if (!d.approved.includes(session)) d.approved.push(session);
    });
    this.#log?.info({ sender: request.sender }, `paired ${sessionIdOf(request.sender)}`);
    return request.sender;
  }

  /** Pending pairing requests (for the CLI and the status page). */
  pairingRequests(): PairingRequest[] {
    return structuredClone((this.#pairing?.data.requests ?? []).filter((r) => !lapsed(r)));
  }

  figures(): Record<string, unknown> {
    let sessions = 0;
    for (const perChannel of this.#sessions.values()) sessions += perChannel.size;
    return {
      channels: [...this.#channels.keys()],
      sessions,
      pending_messages: this.#inbox?.data.pending.length ?? 0,
      platforms: this.#platforms.map((p) => p.status?.() ?? { name: p.name }),
      platform_problems: this.#platformProblems,
      pairing_requests: this.pairingRequests().length,
      paired_senders: this.#pairing?.data.approved.length ?? 0,
    };
  }

  /**
   * The sender as a principal: channels.permissions for it, and where the transport has its own caller
   * (an HTTP token), no more than that caller either.
   */
  principalFor(channel: string, senderId: string, caller?: Principal): Principal {
    const id = `${channel}:${senderId}`;
    const own = principalWithFilters('chat', id, this.#config.permissions.senders[id] ?? this.#config.permissions.default);
    if (!caller) return own;
    return { kind: 'chat', id, may: (permission) => own.may(permission) && caller.may(permission) };
  }

  #addBuiltins(ctx: RuntimeContext): void {
    const http = this.#deps.http;
    if (this.#config.http && http && !this.#channels.has('http')) {
      const models = this.#deps.models;
      this.addChannel(new HttpChatChannel({ http, ...(models ? { models } : {}), ...(this.#log ? { logger: this.#log } : {}) }));
    }
    if (this.#config.ws_chat.enabled && http?.addUpgrade && !this.#channels.has('ws-chat')) {
      // Trusted like the page itself: on loopback, or behind the page's required auth.
      const local = isLoopbackHost(ctx.config.http.host) || new HttpAuth(ctx.config).required;
      this.addChannel(new WsChatChannel({ http: { addUpgrade: http.addUpgrade.bind(http) }, local }));
    }
    if (this.#config.line_chat.enabled && !this.#channels.has('line-chat')) {
      this.addChannel(new LineChatChannel({ port: this.#config.line_chat.port, logger: this.#log ?? undefined }));
    }
  }

  /** The chat platforms of channels.platforms, each a channel plugin in its own process. */
  #addPlatforms(): void {
    const { channels, problems } = openPlatforms(this.#config, this.#deps.openPlatform, {
      credentialsDir: this.#deps.credentialsDir ?? process.env.CREDENTIALS_DIRECTORY,
      logger: this.#log,
    });
    this.#platforms = [];
    this.#platformProblems = problems;
    for (const platform of channels) {
      if (this.#channels.has(platform.name)) continue;
      this.addChannel(platform);
      this.#platforms.push(platform);
    }
  }

  /** Checks what every message needs before anything else: a sender id and a text of the right size. */
  #check(senderId: unknown, text: unknown): { senderId: string; text: string } {
    if (this.#stopping.signal.aborted) throw new ClawboxError('BUSY', 'the gateway is stopping', { retry_after_ms: 1000 });
    if (typeof senderId !== 'string' || !validSenderId(senderId)) {
      throw new ClawboxError('PAYLOAD_INVALID', 'sender_id must be 1-128 printable characters');
    }
    const trimmed = typeof text === 'string' ? text.trim() : '';
    if (trimmed === '') throw new ClawboxError('PAYLOAD_INVALID', 'the message is empty');
    const max = this.#config.max_text_chars;
    if (trimmed.length > max) throw new ClawboxError('PAYLOAD_TOO_LARGE', `messages are at most ${max} characters`, { limit_chars: max });
    return { senderId, text: trimmed };
  }

  /** An interactive channel's message: chat.message at once, as the sender, for the waiting caller. */
  async #converse(channel: InteractiveChannel, message: Conversation, options: ConverseOptions = {}): Promise<ChatReply> {
    const { senderId, text } = this.#check(message?.sender_id, message?.text);
    const sender: SenderIdentity = { channel: channel.name, sender_id: senderId };
    if (!channel.local && this.#config.pairing && !this.#isAllowed(sessionIdOf(sender))) {
      const code = await this.#requestPairing(sender);
      throw new ClawboxError('FORBIDDEN', `this box does not know you yet; pairing code ${code} (ask its owner to approve it)`, {
        pairing_code: code,
      });
    }
    const session = message.session ?? sessionIdOf(sender);
    this.#touchSession(channel.name, session, Date.now());
    const input: ChatMessageInput = {
      channel: channel.name,
      sender: senderId,
      text,
      ...(message.session ? { session: message.session } : {}),
      ...(message.completion ? { completion: message.completion } : {}),
    };
    const reply = await this.#deps.frontDoor.invoke<ChatReply>('chat.message', input, {
      principal: this.principalFor(channel.name, senderId, options.caller),
      source: options.source ?? sourceOf(channel.name),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onText ? { stream: options.onText } : {}),
    });
    this.#answered(channel.name, session);
    return reply;
  }

  /** A durable channel's message: checked, then on disk before the channel acknowledges it. */
  async #receive(channel: Channel, message: InboundMessage): Promise<Acceptance> {
    const inbox = this.#need(this.#inbox);
    let checked: { senderId: string; text: string };
    try {
      // A picture without a caption is still a message: the DM policy decides, then it is refused as media.
      const mediaOnly = Array.isArray(message?.media) && message.media.length > 0 && !String(message?.text ?? '').trim();
      checked = this.#check(message?.sender?.sender_id, mediaOnly ? '(media)' : message?.text);
    } catch (error) {
      const err = toClawboxError(error);
      if (err.code === 'BUSY') throw err;
      return { status: 'rejected', code: err.code, message: err.message };
    }
    const sender: SenderIdentity = {
      channel: channel.name,
      sender_id: checked.senderId,
      ...(typeof message.sender.display_name === 'string' ? { display_name: message.sender.display_name.slice(0, 128) } : {}),
    };
    const session = sessionIdOf(sender);
    const policy = channel.local ? 'open' : dmPolicyOf(this.#config, channel.name);
    const listed = onAllowlist(this.#config, channel.name, checked.senderId);
    if (policy === 'disabled') return { status: 'ignored', reason: `${channel.name} takes no messages (dm_policy: disabled)` };
    if (policy === 'allowlist' && !listed) return { status: 'ignored', reason: `${session} is not on the allowlist` };
    if (policy === 'pairing' && !listed && !this.#isAllowed(session)) {
      try {
        const code = await this.#requestPairing(sender, channel);
        return { status: 'pairing', code };
      } catch (error) {
        const err = toClawboxError(error);
        return { status: 'rejected', code: err.code, message: err.message };
      }
    }
    // Screened before it is stored: a secret never reaches the state store, a card number only masked.
    if (message.media?.length) return { status: 'rejected', code: 'PAYLOAD_INVALID', message: MEDIA_REFUSED };
    const text = screen(this.#safety, checked.text, channel.name, 'input');
    if (text === null) return { status: 'rejected', code: 'CONTENT_BLOCKED', message: 'the message was blocked by content safety' };
    const waiting = inbox.data.pending.filter((p) => p.sender.channel === channel.name).length;
    if (waiting >= MAX_PENDING) {
      throw new ClawboxError('LIMIT_REACHED', `${MAX_PENDING} messages on ${channel.name} are waiting for an answer; send it again later`, {
        limit: MAX_PENDING,
        retry_after_ms: 5000,
      });
    }
    const now = Date.now();
    this.#touchSession(channel.name, session, now);
    const entry: PendingMessage = { id: randomUUID(), session, sender, text, received_at: now };
    // On disk before the channel acknowledges: a crash from here on replays the message at the next start.
    await inbox.update((d) => {
      d.pending.push(entry);
      delete (d as { sessions?: unknown }).sessions; // kept in memory now
    });
    this.#enqueue(entry);
    return { status: 'accepted', id: entry.id, session };
  }

  #isAllowed(session: string): boolean {
    return this.#config.allowlist.includes(session) || (this.#pairing?.data.approved.includes(session) ?? false);
  }

  /** The sender's pairing code (a new one, or the one it already has); the code is sent where a channel can. */
  async #requestPairing(sender: SenderIdentity, channel?: Channel): Promise<string> {
    const pairing = this.#need(this.#pairing);
    const session = sessionIdOf(sender);
    const existing = pairing.data.requests.find((r) => sessionIdOf(r.sender) === session && !lapsed(r));
    if (existing) return existing.code;
    const waiting = pairing.data.requests.filter((r) => r.sender.channel === sender.channel && !lapsed(r)).length;
    if (waiting >= MAX_PAIRING_REQUESTS) {
      throw new ClawboxError('LIMIT_REACHED', `${MAX_PAIRING_REQUESTS} senders on ${sender.channel} already wait for pairing; try again later`, {
        limit: MAX_PAIRING_REQUESTS,
      });
    }
    const code = Array.from({ length: 6 }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('');
    await pairing.update((d) => {
      d.requests = d.requests.filter((r) => !lapsed(r) && sessionIdOf(r.sender) !== session);
      d.requests.push({ code, sender, requested_at: Date.now() });
    });
    this.#log?.warn({ sender, code }, `unknown sender ${session} asks to pair: approve code ${code} to let them talk`);
    await channel
      ?.send(session, { text: `This box does not know you yet. Pairing code: ${code} (ask its owner to approve it).` })
      .catch((error: unknown) => this.#log?.warn({ err: error, session }, 'could not send the pairing code'));
    return code;
  }

  /** Counts a message for its session; LIMIT_REACHED when the channel holds MAX_SESSIONS busy sessions. */
  #touchSession(channel: string, session: string, now: number, options: { force?: boolean } = {}): void {
    let sessions = this.#sessions.get(channel);
    if (!sessions) {
      sessions = new Map();
      this.#sessions.set(channel, sessions);
    }
    const known = sessions.get(session);
    if (known) {
      known.last_seen = now;
      known.received += 1;
      return;
    }
    if (sessions.size >= MAX_SESSIONS && !options.force) {
      for (const [id, s] of sessions) if (now - s.last_seen > SESSION_IDLE_MS) sessions.delete(id);
      if (sessions.size >= MAX_SESSIONS) {
        throw new ClawboxError('LIMIT_REACHED', `${channel} already has ${MAX_SESSIONS} active chat sessions; try again later`, {
          limit: MAX_SESSIONS,
          retry_after_ms: 60_000,
        });
      }
    }
    sessions.set(session, { last_seen: now, received: 1, answered: 0 });
  }

  #answered(channel: string, session: string): void {
    const figures = this.#sessions.get(channel)?.get(session);
    if (figures) figures.answered += 1;
  }

  /** One chain per session: its messages are answered in order; sessions run side by side. */
  #enqueue(entry: PendingMessage): void {
    const previous = this.#chains.get(entry.session) ?? Promise.resolve();
    const next = previous
      .then(() => this.#answer(entry))
      .catch((error: unknown) => this.#log?.error({ err: error, id: entry.id }, 'answering a chat message failed'));
    this.#chains.set(entry.session, next);
    void next.then(() => {
      if (this.#chains.get(entry.session) === next) this.#chains.delete(entry.session);
    });
  }

  async #answer(entry: PendingMessage): Promise<void> {
    const stopping = this.#stopping.signal;
    if (stopping.aborted) return;
    const channel = this.#channels.get(entry.sender.channel);
    if (!channel || isInteractive(channel)) {
      this.#log?.warn({ id: entry.id, channel: entry.sender.channel }, 'message kept: its channel is not configured');
      return;
    }
    const reply = await this.#ask(entry, stopping);
    if (!reply) return; // stopping: stays pending
    try {
      await channel.send(entry.session, reply);
    } catch (error) {
      this.#log?.warn({ err: error, id: entry.id, session: entry.session }, 'reply could not be delivered');
    }
    this.#answered(entry.sender.channel, entry.session);
    await this.#need(this.#inbox).update((d) => {
      d.pending = d.pending.filter((p) => p.id !== entry.id);
    });
  }

  async #ask(entry: PendingMessage, stopping: AbortSignal): Promise<OutboundMessage | null> {
    const input: ChatMessageInput = { channel: entry.sender.channel, sender: entry.sender.sender_id, text: entry.text };
    for (let attempt = 0; ; attempt++) {
      if (stopping.aborted) return null;
      try {
        const answer = await this.#deps.frontDoor.invoke<ChatReply>('chat.message', input, {
          principal: this.principalFor(entry.sender.channel, entry.sender.sender_id),
          source: sourceOf(entry.sender.channel),
          signal: stopping,
          trace: entry.id,
        });
        return { text: answer.text, in_reply_to: entry.id, actions: answer.actions ?? [], ...(answer.path ? { path: answer.path } : {}) };
      } catch (error) {
        if (stopping.aborted) return null;
        const typed = toClawboxError(error);
        const retryAfter = typeof typed.details.retry_after_ms === 'number' ? typed.details.retry_after_ms : undefined;
        if (typed.code === 'BUSY' && attempt < this.#config.busy_retries) {
          await sleep(Math.min(retryAfter ?? 1000, MAX_BUSY_WAIT_MS), stopping);
          continue;
        }
        return {
          text: `Sorry, I could not answer that: ${typed.message}`,
          in_reply_to: entry.id,
          error: { code: typed.code, message: typed.message, ...(retryAfter !== undefined ? { retry_after_ms: retryAfter } : {}) },
        };
      }
    }
  }

  #pairingRoutes(http: RouteHost): (() => void)[] {
    const { frontDoor } = this.#deps;
    return [
      http.addRoute('GET', '/api/channels/pairings', async ({ principal, signal }) => ({
        status: 'ok',
        data: await frontDoor.invoke('channels.pairings', {}, { principal, source: 'http', signal }),
      })),
      http.addRoute('POST', '/api/channels/pairings/:code/approve', async ({ params, principal, signal }) => ({
        status: 'ok',
        data: await frontDoor.invoke('channels.approve', { code: params.code ?? '' }, { principal, source: 'http', signal }),
      })),
    ];
  }

  #need<T>(value: T | null): T {
    if (value === null) throw new ClawboxError('BUSY', 'the channel gateway is not started', { retry_after_ms: 1000 });
    return value;
  }
}

/**
 * The agent scheduler's source of a chat (its deadline and class): the box's own chats (HTTP, the page's
 * WebSocket) as `chat`, every other channel as `channel`; the OpenAI API says `openai` itself. A person
 * waits on all of them (scheduler.chat_deadline_ms).
 */
function sourceOf(channel: string): string {
  return channel === 'http' || channel === 'ws-chat' ? 'chat' : 'channel';
}

function lapsed(request: PairingRequest): boolean {
  return Date.now() - request.requested_at > PAIRING_TTL_MS;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

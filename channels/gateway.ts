/**
 * The channel gateway: every chat channel's messages go through here to the agent and back.
 *
 *   channel --message--> gateway: validate, pairing check, persist to `chat-inbox`, THEN acknowledge
 *                        gateway --(per session, in order)--> agent.handle --reply--> the same channel
 *                        reply sent -> message removed from the inbox (at-least-once: a crash before
 *                        that replays it at the next start).
 *
 * Sessions: one per sender, id `<channel>:<sender_id>`, passed to the agent as its session (multi-turn).
 * Pairing: an unknown sender on a non-local channel gets a pairing code and is ignored until the owner
 * approves the code (approve(), or POST /api/channels/pairings/:code/approve); config allowlist skips it.
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { Component, RuntimeContext } from '../runtime/context.js';
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import { HttpAuth, isLoopbackHost } from '../runtime/http/auth.js';
import type { HttpMethod, RouteHandler, UpgradeHandler } from '../runtime/http/http-server.js';
import type { Logger } from '../runtime/logging.js';
import type { StoreDocument } from '../runtime/store/state-store.js';
import type { Acceptance, Channel, InboundMessage, OutboundMessage, SenderIdentity } from './channel.js';
import { sessionIdOf } from './channel.js';
import { type ChannelsConfig, resolveChannelsConfig } from './config-schema.js';
import { HttpChatChannel } from './http-channel.js';
import { LineChatChannel } from './line-chat.js';
import { WsChatChannel } from './ws-chat.js';

/** What the gateway needs of the agent (AgentComponent.handle fits). */
export type AgentHandle = (request: {
  text: string;
  session?: string;
  transaction?: string | number;
  source?: string;
  deadline_ms?: number;
}) => Promise<{ text: string; actions?: unknown[]; path?: string }>;

export interface RouteHost {
  addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void;
  /** WebSocket upgrades behind the page's auth (HttpServer has it); the ws chat needs it. */
  addUpgrade?(path: string, handler: UpgradeHandler, options?: { auth?: boolean }): () => void;
}

/** Content safety as the gateway uses it (createContentSafety from plugins/builtin/content-safety fits). */
export interface SafetyCheck {
  check(text: string, context: { channel?: string; direction?: 'input' | 'output' }): { action: string; text: string | null };
}

export interface ChannelGatewayDeps {
  /** The agent: an object whose `handle` is read at call time (AgentComponent), or a resolver. */
  agent: { readonly handle: AgentHandle | null } | (() => AgentHandle | null);
  /** Where the HTTP channels and the pairing endpoints are registered; none without it. */
  http?: RouteHost;
  /** Extra channels (platform plugins); the built-ins come from config. */
  channels?: Channel[];
  /** The raw `channels:` section; defaults to ctx.config.channels. */
  config?: unknown;
  /** Checks every message in (block: refused, mask: masked before it is stored) and every reply out. */
  safety?: SafetyCheck;
}

interface PendingMessage {
  id: string;
  session: string;
  sender: SenderIdentity;
  text: string;
  received_at: number;
}

interface SessionRecord {
  sender: SenderIdentity;
  first_seen: number;
  last_seen: number;
  received: number;
  answered: number;
}

interface Inbox {
  pending: PendingMessage[];
  sessions: Record<string, SessionRecord>;
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

const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const MAX_PAIRING_REQUESTS = 100;
const MAX_SESSIONS = 10_000;
const MAX_BUSY_WAIT_MS = 30_000;
const STOP_GRACE_MS = 2_000;
const validSenderId = (id: string) => id.length >= 1 && id.length <= 128 && ![...id].some((c) => c.charCodeAt(0) < 0x20);

export class ChannelGateway implements Component {
  readonly name = 'channels';
  readonly #deps: ChannelGatewayDeps;
  readonly #channels = new Map<string, Channel>();
  readonly #chains = new Map<string, Promise<void>>();
  #log: Logger | null = null;
  #config: ChannelsConfig = resolveChannelsConfig(undefined);
  #inbox: StoreDocument<Inbox> | null = null;
  #pairing: StoreDocument<Pairing> | null = null;
  #stopping = new AbortController();
  #cleanup: (() => void)[] = [];
  #connected: Channel[] = [];

  constructor(deps: ChannelGatewayDeps) {
    this.#deps = deps;
    for (const channel of deps.channels ?? []) this.addChannel(channel);
  }

  /** Adds a channel before start (platform plugins). */
  addChannel(channel: Channel): void {
    if (!/^[a-z0-9-]{1,32}$/.test(channel.name)) throw new Error(`bad channel name "${channel.name}"`);
    if (this.#channels.has(channel.name)) throw new Error(`channel "${channel.name}" is added twice`);
    this.#channels.set(channel.name, channel);
  }

  channel<T extends Channel = Channel>(name: string): T | undefined {
    return this.#channels.get(name) as T | undefined;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    this.#log = ctx.logger('channels');
    this.#stopping = new AbortController();
    const raw = this.#deps.config ?? (ctx.config as unknown as { channels?: unknown }).channels;
    this.#config = resolveChannelsConfig(raw);
    this.#inbox = await ctx.store.open<Inbox>('chat-inbox', () => ({ pending: [], sessions: {} }));
    this.#pairing = await ctx.store.open<Pairing>('chat-pairing', () => ({ approved: [], requests: [] }));
    this.#addBuiltins(ctx);
    this.#cleanup.push(ctx.status.register('channels', () => this.figures()));
    if (this.#deps.http) this.#cleanup.push(...this.#pairingRoutes(this.#deps.http));

    for (const channel of this.#channels.values()) {
      channel.onMessage((message) => this.#receive(channel, message));
      await channel.connect();
      this.#connected.push(channel);
    }
    const replay = [...this.#inbox.data.pending].sort((a, b) => a.received_at - b.received_at);
    if (replay.length) this.#log.info({ count: replay.length }, `replaying ${replay.length} unanswered chat message(s)`);
    for (const entry of replay) this.#enqueue(entry);
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    for (const channel of this.#connected.reverse()) {
      await channel.disconnect().catch((error: unknown) => this.#log?.warn({ err: error, channel: channel.name }, 'channel disconnect failed'));
    }
    this.#connected = [];
    // Let in-flight answers finish briefly; what is still pending stays in the inbox for the next start.
    const grace = new Promise<void>((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref());
    await Promise.race([Promise.allSettled([...this.#chains.values()]), grace]);
    this.#chains.clear();
    for (const undo of this.#cleanup.splice(0)) undo();
  }

  /** Approves a pairing code: the sender may talk from now on. NOT_FOUND for an unknown code. */
  async approve(code: string): Promise<SenderIdentity> {
    const pairing = this.#need(this.#pairing);
    const wanted = code.trim().toUpperCase();
    const request = pairing.data.requests.find((r) => r.code === wanted);
    if (!request) throw new ClawboxError('NOT_FOUND', `no pending pairing with code "${wanted.slice(0, 16)}"`);
    await pairing.update((d) => {
      d.requests = d.requests.filter((r) => r.code !== wanted);
      const session = sessionIdOf(request.sender);
      if (!d.approved.includes(session)) d.approved.push(session);
    });
    this.#log?.info({ sender: request.sender }, `paired ${sessionIdOf(request.sender)}`);
    return request.sender;
  }

  /** Pending pairing requests (for the CLI and the status page). */
  pairingRequests(): PairingRequest[] {
    return structuredClone(this.#pairing?.data.requests ?? []);
  }

  figures(): Record<string, unknown> {
    return {
      channels: [...this.#channels.keys()],
      sessions: Object.keys(this.#inbox?.data.sessions ?? {}).length,
      pending_messages: this.#inbox?.data.pending.length ?? 0,
      pairing_requests: this.#pairing?.data.requests.length ?? 0,
      paired_senders: this.#pairing?.data.approved.length ?? 0,
    };
  }

  #addBuiltins(ctx: RuntimeContext): void {
    if (this.#config.http && this.#deps.http && !this.#channels.has('http')) {
      this.addChannel(new HttpChatChannel({ http: this.#deps.http, maxTextChars: this.#config.max_text_chars }));
    }
    const http = this.#deps.http;
    if (this.#config.ws_chat.enabled && http?.addUpgrade && !this.#channels.has('ws-chat')) {
      // Trusted like the page itself: on loopback, or behind the page's required auth.
      const local = isLoopbackHost(ctx.config.http.host) || new HttpAuth(ctx.config).required;
      this.addChannel(new WsChatChannel({ http: { addUpgrade: http.addUpgrade.bind(http) }, local }));
    }
    if (this.#config.line_chat.enabled && !this.#channels.has('line-chat')) {
      this.addChannel(new LineChatChannel({ port: this.#config.line_chat.port, logger: this.#log ?? undefined }));
    }
  }

  async #receive(channel: Channel, message: InboundMessage): Promise<Acceptance> {
    const inbox = this.#need(this.#inbox);
    if (this.#stopping.signal.aborted) throw new ClawboxError('BUSY', 'the gateway is stopping', { retry_after_ms: 1000 });
    let text = typeof message?.text === 'string' ? message.text.trim() : '';
    const senderId = message?.sender?.sender_id;
    if (typeof senderId !== 'string' || !validSenderId(senderId)) {
      return { status: 'rejected', code: 'PAYLOAD_INVALID', message: 'sender_id must be 1-128 printable characters' };
    }
    if (text === '') return { status: 'rejected', code: 'PAYLOAD_INVALID', message: 'the message is empty' };
    if (text.length > this.#config.max_text_chars) {
      return { status: 'rejected', code: 'PAYLOAD_TOO_LARGE', message: `messages are at most ${this.#config.max_text_chars} characters` };
    }
    const sender: SenderIdentity = {
      channel: channel.name,
      sender_id: senderId,
      ...(typeof message.sender.display_name === 'string' ? { display_name: message.sender.display_name.slice(0, 128) } : {}),
    };
    const session = sessionIdOf(sender);
    if (!channel.local && this.#config.pairing && !this.#isAllowed(session)) return this.#requestPairing(channel, sender);
    const checked = this.#deps.safety?.check(text, { channel: channel.name, direction: 'input' });
    if (checked?.action === 'block' || (checked && checked.text === null)) {
      return { status: 'rejected', code: 'FORBIDDEN', message: 'the message was blocked by content safety' };
    }
    if (checked?.text) text = checked.text; // masked (e.g. a card number) before it is ever stored

    const now = Date.now();
    const entry: PendingMessage = { id: randomUUID(), session, sender, text, received_at: now };
    // On disk before the channel acknowledges: a crash from here on replays the message at the next start.
    await inbox.update((d) => {
      d.pending.push(entry);
      const known = d.sessions[session];
      if (known) {
        known.last_seen = now;
        known.received += 1;
        known.sender = sender;
      } else {
        if (Object.keys(d.sessions).length >= MAX_SESSIONS) this.#forgetOldestSession(d);
        d.sessions[session] = { sender, first_seen: now, last_seen: now, received: 1, answered: 0 };
      }
    });
    this.#enqueue(entry);
    return { status: 'accepted', id: entry.id, session };
  }

  #isAllowed(session: string): boolean {
    return this.#config.allowlist.includes(session) || (this.#pairing?.data.approved.includes(session) ?? false);
  }

  async #requestPairing(channel: Channel, sender: SenderIdentity): Promise<Acceptance> {
    const pairing = this.#need(this.#pairing);
    const session = sessionIdOf(sender);
    const existing = pairing.data.requests.find((r) => sessionIdOf(r.sender) === session);
    if (existing) return { status: 'pairing', code: existing.code };
    const code = Array.from({ length: 6 }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('');
    await pairing.update((d) => {
      d.requests.push({ code, sender, requested_at: Date.now() });
      if (d.requests.length > MAX_PAIRING_REQUESTS) d.requests.splice(0, d.requests.length - MAX_PAIRING_REQUESTS);
    });
    this.#log?.warn({ sender, code }, `unknown sender ${session} asks to pair: approve code ${code} to let them talk`);
    await channel
      .send(session, { text: `This box does not know you yet. Pairing code: ${code} (ask its owner to approve it).` })
      .catch((error: unknown) => this.#log?.warn({ err: error, session }, 'could not send the pairing code'));
    return { status: 'pairing', code };
  }

  #forgetOldestSession(d: Inbox): void {
    let oldest: string | null = null;
    for (const [id, s] of Object.entries(d.sessions)) {
      if (oldest === null || s.last_seen < (d.sessions[oldest]?.last_seen ?? Infinity)) oldest = id;
    }
    if (oldest !== null) delete d.sessions[oldest];
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
    if (!channel) {
      this.#log?.warn({ id: entry.id, channel: entry.sender.channel }, 'message kept: its channel is not configured');
      return;
    }
    const reply = await this.#ask(entry, channel, stopping);
    if (!reply) return; // stopping: stays pending
    try {
      await channel.send(entry.session, reply);
    } catch (error) {
      this.#log?.warn({ err: error, id: entry.id, session: entry.session }, 'reply could not be delivered');
    }
    await this.#need(this.#inbox).update((d) => {
      d.pending = d.pending.filter((p) => p.id !== entry.id);
      const session = d.sessions[entry.session];
      if (session) session.answered += 1;
    });
  }

  async #ask(entry: PendingMessage, channel: Channel, stopping: AbortSignal): Promise<OutboundMessage | null> {
    for (let attempt = 0; ; attempt++) {
      if (stopping.aborted) return null;
      try {
        const handle = this.#agentHandle();
        if (!handle) throw new ClawboxError('BUSY', 'the agent is not running yet', { retry_after_ms: 500 });
        const answer = await handle({
          text: entry.text,
          session: entry.session,
          transaction: entry.id,
          source: channel.name === 'http' ? 'http' : 'channel',
        });
        return { text: this.#safeReply(answer.text, channel), in_reply_to: entry.id, actions: answer.actions ?? [], ...(answer.path ? { path: answer.path } : {}) };
      } catch (error) {
        const typed = toClawboxError(error);
        const retryAfter = typeof typed.details.retry_after_ms === 'number' ? typed.details.retry_after_ms : undefined;
        if (typed.code === 'BUSY' && !channel.interactive && attempt < this.#config.busy_retries) {
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

  #safeReply(text: string, channel: Channel): string {
    const checked = this.#deps.safety?.check(text, { channel: channel.name, direction: 'output' });
    if (!checked) return text;
    return checked.action === 'block' || checked.text === null ? '[answer withheld by content safety]' : checked.text;
  }

  #agentHandle(): AgentHandle | null {
    const agent = this.#deps.agent;
    return typeof agent === 'function' ? agent() : agent.handle;
  }

  #pairingRoutes(http: RouteHost): (() => void)[] {
    return [
      http.addRoute('GET', '/api/channels/pairings', () => ({ status: 'ok', data: this.pairingRequests() })),
      http.addRoute('POST', '/api/channels/pairings/:code/approve', async ({ params }) => ({
        status: 'ok',
        data: await this.approve(params.code ?? ''),
      })),
    ];
  }

  #need<T>(value: T | null): T {
    if (value === null) throw new ClawboxError('BUSY', 'the channel gateway is not started', { retry_after_ms: 1000 });
    return value;
  }
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

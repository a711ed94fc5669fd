/**
 * The interfaces chat channels implement. A channel only moves text: the ChannelGateway owns sessions,
 * persistence, pairing, and the one operation every message becomes (`chat.message`, operations.ts).
 *
 * Two kinds:
 * - `Channel`: platforms that deliver asynchronously (line chat, WhatsApp, Telegram, Matrix...). Their
 *   messages are stored durably before they are acknowledged and answered later through send().
 * - `InteractiveChannel`: a caller waits on each answer (HTTP chat, OpenAI-compatible, the WebSocket
 *   chat). The gateway hands it a `converse` function that runs chat.message at once, with the caller's
 *   identity and cancellation; nothing is stored, since such a caller can never be answered later.
 *
 * Writing a (durable) Channel (see line-chat.ts for a complete, runnable one):
 *   1. connect(): open your transport (log in, open the socket, start the webhook listener).
 *   2. For each incoming message call the registered listener with {sender, text} and AWAIT it: it
 *      resolves once the message is on disk, so only then acknowledge it to the platform (mark read,
 *      200 to a webhook). If it rejects, do not acknowledge: the platform should redeliver.
 *   3. send(sessionId, message): deliver a reply to the sender of that session (session id =
 *      `<channel>:<sender_id>`, see sessionIdOf). Deliver or throw; the gateway logs failures.
 *   4. disconnect(): close everything; no listener calls after it resolves.
 * `local` says whether senders are already trusted (behind the HTTP auth); non-local senders must be
 * paired by the owner before the gateway answers them.
 */
import type { Principal } from '../runtime/operations/principal.js';

/** Who sent a message, as the channel knows them. sender_id is stable per person on that channel. */
export interface SenderIdentity {
  channel: string;
  sender_id: string;
  display_name?: string;
}

export interface InboundMessage {
  sender: SenderIdentity;
  text: string;
  /** What came besides text (a photo, a voice message): refused clearly, since no channel passes media on yet. */
  media?: { kind: string }[];
}

/** What the gateway decided about an inbound message (resolved after it is persisted, when accepted). */
export type Acceptance =
  | { status: 'accepted'; id: string; session: string }
  /** Unknown sender on a non-local channel: the pairing code was (or had been) sent; nothing stored. */
  | { status: 'pairing'; code: string }
  /** Rejected input (empty, too long): nothing stored. */
  | { status: 'rejected'; code: string; message: string }
  /** Dropped by the channel's DM policy (allowlist, disabled): nothing stored, nothing said to the sender. */
  | { status: 'ignored'; reason: string };

export interface OutboundMessage {
  text: string;
  /** The accepted message this answers (absent for notices such as a pairing code). */
  in_reply_to?: string;
  actions?: unknown[];
  path?: string;
  /** Set when the message could not be answered: {code, message, retry_after_ms?}. */
  error?: { code: string; message: string; retry_after_ms?: number };
}

export type MessageListener = (message: InboundMessage) => Promise<Acceptance>;

export interface Channel {
  /** Unique channel name, also the first part of session ids: [a-z0-9-]+. */
  readonly name: string;
  /** True when every sender is already trusted (no pairing). */
  readonly local: boolean;
  connect(): Promise<void>;
  send(sessionId: string, message: OutboundMessage): Promise<void>;
  onMessage(listener: MessageListener): void;
  disconnect(): Promise<void>;
}

/** What chat.message answers: the agent's response, its text checked by content safety. */
export interface ChatReply {
  text: string;
  actions: unknown[];
  path?: string | null;
  timings?: unknown;
  refused?: unknown;
  confirmations?: { id: string; device: string; command: unknown; expires_at: number | string }[];
  /** True when content safety withheld the agent's text (its actions ran and are reported). */
  withheld?: boolean;
  /** A completion's calls of the client's own functions. */
  tool_calls?: { id: string; name: string; arguments: string }[];
}

/** One message of an interactive channel. */
export interface Conversation {
  sender_id: string;
  display_name?: string;
  text: string;
  /** The agent session to use (default `<channel>:<sender_id>`). */
  session?: string;
  /** A client's own conversation and functions (OpenAI tools): see agent/completion.ts. */
  completion?: { messages: { content: string }[] };
}

export interface ConverseOptions {
  /** The transport's own caller (the HTTP token or admin): the sender may do no more than it. */
  caller?: Principal;
  /** Aborts when the caller goes away: the agent's work for it stops. */
  signal?: AbortSignal;
  /**
   * The caller streams: reply text goes here as it is generated (already screened by content safety).
   * What it received is a prefix of the reply's text unless content safety changed the rest; the
   * channel sends the remainder when the reply resolves (see `remainderOf`).
   */
  onText?: (text: string) => void;
  /** The scheduler source this message counts as (its deadline and class); default by channel. */
  source?: 'chat' | 'openai';
}

/** Runs one message through chat.message; rejects with a ClawboxError (CONTENT_BLOCKED, BUSY, ...). */
export type Converse = (message: Conversation, options?: ConverseOptions) => Promise<ChatReply>;

export interface InteractiveChannel {
  readonly name: string;
  /** True when every sender is already trusted (behind the HTTP auth): no pairing. */
  readonly local: boolean;
  connect(): Promise<void>;
  onConverse(converse: Converse): void;
  disconnect(): Promise<void>;
}

export function isInteractive(channel: Channel | InteractiveChannel): channel is InteractiveChannel {
  return typeof (channel as Partial<InteractiveChannel>).onConverse === 'function';
}

/**
 * What a streaming caller still has to be sent once the whole reply is known: the rest of it when what was
 * streamed is its beginning, else (content safety changed the reply after some text went out) the whole
 * reply again after a line break, so the last thing the caller reads is the screened answer.
 */
export function remainderOf(streamed: string, reply: string): string {
  if (reply.startsWith(streamed)) return reply.slice(streamed.length);
  return `\n${reply}`;
}

export function sessionIdOf(sender: Pick<SenderIdentity, 'channel' | 'sender_id'>): string {
  return `${sender.channel}:${sender.sender_id}`;
}

/** The sender id part of a session id (everything after the first colon). */
export function senderIdOf(sessionId: string): string {
  const at = sessionId.indexOf(':');
  return at < 0 ? sessionId : sessionId.slice(at + 1);
}

/** A chat message as the interactive channels (HTTP chat, WebSocket chat) accept it. */
export const CHAT_MESSAGE_SCHEMA = {
  type: 'object',
  required: ['text'],
  additionalProperties: false,
  properties: {
    text: { type: 'string', minLength: 1, maxLength: 100000 },
    session: { type: 'string', pattern: '^[A-Za-z0-9._@-]{1,128}$' },
  },
} as const;

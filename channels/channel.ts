/**
 * The one interface every chat channel implements: the built-in HTTP and OpenAI-compatible endpoints,
 * the line-chat example, and any platform plugin (WhatsApp, Telegram, Matrix...). A channel only moves
 * text: the ChannelGateway owns sessions, persistence, pairing and the agent.
 *
 * Writing a channel (see line-chat.ts for a complete, runnable one):
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

/** Who sent a message, as the channel knows them. sender_id is stable per person on that channel. */
export interface SenderIdentity {
  channel: string;
  sender_id: string;
  display_name?: string;
}

export interface InboundMessage {
  sender: SenderIdentity;
  text: string;
}

/** What the gateway decided about an inbound message (resolved after it is persisted, when accepted). */
export type Acceptance =
  | { status: 'accepted'; id: string; session: string }
  /** Unknown sender on a non-local channel: the pairing code was (or had been) sent; nothing stored. */
  | { status: 'pairing'; code: string }
  /** Rejected input (empty, too long): nothing stored. */
  | { status: 'rejected'; code: string; message: string };

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
  /** True when a caller waits on each reply (HTTP): errors, BUSY included, go back at once, unretried. */
  readonly interactive?: boolean;
  connect(): Promise<void>;
  send(sessionId: string, message: OutboundMessage): Promise<void>;
  onMessage(listener: MessageListener): void;
  disconnect(): Promise<void>;
}

export function sessionIdOf(sender: Pick<SenderIdentity, 'channel' | 'sender_id'>): string {
  return `${sender.channel}:${sender.sender_id}`;
}

/** The sender id part of a session id (everything after the first colon). */
export function senderIdOf(sessionId: string): string {
  const at = sessionId.indexOf(':');
  return at < 0 ? sessionId : sessionId.slice(at + 1);
}

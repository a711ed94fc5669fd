/**
 * The chat channels' operation, declared once: `chat.message` {channel, sender, text, session?} is one
 * message from a chat sender to the agent. It needs `agent/request`, applies content safety to the text
 * in and to the reply out, and asks the agent through the front door (`agent.request`) as the same
 * caller, so whatever the agent proposes runs with the sender's permissions.
 *
 * Content safety: a blocked input is refused with CONTENT_BLOCKED and never reaches the agent; a masked one
 * reaches it masked. A blocked reply is withheld (its text replaced, `withheld: true`); the actions it
 * reports ran all the same, so they are still reported. A streaming caller (ctx.stream) gets the reply's
 * text as it is generated, but only what the policy lets through unchanged (stream-screen.ts); the whole
 * screened reply is still the result.
 */
import { createHash } from 'node:crypto';
import { ClawboxError } from '../runtime/errors.js';
import { type AnyOperation, defineOperation } from '../runtime/operations/operation.js';
import type { ChatReply } from './channel.js';
import { screenedStream } from './stream-screen.js';

/** Content safety as chat.message uses it (createContentSafety from plugins/builtin/content-safety fits). */
export interface SafetyCheck {
  check(text: string, context: { channel?: string; direction?: 'input' | 'output' }): { action: string; text: string | null };
}

export interface ChatMessageInput {
  channel: string;
  sender: string;
  text: string;
  session?: string;
  /** A client's own conversation and functions (OpenAI tools): answered by agent.complete instead. */
  completion?: { messages: { content: string }[] };
}

/** Every message of a client's conversation screened like a chat message (blocked: CONTENT_BLOCKED). */
function screenCompletion<C extends { messages: { content: string }[] }>(safety: SafetyCheck | null, completion: C, channel: string): C {
  const messages = completion.messages.map((message) => {
    if (typeof message?.content !== 'string' || message.content === '') return message;
    const text = screen(safety, message.content, channel, 'input');
    if (text === null) throw new ClawboxError('CONTENT_BLOCKED', 'a message was blocked by content safety');
    return { ...message, content: text };
  });
  return { ...completion, messages };
}

/** What a person in a chat waits for at most; the agent's own deadline is usually shorter. */
export const CHAT_DEADLINE_MS = 120_000;
export const WITHHELD_TEXT = '[answer withheld by content safety]';
/** The agent's session ids are at most this long. */
const MAX_SESSION_CHARS = 128;

export const CHANNEL_NAME_PATTERN = '^[a-z0-9-]{1,32}$';

/** Null when blocked, else the text to pass on (masked where the policy masks). */
export function screen(safety: SafetyCheck | null, text: string, channel: string, direction: 'input' | 'output'): string | null {
  if (!safety) return text;
  const decision = safety.check(text, { channel, direction });
  if (decision.action === 'block' || decision.text === null) return null;
  return decision.text;
}

/** The agent session of a sender: `<channel>:<sender>`, shortened to a digest where it would be too long. */
export function agentSessionOf(channel: string, sender: string): string {
  const id = `${channel}:${sender}`;
  return id.length <= MAX_SESSION_CHARS ? id : `${channel}:${createHash('sha256').update(sender).digest('hex').slice(0, 40)}`;
}

export function chatOperations(deps: { safety: () => SafetyCheck | null }): AnyOperation[] {
  return [
    defineOperation<ChatMessageInput, ChatReply>({
      name: 'chat.message',
      summary: 'one chat message to the agent; content safety on the text in and the reply out',
      input: {
        type: 'object',
        required: ['channel', 'sender', 'text'],
        additionalProperties: false,
        properties: {
          channel: { type: 'string', pattern: CHANNEL_NAME_PATTERN },
          sender: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f]+$' },
          text: { type: 'string', minLength: 1, maxLength: 100_000 },
          session: { type: 'string', minLength: 1, maxLength: MAX_SESSION_CHARS },
          // A client's own conversation and functions (OpenAI tools); agent.complete checks its shape.
          completion: { type: 'object', required: ['messages'], properties: { messages: { type: 'array', maxItems: 200 } } },
        },
      },
      permission: () => 'agent/request',
      // The agent's proposals pass the front door (and its audit) as this caller on their own.
      changesWorld: false,
      deadlineMs: CHAT_DEADLINE_MS,
      handler: async (input, ctx) => {
        const safety = deps.safety();
        const text = screen(safety, input.text, input.channel, 'input');
        if (text === null) throw new ClawboxError('CONTENT_BLOCKED', 'the message was blocked by content safety');
        const session = input.session ?? agentSessionOf(input.channel, input.sender);
        // A streaming caller gets the reply as it is generated, screened word by word (stream-screen.ts).
        const stream = ctx.stream ? screenedStream(safety, input.channel, ctx.stream) : null;
        const streamTo = { stream: stream ? (piece: string) => stream.push(piece) : undefined };
        const answer = input.completion
          ? await ctx.invoke<ChatReply>('agent.complete', { ...screenCompletion(safety, input.completion, input.channel), session }, streamTo)
          : await ctx.invoke<ChatReply>('agent.request', { text, session }, streamTo);
        const reply: ChatReply = { ...answer, actions: answer.actions ?? [] };
        const out = screen(safety, reply.text ?? '', input.channel, 'output');
        return out === null ? { ...reply, text: WITHHELD_TEXT, withheld: true } : { ...reply, text: out };
      },
    }),
  ];
}

/** The part of the gateway the pairing operations need. */
export interface PairingDesk {
  pairingRequests(): unknown[];
  approve(code: string): Promise<unknown>;
}

/** Listing and approving pairing requests: the owner's business, so bridge permissions like device management. */
export function pairingOperations(desk: PairingDesk): AnyOperation[] {
  return [
    defineOperation<Record<string, never>, unknown[]>({
      name: 'channels.pairings',
      summary: 'chat senders waiting for pairing, with their codes',
      input: { type: 'object', additionalProperties: false, properties: {} },
      permission: () => 'bridge/request/channels/pairings',
      changesWorld: false,
      deadlineMs: 5_000,
      handler: async () => desk.pairingRequests(),
    }),
    defineOperation<{ code: string }, unknown>({
      name: 'channels.approve',
      summary: 'approve a pairing code: that sender may talk to the agent from now on',
      input: { type: 'object', required: ['code'], additionalProperties: false, properties: { code: { type: 'string', minLength: 1, maxLength: 16 } } },
      permission: () => 'bridge/request/channels/approve',
      changesWorld: true,
      deadlineMs: 10_000,
      handler: (input) => desk.approve(input.code),
    }),
  ];
}

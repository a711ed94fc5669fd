/**
 * Who may talk to the box on a channel (its DM policy), decided before anything is stored:
 *   pairing   (default) a stranger gets a pairing code and is ignored until the owner approves it;
 *   allowlist only senders on channels.allowlist ("<channel>:<sender>") or the platform's own allowlist
 *             (sender ids); anyone else is ignored without an answer;
 *   open      anyone may talk (their permissions still apply: channels.permissions);
 *   disabled  nobody; every message is ignored.
 * Local channels (the box's own HTTP chats behind its auth) have no DM policy.
 */
import type { ChannelsConfig, DmPolicy } from './config-schema.js';

export function dmPolicyOf(config: ChannelsConfig, channel: string): DmPolicy {
  const policy = config.platforms[channel]?.dm_policy ?? (channel === 'line-chat' ? config.line_chat.dm_policy : 'pairing');
  // `pairing: false` is the older switch for "no pairing anywhere".
  return policy === 'pairing' && !config.pairing ? 'open' : policy;
}

export function onAllowlist(config: ChannelsConfig, channel: string, senderId: string): boolean {
  return config.allowlist.includes(`${channel}:${senderId}`) || (config.platforms[channel]?.allowlist.includes(senderId) ?? false);
}

/** What a channel answers when a sender sends a picture, voice or file. */
export const MEDIA_REFUSED = 'Pictures, voice messages and files are not supported here; please send your request as text.';

/**
 * Chat platforms as channel plugins: the gateway hard-codes none. Each entry of `channels.platforms`
 * names a channel (its session ids start with that name) and the channel plugin that runs it (default:
 * the same name). The composition root hands the gateway an `openPlatform` function (the plugin host's
 * openChannel), which checks the plugin's config and credentials and returns a durable Channel whose
 * platform code runs in its own supervised process. A platform that cannot be opened is a problem on the
 * status document, never a failed start.
 */
import { toClawboxError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logging.js';
import type { Channel } from './channel.js';
import type { ChannelsConfig } from './config-schema.js';

/** A platform channel: a Channel plus its state for the status document. */
export type PlatformChannel = Channel & { status?(): unknown };

export type OpenPlatform = (
  channel: string,
  options: { plugin: string; config: Record<string, unknown>; credentials: Record<string, string>; credentialsDir?: string | undefined },
) => PlatformChannel;

export interface PlatformProblem {
  channel: string;
  code: string;
  message: string;
}

/** Opens every enabled platform; what cannot be opened is returned as a problem (and logged). */
export function openPlatforms(
  config: ChannelsConfig,
  open: OpenPlatform | undefined,
  options: { credentialsDir?: string | undefined; logger?: Logger | null },
): { channels: PlatformChannel[]; problems: PlatformProblem[] } {
  const channels: PlatformChannel[] = [];
  const problems: PlatformProblem[] = [];
  for (const [name, entry] of Object.entries(config.platforms)) {
    if (!entry.enabled) continue;
    try {
      if (!open) throw new Error('this runtime has no channel plugins (the plugin host is not wired)');
      channels.push(
        open(name, { plugin: entry.plugin ?? name, config: entry.config, credentials: entry.credentials, credentialsDir: options.credentialsDir }),
      );
    } catch (error) {
      const err = toClawboxError(error);
      problems.push({ channel: name, code: err.code, message: err.message });
      options.logger?.error({ channel: name, code: err.code }, `chat platform ${name} not started: ${err.message}`);
    }
  }
  return { channels, problems };
}

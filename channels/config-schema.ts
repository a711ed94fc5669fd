/**
 * The `channels:` section of the config file. Owned by the channel gateway; the runtime's config schema
 * composes it (`channels: channelsConfigSchema`, type `ChannelsConfig`). The validator fills the defaults,
 * so an empty section gives the HTTP chat endpoints on, the line-chat example off, pairing required, and
 * senders that may talk to the agent and have it command and read devices, but not manage the box.
 */
import { ClawboxError } from '../runtime/errors.js';
import { validatorForOneUse } from '../runtime/operations/validator.js';

/**
 * What a chat sender may do unless channels.permissions names it: ask the agent, confirm what it asked
 * about, and (through the agent) command and read devices, do arithmetic (compute's offline evaluate) and
 * search the knowledge base. Not: add/remove devices, other plugin tools (compute's online ask, database
 * queries), or any other bridge request.
 */
export const DEFAULT_SENDER_PERMISSIONS = ['agent/request', 'agent/confirm', '+/set', '+/get', 'bridge/request/plugin/compute/evaluate', 'bridge/request/kb/search'];

const filterList = { type: 'array', maxItems: 256, items: { type: 'string', minLength: 1, maxLength: 256 } } as const;

/** Who may talk to the box on a channel: see channels/README.md "DM policy". */
export const DM_POLICIES = ['pairing', 'allowlist', 'open', 'disabled'] as const;
export type DmPolicy = (typeof DM_POLICIES)[number];

const dmPolicy = {
  enum: DM_POLICIES,
  default: 'pairing',
  description:
    'pairing: strangers get a code the owner approves; allowlist: only listed senders, others are ignored; open: anyone; disabled: nobody.',
} as const;

/** One chat platform, run by a channel plugin (built-in: whatsapp, telegram, imessage; or one from $PLUGIN_DIR). */
const platformSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    enabled: { type: 'boolean', default: true },
    plugin: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,62}$', description: 'The channel plugin; default: the channel name.' },
    dm_policy: dmPolicy,
    allowlist: {
      type: 'array',
      default: [],
      maxItems: 1000,
      uniqueItems: true,
      description: 'Sender ids on this platform that may talk without pairing (Telegram user id, WhatsApp jid, iMessage address).',
      items: { type: 'string', minLength: 1, maxLength: 128 },
    },
    config: { type: 'object', default: {}, description: "The plugin's settings, checked against its manifest." },
    credentials: {
      type: 'object',
      default: {},
      maxProperties: 16,
      additionalProperties: { type: 'string', minLength: 1, maxLength: 8192 },
      description: 'The credentials its manifest declares (else read from $CREDENTIALS_DIRECTORY/<channel>.<credential>).',
    },
  },
} as const;

export const channelsConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'Chat channels in front of the agent: HTTP, OpenAI-compatible, line chat; pairing. See channels/README.md.',
  properties: {
    http: {
      type: 'boolean',
      default: true,
      description: 'POST /api/chat and the OpenAI-compatible POST /v1/chat/completions (behind the HTTP auth).',
    },
    line_chat: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'The example TCP line-chat channel (one line = one message). Loopback only.',
      properties: {
        enabled: { type: 'boolean', default: false },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 7331, description: '0 = any free port.' },
        dm_policy: dmPolicy,
      },
    },
    platforms: {
      type: 'object',
      default: {},
      maxProperties: 16,
      propertyNames: { pattern: '^[a-z0-9-]{1,32}$', not: { enum: ['http', 'ws-chat', 'line-chat'] } },
      additionalProperties: platformSchema,
      description: 'Chat platforms by channel name, each run by a channel plugin in its own process, e.g. telegram: { credentials: { bot_token: ... } }.',
    },
    ws_chat: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'The status page chat: a WebSocket at /api/chat/ws behind the page auth.',
      properties: { enabled: { type: 'boolean', default: true } },
    },
    pairing: {
      type: 'boolean',
      default: true,
      description: 'false turns every "pairing" DM policy into "open" (kept for older configs; prefer dm_policy per channel).',
    },
    allowlist: {
      type: 'array',
      default: [],
      maxItems: 1000,
      uniqueItems: true,
      description: 'Senders that never need pairing, as "<channel>:<sender_id>", e.g. "line-chat:alice".',
      items: { type: 'string', pattern: '^[a-z0-9-]{1,32}:.{1,128}$' },
    },
    permissions: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description:
        'What chat senders may do, as MQTT topic filters relative to the base topic (as broker users\' publish ACLs): the agent acts only as its sender could. A sender on an HTTP channel may also do no more than the HTTP caller (http.permissions).',
      properties: {
        default: {
          ...filterList,
          default: DEFAULT_SENDER_PERMISSIONS,
          description: 'For every sender not listed in senders. Default: agent/request, agent/confirm, +/set, +/get, bridge/request/plugin/compute/evaluate, bridge/request/kb/search.',
        },
        senders: {
          type: 'object',
          default: {},
          maxProperties: 1000,
          propertyNames: { pattern: '^[a-z0-9-]{1,32}:.{1,128}$' },
          additionalProperties: filterList,
          description: 'Per sender, as "<channel>:<sender_id>" (e.g. "line-chat:alice": ["#"]); replaces default for that sender.',
        },
      },
    },
    max_text_chars: {
      type: 'integer',
      minimum: 1,
      maximum: 100000,
      default: 1000,
      description: 'Longer messages are refused (the agent reads at most 1000 characters).',
    },
    busy_retries: {
      type: 'integer',
      minimum: 0,
      maximum: 20,
      default: 3,
      description: 'Non-interactive channels: how often a BUSY answer is retried (after its retry_after_ms).',
    },
  },
} as const;

export interface PlatformConfig {
  enabled: boolean;
  plugin?: string;
  dm_policy: DmPolicy;
  allowlist: string[];
  config: Record<string, unknown>;
  credentials: Record<string, string>;
}

export interface ChannelsConfig {
  http: boolean;
  line_chat: { enabled: boolean; port: number; dm_policy: DmPolicy };
  platforms: Record<string, PlatformConfig>;
  ws_chat: { enabled: boolean };
  pairing: boolean;
  allowlist: string[];
  max_text_chars: number;
  busy_retries: number;
  permissions: { default: string[]; senders: Record<string, string[]> };
}

// Wrapped as the runtime's schema composes it (ajv applies no default at a schema root).
const wrapped = { type: 'object', properties: { channels: channelsConfigSchema } } as const;

/** Validates a raw section (or undefined) and fills its defaults; CONFIG_INVALID on error. */
export function resolveChannelsConfig(raw: unknown): ChannelsConfig {
  const copy = { channels: structuredClone(raw ?? {}) as unknown };
  // Checked at start and when the config changes: the validator is not kept (the idle box holds it for nothing).
  const validate = validatorForOneUse<{ channels: ChannelsConfig }>(wrapped, 'request');
  if (!validate(copy)) {
    const detail = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new ClawboxError('CONFIG_INVALID', `channels config is invalid: ${detail}`);
  }
  return copy.channels;
}

declare module '../runtime/config/schema.js' {
  interface ConfigSections {
    channels: ChannelsConfig;
  }
}

/**
 * The core sections of the config file (YAML on disk): mode, state directory, logging, broker, HTTP. ajv
 * applies the defaults written here, so a missing file or an empty one is a complete local-mode config.
 * Keys are snake_case so that every key maps to an environment override `CLAWBOX_<SECTION>_<KEY>`
 * (see ./env.ts). Feature folders own their sections; the composition root puts them beside these with
 * composeConfigSchema(), and each feature adds its section's type to ConfigSections by module augmentation,
 * so this core never imports a feature.
 */
import { type AuditConfig, auditConfigSchema } from '../audit/config-schema.js';
import { type DataConfig, dataConfigSchema } from '../privacy/config-schema.js';

const port = { type: 'integer', minimum: 0, maximum: 65535 } as const;
const host = { type: 'string', minLength: 1, maxLength: 253 } as const;
const topicPattern = { type: 'string', minLength: 1, maxLength: 256 } as const;
/** One ordered ACL rule (runtime/broker/acl.ts): the first rule whose topic matches decides. */
const aclRule = {
  type: 'object',
  additionalProperties: false,
  required: ['allow', 'access', 'topic'],
  properties: {
    allow: { type: 'boolean', description: 'true: allow, false: deny.' },
    access: {
      enum: ['publish', 'subscribe', 'clear', 'all'],
      description: 'publish, subscribe (and receive), clear (an empty retained PUBLISH, which deletes a retained message), or all three.',
    },
    topic: { ...topicPattern, description: 'Topic filter; %u = username, %c = client id. `#` and `+` never cover $-topics ($SYS): name them.' },
  },
} as const;
const aclRules = { type: 'array', items: aclRule, maxItems: 256 } as const;
const logLevel = { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] } as const;

const coreConfigSchema = {
  $id: 'https://clawbox.dev/schema/config.json',
  title: 'clawbox configuration',
  type: 'object',
  additionalProperties: false,
  properties: {
    mode: {
      enum: ['local', 'appliance'],
      default: 'local',
      description: 'local: developer machine, loopback only, no auth needed on loopback. appliance: installed box.',
    },
    state_dir: {
      type: 'string',
      minLength: 1,
      description: 'Where state lives. Default: $STATE_DIRECTORY under systemd, ./.clawbox in local mode, /var/lib/clawbox in appliance mode.',
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { ...logLevel, default: 'info' },
        components: {
          type: 'object',
          default: {},
          description: 'Per-component level, e.g. {broker: debug}.',
          additionalProperties: logLevel,
        },
      },
    },
    broker: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { ...host, default: '127.0.0.1' },
        port: { ...port, default: 1883 },
        base_topic: { type: 'string', pattern: '^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$', default: 'clawbox' },
        max_payload_bytes: { type: 'integer', minimum: 64, maximum: 268435455, default: 65536 },
        max_keepalive: {
          type: 'integer',
          minimum: 10,
          maximum: 65535,
          default: 600,
          description:
            'Longest keepalive (seconds) an MQTT 5 client gets: one asking for more, or for none, is told this as Server Keep Alive, so a dead link is noticed. MQTT 3.1.1 clients keep theirs (3.1.1 cannot say it).',
        },
        max_queued_messages: {
          type: 'integer',
          minimum: 1,
          maximum: 100000,
          default: 1000,
          description:
            "QoS 1/2 messages that wait, per connection, for a slot in an MQTT 5 client's Receive Maximum. Beyond it a message is not sent on that connection: a clean session loses it, a persistent session gets it at its next connection.",
        },
        websocket: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'MQTT over WebSocket, served on the HTTP port.',
          properties: {
            enabled: { type: 'boolean', default: true },
            path: { type: 'string', pattern: '^/[A-Za-z0-9/_-]*$', default: '/mqtt' },
          },
        },
        tls: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            enabled: { type: 'boolean', default: false },
            host: { ...host, default: '0.0.0.0' },
            port: { ...port, default: 8883 },
            cert: { type: 'string', minLength: 1, description: 'PEM certificate path.' },
            key: { type: 'string', minLength: 1, description: 'PEM private key path.' },
            ca: { type: 'string', minLength: 1, description: 'Optional PEM CA bundle path.' },
          },
        },
        anonymous: {
          enum: ['auto', 'loopback', 'never', 'always'],
          default: 'auto',
          description:
            'Who may connect without a username. auto: loopback clients in local mode, nobody in appliance mode.',
        },
        anonymous_acl: {
          ...aclRules,
          description:
            'Ordered rules for clients without a username, checked before the built-in ones (anonymous clients may do everything but clear retained messages under the base topic and homeassistant/; of the $-topics they may read $SYS).',
        },
        users: {
          type: 'array',
          default: [],
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['username', 'password_hash'],
            properties: {
              username: { type: 'string', pattern: '^[A-Za-z0-9._@-]{1,64}$' },
              password_hash: {
                type: 'string',
                pattern: '^scrypt\\$',
                description: 'From `clawbox passwd`: scrypt$N$r$p$salt$hash (base64).',
              },
              acl: { ...aclRules, description: 'Ordered allow/deny rules, checked before `publish` and `subscribe`; the first match decides.' },
              publish: { type: 'array', items: topicPattern, default: [], description: 'Topic filters; %u = username, %c = client id.' },
              subscribe: { type: 'array', items: topicPattern, default: [] },
            },
          },
        },
        persistence: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            enabled: { type: 'boolean', default: true, description: 'Keep retained messages and sessions across restarts.' },
          },
        },
      },
    },
    http: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { ...host, default: '127.0.0.1' },
        port: { ...port, default: 8080 },
        token: {
          type: 'string',
          minLength: 16,
          description: 'Bearer token for the web app and API. An appliance with neither token nor password_hash starts in first-run setup (the web app sets the admin password).',
        },
        password_hash: { type: 'string', pattern: '^scrypt\\$', description: 'Password for the status page (user "admin").' },
        tls: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description:
            'HTTPS for the web app, API and WebSocket on http.port (plain HTTP on that port is redirected). Without cert/key a self-signed certificate for the host name and <host>.local is made once under <state>/tls/.',
          properties: {
            enabled: { enum: ['auto', true, false], default: 'auto', description: 'auto: on in appliance mode unless http.host is a loopback address; off in local mode.' },
            cert: { type: 'string', minLength: 1, description: 'PEM certificate path (your own).' },
            key: { type: 'string', minLength: 1, description: 'PEM private key path (your own).' },
          },
        },
        permissions: {
          type: 'array',
          default: ['#'],
          maxItems: 256,
          items: { type: 'string', minLength: 1, maxLength: 256 },
          description:
            'What a caller authenticated by http.token or the admin password may do, as MQTT topic filters relative to the base topic (the same language as broker users\' publish ACLs), e.g. ["lamp/set", "+/get", "agent/request"]. "#" (the default) allows everything. An open local-mode server on loopback always allows everything.',
        },
      },
    },
    audit: auditConfigSchema,
    data: dataConfigSchema,
  },
} as const;

export type LogLevel = (typeof logLevel.enum)[number];

export interface AclRuleConfig {
  allow: boolean;
  access: 'publish' | 'subscribe' | 'clear' | 'all';
  topic: string;
}

export interface BrokerUserConfig {
  username: string;
  password_hash: string;
  acl?: AclRuleConfig[];
  publish: string[];
  subscribe: string[];
}

/** The core sections after validation: every default applied, frozen. */
export interface CoreConfig {
  mode: 'local' | 'appliance';
  state_dir?: string;
  log: { level: LogLevel; components: Record<string, LogLevel> };
  broker: {
    host: string;
    port: number;
    base_topic: string;
    max_payload_bytes: number;
    max_keepalive: number;
    max_queued_messages: number;
    websocket: { enabled: boolean; path: string };
    tls: { enabled: boolean; host: string; port: number; cert?: string; key?: string; ca?: string };
    anonymous: 'auto' | 'loopback' | 'never' | 'always';
    anonymous_acl?: AclRuleConfig[];
    users: BrokerUserConfig[];
    persistence: { enabled: boolean };
  };
  http: {
    host: string;
    port: number;
    token?: string;
    password_hash?: string;
    permissions?: string[];
    tls?: { enabled: 'auto' | boolean; cert?: string; key?: string };
  };
  audit: AuditConfig;
  data: DataConfig;
}

/**
 * The feature sections, filled in by each feature's config-schema module:
 * `declare module '../runtime/config/schema.js' { interface ConfigSections { devices: DeviceConfigEntry[] } }`.
 */
// biome-ignore lint/suspicious/noEmptyInterface: the augmentation point for feature sections
export interface ConfigSections {}

/** The whole config after validation. */
export type Config = CoreConfig & ConfigSections;

/** A JSON Schema object for one top-level section. */
export type SectionSchema = Readonly<Record<string, unknown>>;

/** The one JSON Schema of the config file: the core sections plus each feature's. */
export function composeConfigSchema(sections: Readonly<Record<string, SectionSchema>>) {
  for (const name of Object.keys(sections)) {
    if (name in coreConfigSchema.properties) throw new Error(`config section "${name}" is a core section`);
  }
  return { ...coreConfigSchema, properties: { ...coreConfigSchema.properties, ...sections } };
}

export type ConfigSchema = ReturnType<typeof composeConfigSchema>;

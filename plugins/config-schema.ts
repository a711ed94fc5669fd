/**
 * The `plugins:` section of the config file. Owned by the plugin host; the runtime's config schema composes
 * it (`plugins: pluginsConfigSchema`). Pure data. Every key has a default, so a config without the section
 * loads every built-in plugin with safe limits.
 */
export const PLUGIN_NAME_PATTERN = '^[a-z][a-z0-9-]{0,62}$';
export const TOOL_NAME_PATTERN = '^[a-z][a-z0-9_]{0,62}$';

const pluginName = { type: 'string', pattern: PLUGIN_NAME_PATTERN } as const;
const ms = (min: number, max: number, fallback: number) =>
  ({ type: 'integer', minimum: min, maximum: max, default: fallback }) as const;

export const pluginsConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: true, description: 'Start the plugin host at all.' },
    dirs: {
      type: 'array',
      default: [],
      items: { type: 'string', minLength: 1, maxLength: 4096 },
      description:
        'Extra folders to load plugins from (each holds plugin folders, or is one). Built-ins and $PLUGIN_DIR are always searched.',
    },
    allow: {
      type: 'array',
      items: pluginName,
      description: 'When set, only these plugins load. Absent: every plugin found loads (minus deny).',
    },
    deny: { type: 'array', items: pluginName, default: [], description: 'These plugins never load; wins over allow.' },
    config: {
      type: 'object',
      default: {},
      propertyNames: pluginName,
      additionalProperties: { type: 'object' },
      description: "Per-plugin settings, checked against that plugin's manifest config schema.",
    },
    lazy: {
      type: 'boolean',
      // On by default: the built-ins add ~70 MB when started eagerly, past the 120 MB idle target.
      default: true,
      description: 'Start each plugin at its first call instead of at startup: less idle memory, a slower first call.',
    },
    call_timeout_ms: ms(50, 600_000, 10_000),
    start_timeout_ms: ms(100, 120_000, 15_000),
    memory_limit_mb: {
      type: 'integer',
      minimum: 16,
      maximum: 65_536,
      default: 256,
      description: 'Heap limit of a Node plugin; address-space limit of a Python plugin is this plus 512 MB.',
    },
    max_message_bytes: {
      type: 'integer',
      minimum: 1024,
      maximum: 64 * 1024 * 1024,
      default: 4 * 1024 * 1024,
      description: 'Largest message a plugin may send (one JSON-RPC line); more is a protocol failure.',
    },
    restart: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        initial_ms: ms(10, 60_000, 250),
        max_ms: ms(10, 600_000, 30_000),
        stable_ms: { ...ms(100, 3_600_000, 30_000), description: 'Up this long without failing: backoff resets.' },
      },
    },
    mqtt: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true, description: 'Answer <base>/bridge/request/plugin/<name>/<tool>.' },
        tools: {
          type: 'array',
          items: { type: 'string', minLength: 1, maxLength: 130 },
          default: ['*'],
          description: 'Tools callable over MQTT: "plugin/tool", "plugin/*" or "*".',
        },
        max_payload_bytes: { type: 'integer', minimum: 64, maximum: 16 * 1024 * 1024, default: 256 * 1024 },
      },
    },
    python: { type: 'string', minLength: 1, default: 'python3', description: 'Interpreter for Python plugins.' },
  },
} as const;

export interface PluginsConfig {
  enabled: boolean;
  dirs: string[];
  allow?: string[];
  deny: string[];
  config: Record<string, Record<string, unknown>>;
  lazy: boolean;
  call_timeout_ms: number;
  start_timeout_ms: number;
  memory_limit_mb: number;
  max_message_bytes: number;
  restart: { initial_ms: number; max_ms: number; stable_ms: number };
  mqtt: { enabled: boolean; tools: string[]; max_payload_bytes: number };
  python: string;
}

declare module '../runtime/config/schema.js' {
  interface ConfigSections {
    plugins: PluginsConfig;
  }
}

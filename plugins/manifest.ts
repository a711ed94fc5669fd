/**
 * The plugin manifest (`clawbox.plugin.json`): who the plugin is, how to run it, which tools it offers with
 * JSON Schemas for arguments and results, the schema of its config, and the permissions it asks for.
 * Parsing checks the manifest itself and compiles every schema in it, so a bad schema fails at load, not at
 * the first call.
 */
import type { ValidateFunction } from 'ajv';
import { ClawboxError } from '../runtime/errors.js';
import { PLUGIN_NAME_PATTERN, TOOL_NAME_PATTERN } from './config-schema.js';
import { schemaProblem, validatorFor, validatorForOneUse } from '../runtime/operations/validator.js';

export const MANIFEST_FILE = 'clawbox.plugin.json';
const MAX_MANIFEST_BYTES = 256 * 1024;

const jsonSchema = { type: 'object', description: 'A JSON Schema (draft-07 / 2019 keywords that ajv 8 knows).' } as const;
const topicFilters = { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 256 } } as const;

export const manifestSchema = {
  $id: 'https://clawbox.dev/schema/plugin-manifest.json',
  title: 'clawbox plugin manifest',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'version', 'runtime', 'entry'],
  properties: {
    $schema: { type: 'string' },
    name: { type: 'string', pattern: PLUGIN_NAME_PATTERN, description: 'Also the MQTT topic segment.' },
    version: { type: 'string', pattern: '^\\d+\\.\\d+\\.\\d+(?:[-+][0-9A-Za-z.-]+)?$' },
    description: { type: 'string', maxLength: 500 },
    runtime: { enum: ['node', 'python'] },
    entry: {
      type: 'string',
      minLength: 1,
      maxLength: 255,
      pattern: '^(?!/)(?!.*(?:^|/)\\.\\.(?:/|$))[A-Za-z0-9._/-]+$',
      description: 'Path inside the plugin folder: an ES module (node) or a script (python).',
    },
    kind: {
      enum: ['tool', 'channel'],
      default: 'tool',
      description: 'tool: offers tools to the agent and clients; channel: a chat platform in front of the agent (see channels/README.md).',
    },
    channel: {
      type: 'object',
      additionalProperties: false,
      required: ['max_message_chars'],
      description: 'kind: channel only. What the platform allows and which credentials the channel needs.',
      properties: {
        max_message_chars: {
          type: 'integer',
          minimum: 16,
          maximum: 1_000_000,
          description: 'The platform\'s longest text message; longer replies are split into several.',
        },
        media: { type: 'boolean', default: false, description: 'Whether the channel passes pictures, voice and files on (none do yet).' },
        credentials: {
          type: 'array',
          maxItems: 16,
          default: [],
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'description'],
            properties: {
              name: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,62}$' },
              description: { type: 'string', minLength: 1, maxLength: 500 },
              required: { type: 'boolean', default: true },
            },
          },
        },
      },
    },
    isolation: {
      enum: ['worker', 'process'],
      default: 'worker',
      description: 'node only (a python plugin is always a child process). worker: a worker thread (light); process: a child process (for native code that must be killable).',
    },
    tools: {
      type: 'array',
      maxItems: 64,
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'description', 'arguments'],
        properties: {
          name: { type: 'string', pattern: TOOL_NAME_PATTERN },
          description: { type: 'string', minLength: 1, maxLength: 1000 },
          arguments: jsonSchema,
          result: jsonSchema,
          timeout_ms: { type: 'integer', minimum: 10, maximum: 600_000, description: 'Overrides plugins.call_timeout_ms.' },
        },
      },
    },
    config: { ...jsonSchema, default: { type: 'object' } },
    permissions: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        devices: {
          anyOf: [{ type: 'boolean' }, { type: 'array', maxItems: 1024, items: { type: 'string', maxLength: 64 } }],
          default: false,
          description: 'true: every device; a list: those ids; false: none.',
        },
        topics: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: { publish: { ...topicFilters, default: [] }, subscribe: { ...topicFilters, default: [] } },
        },
        network: {
          anyOf: [{ type: 'boolean' }, { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 260 } }],
          default: false,
          description: 'Declared network use (hosts or true). Shown to the operator; not sandboxed.',
        },
        database: { type: 'boolean', default: false, description: 'Declared database access. Shown to the operator.' },
      },
    },
  },
} as const;

export interface ToolManifest {
  name: string;
  description: string;
  arguments: Record<string, unknown>;
  result?: Record<string, unknown>;
  timeout_ms?: number;
}

export interface PluginPermissions {
  devices: boolean | string[];
  topics: { publish: string[]; subscribe: string[] };
  network: boolean | string[];
  database: boolean;
}

export interface ChannelCredential {
  name: string;
  description: string;
  required: boolean;
}

/** What a channel plugin's manifest says about its platform. */
export interface ChannelManifest {
  max_message_chars: number;
  media: boolean;
  credentials: ChannelCredential[];
}

export interface PluginManifest {
  name: string;
  version: string;
  description?: string;
  kind: 'tool' | 'channel';
  /** Set for kind channel (parseManifest refuses a channel plugin without it). */
  channel?: ChannelManifest;
  runtime: 'node' | 'python';
  entry: string;
  isolation: 'worker' | 'process';
  tools: ToolManifest[];
  config: Record<string, unknown>;
  permissions: PluginPermissions;
}

/** A tool with its schemas (compiled on first use). */
export interface CompiledTool {
  readonly manifest: ToolManifest;
  readonly validateArgs: ValidateFunction;
  readonly validateResult: ValidateFunction | null;
}

export interface CompiledManifest {
  readonly manifest: PluginManifest;
  readonly tools: ReadonlyMap<string, CompiledTool>;
  /** Checks a config for the plugin in place (defaults applied): undefined when valid, else Ajv's errors (formatAjvErrors). */
  checkConfig(value: unknown): NonNullable<ValidateFunction['errors']> | undefined;
}


/**
 * The manifest schema's validator, not kept: manifests are read at start and when plugins are added, and
 * an idle box would hold the largest validator but one for nothing (runtime/operations/validator.ts). One
 * pass over several manifests takes one and checks them all with it.
 */
export function manifestValidator(): ValidateFunction {
  return validatorForOneUse(manifestSchema, 'config');
}

/**
 * Parses and checks a manifest's text; every schema in it is checked now and compiled on first use. Throws
 * PLUGIN_INVALID. `validateManifest`: the pass's manifestValidator(), else one for this manifest.
 */
export function parseManifest(text: string, where: string, validateManifest: ValidateFunction = manifestValidator()): CompiledManifest {
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES) {
    throw new ClawboxError('PLUGIN_INVALID', `${where}: manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ClawboxError('PLUGIN_INVALID', `${where}: manifest is not valid JSON: ${(error as Error).message}`);
  }
  if (!validateManifest(raw)) {
    throw new ClawboxError('PLUGIN_INVALID', `${where}: manifest ${formatAjvErrors(validateManifest.errors)}`);
  }
  const manifest = raw as unknown as PluginManifest;
  if (manifest.kind === 'channel' && (!manifest.channel || manifest.runtime !== 'node')) {
    throw new ClawboxError('PLUGIN_INVALID', `${where}: a channel plugin needs a "channel" section and runtime "node"`);
  }
  if (manifest.kind === 'tool' && manifest.channel) {
    throw new ClawboxError('PLUGIN_INVALID', `${where}: "channel" is only for plugins of kind "channel"`);
  }
  if (manifest.kind === 'channel' && manifest.tools.length > 0) {
    throw new ClawboxError('PLUGIN_INVALID', `${where}: a channel plugin offers no tools`);
  }
  // Every schema is checked against the JSON Schema meta-schema now, and compiled on first use: compiling
  // all of them made up a large share of the runtime's start, for tools most boxes never call. Plugin
  // schemas have the factory's plugin profile: not strict (authors use annotations freely), formats known,
  // defaults applied to arguments and config, an Ajv instance per schema so that $ids cannot collide; the
  // built-in plugins' schemas are precompiled at build time.
  const usable = (schema: Record<string, unknown>, what: string): void => {
    const problem = schemaProblem(schema, 'plugin');
    if (problem) throw new ClawboxError('PLUGIN_INVALID', `${where}: ${what} is not a usable JSON Schema: ${problem}`);
  };
  const compile = (schema: Record<string, unknown>, what: string, forOneUse = false): ValidateFunction => {
    try {
      return forOneUse ? validatorForOneUse(schema, 'plugin') : validatorFor(schema, 'plugin');
    } catch (error) {
      throw new ClawboxError('PLUGIN_INVALID', `${where}: ${what} is not a usable JSON Schema: ${(error as Error).message}`);
    }
  };
  const lazy = (schema: Record<string, unknown>, what: string): (() => ValidateFunction) => {
    usable(schema, what);
    let compiled: ValidateFunction | undefined;
    return () => {
      compiled ??= compile(schema, what);
      return compiled;
    };
  };
  const tools = new Map<string, CompiledTool>();
  for (const tool of manifest.tools) {
    if (tools.has(tool.name)) throw new ClawboxError('PLUGIN_INVALID', `${where}: tool "${tool.name}" is declared twice`);
    const args = lazy(tool.arguments, `tools.${tool.name}.arguments`);
    const result = tool.result ? lazy(tool.result, `tools.${tool.name}.result`) : null;
    tools.set(tool.name, {
      manifest: tool,
      get validateArgs() {
        return args();
      },
      get validateResult() {
        return result ? result() : null;
      },
    });
  }
  usable(manifest.config, 'config');
  return {
    manifest,
    tools,
    // A config is checked when the plugin loads and when a channel opens it: its validator is not kept.
    checkConfig(value) {
      const validate = compile(manifest.config, 'config', true);
      return validate(value) ? undefined : (validate.errors ?? []);
    },
  };
}

/** One line naming each problem, e.g. `/tools/0/name must match pattern "..."`. */
export function formatAjvErrors(errors: ValidateFunction['errors']): string {
  if (!errors?.length) return 'is invalid';
  return errors
    .slice(0, 5)
    .map((e) => {
      const at = e.instancePath || '(root)';
      const extra =
        e.keyword === 'additionalProperties'
          ? ` ("${(e.params as { additionalProperty: string }).additionalProperty}")`
          : e.keyword === 'enum'
            ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')})`
            : '';
      return `${at} ${e.message ?? 'is invalid'}${extra}`;
    })
    .join('; ');
}

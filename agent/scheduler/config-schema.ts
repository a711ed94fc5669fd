/**
 * The `scheduler:` section of the config file. Owned by the scheduler; the runtime's config schema
 * composes it (`scheduler: schedulerConfigSchema`, type `SchedulerConfig`). ajv fills the scalar defaults;
 * `resolveSchedulerConfig` merges the per-source and per-class maps over the built-in ones, so a config
 * that names one source keeps the others.
 */
import { ClawboxError } from '../../runtime/errors.js';

const ms = (min: number, max: number, fallback: number, description: string) =>
  ({ type: 'integer', minimum: min, maximum: max, default: fallback, description }) as const;

const name = { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,31}$' } as const;

export const schedulerConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'Agent request scheduling: deadlines, admission, load shedding, priorities. See agent/scheduler/README.md.',
  properties: {
    default_deadline_ms: ms(10, 60000, 200, 'Deadline of an agent request from arrival, unless its source or the request sets one.'),
    chat_deadline_ms: ms(
      100,
      600000,
      15000,
      'Deadline of the whole answer for sources where a person waits (human: true — the chats, the OpenAI API, chat channels); their answers stream.',
    ),
    first_token_ms: ms(
      10,
      60000,
      200,
      'Time-to-first-token target of streamed answers: what bench:chat measures against; a person sees the answer start within it.',
    ),
    min_deadline_ms: ms(1, 60000, 20, 'A per-request deadline_ms below this is raised to it.'),
    max_deadline_ms: ms(10, 600000, 30000, 'A per-request deadline_ms above this is lowered to it.'),
    sources: {
      type: 'object',
      default: {},
      maxProperties: 32,
      description: 'Per source (mqtt, http, channel, panel, ...): its deadline and priority class.',
      propertyNames: name,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          deadline_ms: { type: 'integer', minimum: 1, maximum: 600000 },
          class: name,
          human: { type: 'boolean', description: 'A person waits on the answer: chat_deadline_ms unless deadline_ms is set.' },
        },
      },
    },
    classes: {
      type: 'object',
      default: {},
      maxProperties: 16,
      description: 'Priority classes. Higher priority is served first; reserve keeps that share of the model slots for the class.',
      propertyNames: name,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          priority: { type: 'integer', minimum: 0, maximum: 100 },
          reserve: { type: 'number', minimum: 0, maximum: 1 },
        },
      },
    },
    max_queue: ms(1, 10000, 64, 'Model requests waiting for a slot, at most.'),
    max_concurrency: {
      anyOf: [{ const: 'auto' }, { type: 'integer', minimum: 1, maximum: 64 }],
      default: 'auto',
      description: 'Model requests running in parallel. auto: tuned from measurements, up to the model\'s sequences.',
    },
    fast_path: {
      enum: ['first', 'fallback'],
      default: 'first',
      description: 'first: a request the intent matcher understands never waits for the model. fallback: the fast path is only the first rung of the degrade ladder.',
    },
    estimate_margin: {
      type: 'number',
      minimum: 0,
      maximum: 5,
      default: 0.15,
      description: 'Safety margin on predicted service time (0.15 = plan for 15 % slower than measured).',
    },
    stall_factor: {
      type: 'number',
      minimum: 1.5,
      maximum: 100,
      default: 4,
      description: 'An inter-token gap this many times the average counts as a stall and slows the estimate at once.',
    },
    codel: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Queue discipline under overload (adaptive LIFO with CoDel-style dropping).',
      properties: {
        target_ms: ms(1, 10000, 5, 'Under a standing queue, requests older than this (but the newest) are dropped.'),
        interval_ms: ms(1, 60000, 100, 'The queue counts as standing when it was last empty longer ago than this.'),
      },
    },
  },
} as const;

export interface SchedulerClassConfig {
  priority: number;
  /** Share (0..1) of the model slots kept for this class. */
  reserve: number;
}

export interface SchedulerSourceConfig {
  deadline_ms?: number;
  class: string;
  /** A person waits on the answer (it streams): chat_deadline_ms unless deadline_ms is set. */
  human?: boolean;
}

/** The section as ajv leaves it (scalar defaults applied). */
export interface SchedulerConfig {
  default_deadline_ms: number;
  chat_deadline_ms: number;
  first_token_ms: number;
  min_deadline_ms: number;
  max_deadline_ms: number;
  sources: Record<string, { deadline_ms?: number; class?: string; human?: boolean }>;
  classes: Record<string, { priority?: number; reserve?: number }>;
  max_queue: number;
  max_concurrency: 'auto' | number;
  fast_path: 'first' | 'fallback';
  estimate_margin: number;
  stall_factor: number;
  codel: { target_ms: number; interval_ms: number };
}

/** The section with the source and class maps completed; what the Scheduler uses. */
export interface ResolvedSchedulerConfig extends Omit<SchedulerConfig, 'sources' | 'classes'> {
  sources: Record<string, SchedulerSourceConfig>;
  classes: Record<string, SchedulerClassConfig>;
  /** Class of a source that is not listed. */
  default_class: string;
}

export const DEFAULT_CLASSES: Readonly<Record<string, SchedulerClassConfig>> = {
  high: { priority: 30, reserve: 0.25 },
  normal: { priority: 20, reserve: 0 },
  low: { priority: 10, reserve: 0 },
};

/**
 * A wall panel outranks MQTT and HTTP clients, which outrank chat channels. Machine clients (panel, mqtt,
 * http) keep the device-command deadline; where a person waits — the HTTP/page/WebSocket chat (`chat`),
 * the OpenAI-compatible API (`openai`) and chat channels (`channel`) — the whole answer gets
 * chat_deadline_ms and streams.
 */
export const DEFAULT_SOURCES: Readonly<Record<string, SchedulerSourceConfig>> = {
  panel: { class: 'high' },
  mqtt: { class: 'normal' },
  http: { class: 'normal' },
  chat: { class: 'normal', human: true },
  openai: { class: 'normal', human: true },
  channel: { class: 'low', human: true },
};

export const SCHEDULER_DEFAULTS: SchedulerConfig = {
  default_deadline_ms: 200,
  chat_deadline_ms: 15000,
  first_token_ms: 200,
  min_deadline_ms: 20,
  max_deadline_ms: 30000,
  sources: {},
  classes: {},
  max_queue: 64,
  max_concurrency: 'auto',
  fast_path: 'first',
  estimate_margin: 0.15,
  stall_factor: 4,
  codel: { target_ms: 5, interval_ms: 100 },
};

/**
 * Completes a (validated or partial) section: defaults, built-in sources and classes under the configured
 * ones. Throws CONFIG_INVALID for a source naming an unknown class or reservations above 100 %.
 */
export function resolveSchedulerConfig(section: Partial<SchedulerConfig> = {}): ResolvedSchedulerConfig {
  const merged: SchedulerConfig = { ...SCHEDULER_DEFAULTS, ...section, codel: { ...SCHEDULER_DEFAULTS.codel, ...section.codel } };
  const classes: Record<string, SchedulerClassConfig> = {};
  for (const [key, value] of Object.entries(DEFAULT_CLASSES)) classes[key] = { ...value };
  for (const [key, value] of Object.entries(merged.classes)) {
    classes[key] = { priority: value.priority ?? classes[key]?.priority ?? 20, reserve: value.reserve ?? classes[key]?.reserve ?? 0 };
  }
  const sources: Record<string, SchedulerSourceConfig> = {};
  for (const [key, value] of Object.entries(DEFAULT_SOURCES)) sources[key] = { ...value };
  for (const [key, value] of Object.entries(merged.sources)) {
    const cls = value.class ?? sources[key]?.class ?? 'normal';
    const human = value.human ?? sources[key]?.human ?? false;
    sources[key] = { class: cls, ...(value.deadline_ms !== undefined ? { deadline_ms: value.deadline_ms } : {}), ...(human ? { human } : {}) };
  }
  for (const [key, value] of Object.entries(sources)) {
    if (!classes[value.class]) throw new ClawboxError('CONFIG_INVALID', `scheduler.sources.${key}.class names unknown class "${value.class}"`);
  }
  const reserved = Object.values(classes).reduce((sum, c) => sum + c.reserve, 0);
  if (reserved > 1) throw new ClawboxError('CONFIG_INVALID', `scheduler.classes reserve ${reserved.toFixed(2)} of the model slots; at most 1`);
  if (merged.min_deadline_ms > merged.max_deadline_ms) throw new ClawboxError('CONFIG_INVALID', 'scheduler.min_deadline_ms is above max_deadline_ms');
  return { ...merged, sources, classes, default_class: classes.normal ? 'normal' : Object.keys(classes)[0]! };
}

declare module '../../runtime/config/schema.js' {
  interface ConfigSections {
    scheduler: SchedulerConfig;
  }
}

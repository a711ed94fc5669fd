/**
 * The `brain:` section: hybrid deployment. `role: edge` (the default) is the appliance; with an
 * `endpoint` it offloads model work it cannot do in time to that brain. `role: brain` (or
 * `clawbox start --mode brain`) serves the brain API from this box's models and runs nothing else.
 */
import { DATA_CLASSES, type DataClass } from './policy.js';

const file = { type: 'string', minLength: 1, maxLength: 4096 } as const;
const names = (description: string) => ({ type: 'array', maxItems: 256, default: [], items: { type: 'string', minLength: 1, maxLength: 128 }, description }) as const;

export const brainConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'Hybrid deployment: a local gateway (edge) with a remote brain. See README "Hybrid deployment".',
  properties: {
    role: { enum: ['edge', 'brain'], default: 'edge', description: 'edge: the appliance (offloads to `endpoint` when set). brain: serve the brain API only.' },
    endpoint: {
      type: 'string',
      pattern: '^(grpcs://[^/\\s]+:[0-9]{1,5}|https?://\\S+)$',
      maxLength: 2048,
      description:
        'Edge: the brain. grpcs://host:port for a clawbox brain (mutual TLS 1.3), or the base URL of an OpenAI-compatible server (llama-server, vLLM, Ollama), e.g. https://gpu.lan:8000 (POST /v1/chat/completions).',
    },
    model: { type: 'string', minLength: 1, maxLength: 256, description: 'OpenAI-compatible endpoint: the model name to ask for.' },
    api_key_file: { ...file, description: 'OpenAI-compatible endpoint: a file holding the bearer token (never logged).' },
    listen: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { type: 'string', default: '127.0.0.1', minLength: 1, maxLength: 255 },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 7443 },
      },
      description: 'Brain: where the gRPC API listens.',
    },
    tls: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ca: { ...file, description: 'The link CA certificate (PEM): the peer must be signed by it.' },
        cert: { ...file, description: "This side's certificate (PEM): brain.crt on the brain, edge.crt on the edge." },
        key: { ...file, description: "This side's private key (PEM, 0600)." },
      },
      description: 'Files from `clawbox brain certs`. Default: <state_dir>/brain-certs/{ca.crt, brain|edge.crt, brain|edge.key}. Reloaded when they change.',
    },
    require_fips: { type: 'boolean', default: false, description: 'Refuse to start the link unless Node runs with the OpenSSL FIPS provider.' },
    max_in_flight: { type: 'integer', minimum: 1, maximum: 1024, default: 64, description: 'Brain: requests generating at once; more are refused.' },
    health_interval_ms: { type: 'integer', minimum: 100, maximum: 60000, default: 2000, description: 'Edge: how often the brain is health-checked.' },
    breaker: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        threshold: { type: 'integer', minimum: 1, maximum: 100, default: 3 },
        cooldown_ms: { type: 'integer', minimum: 100, maximum: 600000, default: 1000 },
        max_cooldown_ms: { type: 'integer', minimum: 100, maximum: 3600000, default: 30000 },
      },
      description: 'Edge: after `threshold` failures in a row the remote rung is skipped for a cool-down (doubling up to max_cooldown_ms).',
    },
    region: {
      type: 'string',
      pattern: '^[a-z]{2}(-[a-z0-9]{1,8})?$',
      description: "Edge: the data region the brain's operator declares (e.g. eu). Work goes to the brain only when it equals data.region and the person did not opt out of sharing.",
    },
    prefer_remote: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        sources: names('Request sources (mqtt, http, channel, ...) whose model work goes to the brain first.'),
        min_prompt_tokens: { type: 'integer', minimum: 0, maximum: 1000000, default: 0, description: 'Prompts at least this long go to the brain first (0: never).' },
      },
      description: 'Edge: when a request needs the bigger model, the brain is tried before the local lanes.',
    },
    local_only: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        devices: names('Device ids that never leave the box.'),
        device_classes: names('Device classes (lock, camera, ...) that never leave the box.'),
        areas: names('Areas whose devices never leave the box.'),
        data: { type: 'array', maxItems: 8, default: [], items: { enum: [...DATA_CLASSES] }, description: 'Data classes that never leave the box (history: the conversation so far).' },
      },
      description: 'Edge: what is never sent to the brain. A request naming such a device is answered locally or refused (LOCAL_ONLY).',
    },
    pseudonym_key_file: { ...file, description: 'Edge: key for the HMAC pseudonyms of session and sender ids. Default <state_dir>/brain/pseudonym.key (created 0600).' },
  },
} as const;

export interface BrainConfig {
  role: 'edge' | 'brain';
  endpoint?: string;
  model?: string;
  api_key_file?: string;
  listen: { host: string; port: number };
  tls?: { ca?: string; cert?: string; key?: string };
  require_fips: boolean;
  max_in_flight: number;
  health_interval_ms: number;
  breaker: { threshold: number; cooldown_ms: number; max_cooldown_ms: number };
  region?: string;
  prefer_remote: { sources: string[]; min_prompt_tokens: number };
  local_only: { devices: string[]; device_classes: string[]; areas: string[]; data: DataClass[] };
  pseudonym_key_file?: string;
}

export const BRAIN_DEFAULTS: BrainConfig = {
  role: 'edge',
  listen: { host: '127.0.0.1', port: 7443 },
  require_fips: false,
  max_in_flight: 64,
  health_interval_ms: 2000,
  breaker: { threshold: 3, cooldown_ms: 1000, max_cooldown_ms: 30000 },
  prefer_remote: { sources: [], min_prompt_tokens: 0 },
  local_only: { devices: [], device_classes: [], areas: [], data: [] },
};

/** The section as config gives it (ajv fills defaults), or the defaults when it is absent. */
export function brainConfigOf(config: unknown): BrainConfig {
  const section = (config as { brain?: Partial<BrainConfig> } | null)?.brain;
  return section ? ({ ...BRAIN_DEFAULTS, ...section } as BrainConfig) : BRAIN_DEFAULTS;
}

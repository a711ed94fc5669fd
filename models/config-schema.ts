/**
 * The `models:` section of the config file. Owned by the model layer; the runtime's config schema
 * composes it. One entry per local GGUF file; the entry with role `main` is loaded at start (then `small`).
 */

const autoOr = (schema: Record<string, unknown>, description: string) =>
  ({ anyOf: [{ const: 'auto' }, schema], default: 'auto', description }) as const;

export const GPU_BACKENDS = ['auto', 'cpu', 'metal', 'cuda', 'vulkan'] as const;
export type GpuBackendSetting = (typeof GPU_BACKENDS)[number];

export const modelEntrySchema = {
  type: 'object',
  required: ['name', 'path'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
    path: { type: 'string', minLength: 1, maxLength: 4096, description: 'GGUF file; relative paths are relative to the config file.' },
    sha256: {
      type: 'string',
      pattern: '^[0-9a-f]{64}$',
      description: 'Expected sha256 of the file (lower-case hex); checked by `clawbox models verify` and at load.',
    },
    source: {
      type: 'string',
      maxLength: 2048,
      description: 'Where the file came from (the URL or hf: URI `clawbox models pull` fetched); informational.',
    },
    role: {
      enum: ['main', 'small', 'standby'],
      default: 'main',
      description: 'main: the agent model; small: the fallback under load; standby: kept, not loaded (the web app can make it main).',
    },
    context_size: {
      type: 'integer',
      minimum: 128,
      maximum: 131072,
      default: 2048,
      description: 'Tokens each session (sequence) can see.',
    },
    sequences: {
      type: 'integer',
      minimum: 1,
      maximum: 64,
      default: 8,
      description: 'Parallel context sequences (concurrent sessions) on this model.',
    },
    gpu: {
      enum: [...GPU_BACKENDS],
      default: 'auto',
      description: 'Compute backend. auto picks Metal/CUDA/Vulkan when available; a failing GPU falls back to CPU.',
    },
    gpu_layers: autoOr({ type: 'integer', minimum: 0, maximum: 1000 }, 'Layers to offload to the GPU.'),
    threads: autoOr(
      { type: 'integer', minimum: 1, maximum: 256 },
      'CPU threads for single-token decoding. auto: free physical cores minus headroom for the broker.',
    ),
    batch_threads: autoOr({ type: 'integer', minimum: 1, maximum: 256 }, 'CPU threads for prompt (batch) evaluation.'),
  },
} as const;

export const modelsConfigSchema = {
  type: 'array',
  default: [],
  maxItems: 16,
  description: 'Local GGUF models. See README "Models".',
  items: modelEntrySchema,
} as const;

export type AutoOr<T> = 'auto' | T;

export interface ModelConfigEntry {
  name: string;
  path: string;
  sha256?: string;
  source?: string;
  role: 'main' | 'small' | 'standby';
  context_size: number;
  sequences: number;
  gpu: GpuBackendSetting;
  gpu_layers: AutoOr<number>;
  threads: AutoOr<number>;
  batch_threads: AutoOr<number>;
}

/** Fills defaults for an entry built in code (tests, `models add`); the config loader does this via ajv. */
export function withModelDefaults(entry: Pick<ModelConfigEntry, 'name' | 'path'> & Partial<ModelConfigEntry>): ModelConfigEntry {
  return {
    role: 'main',
    context_size: 2048,
    sequences: 8,
    gpu: 'auto',
    gpu_layers: 'auto',
    threads: 'auto',
    batch_threads: 'auto',
    ...entry,
  };
}

declare module '../runtime/config/schema.js' {
  interface ConfigSections {
    models: ModelConfigEntry[];
  }
}

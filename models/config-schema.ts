/**
 * The `models:` section of the config file. Owned by the model layer; the runtime's config schema
 * composes it.
 */
export const modelsConfigSchema = {
  type: 'array',
  default: [],
  description: 'Local GGUF models. See README "Models".',
  items: {
    type: 'object',
    required: ['name', 'path'],
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
      path: { type: 'string', minLength: 1 },
    },
    additionalProperties: true,
  },
} as const;

export interface ModelConfigEntry {
  name: string;
  path: string;
  [key: string]: unknown;
}

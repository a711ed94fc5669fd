/**
 * The `data:` section: where the box's data legally lives and how long each class of personal data is
 * kept. Pure data; composed into the core schema. Every key has a default.
 */
export const dataConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: "People's data: the data region, retention per data class, and the bound on pseudonym keys.",
  properties: {
    region: {
      type: ['string', 'null'],
      pattern: '^[a-z]{2}(-[a-z0-9]{1,8})?$',
      default: null,
      description:
        'Where this box\'s data is governed, e.g. "eu", "us", "us-ca", "de". Recorded in every export. An outbound processor (a remote brain, any service that receives personal data) is used only when it declares the same region; with no region set, none is.',
    },
    retention: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Days each data class is kept; 0 keeps it until erased. Enforced by a job at start and then every sweep_interval_minutes.',
      properties: {
        chat_days: { type: 'integer', minimum: 0, maximum: 36_500, default: 30, description: 'Stored chat messages, pairing requests, conversation memory.' },
        audit_days: { type: 'integer', minimum: 0, maximum: 36_500, default: 365, description: 'Audit files whose newest record is older are deleted (never the file being written).' },
        logs_days: { type: 'integer', minimum: 0, maximum: 36_500, default: 14, description: 'Log lines held by the runtime; on the appliance journald keeps its own copy for as long (image/overlay).' },
        sweep_interval_minutes: { type: 'integer', minimum: 1, maximum: 10_080, default: 60 },
      },
    },
    max_subjects: {
      type: 'integer',
      minimum: 1,
      maximum: 10_000_000,
      default: 100_000,
      description: 'People with an erasable pseudonym key, at most; past it audit records name newcomers by a one-way digest.',
    },
  },
} as const;

export interface DataConfig {
  region: string | null;
  retention: { chat_days: number; audit_days: number; logs_days: number; sweep_interval_minutes: number };
  max_subjects: number;
}

export const DATA_DEFAULTS: Readonly<DataConfig> = {
  region: null,
  retention: { chat_days: 30, audit_days: 365, logs_days: 14, sweep_interval_minutes: 60 },
  max_subjects: 100_000,
};

/**
 * The `audit:` section of the config file. Owned by the audit log; the runtime's config schema composes it
 * (`audit: auditConfigSchema`, type `AuditConfig`). Pure data. Every key has a default, so a config without
 * the section keeps an audit log with bounded disk use.
 */
export const auditConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'The hash-chained audit log of world-changing operations and agent decisions, under <state_dir>/audit.',
  properties: {
    enabled: { type: 'boolean', default: true, description: 'Keep the audit log. Off: record() writes nothing.' },
    rotate_bytes: {
      type: 'integer',
      minimum: 4096,
      maximum: 1024 * 1024 * 1024,
      default: 8 * 1024 * 1024,
      description: 'Start a new file once the current one reaches this size.',
    },
    retain_files: {
      type: 'integer',
      minimum: 0,
      maximum: 100_000,
      default: 16,
      description: 'Files kept, the current one included; older ones are deleted at rotation. 0 keeps every file.',
    },
    max_pending: {
      type: 'integer',
      minimum: 1,
      maximum: 1_000_000,
      default: 10_000,
      description: 'Records waiting for the disk, at most; more are refused with BUSY (the disk cannot keep up).',
    },
    verify_at_start_ms: {
      type: 'integer',
      minimum: 0,
      maximum: 3_600_000,
      default: 30_000,
      description: 'At start, verify the chain in the background for at most this long. 0: do not verify at start.',
    },
  },
} as const;

export interface AuditConfig {
  enabled: boolean;
  rotate_bytes: number;
  retain_files: number;
  max_pending: number;
  verify_at_start_ms: number;
}

export const AUDIT_DEFAULTS: Readonly<AuditConfig> = {
  enabled: true,
  rotate_bytes: 8 * 1024 * 1024,
  retain_files: 16,
  max_pending: 10_000,
  verify_at_start_ms: 30_000,
};

/**
 * The `devices:` section of the config file. Owned by the device layer; the runtime's config schema
 * composes it. Each entry is checked in full by the device registry against its driver's own schema.
 */
export const devicesConfigSchema = {
  type: 'array',
  default: [],
  description: 'Devices to drive. Each needs an id, a driver and its capabilities; see README "Devices".',
  items: {
    type: 'object',
    required: ['id', 'driver'],
    properties: {
      id: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' },
      name: { type: 'string', maxLength: 120 },
      driver: { type: 'string' },
    },
    additionalProperties: true,
  },
} as const;

export interface DeviceConfigEntry {
  id: string;
  name?: string;
  driver: string;
  [key: string]: unknown;
}

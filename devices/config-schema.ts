/**
 * The `devices:` section of the config file (also the body of a `bridge/request/device/add`). Owned by the
 * device layer; the runtime's config schema composes it. Pure data: no driver code is imported here.
 *
 * When the config has no `devices:` key at all, the default is the built-in demo set (see demo.ts); the
 * device layer uses those only in local mode, so `npm start` shows working devices. Write `devices: []`
 * for none.
 */
import type { ConfigIssue } from '../runtime/config/issues.js';
import type { Config } from '../runtime/config/schema.js';
import { DEMO_DEVICES } from './demo.js';
import { DEVICE_ID_PATTERN, RESERVED_DEVICE_IDS } from './model.js';

const propertyName = { type: 'string', pattern: '^[a-z][a-z0-9_]{0,31}$' } as const;
const regexSource = { type: 'string', minLength: 1, maxLength: 500, description: 'JavaScript regular expression.' } as const;
const ms = (min: number, max: number, fallback?: number) =>
  ({ type: 'integer', minimum: min, maximum: max, ...(fallback === undefined ? {} : { default: fallback }) }) as const;

const capabilityName = { enum: ['switch', 'dimmer', 'thermostat', 'cover'] } as const;

const capabilityObject = {
  type: 'object',
  required: ['type'],
  additionalProperties: false,
  properties: {
    type: { enum: ['switch', 'dimmer', 'sensor', 'thermostat', 'cover'] },
    readings: {
      type: 'array',
      minItems: 1,
      maxItems: 32,
      items: {
        type: 'object',
        required: ['property'],
        additionalProperties: false,
        properties: {
          property: propertyName,
          unit: { type: 'string', maxLength: 16 },
          device_class: { type: 'string', pattern: '^[a-z_]{1,40}$' },
        },
      },
    },
    min: { type: 'number' },
    max: { type: 'number' },
    step: { type: 'number', exclusiveMinimum: 0 },
    modes: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { enum: ['off', 'heat', 'cool', 'auto', 'dry', 'fan_only'] },
    },
  },
  if: { type: 'object', properties: { type: { const: 'sensor' } } },
  // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword
  then: { type: 'object', required: ['readings'], properties: { readings: true } },
} as const;

const serialPort = {
  path: { type: 'string', minLength: 1, maxLength: 256, description: 'Serial device, e.g. /dev/ttyUSB0.' },
  baud_rate: { type: 'integer', minimum: 50, maximum: 4000000, default: 9600 },
} as const;

/** Maps capability values to what the wire carries, e.g. {state: {ON: "1", OFF: "0"}}. */
const valueMaps = {
  type: 'object',
  propertyNames: { pattern: '^[a-z][a-z0-9_]{0,31}$' },
  additionalProperties: {
    type: 'object',
    additionalProperties: { anyOf: [{ type: 'string' }, { type: 'number' }] },
  },
} as const;

const reconnect = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    initial_ms: ms(50, 60000, 250),
    max_ms: ms(100, 600000, 5000),
  },
} as const;

export const serialLineOptionsSchema = {
  type: 'object',
  required: ['path'],
  additionalProperties: false,
  properties: {
    ...serialPort,
    delimiter: { type: 'string', minLength: 1, maxLength: 4, default: '\n', description: 'Line end, both ways.' },
    commands: {
      type: 'object',
      default: {},
      description: 'Per property: the line to send ({property} placeholders) and the reply that confirms it.',
      propertyNames: { pattern: '^[a-z][a-z0-9_]{0,31}$' },
      additionalProperties: {
        type: 'object',
        required: ['template'],
        additionalProperties: false,
        properties: { template: { type: 'string', minLength: 1, maxLength: 200 }, response: regexSource },
      },
    },
    query: {
      type: 'object',
      required: ['template', 'response'],
      additionalProperties: false,
      description: 'Asks the device for its state; named groups of the reply become state properties.',
      properties: { template: { type: 'string', minLength: 1, maxLength: 200 }, response: regexSource },
    },
    reports: { type: 'array', maxItems: 16, items: regexSource, default: [], description: 'Unsolicited lines.' },
    error: { ...regexSource, description: 'A reply that means the command failed; group "message" is kept.' },
    values: valueMaps,
    poll_interval_ms: { type: 'integer', minimum: 0, maximum: 86400000, default: 0, description: '0: no polling.' },
    reconnect,
    pipeline: {
      type: 'integer',
      minimum: 1,
      maximum: 32,
      default: 1,
      description: 'Commands on the wire at once; above 1 only for a device that reads its input in order and answers every line.',
    },
  },
} as const;

export const modbusRtuOptionsSchema = {
  type: 'object',
  required: ['path', 'registers'],
  additionalProperties: false,
  properties: {
    ...serialPort,
    parity: { enum: ['none', 'even', 'odd'], default: 'none' },
    data_bits: { enum: [7, 8], default: 8 },
    stop_bits: { enum: [1, 2], default: 1 },
    unit_id: { type: 'integer', minimum: 1, maximum: 247, default: 1 },
    registers: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: '^[a-z][a-z0-9_]{0,31}$' },
      additionalProperties: {
        type: 'object',
        required: ['type', 'address'],
        additionalProperties: false,
        properties: {
          type: { enum: ['coil', 'discrete', 'holding', 'input'] },
          address: { type: 'integer', minimum: 0, maximum: 65535 },
          scale: { type: 'number', default: 1, not: { const: 0 } },
          offset: { type: 'number', default: 0 },
          signed: { type: 'boolean', default: false },
        },
      },
    },
    values: valueMaps,
    poll_interval_ms: { type: 'integer', minimum: 0, maximum: 86400000, default: 0 },
    reconnect,
  },
} as const;

export const mqttRemoteOptionsSchema = {
  type: 'object',
  required: ['protocol', 'topic'],
  additionalProperties: false,
  properties: {
    protocol: { enum: ['tasmota', 'zigbee2mqtt'] },
    topic: {
      type: 'string',
      pattern: '^[A-Za-z0-9_. -]{1,64}$',
      description: 'Tasmota device topic, or the zigbee2mqtt friendly name.',
    },
    base_topic: { type: 'string', pattern: '^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$', default: 'zigbee2mqtt' },
    url: {
      type: 'string',
      pattern: '^(mqtt|mqtts|ws|wss)://',
      description: 'An upstream broker; the embedded broker when absent.',
    },
  },
} as const;

export const simulatedOptionsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    latency_ms: { type: 'integer', minimum: 0, maximum: 10000, default: 0 },
    report_interval_ms: { type: 'integer', minimum: 0, maximum: 86400000, default: 0, description: 'Sensor drift.' },
  },
} as const;

export const DRIVER_NAMES = ['simulated', 'serial-line', 'modbus-rtu', 'mqtt-remote'] as const;
export const DEVICE_CLASSES = ['light', 'outlet', 'fan', 'blind', 'window', 'lock', 'garage', 'door', 'gate', 'heater', 'sensor', 'other'] as const;
export const AGENT_POLICIES = ['allow', 'confirm', 'deny'] as const;
export type AgentPolicy = (typeof AGENT_POLICIES)[number];

export const deviceEntrySchema = {
  type: 'object',
  required: ['id', 'driver', 'capabilities'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: DEVICE_ID_PATTERN, not: { enum: [...RESERVED_DEVICE_IDS] } },
    name: { type: 'string', minLength: 1, maxLength: 120 },
    aliases: {
      type: 'array',
      maxItems: 16,
      uniqueItems: true,
      items: { type: 'string', minLength: 1, maxLength: 60 },
      description: 'Other names the agent should understand for this device ("big light", "台灯").',
    },
    area: { type: 'string', minLength: 1, maxLength: 60, description: 'The room or area it is in ("kitchen"): "kitchen lights off" reaches it.' },
    driver: { enum: DRIVER_NAMES },
    capabilities: {
      type: 'array',
      minItems: 1,
      maxItems: 8,
      items: { anyOf: [capabilityName, capabilityObject] },
    },
    timeout_ms: ms(10, 60000, 2000),
    device_class: {
      enum: [...DEVICE_CLASSES],
      description: 'What the device is, beyond its capabilities. lock, garage, door, gate and heater are sensitive: the agent asks before moving them.',
    },
    sensitive: { type: 'boolean', description: 'The agent asks for confirmation before moving this device (agent: confirm).' },
    agent: {
      enum: [...AGENT_POLICIES],
      description:
        'What the agent may do with this device. allow: act; confirm: propose and wait for the caller to confirm within 60 s; ' +
        'deny: the device is hidden from the agent. Default: confirm for sensitive devices (see device_class, sensitive), else allow.',
    },
    demo: { type: 'boolean', description: 'Built-in demo device; used only in local mode.' },
    simulated: simulatedOptionsSchema,
    serial: serialLineOptionsSchema,
    modbus: modbusRtuOptionsSchema,
    remote: mqttRemoteOptionsSchema,
  },
  allOf: [driverNeeds('serial-line', 'serial'), driverNeeds('modbus-rtu', 'modbus'), driverNeeds('mqtt-remote', 'remote')],
} as const;

/** A device with this driver needs that settings section (if driver = X then required [section]). */
function driverNeeds(driver: (typeof DRIVER_NAMES)[number], section: string) {
  return {
    if: { type: 'object', properties: { driver: { const: driver } } },
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword
    then: { type: 'object', required: [section], properties: { [section]: true } },
  } as const;
}

export const devicesConfigSchema = {
  type: 'array',
  default: DEMO_DEVICES,
  maxItems: 512,
  description:
    'Devices to drive. Each needs an id, a driver and its capabilities; see README "Devices". ' +
    'Absent: the built-in demo devices in local mode, none in appliance mode.',
  items: deviceEntrySchema,
} as const;

export type CapabilityEntry =
  | 'switch'
  | 'dimmer'
  | 'thermostat'
  | 'cover'
  | {
      type: 'switch' | 'dimmer' | 'sensor' | 'thermostat' | 'cover';
      readings?: { property: string; unit?: string; device_class?: string }[];
      min?: number;
      max?: number;
      step?: number;
      modes?: string[];
    };

export interface DeviceConfigEntry {
  id: string;
  name?: string;
  aliases?: string[];
  area?: string;
  driver: (typeof DRIVER_NAMES)[number];
  capabilities: CapabilityEntry[];
  timeout_ms?: number;
  device_class?: (typeof DEVICE_CLASSES)[number];
  sensitive?: boolean;
  agent?: AgentPolicy;
  demo?: boolean;
  simulated?: Record<string, unknown>;
  serial?: Record<string, unknown>;
  modbus?: Record<string, unknown>;
  remote?: Record<string, unknown>;
}

/** Device ids are unique across the section (JSON Schema cannot say so for a key inside array items). */
export function devicesCrossCheck(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const ids = new Set<string>();
  for (const [i, device] of config.devices.entries()) {
    if (ids.has(device.id)) issues.push({ path: `devices[${i}].id`, message: `duplicate device id "${device.id}"` });
    ids.add(device.id);
  }
  return issues;
}

declare module '../runtime/config/schema.js' {
  interface ConfigSections {
    devices: DeviceConfigEntry[];
  }
}

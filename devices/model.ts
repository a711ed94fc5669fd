/**
 * The device model shared by the registry, the drivers, the topic API and the public DeviceService API.
 * A device is an id (also its MQTT topic segment), a display name, a driver and typed capabilities.
 */
import type { ErrorCode } from '../runtime/errors.js';

/** Topic-safe: no `/`, `+`, `#`, spaces or upper case; also a valid HA object id. */
export const DEVICE_ID_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}$';
export const DEVICE_ID_RE = new RegExp(DEVICE_ID_PATTERN);
/** Segments the topic API uses for itself under the base topic. */
export const RESERVED_DEVICE_IDS: ReadonlySet<string> = new Set(['bridge', 'agent']);

export type StateValue = string | number | boolean | null;
export type DeviceState = Record<string, StateValue>;
export type DeviceCommand = Record<string, StateValue>;
export type Availability = 'online' | 'offline';

export interface SensorReading {
  property: string;
  unit?: string;
  /** Home Assistant device class, e.g. temperature, humidity, power. */
  device_class?: string;
}

export type CapabilityConfig =
  | { type: 'switch' }
  | { type: 'dimmer' }
  | { type: 'sensor'; readings: SensorReading[] }
  | { type: 'thermostat'; min?: number; max?: number; step?: number; modes?: string[] }
  | { type: 'cover' };

export type CapabilityType = CapabilityConfig['type'];

/** A device as the registry holds it: config entry with capabilities normalised to objects. */
export interface DeviceDefinition {
  id: string;
  name: string;
  driver: string;
  capabilities: CapabilityConfig[];
  /** Where the device was declared: the config file, a bridge request, or the built-in demo set. */
  origin: 'config' | 'runtime' | 'demo';
  /** Driver-specific settings (serial port, templates, Modbus registers, remote topics ...). */
  options: Record<string, unknown>;
  /** Per-command deadline for the driver, ms. */
  timeout_ms: number;
  /** What the agent may do with it (config `agent`, else the default for its class; see safety-policy.ts). */
  agent_policy: 'allow' | 'confirm' | 'deny';
  /** Other names for the agent (config `aliases`). */
  aliases?: string[];
  /** The room or area it is in (config `area`). */
  area?: string;
}

export interface DeviceErrorInfo {
  code: ErrorCode;
  message: string;
  at: number;
}

export interface DeviceSnapshot {
  id: string;
  name: string;
  driver: string;
  origin: DeviceDefinition['origin'];
  capabilities: CapabilityConfig[];
  availability: Availability;
  state: DeviceState;
  /** When the state last changed or was confirmed by the device (epoch ms), null before any report. */
  updated_at: number | null;
  last_error: DeviceErrorInfo | null;
  /** What the agent may do with it: allow, confirm (propose, the caller confirms) or deny (hidden). */
  agent_policy: DeviceDefinition['agent_policy'];
  aliases?: string[];
  area?: string;
}

export type CommandSource = 'mqtt' | 'tasmota' | 'http' | 'agent' | 'plugin' | 'internal' | (string & {});

export interface ExecuteOptions {
  source: CommandSource;
  transaction?: string | number;
  /**
   * The caller's deadline/cancellation. Honoured up to the moment the command is handed to the driver
   * (waiting in the device's queue included); from then on the command runs and its result is reported,
   * because what was sent to a device cannot be unsent.
   */
  signal?: AbortSignal;
}

export interface DeviceCommandResult {
  device: string;
  /** The command as executed (TOGGLE resolved). */
  command: DeviceCommand;
  /** The full state after the command. */
  state: DeviceState;
  transaction?: string | number;
}

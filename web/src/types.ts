/** What the runtime's API answers, as far as the web app reads it. Every field a feature may lack is optional. */

export type Availability = 'online' | 'offline' | 'unknown' | (string & {});

export interface SensorReading {
  property: string;
  unit?: string;
  device_class?: string;
}

export interface CapabilityObject {
  type: 'switch' | 'dimmer' | 'sensor' | 'thermostat' | 'cover';
  readings?: SensorReading[];
  min?: number;
  max?: number;
  step?: number;
  modes?: string[];
}

export type Capability = CapabilityObject['type'] | CapabilityObject;

export interface DeviceErrorInfo {
  code: string;
  message: string;
  time?: number;
  at?: number | string;
}

export interface Device {
  id: string;
  name: string;
  driver: string;
  origin?: string;
  capabilities: Capability[];
  availability: Availability;
  state: Record<string, unknown>;
  updated_at: number | null;
  last_error: DeviceErrorInfo | null;
  agent_policy?: string;
  aliases?: string[];
  area?: string;
}

export interface Warning {
  time: number;
  level: string;
  component?: string;
  msg: string;
  code?: string;
}

export interface StatusDocument {
  version: string;
  mode: 'local' | 'appliance';
  state: string;
  started_at: string;
  uptime_s: number;
  sections: Record<string, unknown>;
  warnings: Warning[];
}

export interface Session {
  auth_required: boolean;
  authenticated: boolean;
  setup_required: boolean;
  name: string;
  tls: boolean;
}

export interface LogLine {
  seq: number;
  time: number;
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  component?: string;
  msg: string;
  code?: string;
}

export interface AuditRecord {
  seq?: number;
  time: string;
  op: string;
  principal: { kind: string; id: string };
  device?: string;
  outcome?: unknown;
  decision?: unknown;
  trace?: string;
}

/** A JSON Schema, as much of it as the form generator reads. */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  additionalProperties?: boolean | JsonSchema;
}

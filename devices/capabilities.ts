/**
 * Capability catalog: each capability declares the JSON Schema of the command properties it accepts and
 * the state properties it reports. A device's command and state schemas are the union of its
 * capabilities' (see command-schema.ts); two capabilities that claim the same property cannot be combined.
 */
import type { CapabilityConfig, CapabilityType } from './model.js';

export type JsonSchema = Record<string, unknown>;

export interface CapabilitySpec {
  /** Properties a command may set, each with its schema (ranges and enums included). */
  command(cap: CapabilityConfig): Record<string, JsonSchema>;
  /** Properties the device reports; a state property that is not a command property is read-only. */
  state(cap: CapabilityConfig): Record<string, JsonSchema>;
}

/** Home Assistant's climate modes; a thermostat's modes must be a subset so discovery stays valid. */
export const THERMOSTAT_MODES = ['off', 'heat', 'cool', 'auto', 'dry', 'fan_only'] as const;
export const THERMOSTAT_DEFAULTS = { min: 5, max: 30, step: 0.5, modes: ['off', 'heat'] } as const;

const percent = { type: 'integer', minimum: 0, maximum: 100 } as const;
const nullable = (schema: JsonSchema): JsonSchema => ({ anyOf: [schema, { type: 'null' }] });

function thermostatRange(cap: CapabilityConfig): { min: number; max: number; step: number; modes: string[] } {
  const t = cap.type === 'thermostat' ? cap : { min: undefined, max: undefined, step: undefined, modes: undefined };
  return {
    min: t.min ?? THERMOSTAT_DEFAULTS.min,
    max: t.max ?? THERMOSTAT_DEFAULTS.max,
    step: t.step ?? THERMOSTAT_DEFAULTS.step,
    modes: [...(t.modes ?? THERMOSTAT_DEFAULTS.modes)],
  };
}

export const CAPABILITIES: Record<CapabilityType, CapabilitySpec> = {
  switch: {
    command: () => ({
      state: { enum: ['ON', 'OFF', 'TOGGLE'], description: 'Power: ON, OFF or TOGGLE.' },
    }),
    state: () => ({ state: { enum: ['ON', 'OFF'] } }),
  },
  dimmer: {
    command: () => ({ brightness: { ...percent, description: 'Brightness in percent, 0-100.' } }),
    state: () => ({ brightness: percent }),
  },
  sensor: {
    command: () => ({}),
    state: (cap) => {
      const readings = cap.type === 'sensor' ? cap.readings : [];
      return Object.fromEntries(readings.map((r) => [r.property, nullable({ type: 'number' })]));
    },
  },
  thermostat: {
    command: (cap) => {
      const { min, max, step, modes } = thermostatRange(cap);
      return {
        target_temperature: {
          type: 'number',
          minimum: min,
          maximum: max,
          multipleOf: step,
          description: `Target temperature, ${min}-${max} in steps of ${step}.`,
        },
        mode: { enum: modes, description: `Mode: ${modes.join(', ')}.` },
      };
    },
    state: (cap) => {
      const { min, max, modes } = thermostatRange(cap);
      return {
        target_temperature: { type: 'number', minimum: min, maximum: max },
        mode: { enum: modes },
        current_temperature: nullable({ type: 'number' }),
      };
    },
  },
  cover: {
    command: () => ({
      state: { enum: ['OPEN', 'CLOSE', 'STOP'], description: 'Move: OPEN, CLOSE or STOP.' },
      position: { ...percent, description: 'Position in percent, 0 closed - 100 open.' },
    }),
    state: () => ({
      state: { enum: ['OPEN', 'CLOSED', 'OPENING', 'CLOSING', 'STOPPED'] },
      position: percent,
    }),
  },
};

export { thermostatRange };

const COVER_STATE: Record<string, string> = { OPEN: 'OPEN', CLOSE: 'CLOSED', STOP: 'STOPPED' };

/**
 * The state a command implies when the device confirms without reporting values (a bare "OK"):
 * the same values, except that a cover's CLOSE/STOP command becomes the CLOSED/STOPPED state.
 */
export function impliedState(capabilities: readonly CapabilityConfig[], command: Record<string, unknown>) {
  const out: Record<string, unknown> = { ...command };
  if (capabilities.some((c) => c.type === 'cover') && typeof command.state === 'string') {
    out.state = COVER_STATE[command.state] ?? command.state;
  }
  return out as Record<string, string | number | boolean | null>;
}

/**
 * Derives a device's command and state JSON Schemas from its capabilities and validates commands with ajv
 * before any driver sees them. Failures map to specific codes: PROPERTY_UNKNOWN, PROPERTY_READ_ONLY,
 * VALUE_WRONG_TYPE, VALUE_OUT_OF_RANGE, COMMAND_INVALID (not an object, empty).
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import { ClawboxError } from '../runtime/errors.js';
import { CAPABILITIES, type JsonSchema, THERMOSTAT_DEFAULTS } from './capabilities.js';
import type { CapabilityEntry } from './config-schema.js';
import type { CapabilityConfig, DeviceCommand, DeviceDefinition, DeviceState, StateValue } from './model.js';
import { validatorFor } from '../runtime/operations/validator.js';

export interface DeviceSchemas {
  /** The JSON Schema a command must match (what the agent builds its grammar from). */
  command: JsonSchema;
  /** The JSON Schema of the published state. */
  state: JsonSchema;
  commandProperties: ReadonlySet<string>;
  stateProperties: ReadonlySet<string>;
}

/** Turns config capability entries into full objects and checks what the config schema cannot. */
export function normalizeCapabilities(entries: readonly CapabilityEntry[]): CapabilityConfig[] {
  const out: CapabilityConfig[] = [];
  const seenTypes = new Set<string>();
  for (const entry of entries) {
    const cap = (typeof entry === 'string' ? { type: entry } : structuredClone(entry)) as CapabilityConfig;
    if (seenTypes.has(cap.type)) throw invalid(`capability "${cap.type}" is listed twice`);
    seenTypes.add(cap.type);
    if (cap.type === 'thermostat') {
      cap.min ??= THERMOSTAT_DEFAULTS.min;
      cap.max ??= THERMOSTAT_DEFAULTS.max;
      cap.step ??= THERMOSTAT_DEFAULTS.step;
      cap.modes ??= [...THERMOSTAT_DEFAULTS.modes];
      if (!(cap.min < cap.max)) throw invalid(`thermostat min (${cap.min}) must be below max (${cap.max})`);
    }
    if (cap.type === 'sensor' && (!Array.isArray(cap.readings) || cap.readings.length === 0)) {
      throw invalid('a sensor needs at least one reading');
    }
    out.push(cap);
  }
  // Two capabilities that claim one property would make a command ambiguous (e.g. switch + cover: state).
  const owner = new Map<string, string>();
  for (const cap of out) {
    const spec = CAPABILITIES[cap.type];
    for (const property of new Set([...Object.keys(spec.command(cap)), ...Object.keys(spec.state(cap))])) {
      const other = owner.get(property);
      if (other) throw invalid(`capabilities "${other}" and "${cap.type}" both use property "${property}"`);
      owner.set(property, cap.type);
    }
  }
  return out;
}

function invalid(message: string): ClawboxError {
  return new ClawboxError('CONFIG_INVALID', message);
}

export function deriveSchemas(capabilities: readonly CapabilityConfig[]): DeviceSchemas {
  const command: Record<string, JsonSchema> = {};
  const state: Record<string, JsonSchema> = {};
  for (const cap of capabilities) {
    Object.assign(command, CAPABILITIES[cap.type].command(cap));
    Object.assign(state, CAPABILITIES[cap.type].state(cap));
  }
  return {
    command: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: command,
    },
    state: { type: 'object', additionalProperties: false, properties: state },
    commandProperties: new Set(Object.keys(command)),
    stateProperties: new Set(Object.keys(state)),
  };
}


interface Compiled {
  /** The capabilities it was compiled for: the same array needs no comparison by content. */
  capabilities: DeviceDefinition['capabilities'];
  key: string;
  schemas: DeviceSchemas;
  validate: ValidateFunction;
  validateState: ValidateFunction;
}

/** Compiles each device's command schema once (recompiled when its capabilities change). */
export class CommandValidator {
  readonly #cache = new Map<string, Compiled>();

  schemas(device: DeviceDefinition): DeviceSchemas {
    return this.#compiled(device).schemas;
  }

  forget(id: string): void {
    this.#cache.delete(id);
  }

  /** Returns the command (without `transaction`) or throws a typed error naming the property. */
  validate(device: DeviceDefinition, payload: unknown): DeviceCommand {
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw new ClawboxError('COMMAND_INVALID', `a command for ${device.id} must be a JSON object`);
    }
    const { schemas, validate } = this.#compiled(device);
    const command: Record<string, unknown> = { ...(payload as Record<string, unknown>) };
    delete command.transaction;
    for (const property of Object.keys(command)) {
      if (schemas.commandProperties.has(property)) continue;
      if (schemas.stateProperties.has(property)) {
        throw new ClawboxError('PROPERTY_READ_ONLY', `${device.id}.${property} is read-only`, { property });
      }
      throw new ClawboxError(
        'PROPERTY_UNKNOWN',
        `${device.id} has no property "${truncate(property)}"; it accepts ${[...schemas.commandProperties].join(', ') || 'no commands'}`,
        { property: truncate(property) },
      );
    }
    if (Object.keys(command).length === 0) {
      throw new ClawboxError(
        'COMMAND_INVALID',
        `the command for ${device.id} is empty; it accepts ${[...schemas.commandProperties].join(', ') || 'no commands'}`,
      );
    }
    if (!validate(command)) throw describe(device.id, validate.errors?.[0], command);
    return command as DeviceCommand;
  }

  /**
   * Keeps only the device's state properties whose values match the state schema: drivers relay what
   * devices and remote clients say, and nothing malformed may reach the retained state topic.
   */
  sanitizeState(device: DeviceDefinition, patch: Record<string, unknown>): DeviceState {
    const { validateState } = this.#compiled(device);
    const out: DeviceState = {};
    for (const [key, value] of Object.entries(patch ?? {})) {
      if (validateState({ [key]: value })) out[key] = value as StateValue;
    }
    return out;
  }

  #compiled(device: DeviceDefinition): Compiled {
    // Every command and every state report asks: the usual answer is the same capabilities array as last time.
    const hit = this.#cache.get(device.id);
    if (hit?.capabilities === device.capabilities) return hit;
    const key = JSON.stringify(device.capabilities);
    if (hit && hit.key === key) {
      hit.capabilities = device.capabilities;
      return hit;
    }
    const schemas = deriveSchemas(device.capabilities);
    const compiled = {
      capabilities: device.capabilities,
      key,
      schemas,
      validate: validatorFor(schemas.command, 'command'),
      validateState: validatorFor(schemas.state, 'command'),
    };
    this.#cache.set(device.id, compiled);
    return compiled;
  }
}

function truncate(text: string, max = 64): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function describe(id: string, error: ErrorObject | undefined, command: Record<string, unknown>): ClawboxError {
  if (!error) return new ClawboxError('COMMAND_INVALID', `the command for ${id} is invalid`);
  const property = error.instancePath.split('/')[1] ?? '';
  const value = command[property];
  const shown = truncate(JSON.stringify(value) ?? String(value));
  const where = `${id}.${property}`;
  const details = { property };
  switch (error.keyword) {
    case 'type':
      return new ClawboxError('VALUE_WRONG_TYPE', `${where} must be ${error.params.type} (got ${shown})`, details);
    case 'enum': {
      const allowed = (error.params as { allowedValues: unknown[] }).allowedValues;
      const sameType = allowed.some((a) => typeof a === typeof value);
      return new ClawboxError(
        sameType ? 'VALUE_OUT_OF_RANGE' : 'VALUE_WRONG_TYPE',
        `${where} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')} (got ${shown})`,
        { ...details, allowed },
      );
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'multipleOf':
      return new ClawboxError('VALUE_OUT_OF_RANGE', `${where} ${error.message} (got ${shown})`, {
        ...details,
        limit: (error.params as { limit?: number; multipleOf?: number }).limit ?? error.params.multipleOf,
      });
    default:
      return new ClawboxError('COMMAND_INVALID', `${where} ${error.message ?? 'is invalid'}`, details);
  }
}

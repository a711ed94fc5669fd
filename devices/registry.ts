/**
 * The device registry: the devices declared in the config, plus those added at run time through
 * `bridge/request/device/add`, minus those removed, with display-name overrides from renames — all
 * persisted in the state store (namespace `devices`) together with each device's last known state.
 * Ids are stable: a rename changes the display name only, so topics and Home Assistant unique ids stay.
 */
import type { ValidateFunction } from 'ajv';
import { ClawboxError } from '../runtime/errors.js';
import { expectSchema, validatorForOneUse } from '../runtime/operations/validator.js';
import type { StoreDocument } from '../runtime/store/state-store.js';
import { normalizeCapabilities } from './command-schema.js';
import { type DeviceConfigEntry, deviceEntrySchema } from './config-schema.js';
import type { DeviceDefinition, DeviceState } from './model.js';
import { RESERVED_DEVICE_IDS } from './model.js';
import { agentPolicyOf } from './safety-policy.js';

export interface StoredState {
  state: DeviceState;
  updated_at: number | null;
}

export interface DevicesDocument {
  version: 1;
  /** Devices added through the bridge, as validated entries. */
  added: DeviceConfigEntry[];
  /** Config-declared ids removed through the bridge (they stay removed until added again). */
  removed: string[];
  /** Display names set through `device/rename`, by id. */
  names: Record<string, string>;
  /** Last known state, by id. */
  states: Record<string, StoredState>;
}

export const emptyDevicesDocument = (): DevicesDocument => ({ version: 1, added: [], removed: [], names: {}, states: {} });

/**
 * The entry validator: entries are checked at start and when a device is added, so it is compiled for that
 * use and only weakly held after it; an idle box does not keep its generated code (one of the larger
 * validators) once a garbage collection ran.
 */
let entryValidator: WeakRef<ValidateFunction> | undefined;
// A start without devices checks no entry: the build's recording start still precompiles the validator.
expectSchema(deviceEntrySchema, 'config');
function entryValidatorNow(): ValidateFunction {
  let validate = entryValidator?.deref();
  if (!validate) {
    validate = validatorForOneUse(deviceEntrySchema, 'config');
    entryValidator = new WeakRef(validate);
  }
  return validate;
}

/** Validates one entry (a bridge request body or a stored one), applying defaults to a copy. */
export function parseDeviceEntry(input: unknown): DeviceConfigEntry {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ClawboxError('PAYLOAD_INVALID', 'a device must be a JSON object');
  }
  const copy = structuredClone(input) as Record<string, unknown>;
  delete copy.transaction;
  const validateEntry = entryValidatorNow();
  if (!validateEntry(copy)) {
    const error = validateEntry.errors?.[0];
    const where = error?.instancePath ? error.instancePath.slice(1).replaceAll('/', '.') : 'device';
    const extra =
      error?.keyword === 'additionalProperties'
        ? ` ("${String((error.params as { additionalProperty: string }).additionalProperty).slice(0, 64)}")`
        : error?.keyword === 'enum'
          ? ` (${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')})`
          : '';
    throw new ClawboxError('PAYLOAD_INVALID', `${where} ${error?.message ?? 'is invalid'}${extra}`, { path: where });
  }
  return copy as unknown as DeviceConfigEntry;
}

export function toDefinition(entry: DeviceConfigEntry, origin: DeviceDefinition['origin'], name?: string): DeviceDefinition {
  if (RESERVED_DEVICE_IDS.has(entry.id)) {
    throw new ClawboxError('CONFIG_INVALID', `device id "${entry.id}" is reserved for the topic API`);
  }
  const options: Record<string, unknown> = {};
  for (const key of ['simulated', 'serial', 'modbus', 'remote'] as const) {
    if (entry[key] !== undefined) options[key] = structuredClone(entry[key]);
  }
  return {
    id: entry.id,
    name: name ?? entry.name ?? entry.id,
    driver: entry.driver,
    capabilities: normalizeCapabilities(entry.capabilities),
    origin,
    options,
    timeout_ms: entry.timeout_ms ?? 2000,
    agent_policy: agentPolicyOf(entry),
    ...(entry.aliases && entry.aliases.length > 0 ? { aliases: [...entry.aliases] } : {}),
    ...(entry.area ? { area: entry.area } : {}),
  };
}

export interface RegistryProblem {
  id: string;
  message: string;
}

/**
 * The definitions to drive: config entries (not removed) then runtime-added ones. An entry that fails
 * normalisation is skipped and reported rather than stopping the other devices.
 */
export function resolveDefinitions(
  configEntries: readonly DeviceConfigEntry[],
  doc: DevicesDocument,
): { definitions: DeviceDefinition[]; problems: RegistryProblem[] } {
  const definitions: DeviceDefinition[] = [];
  const problems: RegistryProblem[] = [];
  const seen = new Set<string>();
  const removed = new Set(doc.removed);
  const consider = (entry: DeviceConfigEntry, origin: DeviceDefinition['origin']) => {
    if (seen.has(entry.id)) {
      problems.push({ id: entry.id, message: `duplicate device id "${entry.id}" ignored` });
      return;
    }
    try {
      definitions.push(toDefinition(entry, origin, doc.names[entry.id]));
      seen.add(entry.id);
    } catch (error) {
      problems.push({ id: entry.id, message: (error as Error).message });
    }
  };
  for (const entry of configEntries) {
    if (!removed.has(entry.id)) consider(entry, entry.demo ? 'demo' : 'config');
  }
  for (const stored of doc.added) {
    try {
      consider(parseDeviceEntry(stored), 'runtime');
    } catch (error) {
      problems.push({ id: String(stored?.id), message: `stored device is invalid: ${(error as Error).message}` });
    }
  }
  return { definitions, problems };
}

/** Registry mutations, each persisted before it resolves. */
export class RegistryStore {
  constructor(readonly doc: StoreDocument<DevicesDocument>) {}

  async add(entry: DeviceConfigEntry): Promise<void> {
    await this.doc.update((d) => {
      d.added = d.added.filter((e) => e.id !== entry.id);
      d.added.push(entry);
      d.removed = d.removed.filter((id) => id !== entry.id);
      delete d.names[entry.id];
    });
  }

  async remove(id: string, origin: DeviceDefinition['origin']): Promise<void> {
    await this.doc.update((d) => {
      d.added = d.added.filter((e) => e.id !== id);
      if (origin !== 'runtime' && !d.removed.includes(id)) d.removed.push(id);
      delete d.names[id];
      delete d.states[id];
    });
  }

  async rename(id: string, name: string): Promise<void> {
    await this.doc.update((d) => {
      d.names[id] = name;
    });
  }
}

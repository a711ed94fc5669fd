/**
 * Tasmota-compatible commands on `cmnd/<device>/<Command>`: the payload grammar of the Tasmota console
 * (`POWER ON|OFF|TOGGLE|1|0|2`, `Dimmer 40`, empty = query) translated to a device command, and the
 * device state translated back to Tasmota's `stat/<device>/RESULT` keys.
 */
import { ClawboxError } from '../runtime/errors.js';
import type { DeviceCommand, DeviceState } from './model.js';

export type TasmotaRequest = { kind: 'query'; properties: string[] | null } | { kind: 'command'; command: DeviceCommand };

const POWER_WORDS: Record<string, string> = {
  ON: 'ON',
  '1': 'ON',
  TRUE: 'ON',
  OFF: 'OFF',
  '0': 'OFF',
  FALSE: 'OFF',
  TOGGLE: 'TOGGLE',
  '2': 'TOGGLE',
};

/** Tasmota's own key for a property in RESULT; other properties keep their names. */
const TASMOTA_KEYS: Record<string, string> = { state: 'POWER', brightness: 'Dimmer' };

/**
 * Parses one Tasmota command. `commandProperties` are the device's settable properties (so that
 * `cmnd/thermostat/target_temperature 21` also works); unknown commands throw PROPERTY_UNKNOWN.
 */
export function parseTasmota(
  name: string,
  payload: string,
  commandProperties: ReadonlySet<string>,
  current: DeviceState,
): TasmotaRequest {
  const upper = name.toUpperCase();
  const text = payload.trim();
  if (upper === 'STATE' || upper === 'STATUS') return { kind: 'query', properties: null };
  if ((upper === 'POWER' || upper === 'POWER1') && commandProperties.has('state') && !isCoverLike(commandProperties)) {
    if (text === '') return { kind: 'query', properties: ['state'] };
    const word = POWER_WORDS[text.toUpperCase()];
    if (!word) throw new ClawboxError('VALUE_OUT_OF_RANGE', `POWER must be ON, OFF or TOGGLE (got "${short(text)}")`);
    return { kind: 'command', command: { state: word } };
  }
  if (upper === 'DIMMER' && commandProperties.has('brightness')) {
    if (text === '') return { kind: 'query', properties: ['brightness'] };
    const now = typeof current.brightness === 'number' ? current.brightness : 0;
    if (text === '+' || text === '-') {
      const next = Math.max(0, Math.min(100, now + (text === '+' ? 10 : -10)));
      return { kind: 'command', command: { brightness: next } };
    }
    if (!/^-?\d+(\.\d+)?$/.test(text)) {
      throw new ClawboxError('VALUE_WRONG_TYPE', `Dimmer must be a number 0-100 (got "${short(text)}")`);
    }
    return { kind: 'command', command: { brightness: Number(text) } };
  }
  const property = name.toLowerCase();
  if (commandProperties.has(property)) {
    if (text === '') return { kind: 'query', properties: [property] };
    return { kind: 'command', command: { [property]: parseScalar(text) } };
  }
  throw new ClawboxError('PROPERTY_UNKNOWN', `unknown command "${short(name)}"`, { property: short(name) });
}

function isCoverLike(commandProperties: ReadonlySet<string>): boolean {
  return commandProperties.has('position');
}

/** A console value: a number, true/false, a JSON string, or else the text itself. */
function parseScalar(text: string): string | number | boolean | null {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text.startsWith('"')) {
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'string') return value;
    } catch {
      // falls through to the raw text
    }
  }
  return text;
}

function short(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** The RESULT body: Tasmota keys for POWER and Dimmer, property names otherwise. */
export function tasmotaResult(state: DeviceState, properties: readonly string[] | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(state)) {
    if (properties && !properties.includes(key)) continue;
    out[TASMOTA_KEYS[key] ?? key] = value;
  }
  return out;
}

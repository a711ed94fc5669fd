import t from 'tap';
import { isClawboxError } from '../runtime/errors.js';
import { CommandValidator, deriveSchemas, normalizeCapabilities } from './command-schema.js';
import type { DeviceDefinition } from './model.js';
import { parseDeviceEntry, toDefinition } from './registry.js';

const device = (capabilities: Parameters<typeof normalizeCapabilities>[0]): DeviceDefinition => ({
  id: 'dev',
  name: 'dev',
  driver: 'simulated',
  origin: 'config',
  options: {},
  timeout_ms: 1000,
  agent_policy: 'allow',
  capabilities: normalizeCapabilities(capabilities),
});

const light = device(['switch', 'dimmer', { type: 'sensor', readings: [{ property: 'power', unit: 'W' }] }]);
const thermostat = device([{ type: 'thermostat', min: 10, max: 25, step: 0.5, modes: ['off', 'heat'] }]);
const cover = device(['cover']);
const validator = new CommandValidator();

function code(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (error) {
    return isClawboxError(error) ? error.code : `untyped: ${String(error)}`;
  }
}

t.test('the command schema is derived from the capabilities, with ranges and enums', async (t) => {
  const schema = deriveSchemas(light.capabilities).command as { properties: Record<string, Record<string, unknown>> };
  t.same(Object.keys(schema.properties).sort(), ['brightness', 'state']);
  t.same(schema.properties.state?.enum, ['ON', 'OFF', 'TOGGLE']);
  t.equal(schema.properties.brightness?.maximum, 100);
  const thermo = deriveSchemas(thermostat.capabilities).command as { properties: Record<string, Record<string, unknown>> };
  t.match(thermo.properties.target_temperature, { minimum: 10, maximum: 25, multipleOf: 0.5 });
  t.same(thermo.properties.mode?.enum, ['off', 'heat']);
});

t.test('valid commands pass and lose their transaction', async (t) => {
  t.same(validator.validate(light, { state: 'ON', brightness: 40, transaction: 'x' }), { state: 'ON', brightness: 40 });
  t.same(validator.validate(thermostat, { target_temperature: 21.5 }), { target_temperature: 21.5 });
  t.same(validator.validate(cover, { state: 'STOP' }), { state: 'STOP' });
});

t.test('each kind of bad command gets its own code', async (t) => {
  t.equal(code(() => validator.validate(light, 'ON')), 'COMMAND_INVALID');
  t.equal(code(() => validator.validate(light, [1])), 'COMMAND_INVALID');
  t.equal(code(() => validator.validate(light, {})), 'COMMAND_INVALID');
  t.equal(code(() => validator.validate(light, { transaction: 1 })), 'COMMAND_INVALID');
  t.equal(code(() => validator.validate(light, { colour: 'red' })), 'PROPERTY_UNKNOWN');
  t.equal(code(() => validator.validate(light, { power: 3 })), 'PROPERTY_READ_ONLY');
  t.equal(code(() => validator.validate(light, { brightness: 101 })), 'VALUE_OUT_OF_RANGE');
  t.equal(code(() => validator.validate(light, { brightness: -1 })), 'VALUE_OUT_OF_RANGE');
  t.equal(code(() => validator.validate(light, { brightness: 40.5 })), 'VALUE_WRONG_TYPE');
  t.equal(code(() => validator.validate(light, { brightness: '40' })), 'VALUE_WRONG_TYPE');
  t.equal(code(() => validator.validate(light, { state: 'on' })), 'VALUE_OUT_OF_RANGE');
  t.equal(code(() => validator.validate(light, { state: true })), 'VALUE_WRONG_TYPE');
  t.equal(code(() => validator.validate(thermostat, { target_temperature: 21.3 })), 'VALUE_OUT_OF_RANGE');
  t.equal(code(() => validator.validate(thermostat, { target_temperature: 30 })), 'VALUE_OUT_OF_RANGE');
  t.equal(code(() => validator.validate(thermostat, { mode: 'cool' })), 'VALUE_OUT_OF_RANGE');
  t.equal(code(() => validator.validate(thermostat, { current_temperature: 20 })), 'PROPERTY_READ_ONLY');
  t.equal(code(() => validator.validate(cover, { position: 100, state: 'OPENED' })), 'VALUE_OUT_OF_RANGE');
});

t.test('error messages name the property and the limit', async (t) => {
  try {
    validator.validate(light, { brightness: 150 });
    t.fail('should throw');
  } catch (error) {
    t.match(String((error as Error).message), /brightness.*100.*150/);
  }
});

t.test('state from devices is filtered against the state schema', async (t) => {
  t.same(validator.sanitizeState(cover, { state: 'CLOSE', position: 50, extra: 1 }), { position: 50 });
  t.same(validator.sanitizeState(light, { state: 'ON', power: null, brightness: 200 }), { state: 'ON', power: null });
});

t.test('capability combinations and config entries are checked', async (t) => {
  t.equal(code(() => normalizeCapabilities(['switch', 'cover'])), 'CONFIG_INVALID');
  t.equal(code(() => normalizeCapabilities(['switch', 'switch'])), 'CONFIG_INVALID');
  t.equal(code(() => normalizeCapabilities([{ type: 'thermostat', min: 30, max: 10 }])), 'CONFIG_INVALID');
  t.equal(code(() => parseDeviceEntry({ id: 'Bad/Id', driver: 'simulated', capabilities: ['switch'] })), 'PAYLOAD_INVALID');
  t.equal(code(() => parseDeviceEntry({ id: 'bridge', driver: 'simulated', capabilities: ['switch'] })), 'PAYLOAD_INVALID');
  t.equal(code(() => parseDeviceEntry({ id: 'x', driver: 'serial-line', capabilities: ['switch'] })), 'PAYLOAD_INVALID');
  t.equal(code(() => parseDeviceEntry({ id: 'x', driver: 'simulated', capabilities: [{ type: 'sensor' }] })), 'PAYLOAD_INVALID');
  const entry = parseDeviceEntry({ id: 'x', driver: 'simulated', capabilities: ['switch'], transaction: 4 });
  t.equal(entry.timeout_ms, 2000, 'defaults applied');
  t.equal(toDefinition(entry, 'runtime').name, 'x');
});

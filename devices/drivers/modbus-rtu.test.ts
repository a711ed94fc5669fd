/**
 * modbus-rtu over real pseudo-terminals: a Modbus RTU slave simulator process (modbus-serial's
 * ServerSerial) on the far end of a socat pair. Conformance suite, then scaling, read-only registers and
 * Modbus exceptions through the service.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { parseDeviceEntry, toDefinition } from '../registry.js';
import { MODBUS_SIM, SerialRig } from '../fixtures/socat.js';
import { startStack } from '../fixtures/stack.js';
import { eventually, runDriverConformance, serialConformanceRig, simulatorState } from './testing/conformance.js';
import { createModbusRtuDriver } from './modbus-rtu.js';

const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-modbus-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/**
 * How long a test waits for something whose timing it does not check (a device coming online, a slave's
 * answer): it only ends a test that would hang, so it is generous for a loaded machine.
 */
const UNHURRIED_MS = 30_000;

function modbusEntry(id: string, devicePath: string) {
  return {
    id,
    driver: 'modbus-rtu',
    timeout_ms: UNHURRIED_MS,
    capabilities: [
      'switch',
      'dimmer',
      { type: 'thermostat', min: 5, max: 30, step: 0.5, modes: ['heat'] },
    ],
    modbus: {
      path: devicePath,
      baud_rate: 115200,
      unit_id: 1,
      registers: {
        state: { type: 'coil', address: 0 },
        brightness: { type: 'holding', address: 1 },
        target_temperature: { type: 'holding', address: 2, scale: 0.1 },
        current_temperature: { type: 'input', address: 0, scale: 0.1, signed: true },
      },
      reconnect: { initial_ms: 100, max_ms: 400 },
    },
  };
}

runDriverConformance(t, 'modbus-rtu', createModbusRtuDriver, async (t) => {
  const rig = new SerialRig(dir, 'conf', MODBUS_SIM);
  await rig.plug();
  t.teardown(() => rig.unplug());
  // The conformance device: switch + dimmer only, polled so that a change at the slave is reported.
  const entry = modbusEntry('conf', rig.devicePath);
  entry.capabilities = ['switch', 'dimmer'];
  // The suite checks the driver's own timing (a silent device, offline within 2 s) against this timeout.
  entry.timeout_ms = 1000;
  const registers = entry.modbus.registers as Record<string, unknown>;
  delete registers.target_temperature;
  delete registers.current_temperature;
  Object.assign(entry.modbus, { poll_interval_ms: 100 });
  return serialConformanceRig(rig, toDefinition(parseDeviceEntry(entry), 'config'));
});

t.test('through the service: scaled registers, read-only input register, Modbus exception', async (t) => {
  const rig = new SerialRig(dir, 'svc', MODBUS_SIM);
  await rig.plug();
  t.teardown(() => rig.unplug());
  const stack = await startStack(t, { config: { devices: [modbusEntry('boiler', rig.devicePath)] } });
  t.ok(await eventually(() => stack.service.get('boiler')?.availability === 'online', UNHURRIED_MS), 'online');
  t.match(stack.service.get('boiler')?.state, { state: 'OFF', brightness: 100, target_temperature: 20.5, current_temperature: 21.5 });
  const result = await stack.service.execute('boiler', { target_temperature: 22.5, state: 'ON' }, { source: 'test' });
  t.match(result.state, { target_temperature: 22.5, state: 'ON' });
  t.match(await simulatorState(rig), { target: 22.5, state: 'ON' }, 'raw 225 in holding register 2');
  rig.sim!.control('temp -3.5');
  // The simulator reads stdin and the serial port separately: its answer to `dump` (stdin, in order) is the
  // marker that the new temperature is in place before the driver asks over the wire.
  t.match(await simulatorState(rig), { temperature: -3.5 }, 'the slave measures -3.5 now');
  const read = await stack.service.read('boiler', ['current_temperature'], { source: 'test' });
  t.equal(read.state.current_temperature, -3.5, 'signed, scaled input register');
  await t.rejects(stack.service.execute('boiler', { current_temperature: 3 }, { source: 'test' }), { code: 'PROPERTY_READ_ONLY' });
  await t.rejects(stack.service.execute('boiler', { brightness: 101 }, { source: 'test' }), { code: 'VALUE_OUT_OF_RANGE' });
  t.equal(stack.service.get('boiler')?.state.brightness, 100, 'unchanged');
});

t.test('a Modbus exception from the slave is DEVICE_ERROR and changes nothing', async (t) => {
  const rig = new SerialRig(dir, 'exc', MODBUS_SIM);
  await rig.plug();
  t.teardown(() => rig.unplug());
  // Brightness at half scale: 60 % is raw 120, which this slave refuses (illegal data value).
  const entry = modbusEntry('bad', rig.devicePath);
  entry.modbus.registers.brightness = { type: 'holding', address: 1, scale: 0.5 } as never;
  const stack = await startStack(t, { config: { devices: [entry] } });
  t.ok(await eventually(() => stack.service.get('bad')?.availability === 'online', UNHURRIED_MS), 'online');
  t.equal(stack.service.get('bad')?.state.brightness, 50);
  await stack.service.execute('bad', { brightness: 40 }, { source: 'test' });
  await t.rejects(stack.service.execute('bad', { brightness: 60 }, { source: 'test' }), { code: 'DEVICE_ERROR', message: /exception 3/ });
  t.equal(stack.service.get('bad')?.state.brightness, 40, 'unchanged');
  t.match(await simulatorState(rig), { brightness: 80 });
});

/**
 * mqtt-remote against a fake Tasmota and a fake zigbee2mqtt device (real mqtt.js clients on the real
 * broker): the driver conformance suite for each, then the whole path from clawbox/<id>/set.
 */
import t from 'tap';
import { Broker } from '../../runtime/broker/broker.js';
import { makeTestContext } from '../../app/testing/test-context.js';
import { parseDeviceEntry, toDefinition } from '../registry.js';
import { type FakeDevice, fakeTasmota, fakeZigbee2mqtt } from '../fixtures/fake-mqtt-devices.js';
import { connectClient, json, startStack } from '../fixtures/stack.js';
import { eventually, runDriverConformance } from './testing/conformance.js';
import { createMqttRemoteDriver } from './mqtt-remote.js';

async function brokerFor(t: { teardown(fn: () => unknown): void }): Promise<Broker> {
  const tc = makeTestContext({ config: { devices: [] } });
  const broker = new Broker();
  await broker.start(tc.ctx);
  t.teardown(async () => {
    await broker.stop();
    tc.cleanup();
  });
  return broker;
}

for (const protocol of ['tasmota', 'zigbee2mqtt'] as const) {
  runDriverConformance(t, `mqtt-remote (${protocol})`, createMqttRemoteDriver, async (t) => {
    const broker = await brokerFor(t);
    const url = `mqtt://127.0.0.1:${broker.port}`;
    const fake: FakeDevice = protocol === 'tasmota' ? fakeTasmota(url, 'plug_1') : fakeZigbee2mqtt(url, 'desk light');
    await fake.plug();
    t.teardown(() => fake.close());
    const entry = { id: 'remote', driver: 'mqtt-remote', capabilities: ['switch', 'dimmer'], remote: { protocol, topic: protocol === 'tasmota' ? 'plug_1' : 'desk light' } };
    return {
      definition: toDefinition(parseDeviceEntry(entry), 'config'),
      messaging: broker,
      async physicalChange() {
        fake.press();
        return { state: fake.state.state };
      },
      unresponsive: async () => {
        fake.responsive = false;
      },
      responsive: async () => {
        fake.responsive = true;
      },
      unplug: () => fake.unplug(),
      replug: () => fake.plug(),
      deviceState: async () => ({ ...fake.state }),
    };
  });
}

t.test('clawbox/<id>/set drives a Tasmota plug; its LWT is the availability', async (t) => {
  const entry = { id: 'plug', driver: 'mqtt-remote', capabilities: ['switch'], remote: { protocol: 'tasmota', topic: 'tasmota_A1B2C3' } };
  const stack = await startStack(t, { config: { devices: [entry] } });
  const fake = fakeTasmota(stack.url, 'tasmota_A1B2C3');
  t.teardown(() => fake.close());
  t.equal(stack.service.get('plug')?.availability, 'offline', 'offline until the device says Online');
  await fake.plug();
  t.ok(await eventually(() => stack.service.get('plug')?.availability === 'online', 2000));
  const c = await connectClient(t, stack.url);
  await c.subscribe('clawbox/plug', 'clawbox/plug/error');
  const state = await c.request('clawbox/plug/set', '{"state":"ON"}', 'clawbox/plug');
  t.same(json(state.payload), { state: 'ON' });
  t.equal(fake.state.state, 'ON', 'the Tasmota device switched');
  fake.press();
  await c.waitFor('clawbox/plug', (p) => json(p).state === 'OFF');
  await fake.unplug();
  t.ok(await eventually(() => stack.service.get('plug')?.availability === 'offline', 2000), 'LWT Offline -> offline');
  const error = await c.request('clawbox/plug/set', '{"state":"ON"}', 'clawbox/plug/error');
  t.equal(json(error.payload).code, 'DEVICE_UNAVAILABLE');
});

t.test('a remote Tasmota topic may not be a clawbox device id (cmnd/ loop)', async (t) => {
  const stack = await startStack(t, { config: { devices: [{ id: 'lamp', driver: 'simulated', capabilities: ['switch'] }] } });
  await t.rejects(
    stack.service.add({ id: 'loop', driver: 'mqtt-remote', capabilities: ['switch'], remote: { protocol: 'tasmota', topic: 'lamp' } }),
    { code: 'PAYLOAD_INVALID' },
  );
});

/**
 * The device topics (mqtt-routes.ts through the front door) end to end: real broker, real mqtt.js client, simulated devices.
 */
import t from 'tap';
import { simulatorControls } from './drivers/simulated.js';
import { SYSTEM_PRINCIPAL } from '../runtime/operations/principal.js';
import { connectClient, json, startStack } from './fixtures/stack.js';
import { devicesConfigSchema } from './config-schema.js';
import { DeviceService } from './device-service.js';

const devices = [
  { id: 'lamp', driver: 'simulated', capabilities: ['switch'] },
  { id: 'light', name: 'Light', driver: 'simulated', capabilities: ['switch', 'dimmer'] },
  { id: 'thermo', driver: 'simulated', capabilities: [{ type: 'thermostat', min: 10, max: 25, step: 0.5 }] },
  { id: 'blind', driver: 'simulated', capabilities: ['cover'] },
  {
    id: 'temp',
    driver: 'simulated',
    capabilities: [{ type: 'sensor', readings: [{ property: 'temperature', unit: '°C' }] }],
  },
];

t.test('set / get / state / availability / error', async (t) => {
  const stack = await startStack(t, { config: { devices }, deps: { maxPayloadBytes: 256 } });
  const c = await connectClient(t, stack.url);
  await c.subscribe('clawbox/#');
  const lampAvail = await c.waitFor('clawbox/lamp/availability', (p) => p === 'online', undefined, true);
  t.ok(lampAvail.retain, 'availability is retained');
  t.equal(stack.tc.ctx.config.broker.max_payload_bytes, 65536, 'the broker would pass 300 bytes');

  const state = await c.request('clawbox/lamp/set', '{"state":"ON"}', 'clawbox/lamp');
  t.same(json(state.payload), { state: 'ON' });
  t.same(stack.service.get('lamp')?.state, { state: 'ON' });

  const toggled = await c.request('clawbox/lamp/set', '{"state":"TOGGLE"}', 'clawbox/lamp');
  t.same(json(toggled.payload), { state: 'OFF' }, 'TOGGLE resolves against the last state');
  const bare = await c.request('clawbox/lamp/set', 'ON', 'clawbox/lamp');
  t.same(json(bare.payload), { state: 'ON' }, 'a bare ON works like z2m');

  const both = await c.request('clawbox/light/set', '{"state":"ON","brightness":40}', 'clawbox/light');
  t.same(json(both.payload), { state: 'ON', brightness: 40 });

  const cases: Array<[string, string, string]> = [
    ['clawbox/light/set', '{"state":', 'PAYLOAD_INVALID'],
    ['clawbox/light/set', '{"brightness":101,"transaction":"t1"}', 'VALUE_OUT_OF_RANGE'],
    ['clawbox/light/set', '{"brightness":"high"}', 'VALUE_WRONG_TYPE'],
    ['clawbox/light/set', '{"colour":"red"}', 'PROPERTY_UNKNOWN'],
    ['clawbox/light/set', '{}', 'COMMAND_INVALID'],
    ['clawbox/light/set', 'x'.repeat(300), 'PAYLOAD_TOO_LARGE'],
    ['clawbox/thermo/set', '{"current_temperature":3}', 'PROPERTY_READ_ONLY'],
    ['clawbox/nosuch/set', '{"state":"ON"}', 'DEVICE_NOT_FOUND'],
  ];
  for (const [topic, payload, code] of cases) {
    const errorTopic = topic.replace(/\/set$/, '/error');
    const answer = await c.request(topic, payload, errorTopic);
    const body = json(answer.payload);
    t.equal(body.code, code, `${payload.slice(0, 40)} -> ${code}`);
    t.type(body.message, 'string');
    if (payload.includes('"t1"')) t.equal(body.transaction, 't1', 'transaction echoed on the error topic');
  }
  t.same(stack.service.get('light')?.state, { state: 'ON', brightness: 40 }, 'bad input changed nothing');
  t.match(stack.service.get('light')?.last_error, { code: 'PAYLOAD_TOO_LARGE' });

  const got = await c.request('clawbox/thermo/get', '{"target_temperature":""}', 'clawbox/thermo');
  t.match(json(got.payload), { target_temperature: 20, mode: 'off' });
  const badGet = await c.request('clawbox/thermo/get', '{"nope":""}', 'clawbox/thermo/error');
  t.equal(json(badGet.payload).code, 'PROPERTY_UNKNOWN');

  const cover = await c.request('clawbox/blind/set', '{"state":"OPEN"}', 'clawbox/blind');
  t.same(json(cover.payload), { state: 'OPEN', position: 100 });
  const half = await c.request('clawbox/blind/set', '{"position":50}', 'clawbox/blind');
  t.same(json(half.payload), { state: 'OPEN', position: 50 });
});

t.test('offline devices fail fast with DEVICE_UNAVAILABLE; a physical change is published', async (t) => {
  const stack = await startStack(t, { config: { devices } });
  const c = await connectClient(t, stack.url);
  await c.subscribe('clawbox/#');
  const control = simulatorControls.get('lamp')!;
  const offline = c.waitFor('clawbox/lamp/availability', (p) => p === 'offline');
  control.unplug();
  await offline;
  const late = await connectClient(t, stack.url);
  await late.subscribe('clawbox/lamp/availability');
  const retained = await late.waitFor('clawbox/lamp/availability', () => true, undefined, true);
  t.same([retained.payload, retained.retain], ['offline', true], 'offline is retained');
  const error = await c.request('clawbox/lamp/set', '{"state":"ON","transaction":7}', 'clawbox/lamp/error');
  t.same(json(error.payload), { code: 'DEVICE_UNAVAILABLE', message: 'lamp is offline', transaction: 7 });
  const online = c.waitFor('clawbox/lamp/availability', (p) => p === 'online');
  control.replug();
  await online;
  const pressed = c.waitFor('clawbox/lamp', (p) => json(p).state === 'ON');
  control.physicalChange({ state: 'ON' });
  t.same(json((await pressed).payload), { state: 'ON' });

  control.setResponsive(false);
  await t.rejects(stack.service.execute('lamp', { state: 'OFF' }, { source: 'test' }), { code: 'DEVICE_TIMEOUT' });
  control.setResponsive(true);
  t.equal(stack.service.get('lamp')?.state.state, 'ON', 'a timed-out command changed nothing');
});

t.test('Tasmota cmnd -> stat', async (t) => {
  const stack = await startStack(t, { config: { devices } });
  const c = await connectClient(t, stack.url);
  await c.subscribe('stat/#', 'clawbox/+/error');
  const power = c.waitFor('stat/light/POWER');
  const result = await c.request('cmnd/light/POWER', 'ON', 'stat/light/RESULT');
  t.same(json(result.payload), { POWER: 'ON' });
  t.equal((await power).payload, 'ON');
  t.same(json((await c.request('cmnd/light/Dimmer', '40', 'stat/light/RESULT')).payload), { Dimmer: 40 });
  t.same(json((await c.request('cmnd/light/dimmer', '+', 'stat/light/RESULT')).payload), { Dimmer: 50 });
  t.same(json((await c.request('cmnd/light/POWER', '', 'stat/light/RESULT')).payload), { POWER: 'ON' }, 'empty = query');
  t.same(json((await c.request('cmnd/light/POWER', 'TOGGLE', 'stat/light/RESULT')).payload), { POWER: 'OFF' });
  t.same(json((await c.request('cmnd/light/STATE', '', 'stat/light/RESULT')).payload), { POWER: 'OFF', Dimmer: 50 });
  t.same(json((await c.request('cmnd/thermo/target_temperature', '21.5', 'stat/thermo/RESULT')).payload), {
    target_temperature: 21.5,
  });
  const unknown = json((await c.request('cmnd/light/Color', 'red', 'stat/light/RESULT')).payload);
  t.match(unknown, { Command: 'Unknown', code: 'PROPERTY_UNKNOWN' });
  const range = json((await c.request('cmnd/light/Dimmer', '150', 'stat/light/RESULT')).payload);
  t.match(range, { Command: 'Error', code: 'VALUE_OUT_OF_RANGE' });
  const word = json((await c.request('cmnd/light/POWER', 'MAYBE', 'stat/light/RESULT')).payload);
  t.match(word, { Command: 'Error', code: 'VALUE_OUT_OF_RANGE' });
  t.same(stack.service.get('light')?.state, { state: 'OFF', brightness: 50 });
});

t.test('bridge requests: devices, add, rename, schema, remove', async (t) => {
  const stack = await startStack(t, { config: { devices } });
  const c = await connectClient(t, stack.url);
  await c.subscribe('clawbox/bridge/response/#', 'clawbox/+/availability', 'clawbox/kettle');
  const list = json((await c.request('clawbox/bridge/request/devices', '{"transaction":"a"}', 'clawbox/bridge/response/devices')).payload);
  t.equal(list.status, 'ok');
  t.equal(list.transaction, 'a');
  t.same((list.data as Array<{ id: string }>).map((d) => d.id), ['lamp', 'light', 'thermo', 'blind', 'temp']);

  const add = json(
    (
      await c.request(
        'clawbox/bridge/request/device/add',
        JSON.stringify({ id: 'kettle', driver: 'simulated', capabilities: ['switch'], transaction: 2 }),
        'clawbox/bridge/response/device/add',
      )
    ).payload,
  );
  t.match(add, { status: 'ok', transaction: 2, data: { id: 'kettle', availability: 'online' } });
  const dup = json(
    (
      await c.request(
        'clawbox/bridge/request/device/add',
        JSON.stringify({ id: 'kettle', driver: 'simulated', capabilities: ['switch'] }),
        'clawbox/bridge/response/device/add',
      )
    ).payload,
  );
  t.match(dup, { status: 'error', error: { code: 'DEVICE_EXISTS' } });
  const invalid = json(
    (await c.request('clawbox/bridge/request/device/add', '{"id":"x"}', 'clawbox/bridge/response/device/add')).payload,
  );
  t.match(invalid, { status: 'error', error: { code: 'PAYLOAD_INVALID' } });

  const renamed = json(
    (await c.request('clawbox/bridge/request/device/rename', '{"id":"kettle","name":"Kettle"}', 'clawbox/bridge/response/device/rename')).payload,
  );
  t.match(renamed, { status: 'ok', data: { id: 'kettle', name: 'Kettle' } });
  const schema = json(
    (await c.request('clawbox/bridge/request/device/schema', '{"id":"kettle"}', 'clawbox/bridge/response/device/schema')).payload,
  );
  t.match(schema, { status: 'ok', data: { command: { properties: { state: { enum: ['ON', 'OFF', 'TOGGLE'] } } } } });
  const unknown = json(
    (await c.request('clawbox/bridge/request/device/explode', '{}', 'clawbox/bridge/response/device/explode')).payload,
  );
  t.match(unknown, { status: 'error', error: { code: 'REQUEST_UNKNOWN' } });
  const notJson = json(
    (await c.request('clawbox/bridge/request/device/remove', '{', 'clawbox/bridge/response/device/remove')).payload,
  );
  t.match(notJson, { status: 'error', error: { code: 'PAYLOAD_INVALID' } });

  await c.request('clawbox/kettle/set', '{"state":"ON"}', 'clawbox/kettle');
  const cleared = c.waitFor('clawbox/kettle', (p) => p === '');
  const removed = json(
    (await c.request('clawbox/bridge/request/device/remove', '{"id":"kettle"}', 'clawbox/bridge/response/device/remove')).payload,
  );
  t.match(removed, { status: 'ok', data: { id: 'kettle' } });
  await cleared;
  t.equal(stack.service.get('kettle'), undefined);
  const gone = json(
    (await c.request('clawbox/bridge/request/device/remove', '{"id":"kettle"}', 'clawbox/bridge/response/device/remove')).payload,
  );
  t.match(gone, { status: 'error', error: { code: 'DEVICE_NOT_FOUND' } });
});

t.test('runtime-added devices are bounded like configured ones (LIMIT_REACHED, nothing added)', async (t) => {
  t.equal(new DeviceService({ messaging: {} as never }).deviceLimit, devicesConfigSchema.maxItems, 'the default bound is the config schema\'s');
  // A small bound keeps the test quick; the mechanism is the same for the default one.
  const limit = 6;
  const stack = await startStack(t, { config: { devices: [{ id: 'lamp', driver: 'simulated', capabilities: ['switch'] }] }, deps: { maxDevices: limit } });
  const system = { principal: SYSTEM_PRINCIPAL, source: 'test' };
  for (let i = 1; i < limit; i++) {
    await stack.frontDoor.invoke('device.add', { id: `d-${i}`, driver: 'simulated', capabilities: ['switch'] }, system);
  }
  t.equal(stack.service.list().length, limit, 'the limit is reachable, configured devices included');
  const c = await connectClient(t, stack.url);
  await c.subscribe('clawbox/bridge/response/#');
  const refused = await c.request(
    'clawbox/bridge/request/device/add',
    JSON.stringify({ id: 'one-more', driver: 'simulated', capabilities: ['switch'], transaction: 7 }),
    'clawbox/bridge/response/device/add',
  );
  t.match(json(refused.payload), { status: 'error', error: { code: 'LIMIT_REACHED', limit }, transaction: 7 });
  t.equal(stack.service.list().length, limit, 'nothing was added');
  t.notOk(stack.service.get('one-more'));
});

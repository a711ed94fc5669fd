/**
 * Plugins over MQTT and plugins reaching devices and MQTT: a real Broker with the front door and its MQTT
 * adapter, a real DeviceService with simulated devices, mqtt.js clients, and the node-basic / py-basic
 * fixture plugins. plugin.call runs as the MQTT sender, and the caller's deadline reaches the plugin.
 */
import type { MqttClient } from 'mqtt';
import t from 'tap';
import { DeviceService } from '../devices/device-service.js';
import { hashPassword } from '../runtime/auth/password.js';
import { closeClient, collect, connect } from '../app/testing/broker.js';
import { startFrontDoorStack } from '../app/testing/front-door-stack.js';
import type { ClientMessage } from '../runtime/messaging.js';
import { mqttPrincipal } from '../runtime/operations/mqtt-adapter.js';
import { SYSTEM_PRINCIPAL, principalWithFilters } from '../runtime/operations/principal.js';
import { PluginHost } from './host.js';
import { FIXTURES, startHost, waitRunning } from './test/support.js';

const DEVICES = [
  { id: 'lamp', driver: 'simulated', capabilities: ['switch'] },
  { id: 'fan', driver: 'simulated', capabilities: ['switch'] },
];

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A broker, the front door with its MQTT adapter, and a plugin host wired to both, as app.ts does. */
async function startBridge(t: Teardown, options: { plugins?: Record<string, unknown>; runtime?: Record<string, unknown> } = {}) {
  const stack = await startFrontDoorStack({ config: { devices: [], ...options.runtime }, teardown: t });
  const host = await stack.add(
    new PluginHost({
      messaging: stack.broker,
      env: {},
      api: stack.api,
      config: { dirs: [FIXTURES], call_timeout_ms: 3000, restart: { initial_ms: 50, max_ms: 400, stable_ms: 60_000 }, ...options.plugins },
    }),
  );
  return { host, frontDoor: stack.frontDoor, broker: stack.broker, url: stack.url };
}

/** Asks over MQTT and waits for the answer on the matching response topic. */
function asker(t: { equal(found: unknown, wanted: unknown): unknown }, client: MqttClient, inbox: ReturnType<typeof collect>, plugin: string) {
  return async (tool: string, payload: string) => {
    const before = inbox.all.length;
    await client.publishAsync(`clawbox/bridge/request/plugin/${plugin}/${tool}`, payload);
    const [message] = (await inbox.next(before + 1)).slice(before);
    t.equal(message?.topic, `clawbox/bridge/response/plugin/${plugin}/${tool}`);
    return JSON.parse(message!.payload) as Record<string, unknown>;
  };
}

t.test('bridge/request/plugin/<name>/<tool>: answers with transaction echoed, errors with codes', async (t) => {
  const { url } = await startBridge(t, { plugins: { allow: ['node-basic'], mqtt: { tools: ['node-basic/add', 'node-basic/throws', 'node-basic/hello'] } } });
  const client = await connect(url);
  t.teardown(() => closeClient(client));
  const inbox = collect(client);
  await client.subscribeAsync('clawbox/bridge/response/plugin/#');
  const ask = asker(t, client, inbox, 'node-basic');

  t.same(await ask('add', '{"a":2,"b":40,"transaction":"tx-1"}'), { status: 'ok', data: { sum: 42 }, transaction: 'tx-1' });
  t.same(await ask('hello', ''), { status: 'ok', data: { text: 'hello, world' } }, 'an empty payload is no arguments');
  t.match(await ask('add', '{"a":2,"transaction":7}'), {
    status: 'error',
    error: { code: 'PAYLOAD_INVALID', message: /required property 'b'/ },
    transaction: 7,
  });
  t.match(await ask('add', '{"a":'), { status: 'error', error: { code: 'PAYLOAD_INVALID', message: /not valid JSON/ } });
  t.match(await ask('add', '[1,2]'), { status: 'error', error: { code: 'PAYLOAD_INVALID' } });
  t.match(await ask('throws', '{"transaction":"x"}'), {
    status: 'error',
    error: { code: 'PLUGIN_FAILED', reason: 'threw', message: /boom/ },
    transaction: 'x',
  });
  t.match(await ask('whoami', '{}'), { status: 'error', error: { code: 'FORBIDDEN', message: /plugins\.mqtt\.tools/ } });
  t.match(await ask('nope', '{}'), { status: 'error', error: { code: 'FORBIDDEN' } }, 'unlisted tools are refused before lookup');
  // A name that is not a plain segment is not echoed into a response topic at all.
  await client.publishAsync('clawbox/bridge/request/plugin/Bad$Name/add', '{}');
  t.same(await ask('add', '{"a":1,"b":1}'), { status: 'ok', data: { sum: 2 } }, 'still serving; nothing answered the bad name');
  t.notOk(inbox.all.some((m) => m.topic.includes('Bad$Name')));
  // A retained request is never executed.
  const before = inbox.all.length;
  await client.publishAsync('clawbox/bridge/request/plugin/node-basic/add', '{"a":1,"b":2}', { retain: true });
  const [retained] = (await inbox.next(before + 1)).slice(before);
  t.match(JSON.parse(retained!.payload), { status: 'error', error: { code: 'PAYLOAD_INVALID', message: /retained/ } });
});

t.test('plugin.call runs as the MQTT sender: a user whose ACL lacks the plugin topic is FORBIDDEN', async (t) => {
  const password = 'panel-secret';
  const { url, broker, frontDoor, host } = await startBridge(t, {
    plugins: { allow: ['node-basic'], lazy: false },
    runtime: {
      broker: {
        anonymous: 'never',
        users: [
          {
            username: 'panel',
            password_hash: await hashPassword(password),
            publish: ['clawbox/bridge/request/plugin/node-basic/add', 'clawbox/probe'],
            subscribe: ['clawbox/#', 'fixture/#'],
          },
        ],
      },
    },
  });
  const panel = await connect(url, { username: 'panel', password });
  t.teardown(() => closeClient(panel));
  const inbox = collect(panel);
  await panel.subscribeAsync(['clawbox/bridge/response/plugin/#', 'fixture/#']);
  const ask = asker(t, panel, inbox, 'node-basic');
  t.same(await ask('add', '{"a":1,"b":2}'), { status: 'ok', data: { sum: 3 } }, 'the tool its ACL names works');

  // The panel as the front door sees it: a real message of this connection, its real ACL.
  const probed = new Promise<ClientMessage>((resolve) => {
    const off = broker.onClientPublish('clawbox/probe', (message) => {
      off();
      resolve(message);
    });
  });
  await panel.publishAsync('clawbox/probe', '');
  const principal = mqttPrincipal(await probed, 'clawbox');
  const calls = () => host.list()[0]?.figures.calls ?? -1;
  const callsBefore = calls();
  await t.rejects(
    frontDoor.invoke('plugin.call', { plugin: 'node-basic', tool: 'publish', args: { topic: 'fixture/out', payload: 'forbidden' } }, { principal, source: 'mqtt' }),
    { code: 'FORBIDDEN', message: /bridge\/request\/plugin\/node-basic\/publish/ },
  );
  // Published by the panel itself, the broker drops it (its ACL): no answer and no call either way.
  await panel.publishAsync('clawbox/bridge/request/plugin/node-basic/publish', '{"topic":"fixture/out","payload":"dropped"}');
  t.same(await ask('add', '{"a":2,"b":2}'), { status: 'ok', data: { sum: 4 } }, 'the next allowed request is the next answer');
  t.notOk(inbox.all.some((m) => m.topic.endsWith('/publish') || m.topic === 'fixture/out'), 'the publish tool never ran');
  t.equal(calls(), callsBefore + 1, 'only the allowed add reached the plugin');
});

t.test('the caller deadline reaches plugin calls: not sent once passed, cancelled once sent', async (t) => {
  const { url, frontDoor, host } = await startBridge(t, { plugins: { allow: ['node-basic', 'py-basic'], lazy: false } });
  const client = await connect(url);
  t.teardown(() => closeClient(client));
  const inbox = collect(client);
  await client.subscribeAsync('fixture/#');
  const call = (plugin: string, tool: string, args: Record<string, unknown>, deadlineMs?: number) =>
    frontDoor.invoke('plugin.call', { plugin, tool, args }, { principal: SYSTEM_PRINCIPAL, source: 'test', ...(deadlineMs === undefined ? {} : { deadlineMs }) });
  const calls = () => host.list().find((p) => p.name === 'node-basic')?.figures.calls ?? -1;
  const callsBefore = calls();

  await t.rejects(call('node-basic', 'publish', { topic: 'fixture/out', payload: 'late' }, 0), {
    code: 'DEADLINE_EXCEEDED',
    details: { sent: false, not_run: true },
  });
  t.same(await call('node-basic', 'publish', { topic: 'fixture/out', payload: 'on time' }), { ok: true });
  const [first] = await inbox.next(1);
  t.same(first, { topic: 'fixture/out', payload: 'on time', qos: 0, retain: false }, 'the first thing the plugin published is the call on time');
  t.equal(calls(), callsBefore + 1, 'the late call never reached the plugin');

  // Sent, then the deadline passes: the Node runner is asked to cancel; the Python one cannot, and says so.
  await t.rejects(call('node-basic', 'slow', { ms: 60_000 }, 300), {
    code: 'PLUGIN_FAILED',
    details: { reason: 'cancelled', sent: true, cancel: 'requested' },
  });
  await t.rejects(call('py-basic', 'hang', {}, 300), {
    code: 'PLUGIN_FAILED',
    message: /cannot cancel/,
    details: { reason: 'cancelled', sent: true, cancel: 'unsupported' },
  });
});

t.test('devices through the host: manifest and caller permissions, real DeviceService', async (t) => {
  const stack = await startHost(t, { broker: true, plugins: { allow: ['node-basic', 'py-basic'] }, runtimeConfig: { devices: DEVICES } });
  const devices = new DeviceService({ messaging: stack.broker! });
  await devices.start(stack.tc.ctx);
  t.teardown(() => devices.stop());
  // Restart the host with the device layer wired in, as app.ts does.
  await stack.host.stop();
  const host = new PluginHost({
    devices,
    messaging: stack.broker!,
    env: {},
    config: { dirs: [FIXTURES], allow: ['node-basic', 'py-basic'] },
  });
  t.teardown(() => host.stop());
  await host.start(stack.tc.ctx);

  const listed = (await host.call('node-basic', 'devices', {})) as { id: string }[];
  t.same(listed.map((d) => d.id), ['lamp'], 'node-basic may see only lamp (manifest devices: ["lamp"])');
  const all = (await host.call('py-basic', 'devices', {})) as { id: string }[];
  t.same(all.map((d) => d.id).sort(), ['fan', 'lamp'], 'py-basic has devices: true');

  t.match(await host.call('node-basic', 'switch', { id: 'lamp', command: { state: 'ON' } }, { caller: { source: 'agent' }, transaction: 'k' }), {
    device: 'lamp',
    state: { state: 'ON' },
    transaction: 'k',
  });
  t.same(devices.get('lamp')?.state, { state: 'ON' }, 'the device changed');
  await t.rejects(host.call('node-basic', 'switch', { id: 'fan', command: { state: 'ON' } }), { code: 'FORBIDDEN', message: /outside the permissions/ });
  await t.rejects(host.call('node-basic', 'switch', { id: 'lamp', command: { state: 'OFF' } }, { caller: { devices: ['fan'] } }), {
    code: 'FORBIDDEN',
  });
  await t.rejects(host.call('node-basic', 'switch', { id: 'lamp', command: { state: 'DIM' } }), { code: 'VALUE_OUT_OF_RANGE' });
  t.same(devices.get('lamp')?.state, { state: 'ON' }, 'refused commands changed nothing');
  t.same(devices.get('fan')?.state, { state: 'OFF' });
});

t.test('MQTT through the host: topic permissions on publish and subscribe', async (t) => {
  const { url, host } = await startHost(t, { broker: true, plugins: { allow: ['node-basic'], lazy: false } });
  await waitRunning(host, ['node-basic']);
  const client = await connect(url!);
  t.teardown(() => closeClient(client));
  const inbox = collect(client);
  await client.subscribeAsync(['fixture/#', 'clawbox/#']);
  t.same(await host.call('node-basic', 'publish', { topic: 'fixture/out', payload: 'hi' }), { ok: true });
  const deadline = Date.now() + 3000;
  while (!inbox.all.some((m) => m.topic === 'fixture/out') && Date.now() < deadline) await inbox.next(inbox.all.length + 1, 3000).catch(() => {});
  t.match(inbox.all.find((m) => m.topic === 'fixture/out'), { topic: 'fixture/out', payload: 'hi' }, 'published for the plugin');
  await t.rejects(host.call('node-basic', 'publish', { topic: 'clawbox/lamp/set', payload: 'ON' }), { code: 'FORBIDDEN' });
  await t.rejects(host.call('node-basic', 'publish', { topic: 'fixture/#', payload: 'x' }), { code: 'TOPIC_INVALID' });
  await client.publishAsync('fixture/in/a', 'hello plugin');
  await t.resolveMatch(
    (async () => {
      for (let i = 0; i < 50; i++) {
        const who = (await host.call('node-basic', 'whoami', {})) as { received: unknown[] };
        if (who.received.length > 0) return who.received;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return [];
    })(),
    [{ topic: 'fixture/in/a', payload: 'hello plugin' }],
    'the subscription the plugin made at start delivers',
  );
  t.notOk(inbox.all.some((m) => m.topic === 'clawbox/lamp/set'), 'nothing forbidden was published');
});

t.test("a plugin acts on devices as its caller: the caller's device permissions bound what the tool may do", async (t) => {
  const stack = await startFrontDoorStack({ config: { devices: DEVICES }, serving: false, teardown: t });
  const { frontDoor, broker } = stack;
  const devices = await stack.add(new DeviceService({ messaging: broker, api: stack.api }));
  await stack.add(new PluginHost({ devices, messaging: broker, env: {}, api: stack.api, config: { allow: ['iot-control'], lazy: false } }));
  const panel = principalWithFilters('mqtt', 'panel', ['bridge/request/plugin/iot-control/+', 'lamp/set', 'lamp/get']);
  const send = (id: string) =>
    frontDoor.invoke('plugin.call', { plugin: 'iot-control', tool: 'send_command', args: { id, command: { state: 'ON' } } }, { principal: panel, source: 'mqtt' });

  await send('lamp');
  t.equal(devices.get('lamp')?.state.state, 'ON', 'a device the caller may command');
  await t.rejects(send('fan'), 'a device the caller may not command is refused');
  t.equal(devices.get('fan')?.state.state, 'OFF', 'and does not move');
  const owner = principalWithFilters('mqtt', 'owner', ['#']);
  await frontDoor.invoke('plugin.call', { plugin: 'iot-control', tool: 'send_command', args: { id: 'fan', command: { state: 'ON' } } }, { principal: owner, source: 'mqtt' });
  t.equal(devices.get('fan')?.state.state, 'ON', 'a caller with the permission gets it through the same tool');
});

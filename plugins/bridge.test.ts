/**
 * Plugins over MQTT and plugins reaching devices and MQTT: a real Broker, a real DeviceService with
 * simulated devices, mqtt.js clients, and the node-basic / py-basic fixture plugins.
 */
import t from 'tap';
import { DeviceService } from '../devices/device-service.js';
import { closeClient, collect, connect } from '../runtime/broker/test-helpers.js';
import { startHost } from './test/support.js';

const DEVICES = [
  { id: 'lamp', driver: 'simulated', capabilities: ['switch'] },
  { id: 'fan', driver: 'simulated', capabilities: ['switch'] },
];

t.test('bridge/request/plugin/<name>/<tool>: answers with transaction echoed, errors with codes', async (t) => {
  const { url } = await startHost(t, {
    broker: true,
    plugins: { allow: ['node-basic'], mqtt: { tools: ['node-basic/add', 'node-basic/throws', 'node-basic/hello'] } },
  });
  const client = await connect(url!);
  t.teardown(() => closeClient(client));
  const inbox = collect(client);
  await client.subscribeAsync('clawbox/bridge/response/plugin/#');
  const ask = async (tool: string, payload: string) => {
    const before = inbox.all.length;
    await client.publishAsync(`clawbox/bridge/request/plugin/node-basic/${tool}`, payload);
    const [message] = (await inbox.next(before + 1)).slice(before);
    t.equal(message?.topic, `clawbox/bridge/response/plugin/node-basic/${tool}`);
    return JSON.parse(message!.payload) as Record<string, unknown>;
  };

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
});

t.test('devices through the host: manifest and caller permissions, real DeviceService', async (t) => {
  const stack = await startHost(t, { broker: true, plugins: { allow: ['node-basic', 'py-basic'] }, runtimeConfig: { devices: DEVICES } });
  const devices = new DeviceService({ messaging: stack.broker! });
  await devices.start(stack.tc.ctx);
  t.teardown(() => devices.stop());
  // Restart the host with the device layer wired in, as app.ts does.
  await stack.host.stop();
  const { PluginHost } = await import('./host.js');
  const { FIXTURES } = await import('./test/support.js');
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
  const { url, host } = await startHost(t, { broker: true, plugins: { allow: ['node-basic'] } });
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

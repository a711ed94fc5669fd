/**
 * MQTT 5 request/response through the front door's MQTT adapter, with a real broker and real mqtt.js
 * clients: a request with a Response Topic and Correlation Data is answered there, with that data; MQTT
 * 3.1.1 keeps the route's answer topic and the `transaction` field; user properties reach the operation.
 */
import { Writable } from 'node:stream';
import type { IPublishPacket } from 'mqtt-packet';
import t from 'tap';
import { closeClient, connect, startTestBroker } from '../../app/testing/broker.js';
import { createLogging } from '../logging.js';
import { FrontDoor } from './front-door.js';
import { MqttAdapter } from './mqtt-adapter.js';
import { defineOperation } from './operation.js';

async function setup(t: { teardown(fn: () => unknown): void }) {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const logger = createLogging({ level: 'silent', components: {}, pretty: false, destination: new Writable({ write: (_c, _e, d) => d() }) }).forComponent('mqtt');
  const frontDoor = new FrontDoor({ logger });
  frontDoor.register(
    defineOperation<{ fail?: boolean }, { trace: string; meta: Record<string, string> }>({
      name: 'test.echo',
      summary: 'echoes the trace id and metadata it was called with',
      input: { type: 'object', additionalProperties: false, properties: { fail: { type: 'boolean' } } },
      permission: () => 'echo',
      changesWorld: false,
      deadlineMs: 1000,
      handler: async (input, ctx) => {
        if (input.fail) throw new Error('asked to fail');
        return { trace: ctx.trace, meta: { ...ctx.meta } };
      },
    }),
  );
  const adapter = new MqttAdapter({ frontDoor, messaging: tb.broker, requests: tb.broker, logger, maxPayloadBytes: 4096 });
  const stop = adapter.bridge('echo', 'test.echo');
  t.teardown(stop);
  return tb;
}

function firstMessage(client: Awaited<ReturnType<typeof connect>>, topic: string): Promise<IPublishPacket> {
  return new Promise((resolve) => {
    const on = (got: string, _payload: Buffer, packet: IPublishPacket): void => {
      if (got !== topic) return;
      client.off('message', on);
      resolve(packet);
    };
    client.on('message', on);
  });
}

t.test('MQTT 5: the answer goes to the Response Topic with the Correlation Data; trace-id and user properties reach the operation', async (t) => {
  const tb = await setup(t);
  const client = await connect(tb.url, { protocolVersion: 5 });
  t.teardown(() => closeClient(client));
  await client.subscribeAsync('me/replies/#', { qos: 1 });
  await client.subscribeAsync('clawbox/bridge/response/#', { qos: 1 });
  const answered = firstMessage(client, 'me/replies/1');
  let onBridgeTopic = 0;
  client.on('message', (topic) => {
    if (topic.startsWith('clawbox/bridge/response/')) onBridgeTopic++;
  });
  await client.publishAsync('clawbox/bridge/request/echo', '{"transaction":"tx-9"}', {
    qos: 1,
    properties: {
      responseTopic: 'me/replies/1',
      correlationData: Buffer.from('corr-77'),
      userProperties: { 'trace-id': 'trace-abc.1', room: 'kitchen' },
    },
  });
  const reply = await answered;
  t.equal(reply.properties?.correlationData?.toString(), 'corr-77', 'correlation data echoed');
  const body = JSON.parse(reply.payload.toString()) as { status: string; data: { trace: string; meta: Record<string, string> }; transaction?: string };
  t.equal(body.status, 'ok');
  t.equal(body.data.trace, 'trace-abc.1', 'the trace-id user property is the trace id');
  t.equal(body.data.meta.room, 'kitchen', 'user properties are operation metadata');
  t.equal(body.transaction, 'tx-9', 'the transaction is echoed too');

  // An error answer takes the same way.
  const failed = firstMessage(client, 'me/replies/2');
  await client.publishAsync('clawbox/bridge/request/echo', '{"fail":true}', {
    qos: 1,
    properties: { responseTopic: 'me/replies/2', correlationData: Buffer.from('corr-78') },
  });
  const error = await failed;
  t.equal(error.properties?.correlationData?.toString(), 'corr-78');
  t.equal((JSON.parse(error.payload.toString()) as { status: string }).status, 'error', 'error envelope');
  t.equal(onBridgeTopic, 0, 'nothing on the route’s own answer topic');
});

t.test('MQTT 3.1.1 (and MQTT 5 without a Response Topic): the route’s answer topic and the transaction field', async (t) => {
  const tb = await setup(t);
  for (const protocolVersion of [4, 5] as const) {
    const client = await connect(tb.url, { protocolVersion });
    await client.subscribeAsync('clawbox/bridge/response/echo', { qos: 1 });
    const answered = firstMessage(client, 'clawbox/bridge/response/echo');
    await client.publishAsync('clawbox/bridge/request/echo', `{"transaction":"v${protocolVersion}"}`, { qos: 1 });
    const body = JSON.parse((await answered).payload.toString()) as { status: string; transaction?: string; data: { trace: string } };
    t.equal(body.status, 'ok', `v${protocolVersion}: answered on the bridge response topic`);
    t.equal(body.transaction, `v${protocolVersion}`, 'transaction echoed');
    t.match(body.data.trace, /^[0-9a-f-]{36}$/, 'a fresh trace id without the user property');
    await closeClient(client);
  }
});

t.test('a Response Topic the sender may not publish to is ignored (the runtime does not publish for it there)', async (t) => {
  const tb = await setup(t);
  const client = await connect(tb.url, { protocolVersion: 5 });
  t.teardown(() => closeClient(client));
  await client.subscribeAsync('clawbox/bridge/response/echo', { qos: 1 });
  const answered = firstMessage(client, 'clawbox/bridge/response/echo');
  await client.publishAsync('clawbox/bridge/request/echo', '{}', { qos: 1, properties: { responseTopic: '$SYS/evil' } });
  t.equal((JSON.parse((await answered).payload.toString()) as { status: string }).status, 'ok', 'answered on the route’s topic instead');
});

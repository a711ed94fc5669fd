/**
 * Device topics with an MQTT 5 client: a `/set` that fails is answered on the request's Response Topic
 * with its Correlation Data (an MQTT 3.1.1 client gets `<base>/<id>/error`: devices/mqtt-routes.test.ts).
 */
import mqtt from 'mqtt';
import type { IPublishPacket } from 'mqtt-packet';
import t from 'tap';
import { startStack } from './fixtures/stack.js';

t.test('MQTT 5: a failed /set is answered on the Response Topic with the Correlation Data', async (t) => {
  const stack = await startStack(t, { config: { devices: [{ id: 'lamp', driver: 'simulated', capabilities: ['switch'] }] } });
  const client = await mqtt.connectAsync(stack.url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000 });
  t.teardown(() => client.endAsync(true));
  await client.subscribeAsync(['my/answers', 'clawbox/lamp/error'], { qos: 1 });
  const seen: IPublishPacket[] = [];
  const answer = new Promise<IPublishPacket>((resolve) =>
    client.on('message', (topic, _payload, packet) => {
      seen.push(packet);
      if (topic === 'my/answers') resolve(packet);
    }),
  );
  await client.publishAsync('clawbox/lamp/set', '{"brightness":3,"transaction":"t-5"}', {
    qos: 1,
    properties: { responseTopic: 'my/answers', correlationData: Buffer.from([1, 2, 3]) },
  });
  const packet = await answer;
  const body = JSON.parse(packet.payload.toString()) as { code: string; transaction?: string };
  t.equal(body.code, 'PROPERTY_UNKNOWN', 'the device error');
  t.equal(body.transaction, 't-5', 'transaction still echoed');
  t.same([...(packet.properties?.correlationData ?? [])], [1, 2, 3], 'correlation data echoed');
  t.notOk(
    seen.some((p) => p.topic === 'clawbox/lamp/error'),
    'not also on the error topic',
  );
});

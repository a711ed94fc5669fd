/**
 * The broker collects what it writes to a connection in one event-loop turn into one socket write
 * (write-batching.ts). These check what a client sees: packets whole and in order, backpressure from a
 * subscriber that stops reading followed by every message once it reads again (the socket's 'drain'
 * still comes, or aedes would stall the connection and drop it after its drain timeout). The refusing
 * CONNACK written right before a connection is destroyed is checked in access.test.ts.
 */
import t from 'tap';
import { RawClient, closeClient, connect, sleep, startTestBroker } from '../../app/testing/broker.js';

const isPublish = (p: { cmd: string }): boolean => p.cmd === 'publish';

t.test('a subscriber that stops reading gets every message, in order, once it reads again', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const raw = await RawClient.connect(tb.broker.port);
  t.teardown(() => raw.close());
  raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'slow', clean: true, keepalive: 0 });
  await raw.waitFor((p) => p.cmd === 'connack');
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'bp/#', qos: 0 }] });
  await raw.waitFor((p) => p.cmd === 'suback');
  raw.socket.pause();

  const pub = await connect(tb.url);
  t.teardown(() => closeClient(pub));
  const count = 2000;
  const payload = Buffer.alloc(8192, 0x62); // 16 MB in all: well past the socket buffers on loopback
  for (let i = 0; i < count; i++) {
    payload.writeUInt32BE(i, 0);
    pub.publish(`bp/${i % 4}`, Buffer.from(payload), { qos: 0 });
  }
  await sleep(500);
  t.notOk(raw.closed, 'the stalled subscriber is still connected');
  raw.socket.resume();

  const deadline = Date.now() + 8000; // under aedes' 10 s drain timeout: a missing 'drain' fails here
  while (raw.received.filter(isPublish).length < count && !raw.closed && Date.now() < deadline) await sleep(50);
  const got = raw.received.filter(isPublish) as unknown as { topic: string; payload: Buffer }[];
  t.equal(got.length, count, 'every message arrived');
  t.notOk(raw.closed, 'the connection stayed up');
  const order = got.map((p) => p.payload.readUInt32BE(0));
  t.same(order, Array.from({ length: count }, (_, i) => i), 'in publish order');
  t.ok(
    got.every((p, i) => p.topic === `bp/${i % 4}` && p.payload.length === payload.length),
    'topics and payloads intact',
  );
});

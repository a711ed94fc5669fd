import t from 'tap';
import { brokerWithClients, closeClient, collect, connect, sleep, startTestBroker } from '../../app/testing/broker.js';

/**
 * aedes numbers a message at publish() but forwards a retained one only after storing it, and its
 * per-client dedupe dropped any message numbered below one already delivered: overlapping retained and
 * non-retained publishes lost retained state messages (delivery-order.ts).
 */
t.test('retained publishes interleaved with non-retained ones all reach a subscriber', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const sub = await connect(tb.url);
  t.teardown(() => closeClient(sub));
  const inbox = collect(sub);
  await sub.subscribeAsync('order/#', { qos: 1 });

  const topics = ['order/a', 'order/b', 'order/c', 'order/d'];
  const rounds = 100;
  const publishes: Promise<void>[] = [];
  const expected: string[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const topic of topics) {
      // Not awaited: the device layer's publishes overlap like this. One QoS per topic: MQTT orders
      // messages per topic and QoS only, so mixed QoS on one topic may legally arrive out of order.
      publishes.push(tb.broker.publish(`${topic}/state`, `${round}`, { retain: true, qos: 1 }));
      publishes.push(tb.broker.publish(`${topic}/event`, `${round}`, { qos: 0 }));
      expected.push(`${topic}/state=${round}`, `${topic}/event=${round}`);
    }
  }
  await Promise.all(publishes);
  const got = await inbox.next(expected.length, 10_000).catch(() => inbox.all);
  const seen = got.map((m) => `${m.topic}=${m.payload}`);
  const missing = expected.filter((m) => !seen.includes(m));
  t.same(missing, [], 'no message lost');

  // Each topic's state messages arrive in publish order, the last one being the final value.
  for (const topic of topics) {
    const states = got.filter((m) => m.topic === `${topic}/state`).map((m) => Number(m.payload));
    t.same(states, [...states].sort((a, b) => a - b), `${topic}/state in order`);
    t.equal(states.at(-1), rounds - 1, `${topic}/state ends with the last value`);
  }

  // A late subscriber reads the final retained value per topic.
  const late = await connect(tb.url);
  t.teardown(() => closeClient(late));
  const lateInbox = collect(late);
  await late.subscribeAsync('order/+/state');
  const retained = await lateInbox.next(topics.length);
  t.same(
    retained.map((m) => `${m.topic}=${m.payload}`).sort(),
    topics.map((topic) => `${topic}/state=${rounds - 1}`),
  );
  t.equal(inbox.all.length, expected.length, 'no message delivered twice');
});

/**
 * The copy check keeps a bounded window of recent message numbers (a ring) and lets a QoS 0 message
 * re-enter delivery under a QoS 1 subscription (aedes hands it from deliverQoS to deliver0 as the same
 * packet). Many more messages than the window, mixed QoS, over overlapping subscriptions: each arrives
 * exactly once, none is taken for a copy of an older one after the window has wrapped.
 */
t.test('overlapping subscriptions over many messages: each message exactly once, mixed QoS', async (t) => {
  const { sub, pub, inbox } = await brokerWithClients(t);
  await sub.subscribeAsync({ 'win/#': { qos: 1 }, 'win/+': { qos: 0 }, 'win/a': { qos: 1 } });
  const count = 1200; // several times the 256-message window
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    sends.push(pub.publishAsync(i % 2 === 0 ? 'win/a' : 'win/b', `${i}`, { qos: (i % 3 === 0 ? 1 : 0) as 0 | 1 }));
  }
  await Promise.all(sends);
  await pub.publishAsync('win/end', 'end', { qos: 1 });
  await inbox.next(count + 1, 10_000);
  await sleep(100);
  const payloads = inbox.all.filter((m) => m.topic !== 'win/end').map((m) => Number(m.payload));
  t.equal(payloads.length, count, 'no copies delivered');
  t.same([...new Set(payloads)].sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i), 'every message arrived');
  const qosOf = new Map(inbox.all.map((m) => [m.payload, m.qos]));
  t.equal(qosOf.get('0'), 1, 'a QoS 1 publish goes out at QoS 1');
  t.equal(qosOf.get('1'), 0, 'a QoS 0 publish goes out at QoS 0 under a QoS 1 subscription');
});

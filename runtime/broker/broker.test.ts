import net from 'node:net';
import t from 'tap';
import { isClawboxError } from '../errors.js';
import { Broker } from './broker.js';
import { brokerWithClients, closeClient, collect, connect, sleep, startTestBroker, until } from '../../app/testing/broker.js';
import { makeTestContext } from '../../app/testing/test-context.js';

t.test('QoS 0, 1 and 2 round trips between two mqtt.js clients', async (t) => {
  const { sub, pub, inbox } = await brokerWithClients(t);
  const granted = await sub.subscribeAsync('qos/+', { qos: 2 });
  t.equal(granted[0]?.qos, 2, 'SUBACK grants QoS 2');
  await pub.publishAsync('qos/0', 'zero', { qos: 0 });
  await pub.publishAsync('qos/1', 'one', { qos: 1 });
  await pub.publishAsync('qos/2', 'two', { qos: 2 });
  const got = await inbox.next(3);
  t.same(
    got.map((m) => [m.topic, m.payload, m.qos]).sort(),
    [
      ['qos/0', 'zero', 0],
      ['qos/1', 'one', 1],
      ['qos/2', 'two', 2],
    ],
  );
});

t.test('delivery QoS is the minimum of publish and subscription QoS [MQTT-3.8.4-6]', async (t) => {
  const { sub, pub, inbox } = await brokerWithClients(t);
  await sub.subscribeAsync('down/+', { qos: 1 });
  await pub.publishAsync('down/x', 'hi', { qos: 2 });
  const [m] = await inbox.next(1);
  t.equal(m?.qos, 1);
});

t.test('overlapping subscriptions: one copy at the highest matching QoS [MQTT-3.3.5-1]', async (t) => {
  const { sub, pub, inbox } = await brokerWithClients(t);
  await sub.subscribeAsync({ 'ov/#': { qos: 0 }, 'ov/+': { qos: 1 }, 'ov/a': { qos: 0 } });
  for (let i = 0; i < 5; i++) await pub.publishAsync('ov/a', `m${i}`, { qos: 1 });
  await pub.publishAsync('ov/end', 'end', { qos: 1 });
  await inbox.next(6);
  await sleep(100);
  const onA = inbox.all.filter((m) => m.topic === 'ov/a');
  t.equal(onA.length, 5, 'each message arrives once');
  t.ok(
    onA.every((m) => m.qos === 1),
    'at QoS 1, the maximum of the matching subscriptions',
  );
});

t.test('retained messages: stored, sent on subscribe with the retain flag, cleared by an empty payload', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const pub = await connect(tb.url);
  t.teardown(() => closeClient(pub));
  await pub.publishAsync('ret/a', 'kept', { qos: 1, retain: true });
  await pub.publishAsync('ret/b', 'gone', { qos: 1, retain: true });
  await pub.publishAsync('ret/b', '', { qos: 1, retain: true });

  const late = await connect(tb.url);
  t.teardown(() => closeClient(late));
  const inbox = collect(late);
  await late.subscribeAsync('ret/#', { qos: 1 });
  const [m] = await inbox.next(1);
  t.same(m, { topic: 'ret/a', payload: 'kept', qos: 1, retain: true });
  await sleep(100);
  t.equal(inbox.all.length, 1, 'the cleared topic is not delivered');

  // A live message on a subscribed topic has retain=false for existing subscribers [MQTT-3.3.1-9].
  await pub.publishAsync('ret/a', 'live', { qos: 1, retain: true });
  const [, live] = await inbox.next(2);
  t.same(live, { topic: 'ret/a', payload: 'live', qos: 1, retain: false });
});

t.test('will message is published on an unclean disconnect and not on DISCONNECT', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const watcher = await connect(tb.url);
  t.teardown(() => closeClient(watcher));
  const inbox = collect(watcher);
  await watcher.subscribeAsync('wills/#', { qos: 1 });

  const polite = await connect(tb.url, { will: { topic: 'wills/polite', payload: Buffer.from('dead'), qos: 1, retain: false } });
  await polite.endAsync(); // sends DISCONNECT: the will is discarded [MQTT-3.14.4-3]
  const rude = await connect(tb.url, { will: { topic: 'wills/rude', payload: Buffer.from('dead'), qos: 1, retain: true } });
  rude.stream.destroy(); // network failure
  const [m] = await inbox.next(1);
  t.same(m, { topic: 'wills/rude', payload: 'dead', qos: 1, retain: false });
  await sleep(100);
  t.equal(inbox.all.length, 1, 'no will for the clean disconnect');

  const late = await connect(tb.url);
  t.teardown(() => closeClient(late));
  const lateInbox = collect(late);
  await late.subscribeAsync('wills/#');
  const [retained] = await lateInbox.next(1);
  t.same(retained, { topic: 'wills/rude', payload: 'dead', qos: 0, retain: true }, 'a retained will is stored');
});

t.test('$-topics are not matched by # or + [MQTT-4.7.2-1]; clients cannot publish to them', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const all = await connect(tb.url);
  const dollar = await connect(tb.url);
  t.teardown(() => Promise.all([closeClient(all), closeClient(dollar)]));
  const allInbox = collect(all);
  const dollarInbox = collect(dollar);
  await all.subscribeAsync(['#', '+/x']);
  await dollar.subscribeAsync('$SYS/clawbox-test/#');
  await tb.broker.publish('$SYS/clawbox-test/x', 'internal');
  await tb.broker.publish('plain/x', 'marker');
  const [d] = await dollarInbox.next(1);
  t.equal(d?.topic, '$SYS/clawbox-test/x', 'an explicit $ filter matches');
  // The marker was published after the $ message: once it is here, a $ message to # would be too.
  await until(() => allInbox.all.some((m) => m.topic === 'plain/x'));
  await sleep(100);
  t.same(
    allInbox.all.map((m) => m.topic).filter((topic) => topic !== 'clawbox/bridge/state'),
    ['plain/x'],
    '# and +/x do not see $-topics',
  );

  // A client's PUBLISH to a $-topic is acknowledged and dropped; the connection stays up.
  await all.publishAsync('$SYS/clawbox-test/x', 'forged', { qos: 1 });
  await all.publishAsync('plain/x', 'after', { qos: 1 });
  await allInbox.next(2);
  t.equal(dollarInbox.all.length, 1, 'the forged $ message was not delivered');
  t.ok(all.connected, 'connection kept');
});

t.test('internal Messaging: publish/subscribe, retained on subscribe, unsubscribe, bad topics', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { broker } = tb;
  t.equal(broker.baseTopic, 'clawbox');
  await broker.publish('int/state', 'retained-value', { retain: true });
  const seen: string[] = [];
  const unsubscribe = await broker.subscribe('int/#', (topic, payload) => seen.push(`${topic}=${payload}`));
  t.same(seen, ['int/state=retained-value'], 'retained message delivered on subscribe');

  const client = await connect(tb.url);
  t.teardown(() => closeClient(client));
  await client.publishAsync('int/from-client', 'x', { qos: 1 });
  await until(() => seen.length >= 2);
  t.same(seen, ['int/state=retained-value', 'int/from-client=x']);

  // A throwing handler does not break delivery to other subscribers.
  await broker.subscribe('int/from-client', () => {
    throw new Error('boom');
  });
  await client.publishAsync('int/from-client', 'y', { qos: 1 });
  await until(() => seen.at(-1) === 'int/from-client=y');
  t.equal(seen.at(-1), 'int/from-client=y');

  await unsubscribe();
  await client.publishAsync('int/from-client', 'z', { qos: 1 });
  await sleep(50);
  t.equal(seen.at(-1), 'int/from-client=y', 'nothing after unsubscribe');

  await t.rejects(broker.publish('a/+/b', 'x'), { code: 'TOPIC_INVALID' });
  await t.rejects(broker.publish('', 'x'), { code: 'TOPIC_INVALID' });
  await t.rejects(broker.subscribe('a/#/b', () => {}), { code: 'TOPIC_INVALID' });

  // The internal client's retained publish is stored before publish() resolves.
  await broker.publish('int/stored', 'now', { retain: true, qos: 1 });
  const late = await connect(tb.url);
  t.teardown(() => closeClient(late));
  const inbox = collect(late);
  await late.subscribeAsync('int/stored');
  t.equal((await inbox.next(1))[0]?.payload, 'now');
});

t.test('bridge/state: offline while starting, online when serving, offline after stop', async (t) => {
  const test = makeTestContext();
  t.teardown(() => test.cleanup());
  const broker = new Broker();
  await broker.start(test.ctx);
  const states: string[] = [];
  await broker.subscribe('clawbox/bridge/state', (_topic, payload) => states.push(payload.toString()));
  t.same(states, ['offline'], 'retained offline before serving');
  const watcher = await connect(`mqtt://127.0.0.1:${broker.port}`);
  const inbox = collect(watcher);
  await watcher.subscribeAsync('clawbox/bridge/state', { qos: 1 });
  await inbox.next(1);
  test.setLifecycle('serving');
  await inbox.next(2);
  t.same(
    inbox.all.map((m) => m.payload),
    ['offline', 'online'],
  );
  await broker.stop();
  await inbox.next(3);
  t.equal(inbox.all[2]?.payload, 'offline', 'connected clients see offline before the broker closes');
  await closeClient(watcher);

  // Restart with the same state: the retained value is offline until serving again.
  await broker.start(test.ctx);
  const afterRestart: string[] = [];
  await broker.subscribe('clawbox/bridge/state', (_topic, payload) => afterRestart.push(payload.toString()));
  t.ok(afterRestart.length >= 1);
  await broker.stop();
});

t.test('status figures and Prometheus metrics', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const a = await connect(tb.url);
  const b = await connect(tb.url);
  t.teardown(() => Promise.all([closeClient(a), closeClient(b)]));
  const inbox = collect(b);
  await b.subscribeAsync(['s/1', 's/2']);
  for (let i = 0; i < 10; i++) await a.publishAsync('s/1', 'x', { qos: 1 });
  await inbox.next(10);
  const status = (await tb.test.ctx.status.snapshot()).broker as {
    clients: number;
    subscriptions: number;
    messages: { received: number; sent: number };
    rates: { in_per_s: number; out_per_s: number };
    listeners: { tcp: number; websocket: string | null };
  };
  t.equal(status.clients, 2);
  t.equal(status.subscriptions, 2);
  t.ok(status.messages.received >= 10, `received ${status.messages.received}`);
  t.ok(status.messages.sent >= 10, `sent ${status.messages.sent}`);
  t.type(status.rates.in_per_s, 'number');
  t.same(status.listeners, { tcp: tb.broker.port, websocket: '/mqtt' });

  const text = await tb.test.ctx.metrics.metrics();
  t.match(text, /clawbox_broker_clients 2/);
  const inCount = Number(/clawbox_broker_messages_total\{direction="in"\} (\d+)/.exec(text)?.[1]);
  t.ok(inCount >= 10, `in counter ${inCount}`);
  const again = await tb.test.ctx.metrics.metrics();
  t.equal(Number(/clawbox_broker_messages_total\{direction="in"\} (\d+)/.exec(again)?.[1]), inCount, 'a second scrape does not double count');
});

t.test('PORT_IN_USE when the port is taken; nothing is left open', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as net.AddressInfo).port;
  const test = makeTestContext({ env: { CLAWBOX_BROKER_PORT: String(port) } });
  t.teardown(() => test.cleanup());
  const broker = new Broker();
  const error = await broker.start(test.ctx).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(isClawboxError(error, 'PORT_IN_USE'), 'typed error');
  t.match((error as Error).message, `broker port 127.0.0.1:${port} is already in use`);
  // The failed start released the LevelDB lock: the same state dir starts fine on a free port.
  const retry = makeTestContext({ stateDir: test.stateDir });
  t.teardown(() => retry.cleanup());
  await broker.start(retry.ctx);
  t.ok(broker.port > 0);
  await broker.stop();
});

t.test('oversized payloads are dropped; oversized packets close the connection', async (t) => {
  const { tb, sub, pub, inbox } = await brokerWithClients(t, { env: { CLAWBOX_BROKER_MAX_PAYLOAD_BYTES: '1024' } });
  await sub.subscribeAsync('big/#', { qos: 1 });
  await pub.publishAsync('big/a', Buffer.alloc(2000, 1), { qos: 1 });
  await pub.publishAsync('big/b', Buffer.alloc(1024, 1), { qos: 1 });
  const [m] = await inbox.next(1);
  t.equal(m?.topic, 'big/b', 'only the payload within the limit is delivered');
  t.ok(pub.connected, 'the publisher stays connected');

  // A packet that claims more than payload limit + the largest topic never gets buffered.
  const raw = net.connect({ host: '127.0.0.1', port: tb.broker.port });
  t.teardown(() => raw.destroy());
  await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
  raw.on('error', () => {});
  const closed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
  // CONNECT with remaining length 10 MB (varint 0x80 0xAD 0xE2 0x04), then a few bytes.
  raw.write(Buffer.from([0x10, 0x80, 0xad, 0xe2, 0x04, 0x00, 0x04]));
  await closed;
  t.pass('connection closed on an oversized packet header');
});

t.test('stopping while retained messages are being read does not crash', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  for (let i = 0; i < 500; i++) await tb.broker.publish(`many/${i}`, 'x'.repeat(100), { retain: true });
  const client = await connect(tb.url);
  t.teardown(() => closeClient(client));
  client.on('error', () => {});
  client.subscribe('many/#');
  await sleep(5);
  await tb.broker.stop();
  await sleep(200);
  t.pass('no uncaught exception from the closed store');
});

t.test('the internal client is refused with BUSY while stopping and after stop', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const stopping = tb.broker.stop();
  await t.rejects(tb.broker.publish('late/x', 'x'), { code: 'BUSY', message: /stopping/ });
  await stopping;
  await t.rejects(tb.broker.publish('late/x', 'x'), { code: 'BUSY', message: /not running/ });
  await t.rejects(tb.broker.subscribe('late/#', () => {}), { code: 'BUSY' });
});

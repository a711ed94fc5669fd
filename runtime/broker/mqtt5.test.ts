/**
 * MQTT 5 on the embedded broker, with real MQTT 5 clients: mqtt.js (`protocolVersion: 5`) and a raw
 * socket client that sees the exact packets (reason codes, properties) and can break the rules on purpose.
 * MQTT 3.1.1 behaviour is covered by the other broker tests; where the two differ, both are checked here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { IPublishPacket, Packet } from 'mqtt-packet';
import { hashPassword } from '../auth/password.js';
import { RawClient, closeClient, collect, connect, sleep, startTestBroker, until } from '../../app/testing/broker.js';
import { MQTT5_LIMITS } from './broker.js';

const v5 = { protocolVersion: 5 } as const;
const annHash = await hashPassword('ann-secret');
const usersConfig = {
  broker: {
    anonymous: 'never',
    users: [{ username: 'ann', password_hash: annHash, publish: ['ann/#'], subscribe: ['ann/#', 'public/#'] }],
  },
} as const;

type Props = Record<string, unknown>;
const propsOf = (packet: Packet): Props => ((packet as { properties?: Props }).properties ?? {}) as Props;

async function rawV5(port: number, connect: Record<string, unknown> = {}): Promise<{ raw: RawClient; connack: Packet }> {
  const raw = await RawClient.connect(port, { protocolVersion: 5 });
  raw.send({ cmd: 'connect', protocolVersion: 5, clientId: `raw-${Math.random().toString(36).slice(2)}`, clean: true, keepalive: 30, ...connect } as Packet);
  const connack = await raw.waitFor((p) => p.cmd === 'connack');
  return { raw, connack };
}

t.test('MQTT 5 and 3.1.1 on one listener, each answered in its own protocol', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { raw, connack } = await rawV5(tb.broker.port);
  t.teardown(() => raw.close());
  t.equal((connack as { reasonCode?: number }).reasonCode, 0, 'v5 CONNACK reason 0');
  const props = propsOf(connack);
  t.equal(props.receiveMaximum, MQTT5_LIMITS.receiveMaximum, 'Receive Maximum announced');
  t.equal(props.topicAliasMaximum, MQTT5_LIMITS.topicAliasMaximum, 'Topic Alias Maximum announced');
  t.ok((props.maximumPacketSize as number) > 65_536, 'Maximum Packet Size announced (from broker.max_payload_bytes)');

  const v4 = await RawClient.connect(tb.broker.port);
  t.teardown(() => v4.close());
  v4.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'old-one', clean: true, keepalive: 0 });
  const old = await v4.waitFor((p) => p.cmd === 'connack');
  t.equal((old as { returnCode?: number }).returnCode, 0, 'v3.1.1 CONNACK return code 0 (keepalive 0 accepted)');
  t.notOk((old as { properties?: unknown }).properties, 'no v5 properties for the 3.1.1 client');

  // Both talk to each other: the 3.1.1 subscriber gets a plain PUBLISH from the v5 publisher.
  const sub = await connect(tb.url);
  const pub = await connect(tb.url, v5);
  t.teardown(() => Promise.all([closeClient(sub), closeClient(pub)]));
  const inbox = collect(sub);
  await sub.subscribeAsync('mix/#', { qos: 1 });
  await pub.publishAsync('mix/a', 'from v5', { qos: 1, properties: { userProperties: { k: 'v' } } });
  t.equal((await inbox.next(1))[0]?.payload, 'from v5');
});

t.test('refused logins get MQTT 5 reason codes: 0x86 bad password, 0x87 not authorized, 0x8C AUTH method', async (t) => {
  const tb = await startTestBroker({ config: usersConfig });
  t.teardown(() => tb.close());
  const wrong = await rawV5(tb.broker.port, { username: 'ann', password: Buffer.from('nope') });
  t.equal((wrong.connack as { reasonCode?: number }).reasonCode, 0x86, 'bad user name or password');
  await wrong.raw.waitForClose();
  const anonymous = await rawV5(tb.broker.port);
  t.equal((anonymous.connack as { reasonCode?: number }).reasonCode, 0x87, 'anonymous: not authorized');
  await anonymous.raw.waitForClose();
  const scram = await rawV5(tb.broker.port, { properties: { authenticationMethod: 'SCRAM-SHA-1' } });
  t.equal((scram.connack as { reasonCode?: number }).reasonCode, 0x8c, 'enhanced authentication: bad authentication method');
  await scram.raw.waitForClose();
  // 3.1.1 keeps its codes on the same listener.
  const error = await connect(tb.url, { username: 'ann', password: 'nope' }).then(
    () => null,
    (e: unknown) => e as { code?: number },
  );
  t.equal(error?.code, 4, '3.1.1: return code 4');
});

t.test('a denied PUBLISH: PUBACK/PUBREC 0x87 with a reason string for MQTT 5; the connection stays', async (t) => {
  const tb = await startTestBroker({ config: usersConfig });
  t.teardown(() => tb.close());
  const { raw } = await rawV5(tb.broker.port, { username: 'ann', password: Buffer.from('ann-secret') });
  t.teardown(() => raw.close());
  raw.send({ cmd: 'publish', topic: 'bob/secret', payload: Buffer.from('x'), qos: 1, messageId: 7, retain: false, dup: false });
  const puback = await raw.waitFor((p) => p.cmd === 'puback' && p.messageId === 7);
  t.equal((puback as { reasonCode?: number }).reasonCode, 0x87, 'PUBACK 0x87 (not withheld by the durable-ack layer)');
  t.match(propsOf(puback).reasonString, /ACL/, 'reason string says why');
  raw.send({ cmd: 'publish', topic: 'bob/secret', payload: Buffer.from('x'), qos: 2, messageId: 8, retain: false, dup: false });
  const pubrec = await raw.waitFor((p) => p.cmd === 'pubrec' && p.messageId === 8);
  t.equal((pubrec as { reasonCode?: number }).reasonCode, 0x87, 'PUBREC 0x87');
  raw.send({ cmd: 'publish', topic: 'ann/ok', payload: Buffer.from('y'), qos: 1, messageId: 9, retain: false, dup: false });
  const ok = await raw.waitFor((p) => p.cmd === 'puback' && p.messageId === 9);
  t.notOk((ok as { reasonCode?: number }).reasonCode, 'an allowed PUBLISH still gets a success PUBACK, after the store');
  t.notOk(raw.closed, 'connection still open');
});

t.test('properties pass through: user properties, content type, payload format, response topic, correlation data', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const sub = await connect(tb.url, v5);
  const pub = await connect(tb.url, v5);
  t.teardown(() => Promise.all([closeClient(sub), closeClient(pub)]));
  const got = new Promise<IPublishPacket>((resolve) => sub.on('message', (_topic, _payload, packet) => resolve(packet)));
  await sub.subscribeAsync('props/#', { qos: 1 });
  await pub.publishAsync('props/a', '{"on":true}', {
    qos: 1,
    properties: {
      payloadFormatIndicator: true,
      contentType: 'application/json',
      responseTopic: 'props/reply',
      correlationData: Buffer.from('corr-1'),
      userProperties: { room: 'kitchen', tag: ['a', 'b'] },
    },
  });
  const packet = await got;
  t.equal(packet.properties?.contentType, 'application/json');
  t.equal(packet.properties?.payloadFormatIndicator, true);
  t.equal(packet.properties?.responseTopic, 'props/reply');
  t.equal(packet.properties?.correlationData?.toString(), 'corr-1');
  t.same(packet.properties?.userProperties, { room: 'kitchen', tag: ['a', 'b'] });
});

t.test('no local with an overlapping subscription keeps one copy; subscription identifiers of both are merged', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const client = await connect(tb.url, v5);
  const other = await connect(tb.url, v5);
  t.teardown(() => Promise.all([closeClient(client), closeClient(other)]));
  const packets: IPublishPacket[] = [];
  client.on('message', (_topic, _payload, packet) => packets.push(packet));
  await client.subscribeAsync('nl/a', { qos: 1, nl: true });
  await client.subscribeAsync('nl/+', { qos: 1 });
  await client.publishAsync('nl/a', 'mine', { qos: 1 });
  t.ok(await until(() => packets.length === 1), 'own message arrives once, through the subscription without no local');

  await client.subscribeAsync('si/+', { qos: 1, properties: { subscriptionIdentifier: 5 } });
  await client.subscribeAsync('si/a', { qos: 1, properties: { subscriptionIdentifier: 7 } });
  await other.publishAsync('si/a', 'both', { qos: 1 });
  await other.publishAsync('si/b', 'one', { qos: 1 });
  t.ok(await until(() => packets.length === 3), 'one copy per message');
  const both = packets.find((p) => p.payload.toString() === 'both');
  const ids = both?.properties?.subscriptionIdentifier;
  t.same([ids].flat().sort(), [5, 7], 'both subscription identifiers on the one copy');
  t.same(packets.find((p) => p.payload.toString() === 'one')?.properties?.subscriptionIdentifier, 5);
});

t.test('Receive Maximum: a client with too many QoS 2 messages in flight gets DISCONNECT 0x93 (3.1.1: closed)', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { raw } = await rawV5(tb.broker.port);
  t.teardown(() => raw.close());
  const max = MQTT5_LIMITS.receiveMaximum;
  for (let id = 1; id <= max; id++) raw.send({ cmd: 'publish', topic: 'rm/x', payload: Buffer.from('x'), qos: 2, messageId: id, retain: false, dup: false });
  await raw.waitFor((p) => p.cmd === 'pubrec' && p.messageId === max, 20_000);
  t.notOk(raw.closed, `${max} in flight: allowed`);
  // A retransmission of one in flight takes no new slot; completing one frees a slot.
  raw.send({ cmd: 'publish', topic: 'rm/x', payload: Buffer.from('x'), qos: 2, messageId: 1, retain: false, dup: true });
  raw.send({ cmd: 'pubrel', messageId: 2 });
  await raw.waitFor((p) => p.cmd === 'pubcomp' && p.messageId === 2);
  raw.send({ cmd: 'publish', topic: 'rm/x', payload: Buffer.from('x'), qos: 2, messageId: max + 1, retain: false, dup: false });
  await raw.waitFor((p) => p.cmd === 'pubrec' && p.messageId === max + 1);
  raw.send({ cmd: 'publish', topic: 'rm/x', payload: Buffer.from('x'), qos: 2, messageId: max + 2, retain: false, dup: false });
  const disconnect = await raw.waitFor((p) => p.cmd === 'disconnect', 5000);
  t.equal((disconnect as { reasonCode?: number }).reasonCode, 0x93, 'DISCONNECT 0x93 Receive Maximum exceeded');
  await raw.waitForClose();

  const v4 = await RawClient.connect(tb.broker.port);
  t.teardown(() => v4.close());
  v4.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'flood-v4', clean: true, keepalive: 0 });
  await v4.waitFor((p) => p.cmd === 'connack');
  for (let id = 1; id <= max + 1; id++) v4.send({ cmd: 'publish', topic: 'rm/y', payload: Buffer.from('y'), qos: 2, messageId: id, retain: false, dup: false });
  await v4.waitForClose(20_000);
  t.pass('3.1.1 client over the bound: connection closed');
});

t.test('an AUTH packet after CONNECT gets DISCONNECT 0x82', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { raw } = await rawV5(tb.broker.port);
  t.teardown(() => raw.close());
  raw.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'SCRAM-SHA-1' } } as Packet);
  const disconnect = await raw.waitFor((p) => p.cmd === 'disconnect');
  t.equal((disconnect as { reasonCode?: number }).reasonCode, 0x82, 'protocol error');
  await raw.waitForClose();
});

t.test('assigned client identifier, server keep alive, response information', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { raw, connack } = await rawV5(tb.broker.port, {
    clientId: '',
    keepalive: 0,
    properties: { sessionExpiryInterval: 0, requestResponseInformation: true },
  });
  t.teardown(() => raw.close());
  const props = propsOf(connack);
  t.equal((connack as { reasonCode?: number }).reasonCode, 0, 'an empty client id is fine in MQTT 5');
  t.match(props.assignedClientIdentifier, /.+/, 'assigned client identifier');
  t.equal(props.serverKeepAlive, MQTT5_LIMITS.serverKeepAliveMax, 'keepalive 0 gets the server keep alive');
  t.equal(props.responseInformation, 'clawbox/response/', 'response information on request');

  // Clean Start = 0 with an empty id: refused in 3.1.1 [MQTT-3.1.3-8], allowed in MQTT 5 (mqtt-packet will
  // not encode it, so the CONNECT is written by hand: v5, flags 0, keepalive 30, no properties, id "").
  const persistent = await RawClient.connect(tb.broker.port, { protocolVersion: 5 });
  t.teardown(() => persistent.close());
  persistent.socket.write(Buffer.from([0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 5, 0, 0, 30, 0, 0, 0]));
  const accepted = await persistent.waitFor((p) => p.cmd === 'connack');
  t.equal((accepted as { reasonCode?: number }).reasonCode, 0, 'empty id without Clean Start: accepted in MQTT 5');
  t.match(propsOf(accepted).assignedClientIdentifier, /.+/);
});

t.test('topic alias from the client; an alias over the maximum gets DISCONNECT 0x94', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const sub = await connect(tb.url, v5);
  t.teardown(() => closeClient(sub));
  const inbox = collect(sub);
  await sub.subscribeAsync('alias/#', { qos: 0 });
  const { raw } = await rawV5(tb.broker.port);
  t.teardown(() => raw.close());
  raw.send({ cmd: 'publish', topic: 'alias/long/topic', payload: Buffer.from('1'), qos: 0, retain: false, dup: false, properties: { topicAlias: 3 } });
  raw.send({ cmd: 'publish', topic: '', payload: Buffer.from('2'), qos: 0, retain: false, dup: false, properties: { topicAlias: 3 } });
  const got = await inbox.next(2);
  t.same(
    got.map((m) => `${m.topic}=${m.payload}`),
    ['alias/long/topic=1', 'alias/long/topic=2'],
  );
  raw.send({ cmd: 'publish', topic: 'alias/x', payload: Buffer.from('3'), qos: 0, retain: false, dup: false, properties: { topicAlias: MQTT5_LIMITS.topicAliasMaximum + 1 } });
  const disconnect = await raw.waitFor((p) => p.cmd === 'disconnect');
  t.equal((disconnect as { reasonCode?: number }).reasonCode, 0x94);
});

t.test('maximum packet size: the broker never sends a client a larger packet than it accepts', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const small = await connect(tb.url, { ...v5, properties: { maximumPacketSize: 200 } });
  const pub = await connect(tb.url, v5);
  t.teardown(() => Promise.all([closeClient(small), closeClient(pub)]));
  const inbox = collect(small);
  await small.subscribeAsync('mps/#', { qos: 1 });
  await pub.publishAsync('mps/big', Buffer.alloc(1000, 97), { qos: 1 });
  await pub.publishAsync('mps/big0', Buffer.alloc(1000, 97), { qos: 0 });
  await pub.publishAsync('mps/small', 'fits', { qos: 1 });
  const [first] = await inbox.next(1);
  t.equal(first?.topic, 'mps/small', 'the oversized messages were discarded, the next one delivered');
});

t.test('will delay: the will arrives without the Will Delay Interval property', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { raw: watcher } = await rawV5(tb.broker.port, { clientId: 'watcher' });
  t.teardown(() => watcher.close());
  watcher.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'will/#', qos: 1 }] } as Packet);
  await watcher.waitFor((p) => p.cmd === 'suback');
  const { raw: dying } = await rawV5(tb.broker.port, {
    clientId: 'dying',
    properties: { sessionExpiryInterval: 10 },
    will: { topic: 'will/dying', payload: Buffer.from('gone'), qos: 1, retain: false, properties: { willDelayInterval: 1, contentType: 'text/plain' } },
  });
  dying.close();
  const will = (await watcher.waitFor((p) => p.cmd === 'publish', 10_000)) as IPublishPacket;
  t.equal(will.payload.toString(), 'gone');
  t.equal(will.properties?.contentType, 'text/plain', 'the will properties that belong on a PUBLISH are kept');
  t.notOk('willDelayInterval' in (will.properties ?? {}), 'no Will Delay Interval on the PUBLISH');
});

t.test('message expiry with LevelDB persistence: expired messages are not delivered from the queue, properties survive', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const session = { ...v5, clientId: 'expiry-sub', clean: false, properties: { sessionExpiryInterval: 300 } };
  const sub = await connect(tb.url, session);
  await sub.subscribeAsync('exp/#', { qos: 1 });
  await closeClient(sub);
  const pub = await connect(tb.url, v5);
  t.teardown(() => closeClient(pub));
  await pub.publishAsync('exp/short', 'expires', { qos: 1, properties: { messageExpiryInterval: 1 } });
  await pub.publishAsync('exp/long', 'keeps', { qos: 1, properties: { messageExpiryInterval: 120, contentType: 'text/plain', userProperties: { a: '1' } } });
  await sleep(2200); // the short message's lifetime passes while it is queued
  const again = await connect(tb.url, session);
  t.teardown(() => closeClient(again));
  const packets: IPublishPacket[] = [];
  again.on('message', (_topic, _payload, packet) => packets.push(packet));
  t.ok(await until(() => packets.some((p) => p.topic === 'exp/long'), 5000), 'the live message arrives');
  t.same(
    packets.map((p) => p.topic),
    ['exp/long'],
    'the expired one (queued before it) was not delivered',
  );
  const long = packets[0]!;
  t.ok((long.properties?.messageExpiryInterval ?? 0) <= 118, 'remaining lifetime, not the original 120 s');
  t.equal(long.properties?.contentType, 'text/plain');
  t.same(long.properties?.userProperties, { a: '1' });
});

t.test('server DISCONNECT with a reason: session takeover 0x8E, broker stop 0x8B', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { raw: first } = await rawV5(tb.broker.port, { clientId: 'same-id' });
  const { raw: second } = await rawV5(tb.broker.port, { clientId: 'same-id' });
  t.teardown(() => second.close());
  const takeover = await first.waitFor((p) => p.cmd === 'disconnect');
  t.equal((takeover as { reasonCode?: number }).reasonCode, 0x8e, 'session taken over');
  const stopping = tb.broker.stop();
  const shutdown = await second.waitFor((p) => p.cmd === 'disconnect');
  t.equal((shutdown as { reasonCode?: number }).reasonCode, 0x8b, 'server shutting down');
  await stopping;
});

t.test('session expiry survives a restart: an expired session is gone, a live one is still there', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-expiry-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = await startTestBroker({ stateDir: dir });
  const short = await connect(first.url, { ...v5, clientId: 'short-lived', clean: false, properties: { sessionExpiryInterval: 1 } });
  const long = await connect(first.url, { ...v5, clientId: 'long-lived', clean: false, properties: { sessionExpiryInterval: 3600 } });
  await short.subscribeAsync('exp/short', { qos: 1 });
  await long.subscribeAsync('exp/long', { qos: 1 });
  await closeClient(short);
  // long-lived is still connected when the broker stops: its deadline is kept too.
  await first.close();
  await sleep(1500); // the short session's interval passes while the broker is stopped

  const second = await startTestBroker({ stateDir: dir });
  t.teardown(() => second.close());
  const { raw: shortAgain, connack: shortConnack } = await rawV5(second.broker.port, { clientId: 'short-lived', clean: false, properties: { sessionExpiryInterval: 60 } });
  t.teardown(() => shortAgain.close());
  t.equal((shortConnack as { sessionPresent?: boolean }).sessionPresent, false, 'the expired session was ended at start');
  const { raw: longAgain, connack: longConnack } = await rawV5(second.broker.port, { clientId: 'long-lived', clean: false, properties: { sessionExpiryInterval: 60 } });
  t.teardown(() => longAgain.close());
  t.equal((longConnack as { sessionPresent?: boolean }).sessionPresent, true, 'the live session is still there');
  await second.broker.publish('exp/long', 'kept', { qos: 1 });
  const delivered = await longAgain.waitFor((p) => p.cmd === 'publish');
  t.equal((delivered as IPublishPacket).topic, 'exp/long', 'with its subscription');
});

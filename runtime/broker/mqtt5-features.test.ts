/**
 * The MQTT 5 features clawbox adds on top of aedes 2.0 beta (connection-extensions.ts): shared
 * subscriptions, outbound flow control (the client's Receive Maximum), broker → client topic aliases and
 * PUBCOMP 0x92 and delayed wills across a restart, each with real clients: mqtt.js (`protocolVersion: 5` and 3.1.1), mosquitto_sub -V 5, and
 * a raw socket client that sees the exact packets and can withhold its acknowledgements.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { IPublishPacket, Packet } from 'mqtt-packet';
import { hashPassword } from '../auth/password.js';
import { RawClient, closeClient, collect, connect, startTestBroker, until } from '../../app/testing/broker.js';
import { makeTestContext } from '../../app/testing/test-context.js';
import { freePort } from '../../test/free-port.js';
import { Broker } from './broker.js';

const run = promisify(execFile);
const v5 = { protocolVersion: 5 } as const;
type Props = Record<string, unknown>;
const propsOf = (packet: Packet): Props => ((packet as { properties?: Props }).properties ?? {}) as Props;
const reasonOf = (packet: Packet): number | undefined => (packet as { reasonCode?: number }).reasonCode;

async function rawV5(port: number, connect: Record<string, unknown> = {}): Promise<{ raw: RawClient; connack: Packet }> {
  const raw = await RawClient.connect(port, { protocolVersion: 5 });
  raw.send({ cmd: 'connect', protocolVersion: 5, clientId: `raw-${Math.random().toString(36).slice(2)}`, clean: true, keepalive: 30, ...connect } as Packet);
  const connack = await raw.waitFor((p) => p.cmd === 'connack');
  return { raw, connack };
}

async function rawSubscribe(raw: RawClient, topic: string, qos: 0 | 1 | 2, extra: Record<string, unknown> = {}): Promise<Packet> {
  const messageId = 100 + raw.received.length;
  raw.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos, ...extra }] } as Packet);
  return raw.waitFor((p) => p.cmd === 'suback' && p.messageId === messageId);
}

const publishes = (raw: RawClient): IPublishPacket[] => raw.received.filter((p): p is IPublishPacket => p.cmd === 'publish');

t.test('shared subscriptions: round-robin within each group, ordinary subscribers get everything, QoS per member', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { raw, connack } = await rawV5(tb.broker.port);
  t.teardown(() => raw.close());
  t.equal(propsOf(connack).sharedSubscriptionAvailable, true, 'CONNACK: Shared Subscription Available = 1');

  const a = await connect(tb.url, v5);
  const b = await connect(tb.url, v5);
  const c = await connect(tb.url); // MQTT 3.1.1 member of the same group
  const h = await connect(tb.url, v5);
  const plain = await connect(tb.url, v5);
  const pub = await connect(tb.url, v5);
  t.teardown(() => Promise.all([a, b, c, h, plain, pub].map(closeClient)));
  const inboxes = [a, b, c, h, plain].map(collect);
  await a.subscribeAsync('$share/workers/jobs/#', { qos: 1 });
  await b.subscribeAsync('$share/workers/jobs/#', { qos: 1 });
  await c.subscribeAsync('$share/workers/jobs/#', { qos: 0 });
  await h.subscribeAsync('$share/audit/jobs/+', { qos: 1 });
  await plain.subscribeAsync('jobs/#', { qos: 1 });
  for (let i = 0; i < 30; i++) await pub.publishAsync(`jobs/${i}`, String(i), { qos: 1 });

  const [ia, ib, ic, ih, iplain] = inboxes as [ReturnType<typeof collect>, ReturnType<typeof collect>, ReturnType<typeof collect>, ReturnType<typeof collect>, ReturnType<typeof collect>];
  await ih.next(30);
  await iplain.next(30);
  await Promise.all([ia.next(10), ib.next(10), ic.next(10)]);
  const members = [ia, ib, ic].map((inbox) => inbox.all.map((m) => Number(m.payload)));
  t.same(members.map((m) => m.length), [10, 10, 10], 'each member of the group got a third');
  t.same(members.flat().sort((x, y) => x - y), [...Array(30).keys()], 'together exactly every message, none twice');
  t.same(members[0], [0, 3, 6, 9, 12, 15, 18, 21, 24, 27], 'in turn');
  t.ok(ia.all.every((m) => m.qos === 1), 'QoS 1 member: QoS 1');
  t.ok(ic.all.every((m) => m.qos === 0), 'QoS 0 member: QoS 0');
  t.equal(ih.all.length, 30, 'the other group gets every message too');
  t.equal(iplain.all.length, 30, 'an ordinary subscriber gets every message');
  const status = (await tb.test.ctx.status.snapshot()).broker as { mqtt5: { shared_groups: number; shared_members: number } };
  t.same(status.mqtt5, { shared_groups: 2, shared_members: 4, flow_queue_dropped: 0 }, 'status: groups and members');

  // Unsubscribing leaves the group to the others.
  await b.unsubscribeAsync('$share/workers/jobs/#');
  await c.unsubscribeAsync('$share/workers/jobs/#');
  await pub.publishAsync('jobs/after', 'after', { qos: 1 });
  await ia.next(11);
  t.equal(ia.all[10]?.payload, 'after', 'the last member gets what the others would have');
  await iplain.next(31);
  t.equal(ib.all.length + ic.all.length, 20, 'the ones that left got nothing more');
});

t.test('shared subscriptions: no retained messages on subscribe; no local and malformed names are protocol errors', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const pub = await connect(tb.url, v5);
  const member = await connect(tb.url, v5);
  const plain = await connect(tb.url, v5);
  t.teardown(() => Promise.all([pub, member, plain].map(closeClient)));
  await pub.publishAsync('keep/a', 'retained', { qos: 1, retain: true });
  const memberInbox = collect(member);
  const plainInbox = collect(plain);
  await plain.subscribeAsync('keep/#', { qos: 1 });
  t.equal((await plainInbox.next(1))[0]?.payload, 'retained', 'an ordinary subscribe gets the retained message');
  await member.subscribeAsync('$share/g/keep/#', { qos: 1 });
  await pub.publishAsync('keep/b', 'live', { qos: 1 });
  const first = await memberInbox.next(1);
  t.equal(first[0]?.payload, 'live', 'the shared subscriber gets live messages...');
  t.equal(memberInbox.all.length, 1, '...and never the retained one [MQTT-4.8.2]');

  const { raw: nl } = await rawV5(tb.broker.port);
  t.teardown(() => nl.close());
  nl.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/x', qos: 1, nl: true }] } as Packet);
  const disconnect = await nl.waitFor((p) => p.cmd === 'disconnect');
  t.equal(reasonOf(disconnect), 0x82, 'no local on a shared subscription: DISCONNECT 0x82');
  t.match(propsOf(disconnect).reasonString, /no local/);

  for (const bad of ['$share/g', '$share//x', '$share/g+/x', '\u0000share/g/x']) {
    const { raw } = await rawV5(tb.broker.port);
    t.teardown(() => raw.close());
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: bad, qos: 0 }] } as Packet);
    t.equal(reasonOf(await raw.waitFor((p) => p.cmd === 'disconnect')), 0x82, `${JSON.stringify(bad)}: DISCONNECT 0x82`);
  }
});

t.test('shared subscriptions: ACLs apply to the inner filter', async (t) => {
  const hash = await hashPassword('ann-secret');
  const tb = await startTestBroker({
    config: { broker: { anonymous: 'never', users: [{ username: 'ann', password_hash: hash, publish: ['ann/#'], subscribe: ['ann/#'] }] } },
  });
  t.teardown(() => tb.close());
  const ann = await connect(tb.url, { ...v5, username: 'ann', password: 'ann-secret' });
  t.teardown(() => closeClient(ann));
  // mqtt.js rejects a SUBSCRIBE with any refused filter; the SUBACK rides on the error.
  const suback = await ann.subscribeAsync(['$share/g/ann/#', '$share/g/bob/#'], { qos: 1 }).then(
    () => null,
    (error: { packet?: { granted?: number[] } }) => error.packet,
  );
  t.same(
    suback?.granted,
    [1, 0x87],
    'allowed inner filter granted, another user’s refused with 0x87',
  );
  const inbox = collect(ann);
  await ann.publishAsync('ann/x', 'mine', { qos: 1 });
  t.equal((await inbox.next(1))[0]?.payload, 'mine');
});

t.test('shared subscriptions: a member that leaves without acknowledging hands its messages to another member', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { raw } = await rawV5(tb.broker.port);
  t.teardown(() => raw.close());
  await rawSubscribe(raw, '$share/g/leave/#', 1);
  const stays = await connect(tb.url, v5);
  const pub = await connect(tb.url, v5);
  t.teardown(() => Promise.all([stays, pub].map(closeClient)));
  const inbox = collect(stays);
  await stays.subscribeAsync('$share/g/leave/#', { qos: 1 });
  for (let i = 0; i < 6; i++) await pub.publishAsync(`leave/${i}`, String(i), { qos: 1 });
  t.ok(await until(() => publishes(raw).length === 3), 'the raw member got its three (and acknowledges none)');
  await inbox.next(3);
  raw.close();
  const all = await inbox.next(6, 5000);
  t.same(all.map((m) => Number(m.payload)).sort(), [0, 1, 2, 3, 4, 5], 'the remaining member ends up with every message');
});

t.test('shared subscriptions in a persistent session: restored at reconnect; an unacknowledged message stays in the session', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const session = { clientId: 'shared-keeper', clean: false, properties: { sessionExpiryInterval: 300 } };
  const first = await rawV5(tb.broker.port, session);
  await rawSubscribe(first.raw, '$share/p/pers/#', 1);
  const pub = await connect(tb.url, v5);
  t.teardown(() => closeClient(pub));
  await pub.publishAsync('pers/1', 'one', { qos: 1 });
  const sent = (await first.raw.waitFor((p) => p.cmd === 'publish')) as IPublishPacket;
  t.equal(sent.payload.toString(), 'one', 'the only member gets it, and does not acknowledge it');
  first.raw.close();
  await first.raw.waitForClose();

  const again = await rawV5(tb.broker.port, session);
  t.teardown(() => again.raw.close());
  t.equal((again.connack as { sessionPresent?: boolean }).sessionPresent, true, 'session present');
  const resent = (await again.raw.waitFor((p) => p.cmd === 'publish')) as IPublishPacket;
  t.equal(resent.payload.toString(), 'one', 'the unacknowledged message comes again from the session');
  t.equal(resent.dup, true, 'as a duplicate');
  again.raw.send({ cmd: 'puback', messageId: resent.messageId! } as Packet);
  await pub.publishAsync('pers/2', 'two', { qos: 1 });
  const live = (await again.raw.waitFor((p) => p.cmd === 'publish' && (p as IPublishPacket).payload.toString() === 'two')) as IPublishPacket;
  t.equal(live.qos, 1, 'the restored shared subscription delivers without a new SUBSCRIBE');
});

t.test('shared subscriptions with mosquitto_sub -V 5 as a member', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const port = String(tb.broker.port);
  const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-V', '5', '-t', '$share/mix/cli/#', '-q', '1', '-C', '2', '-W', '20', '-F', '%t=%p']);
  let out = '';
  sub.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => sub.on('exit', resolve));
  t.teardown(() => sub.kill());
  const other = await connect(tb.url, v5);
  const pub = await connect(tb.url, v5);
  t.teardown(() => Promise.all([other, pub].map(closeClient)));
  const inbox = collect(other);
  await other.subscribeAsync('$share/mix/cli/#', { qos: 1 });
  // Until mosquitto_sub has subscribed, the mqtt.js member gets everything; then they alternate.
  let i = 0;
  while (out.split('\n').filter(Boolean).length < 2 && i < 200) {
    await pub.publishAsync(`cli/${i}`, String(i), { qos: 1 });
    i++;
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 50))]);
  }
  t.equal(await exited, 0, 'mosquitto_sub got two messages as a member');
  const cli = out.trim().split('\n').map((line) => Number(line.split('=')[1]));
  await inbox.next(i - 2);
  const js = inbox.all.map((m) => Number(m.payload));
  t.same([...cli, ...js].sort((x, y) => x - y), [...Array(i).keys()], 'each message to exactly one of the two');
});

t.test('shared subscriptions with paho-mqtt (MQTTv5 and 3.1.1 members)', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const script = path.join(import.meta.dirname, 'testing', 'paho_shared_check.py');
  const { stdout } = await run('/usr/bin/python3', [script, String(tb.broker.port)], { timeout: 60_000 });
  const seen = JSON.parse(stdout.trim().split('\n').pop()!) as { shared_available: number; members: number[][]; no_local_disconnect_rc: number };
  t.equal(seen.shared_available, 1, 'paho reads Shared Subscription Available = 1');
  t.same(seen.members.map((m) => m.length), [4, 4, 4], 'three members, a third each');
  t.same(seen.members.flat().sort((x, y) => x - y), [...Array(12).keys()], 'every message to exactly one member');
  t.equal(seen.no_local_disconnect_rc, 0x82, 'No Local on a shared subscription: paho is disconnected with 0x82');
});

t.test("outbound flow control: never more unacknowledged QoS 1/2 messages than the client's Receive Maximum", async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { raw } = await rawV5(tb.broker.port, { properties: { receiveMaximum: 2 } });
  t.teardown(() => raw.close());
  await rawSubscribe(raw, 'flow/#', 2);
  const pub = await connect(tb.url, v5);
  t.teardown(() => closeClient(pub));
  for (let i = 0; i < 6; i++) await pub.publishAsync('flow/q', `m${i}`, { qos: i < 4 ? 1 : 2 });
  // QoS 0 is outside the window: its arrival is the marker that the broker has sent what it would.
  const marker = async (n: number): Promise<void> => {
    await pub.publishAsync('flow/marker', `mark${n}`, { qos: 0 });
    await raw.waitFor((p) => p.cmd === 'publish' && (p as IPublishPacket).payload.toString() === `mark${n}`);
  };
  const qosPublishes = (): IPublishPacket[] => publishes(raw).filter((p) => p.qos > 0);
  await marker(0);
  t.same(qosPublishes().map((p) => p.payload.toString()), ['m0', 'm1'], 'two in flight, the rest held');
  raw.send({ cmd: 'puback', messageId: qosPublishes()[0]!.messageId! } as Packet);
  await raw.waitFor((p) => p.cmd === 'publish' && (p as IPublishPacket).payload.toString() === 'm2');
  await marker(1);
  t.equal(qosPublishes().length, 3, 'one acknowledgement, one more message');
  for (const p of qosPublishes().slice(1)) raw.send({ cmd: 'puback', messageId: p.messageId! } as Packet);
  await raw.waitFor((p) => p.cmd === 'publish' && (p as IPublishPacket).payload.toString() === 'm4');
  raw.send({ cmd: 'puback', messageId: qosPublishes()[3]!.messageId! } as Packet);
  await raw.waitFor((p) => p.cmd === 'publish' && (p as IPublishPacket).payload.toString() === 'm5');
  t.same(qosPublishes().map((p) => p.payload.toString()), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'], 'in order');
  const [m4, m5] = qosPublishes().slice(4);
  // QoS 2: the slot stays taken after PUBREC, until PUBCOMP.
  await pub.publishAsync('flow/q', 'm6', { qos: 1 });
  raw.send({ cmd: 'pubrec', messageId: m4!.messageId! } as Packet);
  await raw.waitFor((p) => p.cmd === 'pubrel' && p.messageId === m4!.messageId);
  await marker(2);
  t.equal(qosPublishes().length, 6, 'PUBREC does not free the slot');
  raw.send({ cmd: 'pubcomp', messageId: m4!.messageId! } as Packet);
  await raw.waitFor((p) => p.cmd === 'publish' && (p as IPublishPacket).payload.toString() === 'm6');
  // A failing PUBREC (≥ 0x80) ends the QoS 2 flow and frees the slot.
  await pub.publishAsync('flow/q', 'm7', { qos: 1 });
  raw.send({ cmd: 'pubrec', messageId: m5!.messageId!, reasonCode: 0x80 } as Packet);
  await raw.waitFor((p) => p.cmd === 'publish' && (p as IPublishPacket).payload.toString() === 'm7');
  t.pass('a failing PUBREC frees the slot');

  // An MQTT 3.1.1 client has no window: everything at once.
  const old = await RawClient.connect(tb.broker.port);
  t.teardown(() => old.close());
  old.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'old-flow', clean: true, keepalive: 30 });
  await old.waitFor((p) => p.cmd === 'connack');
  old.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flow3/#', qos: 1 }] } as Packet);
  await old.waitFor((p) => p.cmd === 'suback');
  for (let i = 0; i < 5; i++) await pub.publishAsync('flow3/q', `o${i}`, { qos: 1 });
  t.ok(await until(() => publishes(old).length === 5), '3.1.1: all five without acknowledgements');
});

t.test('outbound flow control: a full queue (broker.max_queued_messages) drops what comes beyond it, in order before it', async (t) => {
  const limit = 20;
  const tb = await startTestBroker({ config: { broker: { max_queued_messages: limit } } });
  t.teardown(() => tb.close());
  const { raw } = await rawV5(tb.broker.port, { properties: { receiveMaximum: 1 } });
  t.teardown(() => raw.close());
  await rawSubscribe(raw, 'full/#', 1);
  const pub = await connect(tb.url, v5);
  t.teardown(() => closeClient(pub));
  const total = 1 + limit + 1; // one in flight, a full queue, one too many
  await Promise.all(Array.from({ length: total }, (_, k) => pub.publishAsync('full/q', String(k), { qos: 1 })));
  // Acknowledge each message as it comes: the queue drains one by one.
  for (let n = 1; n <= total - 1; n++) {
    const p = (await raw.waitFor((q) => q.cmd === 'publish' && publishes(raw).length >= n, 20_000)) && publishes(raw)[n - 1]!;
    raw.send({ cmd: 'puback', messageId: p.messageId! } as Packet);
  }
  await pub.publishAsync('full/marker', 'marker', { qos: 0 });
  await raw.waitFor((p) => p.cmd === 'publish' && (p as IPublishPacket).topic === 'full/marker');
  const got = publishes(raw).filter((p) => p.topic === 'full/q').map((p) => Number(p.payload.toString()));
  t.equal(got.length, total - 1, 'everything up to the limit arrived');
  t.same(got, [...Array(total - 1).keys()], 'in order; the one beyond the queue was not sent (a clean session loses it)');
  const status = (await tb.test.ctx.status.snapshot()).broker as { mqtt5: { flow_queue_dropped: number } };
  t.equal(status.mqtt5.flow_queue_dropped, 1, 'counted in the status');
});

t.test('broker → client topic aliases: assigned when the client allows them, least recently used reused', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { raw } = await rawV5(tb.broker.port, { properties: { topicAliasMaximum: 2 } });
  const { raw: none } = await rawV5(tb.broker.port);
  t.teardown(() => {
    raw.close();
    none.close();
  });
  await rawSubscribe(raw, 'alias/#', 0);
  await rawSubscribe(none, 'alias/#', 0);
  const pub = await connect(tb.url, v5);
  t.teardown(() => closeClient(pub));
  for (const topic of ['alias/a', 'alias/a', 'alias/b', 'alias/c', 'alias/a', 'alias/c']) await pub.publishAsync(topic, topic, { qos: 0 });
  t.ok(await until(() => publishes(raw).length === 6 && publishes(none).length === 6), 'all six arrive at both');
  const seen = publishes(raw).map((p) => [p.topic, p.properties?.topicAlias, p.payload.toString()]);
  t.same(
    seen,
    [
      ['alias/a', 1, 'alias/a'],
      ['', 1, 'alias/a'],
      ['alias/b', 2, 'alias/b'],
      ['alias/c', 1, 'alias/c'], // alias/a was least recently used
      ['alias/a', 2, 'alias/a'],
      ['', 1, 'alias/c'],
    ],
    'topic + alias first, alias only afterwards, LRU reuse within the maximum',
  );
  t.ok(
    publishes(none).every((p) => p.topic.startsWith('alias/') && p.properties?.topicAlias === undefined),
    'a client that allows none never gets one',
  );

  // mqtt.js resolves the aliases (QoS 1, through the flow-control path too).
  const js = await connect(tb.url, { ...v5, properties: { topicAliasMaximum: 4 } });
  t.teardown(() => closeClient(js));
  const topics: string[] = [];
  const aliases: unknown[] = [];
  js.on('message', (topic, _payload, packet) => {
    topics.push(topic);
    aliases.push(packet.properties?.topicAlias);
  });
  await js.subscribeAsync('alias2/#', { qos: 1 });
  for (const topic of ['alias2/x', 'alias2/x', 'alias2/y', 'alias2/x']) await pub.publishAsync(topic, 'p', { qos: 1 });
  t.ok(await until(() => topics.length === 4));
  t.same(topics, ['alias2/x', 'alias2/x', 'alias2/y', 'alias2/x'], 'mqtt.js sees the real topics');
  t.ok(aliases.every((a) => typeof a === 'number'), 'delivered with aliases');
});

t.test('PUBREL for an unknown packet identifier: PUBCOMP 0x92; a known one: 0x00', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { raw } = await rawV5(tb.broker.port);
  t.teardown(() => raw.close());
  raw.send({ cmd: 'pubrel', messageId: 42 } as Packet);
  t.equal(reasonOf(await raw.waitFor((p) => p.cmd === 'pubcomp' && p.messageId === 42)), 0x92, 'Packet Identifier not found');
  raw.send({ cmd: 'publish', topic: 'q2/a', payload: Buffer.from('x'), qos: 2, messageId: 7, retain: false, dup: false });
  await raw.waitFor((p) => p.cmd === 'pubrec' && p.messageId === 7);
  raw.send({ cmd: 'pubrel', messageId: 7 } as Packet);
  t.notOk(reasonOf(await raw.waitFor((p) => p.cmd === 'pubcomp' && p.messageId === 7)), 'a completed QoS 2 flow: success');
  raw.send({ cmd: 'pubrel', messageId: 7 } as Packet);
  await raw.waitFor((p) => p.cmd === 'pubcomp' && p.messageId === 7 && reasonOf(p) === 0x92);
  t.pass('the same PUBREL again: 0x92');
  t.notOk(raw.closed, 'the connection stays');

  const old = await RawClient.connect(tb.broker.port);
  t.teardown(() => old.close());
  old.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'old-pubrel', clean: true, keepalive: 30 });
  await old.waitFor((p) => p.cmd === 'connack');
  old.send({ cmd: 'pubrel', messageId: 9 } as Packet);
  await old.waitFor((p) => p.cmd === 'pubcomp' && p.messageId === 9);
  t.pass('3.1.1: a plain PUBCOMP');
});

t.test('delayed wills survive a restart: published after the delay, or at session end if sooner; a reconnect cancels', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-wills-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = await startTestBroker({ stateDir: dir });
  // The watcher is a persistent session: a will published while it is away waits in its queue.
  const watcherSession = { ...v5, clientId: 'will-watcher', clean: false, properties: { sessionExpiryInterval: 3600 } };
  const watcher = await connect(first.url, watcherSession);
  await watcher.subscribeAsync('wills/#', { qos: 1 });
  await closeClient(watcher);
  const willOf = (name: string, delay: number) => ({
    topic: `wills/${name}`,
    payload: Buffer.from(`${name} gone`),
    qos: 1 as const,
    retain: false,
    properties: { willDelayInterval: delay, contentType: 'text/plain' },
  });
  const clients = [
    // The delay ends first.
    await connect(first.url, { ...v5, clientId: 'by-delay', clean: false, will: willOf('by-delay', 8), properties: { sessionExpiryInterval: 3600 } }),
    // The session ends first.
    await connect(first.url, { ...v5, clientId: 'by-session', clean: false, will: willOf('by-session', 3600), properties: { sessionExpiryInterval: 4 } }),
    // Comes back before its delay ends.
    await connect(first.url, { ...v5, clientId: 'comes-back', clean: false, will: willOf('comes-back', 5), properties: { sessionExpiryInterval: 3600 } }),
  ];
  const stoppedAt = Date.now();
  await first.close(); // the three are connected when the broker stops
  for (const c of clients) c.end(true);

  const second = await startTestBroker({ stateDir: dir });
  t.teardown(() => second.close());
  const back = await connect(second.url, { ...v5, clientId: 'comes-back', clean: false, properties: { sessionExpiryInterval: 3600 } });
  t.teardown(() => closeClient(back));
  const again = await connect(second.url, watcherSession);
  t.teardown(() => closeClient(again));
  const arrived: { topic: string; at: number; props: Props }[] = [];
  again.on('message', (topic, _payload, packet) => arrived.push({ topic, at: Date.now(), props: (packet.properties ?? {}) as Props }));
  t.ok(await until(() => arrived.some((m) => m.topic === 'wills/by-delay'), 20_000), 'the will whose delay ended arrives');
  t.same(
    arrived.map((m) => m.topic),
    ['wills/by-session', 'wills/by-delay'],
    'the session that ended first published its will first; the client that came back published none',
  );
  const byDelay = arrived.find((m) => m.topic === 'wills/by-delay')!;
  t.ok(byDelay.at - stoppedAt >= 7_900, 'not before its delay (counted from the disconnect at the stop)');
  t.ok(arrived.find((m) => m.topic === 'wills/by-session')!.at - stoppedAt >= 3_900, 'the session-end will not before the session ended');
  t.equal(byDelay.props.contentType, 'text/plain', 'will properties kept');
  t.notOk('willDelayInterval' in byDelay.props, 'no Will Delay Interval on the PUBLISH');
});

t.test('cluster mode (real redis-server): shared subscriptions announced unavailable and refused', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-redis-'));
  const port = await freePort();
  const redis = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  t.teardown(() => {
    redis.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const test = makeTestContext();
  const broker = new Broker({
    cluster: { redis: { host: '127.0.0.1', port, db: 0, connectTimeoutMs: 15_000 }, replicaId: 'replica-a', waitReplicas: 0, waitTimeoutMs: 1000 },
  });
  await broker.start(test.ctx);
  t.teardown(async () => {
    await broker.stop();
    test.cleanup();
  });
  const { raw, connack } = await rawV5(broker.port);
  t.teardown(() => raw.close());
  t.equal(propsOf(connack).sharedSubscriptionAvailable, false, 'CONNACK: Shared Subscription Available = 0');
  const suback = await rawSubscribe(raw, '$share/g/x/#', 1);
  t.same((suback as { granted?: number[] }).granted, [0x9e], 'MQTT 5: 0x9E Shared Subscriptions not supported');
  const old = await connect(`mqtt://127.0.0.1:${broker.port}`);
  t.teardown(() => closeClient(old));
  const refused = await old.subscribeAsync('$share/g/x/#', { qos: 1 }).then(
    (granted) => granted.map((g) => g.qos),
    (error: { packet?: { granted?: number[] } }) => error.packet?.granted,
  );
  t.same(refused, [0x80], 'MQTT 3.1.1: failure 0x80');
});

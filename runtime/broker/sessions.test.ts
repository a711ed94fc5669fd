/**
 * Sessions, persistence across restarts, QoS 1/2 redelivery and keepalive, with raw MQTT clients where
 * the test has to withhold acknowledgements or pings.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { IPublishPacket } from 'mqtt-packet';
import t from 'tap';
import { hashPassword } from '../auth/password.js';
import { RawClient, closeClient, collect, connect, sleep, startTestBroker } from '../../app/testing/broker.js';

function tempState(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-broker-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function rawConnect(raw: RawClient, clientId: string, clean: boolean, keepalive = 0): void {
  raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean, keepalive });
}

const isPublish = (p: { cmd: string }): boolean => p.cmd === 'publish';

t.test('retained messages and a persistent QoS 1 session survive a restart', async (t) => {
  const stateDir = tempState(t);
  const first = await startTestBroker({ stateDir });
  const sessionClient = await connect(first.url, { clientId: 'keeper', clean: false });
  await sessionClient.subscribeAsync('queue/#', { qos: 1 });
  await closeClient(sessionClient);
  const pub = await connect(first.url);
  await pub.publishAsync('keep/me', 'retained-across-restart', { qos: 1, retain: true });
  await pub.publishAsync('queue/job', 'queued-while-offline', { qos: 1 });
  await closeClient(pub);
  await first.close();

  const second = await startTestBroker({ stateDir });
  t.teardown(() => second.close());
  const back = await connect(second.url, { clientId: 'keeper', clean: false });
  t.teardown(() => closeClient(back));
  const inbox = collect(back);
  const [queued] = await inbox.next(1);
  t.same(queued, { topic: 'queue/job', payload: 'queued-while-offline', qos: 1, retain: false });
  // A message published after the restart still reaches the stored subscription.
  await second.broker.publish('queue/job2', 'after-restart', { qos: 1 });
  const [, after] = await inbox.next(2);
  t.equal(after?.payload, 'after-restart');

  const reader = await connect(second.url);
  t.teardown(() => closeClient(reader));
  const retained = collect(reader);
  await reader.subscribeAsync('keep/#');
  t.equal((await retained.next(1))[0]?.payload, 'retained-across-restart');
});

/** Connects with a raw client and returns the CONNACK's session-present flag. */
async function sessionPresent(port: number, clientId: string, clean: boolean, then?: (raw: RawClient) => Promise<void>): Promise<boolean> {
  const raw = await RawClient.connect(port);
  try {
    rawConnect(raw, clientId, clean);
    const connack = (await raw.waitFor((p) => p.cmd === 'connack')) as { sessionPresent?: boolean };
    await then?.(raw);
    raw.send({ cmd: 'disconnect' });
    await raw.waitForClose();
    return connack.sessionPresent === true;
  } finally {
    raw.close();
  }
}

for (const persistence of [true, false]) {
  t.test(`session present [MQTT-3.2.2-2]: a persistent session without subscriptions is reported (persistence ${persistence ? 'on' : 'off'})`, async (t) => {
    const stateDir = tempState(t);
    const env = { CLAWBOX_BROKER_PERSISTENCE_ENABLED: String(persistence) };
    const tb = await startTestBroker({ stateDir, env });
    t.teardown(() => tb.close());
    const port = tb.broker.port;
    t.equal(await sessionPresent(port, 'no-subs', false), false, 'a new session is not present');
    t.equal(await sessionPresent(port, 'no-subs', false), true, 'the session without subscriptions is present on reconnect');
    // Subscribed, then unsubscribed from everything: still the same session.
    await sessionPresent(port, 'emptied', false, async (raw) => {
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'e/1', qos: 1 }] });
      await raw.waitFor((p) => p.cmd === 'suback');
      raw.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['e/1'] });
      await raw.waitFor((p) => p.cmd === 'unsuback');
    });
    t.equal(await sessionPresent(port, 'emptied', false), true, 'present after unsubscribing from everything');
    // The marker that carries the flag through aedes subscribes nothing.
    const status = (await tb.test.ctx.status.snapshot()).broker as { subscriptions: number };
    t.equal(status.subscriptions, 0, 'no subscription was made for it');
    // CleanSession = 1 discards the session [MQTT-3.1.2-6]; the next persistent connect starts a new one.
    t.equal(await sessionPresent(port, 'no-subs', true), false, 'clean session: never present [MQTT-3.2.2-1]');
    t.equal(await sessionPresent(port, 'no-subs', false), false, 'after a clean session, a new session');
    if (persistence) {
      await tb.close();
      const again = await startTestBroker({ stateDir, env });
      t.teardown(() => again.close());
      t.equal(await sessionPresent(again.broker.port, 'emptied', false), true, 'still present after a restart');
    }
  });
}

t.test('without persistence, retained messages are gone after a restart', async (t) => {
  const stateDir = tempState(t);
  const env = { CLAWBOX_BROKER_PERSISTENCE_ENABLED: 'false' };
  const first = await startTestBroker({ stateDir, env });
  await first.broker.publish('keep/me', 'x', { retain: true });
  await first.close();
  const second = await startTestBroker({ stateDir, env });
  t.teardown(() => second.close());
  const reader = await connect(second.url);
  t.teardown(() => closeClient(reader));
  const inbox = collect(reader);
  await reader.subscribeAsync('keep/#');
  await sleep(150);
  t.same(inbox.all, []);
  t.equal(((await second.test.ctx.status.snapshot()).broker as { persistence: string }).persistence, 'memory');
});

t.test('QoS 1: an unacknowledged message is redelivered with DUP on reconnect [MQTT-4.4.0-1]', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const port = tb.broker.port;
  const raw = await RawClient.connect(port);
  rawConnect(raw, 'slow-acker', false);
  await raw.waitFor((p) => p.cmd === 'connack');
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'r/1', qos: 1 }] });
  await raw.waitFor((p) => p.cmd === 'suback');
  await tb.broker.publish('r/1', 'please-ack', { qos: 1 });
  const first = await raw.waitFor<IPublishPacket>(isPublish);
  t.equal(first.dup, false);
  raw.close(); // no PUBACK

  const again = await RawClient.connect(port);
  t.teardown(() => again.close());
  rawConnect(again, 'slow-acker', false);
  const connack = await again.waitFor((p) => p.cmd === 'connack');
  t.equal((connack as { sessionPresent?: boolean }).sessionPresent, true, 'session present');
  const redelivered = await again.waitFor<IPublishPacket>(isPublish);
  t.equal(redelivered.payload.toString(), 'please-ack');
  t.equal(redelivered.messageId, first.messageId, 'same packet identifier');
  t.equal(redelivered.dup, true, 'DUP set on the resend');
  again.send({ cmd: 'puback', messageId: redelivered.messageId! });
  again.send({ cmd: 'disconnect' });
  await again.waitForClose();

  // Acknowledged now: a third connection gets nothing.
  const third = await RawClient.connect(port);
  t.teardown(() => third.close());
  rawConnect(third, 'slow-acker', false);
  await third.waitFor((p) => p.cmd === 'connack');
  await sleep(200);
  t.equal(third.received.filter(isPublish).length, 0, 'not delivered again after PUBACK');
});

t.test('QoS 2: PUBREL is resent after reconnect, and a resent PUBLISH is not delivered twice', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const port = tb.broker.port;
  const watcher = await connect(tb.url);
  t.teardown(() => closeClient(watcher));
  const inbox = collect(watcher);
  await watcher.subscribeAsync('q2/#', { qos: 2 });

  // Outbound: the client received the PUBLISH and sent PUBREC, then dropped before PUBCOMP.
  const raw = await RawClient.connect(port);
  rawConnect(raw, 'q2-client', false);
  await raw.waitFor((p) => p.cmd === 'connack');
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'out/q2', qos: 2 }] });
  await raw.waitFor((p) => p.cmd === 'suback');
  await tb.broker.publish('out/q2', 'exactly-once', { qos: 2 });
  const pub = await raw.waitFor<IPublishPacket>(isPublish);
  raw.send({ cmd: 'pubrec', messageId: pub.messageId! });
  await raw.waitFor((p) => p.cmd === 'pubrel');

  // Inbound: the client sent PUBLISH (QoS 2), got PUBREC, then dropped before PUBREL.
  raw.send({ cmd: 'publish', topic: 'q2/in', payload: Buffer.from('once'), qos: 2, messageId: 7, retain: false, dup: false });
  await raw.waitFor((p) => p.cmd === 'pubrec' && p.messageId === 7);
  raw.close();

  const again = await RawClient.connect(port);
  t.teardown(() => again.close());
  rawConnect(again, 'q2-client', false);
  await again.waitFor((p) => p.cmd === 'connack');
  const pubrel = await again.waitFor((p) => p.cmd === 'pubrel');
  t.equal(pubrel.messageId, pub.messageId, 'PUBREL resent, not the PUBLISH');
  t.equal(again.received.filter(isPublish).length, 0, 'the message itself is not sent again');
  again.send({ cmd: 'pubcomp', messageId: pub.messageId! });

  again.send({ cmd: 'publish', topic: 'q2/in', payload: Buffer.from('once'), qos: 2, messageId: 7, retain: false, dup: true });
  await again.waitFor((p) => p.cmd === 'pubrec' && p.messageId === 7);
  again.send({ cmd: 'pubrel', messageId: 7 });
  await again.waitFor((p) => p.cmd === 'pubcomp' && p.messageId === 7);
  await inbox.next(1);
  await sleep(150);
  t.same(
    inbox.all.map((m) => m.payload),
    ['once'],
    'the resent QoS 2 PUBLISH was delivered once',
  );
});

t.test('keepalive: a client silent for 1.5x its keepalive is disconnected; a pinging one is not', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const watcher = await connect(tb.url);
  t.teardown(() => closeClient(watcher));
  const wills = collect(watcher);
  await watcher.subscribeAsync('ka/#');

  const silent = await RawClient.connect(tb.broker.port);
  t.teardown(() => silent.close());
  silent.send({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clientId: 'silent',
    clean: true,
    keepalive: 1,
    will: { topic: 'ka/silent', payload: Buffer.from('timed-out'), qos: 0, retain: false },
  });
  const pinging = await RawClient.connect(tb.broker.port);
  t.teardown(() => pinging.close());
  rawConnect(pinging, 'pinging', true, 1);
  await silent.waitFor((p) => p.cmd === 'connack');
  await pinging.waitFor((p) => p.cmd === 'connack');
  const timer = setInterval(() => pinging.send({ cmd: 'pingreq' }), 500);
  t.teardown(() => clearInterval(timer));

  await silent.waitForClose(5000);
  t.pass('silent client disconnected by the broker');
  t.equal((await wills.next(1))[0]?.payload, 'timed-out', 'its will was published');
  t.notOk(pinging.closed, 'the pinging client is still connected');
  t.ok(pinging.received.some((p) => p.cmd === 'pingresp'), 'and got PINGRESP');
});

t.test('a stored session cannot receive topics its user is no longer allowed after a config change', async (t) => {
  const stateDir = tempState(t);
  const hash = await hashPassword('pw');
  const user = (subscribe: string[]) => ({
    broker: { users: [{ username: 'cam', password_hash: hash, publish: [], subscribe }] },
  });
  const first = await startTestBroker({ stateDir, config: user(['news/#']) });
  const cam = await connect(first.url, { clientId: 'cam-1', clean: false, username: 'cam', password: 'pw' });
  await cam.subscribeAsync('news/#', { qos: 1 });
  await closeClient(cam);
  await first.broker.publish('news/secret', 'queued', { qos: 1 });
  await first.close();

  const second = await startTestBroker({ stateDir, config: user(['weather/#']) });
  t.teardown(() => second.close());
  const back = await connect(second.url, { clientId: 'cam-1', clean: false, username: 'cam', password: 'pw' });
  t.teardown(() => closeClient(back));
  const inbox = collect(back);
  await second.broker.publish('news/secret', 'live', { qos: 1 });
  await sleep(300);
  t.same(inbox.all, [], 'neither the queued nor a new message arrives');
});

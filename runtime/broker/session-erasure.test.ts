/**
 * A person's MQTT sessions under their data rights, on a real broker with its LevelDB store and real
 * mqtt.js clients: the export lists a persistent session's subscriptions, queued messages and will; the
 * erasure disconnects the person's connected clients without their wills and deletes their sessions, so a
 * reconnect with Clean Start 0 gets session present 0 and nothing queued, while other people's sessions
 * stay. What is left on disk is read back from the LevelDB itself after the broker stopped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import t from 'tap';
import { Redis } from 'ioredis';
import { closeClient, collect, connect, startTestBroker } from '../../app/testing/broker.js';
import { makeTestContext } from '../../app/testing/test-context.js';
import { startRedisServer } from '../../cluster/testing/redis-server.js';
import { hashPassword } from '../auth/password.js';
import { Broker } from './broker.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A state dir that outlives a broker, for restarts. */
function tempState(t: Teardown): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-erasure-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function users() {
  const user = async (username: string) => ({ username, password_hash: await hashPassword(`${username}-secret`), publish: ['#'], subscribe: ['#'] });
  return [await user('alice'), await user('bob')];
}

/** Connects and reports the CONNACK's session-present flag; messages are collected from the first one on. */
function connectSession(t: Teardown, url: string, options: IClientOptions) {
  return new Promise<{ client: MqttClient; sessionPresent: boolean; inbox: ReturnType<typeof collect> }>((resolve, reject) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
    t.teardown(() => closeClient(client));
    const inbox = collect(client);
    client.once('connect', (connack) => resolve({ client, sessionPresent: connack.sessionPresent, inbox }));
    client.once('error', reject);
  });
}

const login = (username: string, clientId: string, extra: IClientOptions = {}): IClientOptions => ({
  username,
  password: `${username}-secret`,
  clientId,
  clean: false,
  ...extra,
});

/** Every key of the broker's LevelDB that mentions `needle` (the broker must be stopped). */
async function storedKeysWith(stateDir: string, needle: string): Promise<string[]> {
  const db = new Level<string, string>(path.join(stateDir, 'broker'));
  await db.open();
  try {
    const found: string[] = [];
    for await (const [key, value] of db.iterator({ valueEncoding: 'binary' as never })) {
      if (key.includes(needle) || Buffer.from(value as unknown as Uint8Array).includes(needle)) found.push(key);
    }
    return found;
  } finally {
    await db.close();
  }
}

t.test('erasing a person deletes their persistent MQTT 3.1.1 session and its queued QoS 1 messages, not others\'', async (t) => {
  const stateDir = tempState(t);
  const config = { broker: { anonymous: 'never', users: await users() } };
  const first = await startTestBroker({ stateDir, config });
  t.teardown(() => first.close());

  // alice and bob each leave a persistent session behind; three QoS 1 messages are queued for both.
  for (const [user, clientId] of [['alice', 'alice-phone'], ['bob', 'bob-tablet']] as const) {
    const { client } = await connectSession(t, first.url, login(user, clientId));
    await client.subscribeAsync('home/+/alerts', { qos: 1 });
    await closeClient(client);
  }
  const pub = await connect(first.url, { username: 'bob', password: 'bob-secret' });
  t.teardown(() => closeClient(pub));
  for (const n of [1, 2, 3]) await pub.publishAsync('home/door/alerts', `door opened ${n}`, { qos: 1 });
  await closeClient(pub);

  const signal = new AbortController().signal;
  const exported = await first.broker.mqttSessionsOf('alice', signal);
  t.match(exported, [
    {
      client_id: 'alice-phone',
      connected: false,
      persistent: true,
      subscriptions: [{ topic: 'home/+/alerts', qos: 1 }],
      queued_messages: [
        { topic: 'home/door/alerts', qos: 1, payload: 'door opened 1' },
        { topic: 'home/door/alerts', qos: 1, payload: 'door opened 2' },
        { topic: 'home/door/alerts', qos: 1, payload: 'door opened 3' },
      ],
      queued_complete: true,
      will: null,
    },
  ], 'the export lists her session: subscription and the messages queued for her');
  t.equal(exported.length, 1, 'only her session');

  t.equal(await first.broker.eraseMqttSessionsOf('alice', signal), 1, 'one session erased');
  t.same(await first.broker.mqttSessionsOf('alice', signal), [], 'a new export finds nothing');

  // On disk: nothing of her session is left in the store; bob's is.
  await first.close();
  t.same(await storedKeysWith(stateDir, 'alice-phone'), [], 'no key or value of the store names her client id');
  t.ok((await storedKeysWith(stateDir, 'bob-tablet')).length > 0, "bob's session is still stored");

  // She comes back with Clean Start 0: no session, nothing queued. A message of her own on a new
  // subscription is the marker that anything queued would have arrived before.
  const second = await startTestBroker({ stateDir, config });
  t.teardown(() => second.close());
  const back = await connectSession(t, second.url, login('alice', 'alice-phone'));
  t.equal(back.sessionPresent, false, 'session present 0 after the erasure');
  await back.client.subscribeAsync('marker/alice', { qos: 1 });
  await back.client.publishAsync('marker/alice', 'marker', { qos: 1 });
  const [firstMessage] = await back.inbox.next(1, 10_000);
  t.same(firstMessage, { topic: 'marker/alice', payload: 'marker', qos: 1, retain: false }, 'the first message she gets is the marker: nothing was queued');

  const bob = await connectSession(t, second.url, login('bob', 'bob-tablet'));
  t.equal(bob.sessionPresent, true, "bob's session stays");
  t.same((await bob.inbox.next(3, 10_000)).map((m) => m.payload), ['door opened 1', 'door opened 2', 'door opened 3'], 'and his queued messages');
});

t.test('a connected MQTT 5 client is disconnected without its will, and its session is gone after a restart', async (t) => {
  const stateDir = tempState(t);
  const first = await startTestBroker({ stateDir, config: { broker: { anonymous: 'never', users: await users() } } });
  t.teardown(() => first.close());

  const watcher = await connect(first.url, { username: 'bob', password: 'bob-secret' });
  t.teardown(() => closeClient(watcher));
  const seen = collect(watcher);
  await watcher.subscribeAsync('home/alice/#', { qos: 1 });

  const alice = await connectSession(
    t,
    first.url,
    login('alice', 'alice-v5', {
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 3600 },
      will: { topic: 'home/alice/status', payload: Buffer.from('gone'), qos: 1, retain: false },
    }),
  );
  await alice.client.subscribeAsync('home/#', { qos: 1 });
  const closed = new Promise<void>((resolve) => alice.client.once('close', () => resolve()));

  const signal = new AbortController().signal;
  t.match(await first.broker.mqttSessionsOf('alice', signal), [
    { client_id: 'alice-v5', connected: true, persistent: true, subscriptions: [{ topic: 'home/#', qos: 1 }], will: { topic: 'home/alice/status', payload: 'gone' } },
  ]);
  t.equal(await first.broker.eraseMqttSessionsOf('alice', signal), 1);
  await closed;
  t.pass('her client was disconnected');
  await watcher.publishAsync('home/alice/marker', 'marker', { qos: 1 });
  const [firstSeen] = await seen.next(1, 10_000);
  t.equal(firstSeen?.topic, 'home/alice/marker', 'her will was not published: the marker is the first message on her topics');
  await closeClient(watcher);
  await first.close();
  t.same(await storedKeysWith(stateDir, 'alice-v5'), [], 'no key or value of the store names her client id (expiry deadline and will included)');

  const second = await startTestBroker({ stateDir, config: { broker: { anonymous: 'never', users: await users() } } });
  t.teardown(() => second.close());
  const back = await connectSession(t, second.url, login('alice', 'alice-v5', { protocolVersion: 5, properties: { sessionExpiryInterval: 3600 } }));
  t.equal(back.sessionPresent, false, 'session present 0 after a restart');
});

t.test('owners are remembered across restarts and follow a client id to its last user', async (t) => {
  const stateDir = tempState(t);
  const first = await startTestBroker({ stateDir, config: { broker: { anonymous: 'never', users: await users() } } });
  t.teardown(() => first.close());
  const signal = new AbortController().signal;
  // A shared panel: alice used it first, then bob took the client id over.
  for (const user of ['alice', 'bob']) {
    const { client } = await connectSession(t, first.url, login(user, 'shared-panel'));
    await client.subscribeAsync(`panel/${user}`, { qos: 1 });
    await closeClient(client);
  }
  await first.close();

  const second = await startTestBroker({ stateDir, config: { broker: { anonymous: 'never', users: await users() } } });
  t.teardown(() => second.close());
  t.same(await second.broker.mqttSessionsOf('alice', signal), [], 'the session is no longer hers');
  t.match(await second.broker.mqttSessionsOf('bob', signal), [{ client_id: 'shared-panel', persistent: true }], "it is bob's, also after a restart");
  t.equal(await second.broker.eraseMqttSessionsOf('alice', signal), 0, 'erasing alice leaves it alone');
  t.equal(await second.broker.eraseMqttSessionsOf('bob', signal), 1);
  const back = await connectSession(t, second.url, login('bob', 'shared-panel'));
  t.equal(back.sessionPresent, false);
});

t.test('an MQTT 5 session that expired leaves none of its queued messages behind', async (t) => {
  // Not an erasure, the same deletion: a queued message never sent has no packet id, which is all aedes'
  // store clears a queued message by (queued-messages.ts); it stayed and reached the next session.
  const stateDir = tempState(t);
  const first = await startTestBroker({ stateDir });
  t.teardown(() => first.close());
  const { client } = await connectSession(t, first.url, { clientId: 'short-lived', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 1 } });
  await client.subscribeAsync('jobs/#', { qos: 1 });
  await closeClient(client);
  const pub = await connect(first.url);
  await pub.publishAsync('jobs/old', 'stale', { qos: 1 });
  await closeClient(pub);
  await first.close();
  // The session's deadline passes while the broker is stopped; the next start ends it before clients connect.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const queued = async () => (await storedKeysWith(stateDir, 'short-lived')).filter((key) => key.startsWith('outgoing'));
  t.equal((await queued()).length, 1, 'one message is queued for it before the restart');

  const second = await startTestBroker({ stateDir });
  t.teardown(() => second.close());
  const back = await connectSession(t, second.url, { clientId: 'short-lived', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 60 } });
  t.equal(back.sessionPresent, false, 'the session had ended');
  await back.client.subscribeAsync('marker', { qos: 1 });
  await back.client.publishAsync('marker', 'marker', { qos: 1 });
  const [firstMessage] = await back.inbox.next(1, 10_000);
  t.equal(firstMessage?.payload, 'marker', 'nothing of the ended session was delivered before the marker');
  await closeClient(back.client);
  await second.close();
  t.same(await queued(), [], 'and nothing is queued for it in the store');
});

t.test('an anonymous client is the person at its address, as its MQTT principal is named', async (t) => {
  const tb = await startTestBroker({ config: { broker: { anonymous: 'loopback' } } });
  t.teardown(() => tb.close());
  const { client } = await connectSession(t, tb.url, { clientId: 'hall-sensor', clean: false });
  // The broker sees the client's own end of the connection.
  const address = (client.stream as unknown as { localAddress: string }).localAddress;
  await client.subscribeAsync('hall/#', { qos: 1 });
  await closeClient(client);
  const signal = new AbortController().signal;
  t.match(await tb.broker.mqttSessionsOf(`anonymous@${address}`, signal), [{ client_id: 'hall-sensor', persistent: true }]);
  t.equal(await tb.broker.eraseMqttSessionsOf('anonymous@192.0.2.1', signal), 0, 'another address is someone else');
  t.equal(await tb.broker.eraseMqttSessionsOf(`anonymous@${address}`, signal), 1);
  const back = await connectSession(t, tb.url, { clientId: 'hall-sensor', clean: false });
  t.equal(back.sessionPresent, false);
});

t.test('cluster mode (real redis-server): a session made on one replica is erased through another', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.destroy());
  const replica = async (replicaId: string) => {
    const test = makeTestContext({ config: { broker: { anonymous: 'never', users: await users() } } });
    const broker = new Broker({
      cluster: { redis: { host: '127.0.0.1', port: redis.port, db: 0, connectTimeoutMs: 15_000 }, replicaId, waitReplicas: 0, waitTimeoutMs: 1000 },
    });
    await broker.start(test.ctx);
    t.teardown(async () => {
      await broker.stop();
      test.cleanup();
    });
    return broker;
  };
  const [a, b] = [await replica('replica-a'), await replica('replica-b')];
  const url = `mqtt://127.0.0.1:${a.port}`;
  const { client } = await connectSession(t, url, login('alice', 'alice-phone'));
  await client.subscribeAsync('home/+/alerts', { qos: 1 });
  await closeClient(client);
  const pub = await connect(url, { username: 'bob', password: 'bob-secret' });
  t.teardown(() => closeClient(pub));
  for (const n of [1, 2]) await pub.publishAsync('home/door/alerts', `door opened ${n}`, { qos: 1 });

  const signal = new AbortController().signal;
  t.match(await b.mqttSessionsOf('alice', signal), [{ client_id: 'alice-phone', persistent: true, subscriptions: [{ topic: 'home/+/alerts' }], queued_messages: [{}, {}] }], 'the other replica exports it');
  const db = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true });
  await db.connect();
  t.teardown(() => db.disconnect());
  t.ok((await db.keys('*alice-phone*')).length > 0, 'her session is in Redis');
  t.equal(await b.eraseMqttSessionsOf('alice', signal), 1, 'and erases it');
  t.same((await db.keys('*alice-phone*')).sort(), [], 'no Redis key names her client id');
  t.equal(await db.hexists('clawbox:session-owners', 'alice-phone'), 0, 'nor the owners hash');
  t.same(await db.keys('packet:*'), [], 'nor the messages queued only for her');

  const back = await connectSession(t, url, login('alice', 'alice-phone'));
  t.equal(back.sessionPresent, false, 'session present 0');
  await back.client.subscribeAsync('marker/alice', { qos: 1 });
  await back.client.publishAsync('marker/alice', 'marker', { qos: 1 });
  t.equal((await back.inbox.next(1, 10_000))[0]?.payload, 'marker', 'nothing queued arrived before the marker');
});

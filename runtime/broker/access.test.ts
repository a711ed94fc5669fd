import t from 'tap';
import { hashPassword } from '../auth/password.js';
import { RawClient, closeClient, collect, connect, sleep, startTestBroker } from '../../app/testing/broker.js';

const annHash = await hashPassword('ann-secret');
const bobHash = await hashPassword('bob-secret');

const usersConfig = {
  broker: {
    anonymous: 'never',
    users: [
      {
        username: 'ann',
        password_hash: annHash,
        publish: ['devices/%u/#', 'clients/%c/out'],
        subscribe: ['devices/%u/#', 'public/+', 'clients/%c/in'],
      },
      { username: 'bob', password_hash: bobHash, publish: ['#'], subscribe: ['#'] },
    ],
  },
};

function connackCode(error: unknown): number | undefined {
  return (error as { code?: number }).code;
}

t.test('users log in with their password; wrong or unknown credentials get CONNACK 4', async (t) => {
  const tb = await startTestBroker({ config: usersConfig });
  t.teardown(() => tb.close());
  const ann = await connect(tb.url, { username: 'ann', password: 'ann-secret' });
  t.ok(ann.connected, 'correct password accepted');
  await closeClient(ann);

  for (const [username, password] of [
    ['ann', 'wrong'],
    ['nobody', 'ann-secret'],
    ['ann', ''],
  ] as const) {
    const error = await connect(tb.url, { username, password }).then(
      (client) => {
        client.end(true);
        return null;
      },
      (e: unknown) => e,
    );
    t.equal(connackCode(error), 4, `${username}/${password || '(empty)'} refused with 4 (bad user name or password)`);
  }
});

t.test('anonymous clients: refused with CONNACK 5 under "never"', async (t) => {
  const tb = await startTestBroker({ config: usersConfig });
  t.teardown(() => tb.close());
  const error = await connect(tb.url).then(
    () => null,
    (e: unknown) => e,
  );
  t.equal(connackCode(error), 5, 'not authorized');
});

t.test('anonymous clients: "auto" refuses even loopback in appliance mode, allows it in local mode', async (t) => {
  const appliance = await startTestBroker({ mode: 'appliance', config: { http: { token: 'a-long-enough-token-123' } } });
  t.teardown(() => appliance.close());
  const error = await connect(appliance.url).then(
    () => null,
    (e: unknown) => e,
  );
  t.equal(connackCode(error), 5);

  const local = await startTestBroker();
  t.teardown(() => local.close());
  const client = await connect(local.url);
  t.ok(client.connected, 'loopback anonymous allowed in local mode');
  await closeClient(client);
});

t.test('ACL: allowed publishes are delivered, denied ones acknowledged and dropped', async (t) => {
  const tb = await startTestBroker({ config: usersConfig });
  t.teardown(() => tb.close());
  const bob = await connect(tb.url, { username: 'bob', password: 'bob-secret' });
  const ann = await connect(tb.url, { username: 'ann', password: 'ann-secret', clientId: 'ann-box' });
  t.teardown(() => Promise.all([closeClient(bob), closeClient(ann)]));
  const inbox = collect(bob);
  await bob.subscribeAsync('#', { qos: 1 });
  await inbox.next(1); // the retained clawbox/bridge/state
  const before = inbox.all.length;

  await ann.publishAsync('devices/bob/x', 'not yours', { qos: 1 });
  await ann.publishAsync('elsewhere', 'nope', { qos: 2 });
  await ann.publishAsync('clients/other/out', 'not your id', { qos: 0 });
  await ann.publishAsync('devices/ann/temp', '21', { qos: 1 });
  await ann.publishAsync('clients/ann-box/out', 'mine', { qos: 1 });
  await inbox.next(before + 2);
  await sleep(100);
  t.same(
    inbox.all.slice(before).map((m) => `${m.topic}=${m.payload}`),
    ['devices/ann/temp=21', 'clients/ann-box/out=mine'],
  );
  t.ok(ann.connected, 'the client stays connected after denied publishes');

  // A denied retained publish is not stored either.
  await ann.publishAsync('elsewhere/retained', 'x', { qos: 1, retain: true });
  const late = await connect(tb.url, { username: 'bob', password: 'bob-secret' });
  t.teardown(() => closeClient(late));
  const lateInbox = collect(late);
  await late.subscribeAsync('elsewhere/#');
  await sleep(100);
  t.same(lateInbox.all, []);
});

t.test('ACL: a denied subscription gets 0x80 in SUBACK, allowed ones their QoS', async (t) => {
  const tb = await startTestBroker({ config: usersConfig });
  t.teardown(() => tb.close());
  const ann = await connect(tb.url, { username: 'ann', password: 'ann-secret', clientId: 'ann-box' });
  const bob = await connect(tb.url, { username: 'bob', password: 'bob-secret' });
  t.teardown(() => Promise.all([closeClient(ann), closeClient(bob)]));
  const inbox = collect(ann);
  // mqtt.js rejects a SUBACK that holds 0x80; the packet is on the error.
  const suback = await ann.subscribeAsync({
    'devices/ann/#': { qos: 1 },
    '#': { qos: 1 },
    'public/news': { qos: 0 },
    'public/#': { qos: 0 },
    'clients/ann-box/in': { qos: 2 },
    'clients/other/in': { qos: 2 },
  }).then(
    () => null,
    (e: { packet?: { granted?: number[] } }) => e.packet,
  );
  t.same(suback?.granted, [1, 128, 0, 128, 2, 128], 'granted QoS in request order');
  await bob.publishAsync('secret/x', 'no', { qos: 1 });
  await bob.publishAsync('public/news', 'yes', { qos: 1 });
  const [m] = await inbox.next(1);
  t.equal(m?.topic, 'public/news', 'the denied # subscription delivers nothing');
  await sleep(100);
  t.equal(inbox.all.length, 1);
});

t.test('a will on a topic the user may not publish is ignored', async (t) => {
  const tb = await startTestBroker({ config: usersConfig });
  t.teardown(() => tb.close());
  const bob = await connect(tb.url, { username: 'bob', password: 'bob-secret' });
  t.teardown(() => closeClient(bob));
  const inbox = collect(bob);
  await bob.subscribeAsync(['elsewhere/#', 'devices/#'], { qos: 1 });
  const bad = await connect(tb.url, {
    username: 'ann',
    password: 'ann-secret',
    will: { topic: 'elsewhere/will', payload: Buffer.from('x'), qos: 1, retain: false },
  });
  bad.stream.destroy();
  const good = await connect(tb.url, {
    username: 'ann',
    password: 'ann-secret',
    will: { topic: 'devices/ann/will', payload: Buffer.from('gone'), qos: 1, retain: false },
  });
  good.stream.destroy();
  const [m] = await inbox.next(1);
  t.equal(m?.topic, 'devices/ann/will');
  await sleep(100);
  t.equal(inbox.all.length, 1, 'the denied will was not published');
});

t.test('zero-length client id: accepted with clean session, refused with 0x02 without [MQTT-3.1.3-8]', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const port = tb.broker.port;

  const clean = await RawClient.connect(port);
  t.teardown(() => clean.close());
  clean.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: '', clean: true, keepalive: 0 });
  const ok = await clean.waitFor((p) => p.cmd === 'connack');
  t.equal((ok as { returnCode?: number }).returnCode, 0, 'clean session: accepted');

  const persistent = await RawClient.connect(port);
  t.teardown(() => persistent.close());
  // mqtt-packet refuses to encode this CONNECT, so it is written by hand: MQTT 3.1.1, flags 0, id "".
  persistent.socket.write(Buffer.from('100c00044d5154540400000000', 'hex'));
  persistent.socket.write(Buffer.from('00', 'hex'));
  const refused = await persistent.waitFor((p) => p.cmd === 'connack');
  t.equal((refused as { returnCode?: number }).returnCode, 2, 'identifier rejected');
  await persistent.waitForClose();
  t.pass('and the connection is closed');
});

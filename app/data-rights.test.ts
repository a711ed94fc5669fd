/**
 * People's data rights in the whole runtime: what a person did over MQTT and HTTP and what a chat sender
 * left behind is exported in one bundle, erased so that nothing in the state dir reads as them any more,
 * while the audit chain still verifies; retention removes exactly what is older; the outbound policy
 * refuses processors of another region and people who opted out.
 */
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import t from 'tap';
import { hashPassword } from '../runtime/auth/password.js';
import { createLogging } from '../runtime/logging.js';
import { SYSTEM_PRINCIPAL } from '../runtime/operations/principal.js';
import { runDataCommand } from '../runtime/privacy/cli.js';
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { closeClient, connect } from './testing/broker.js';
import { makeTestContext } from './testing/test-context.js';

const TOKEN = 'data-rights-test-token-0123456789';
const BASE = 'clawbox';

async function startApp(t: { teardown(fn: () => unknown): void }) {
  const test = makeTestContext({
    config: {
      http: { token: TOKEN },
      broker: {
        anonymous: 'never',
        users: [{ username: 'alice-phone', password_hash: await hashPassword('alice-secret'), publish: ['#'], subscribe: ['#'] }],
      },
      devices: [{ id: 'lamp', name: 'Lamp', driver: 'simulated', capabilities: ['switch'] }],
      data: { region: 'eu' },
    },
  });
  t.teardown(() => test.cleanup());
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const logging = createLogging({ level: 'info', components: {}, pretty: false, destination: sink });
  const app = createApp({ config: test.ctx.config, logging, env: {} });
  await app.start();
  t.teardown(() => app.stop());
  const api = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const response = await fetch(`http://127.0.0.1:${app.http.port}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, // biome-ignore lint/suspicious/noExplicitAny: the test reads several answer shapes
    body: (await response.json()) as { status: string; data?: any; error?: { code: string } } };
  };
  return { app, api, stateDir: test.stateDir };
}

/** Every file under the state dir that holds `needle` as bytes. */
function filesHolding(dir: string, needle: string): string[] {
  try {
    return execFileSync('grep', ['-rlF', '--', needle, dir], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return []; // grep exits 1 when nothing matches
  }
}

t.test('export, erase and the audit chain', async (t) => {
  const { app, api, stateDir } = await startApp(t);

  // What the people did: alice over MQTT, the owner over HTTP; a Telegram sender waits for pairing with a stored message.
  const alice = await connect(`mqtt://127.0.0.1:${app.broker.port}`, { username: 'alice-phone', password: 'alice-secret', clientId: 'alice-client' });
  t.teardown(() => closeClient(alice));
  const reply = new Promise<string>((resolve) => {
    alice.on('message', (topic, payload) => {
      if (topic === `${BASE}/lamp` && payload.toString().includes('ON')) resolve(payload.toString());
    });
  });
  await alice.subscribeAsync(`${BASE}/lamp`, { qos: 1 });
  await alice.publishAsync(`${BASE}/lamp/set`, JSON.stringify({ state: 'ON' }), { qos: 1 });
  await reply;
  // Her tablet keeps a persistent session with a note queued for it while it is away.
  const tablet = await connect(`mqtt://127.0.0.1:${app.broker.port}`, { username: 'alice-phone', password: 'alice-secret', clientId: 'alice-tablet', clean: false });
  await tablet.subscribeAsync('notes/alice', { qos: 1 });
  await closeClient(tablet);
  await alice.publishAsync('notes/alice', 'buy milk', { qos: 1 });
  t.equal((await api('POST', '/api/devices/lamp/set', { state: 'OFF' })).status, 200, 'the owner switches the lamp over HTTP');

  const inbox = await app.ctx.store.open<{ pending: unknown[] }>('chat-inbox', () => ({ pending: [] }));
  const sender = { channel: 'telegram', sender_id: '4711', display_name: 'Bob' };
  await inbox.update((d) => {
    d.pending.push({ id: 'm1', session: 'telegram:4711', sender, text: 'my door code is 2468', received_at: Date.now() });
  });
  // A chat sender's conversation (the gateway runs agent.request with the sender as session).
  await app.frontDoor.invoke('agent.request', { text: 'turn on the lamp', session: 'telegram:4711' }, { principal: SYSTEM_PRINCIPAL, source: 'test' });
  const pairing = await app.ctx.store.open<{ approved: string[]; requests: unknown[] }>('chat-pairing', () => ({ approved: [], requests: [] }));
  await pairing.update((d) => {
    d.approved.push('telegram:4711');
  });

  // The audit log names alice only by a pseudonym on disk, and shows her to the owner.
  await t.resolveMatch(app.audit.query({ principal: 'mqtt:alice-phone' }), [{ op: 'device.set', principal: { kind: 'mqtt', id: 'alice-phone' } }], 'the owner reads alice in the audit log');
  t.same(filesHolding(`${stateDir}/audit`, 'alice-phone'), [], 'no audit file holds her name');

  // Export: one bundle with everything the test created about each person.
  const exported = await api('GET', '/api/data/export?subject=mqtt:alice-phone');
  t.equal(exported.status, 200);
  t.equal(exported.body.data.region, 'eu', 'the region is in the export');
  t.match(exported.body.data.holders.audit.data.records, [{ op: 'device.set', device: 'lamp', principal: { id: 'alice-phone' } }], 'her audit records');
  t.equal(exported.body.data.holders.audit.data.records.length, 1, 'only hers (the owner\'s HTTP set is not)');
  t.match(
    exported.body.data.holders['mqtt-sessions'].data.sessions,
    [
      { client_id: 'alice-client', connected: true, persistent: false },
      { client_id: 'alice-tablet', connected: false, persistent: true, subscriptions: [{ topic: 'notes/alice', qos: 1 }], queued_messages: [{ topic: 'notes/alice', payload: 'buy milk' }] },
    ],
    'her MQTT clients: the connected one, and the persistent session with its queued message',
  );
  const bob = (await api('GET', '/api/data/export?subject=telegram:4711')).body.data;
  t.match(bob.holders['chat-inbox'].data.messages, [{ text: 'my door code is 2468' }], 'his stored message');
  t.equal(bob.holders['chat-pairing'].data.approved, true, 'his pairing');
  t.match(bob.holders.conversations.data.turns, [{ user: 'turn on the lamp' }], 'his conversation');

  // CLI export through the running runtime.
  const out: string[] = [];
  const code = await runDataCommand(['export', '--subject', 'telegram:4711', '--url', `http://127.0.0.1:${app.http.port}`, '--token', TOKEN], loadConfig, { stdout: (s) => out.push(s), stderr: () => {}, env: {} });
  t.equal(code, 0, 'clawbox data export exits 0');
  t.match(JSON.parse(out.join('')), { subject: 'telegram:4711', holders: { 'chat-inbox': { data: { messages: [{ id: 'm1' }] } } } });

  // Erase both: nothing readable is left, the chain still verifies.
  const aliceClosed = new Promise<void>((resolve) => alice.once('close', () => resolve()));
  const erasedAlice = await api('POST', '/api/data/erase', { subject: 'mqtt:alice-phone' });
  t.equal(erasedAlice.body.data.pseudonym_key_destroyed, true, 'her pseudonym key is destroyed');
  t.equal(erasedAlice.body.data.removed['mqtt-sessions'], 2, 'both her MQTT clients');
  await aliceClosed;
  const erasedBob = await api('POST', '/api/data/erase', { subject: 'telegram:4711' });
  t.match(erasedBob.body.data.removed, { 'chat-inbox': 1, 'chat-pairing': 1, conversations: 1 });
  t.same((await api('GET', '/api/data/export?subject=telegram:4711')).body.data.holders.conversations.data.turns, [], 'his conversation is forgotten');
  await closeClient(alice);
  for (const needle of ['alice-phone', '2468', 'telegram:4711']) {
    t.same(filesHolding(stateDir, needle), [], `no file in the state dir holds "${needle}"`);
  }
  const verified = await app.audit.verify();
  t.equal(verified.ok, true, 'the audit chain verifies after the erasure');
  t.same(await app.audit.query({ principal: 'mqtt:alice-phone' }), [], 'the audit log no longer names her');
  const records = await app.audit.query({ op: 'device.set', device: 'lamp' });
  t.ok(records.some((r) => r.principal.kind === 'mqtt' && r.principal.id.startsWith('erased-')), 'her record stays, naming nobody');
  const after = (await api('GET', '/api/data/export?subject=mqtt:alice-phone')).body.data;
  t.same(after.holders.audit.data.records, [], 'a new export finds nothing');
  t.same(after.holders['mqtt-sessions'].data.sessions, [], 'no MQTT session of hers');
  t.equal(after.pseudonym, null);
  // Her tablet comes back (Clean Start 0): no session, so nothing queued.
  const back = await new Promise<{ sessionPresent: boolean; client: import('mqtt').MqttClient }>((resolve, reject) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${app.broker.port}`, { username: 'alice-phone', password: 'alice-secret', clientId: 'alice-tablet', clean: false, reconnectPeriod: 0 });
    client.once('connect', (connack) => resolve({ sessionPresent: connack.sessionPresent, client }));
    client.once('error', reject);
  });
  t.teardown(() => closeClient(back.client));
  t.equal(back.sessionPresent, false, 'her tablet finds no session after the erasure');

  // Bad subjects change nothing and say why.
  const bad = await api('POST', '/api/data/erase', { subject: 'no colon here' });
  t.equal(bad.status, 400);
  t.equal(bad.body.error?.code, 'PAYLOAD_INVALID');
});

t.test('retention and the outbound policy', async (t) => {
  const { app, api } = await startApp(t);
  const inbox = await app.ctx.store.open<{ pending: Array<{ id: string; received_at: number }> }>('chat-inbox', () => ({ pending: [] }));
  const day = 86_400_000;
  const sender = { channel: 'telegram', sender_id: '1' };
  await inbox.update((d) => {
    d.pending.push(
      { id: 'old', session: 'telegram:1', sender, text: 'old', received_at: Date.now() - 31 * day } as never,
      { id: 'new', session: 'telegram:1', sender, text: 'new', received_at: Date.now() - 29 * day } as never,
    );
  });
  const report = await app.dataRights.sweep();
  t.equal(report.removed['chat-inbox'], 1, 'one message was past the 30-day chat retention');
  t.same(inbox.data.pending.map((m) => m.id), ['new'], 'exactly the older one went');

  const status = (await api('GET', '/api/data/inventory')).body.data;
  t.equal(status.status.retention_days.chat, 30);
  t.ok(status.holders.some((h: { holder: string }) => h.holder === 'audit'), 'the inventory lists the audit log');

  const policy = app.dataRights;
  t.doesNotThrow(() => policy.checkProcessor({ name: 'brain', region: 'eu' }, { kind: 'chat', id: 'telegram:1' }), 'same region: allowed');
  t.throws(() => policy.checkProcessor({ name: 'brain', region: 'us' }, null), { code: 'DATA_POLICY_REFUSED' }, 'another region: refused');
  t.throws(() => policy.checkProcessor({ name: 'brain', region: null }, null), { code: 'DATA_POLICY_REFUSED' }, 'unknown region: refused');
  t.equal((await api('POST', '/api/data/opt-out', { subject: 'telegram:1', opted_out: true })).status, 200);
  t.throws(() => policy.checkProcessor({ name: 'brain', region: 'eu' }, { kind: 'chat', id: 'telegram:1' }), { code: 'DATA_POLICY_REFUSED' }, 'opted out: refused');
  t.doesNotThrow(() => policy.checkProcessor({ name: 'brain', region: 'eu' }, { kind: 'chat', id: 'telegram:2' }), 'someone else: allowed');
});

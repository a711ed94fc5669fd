/**
 * The agent acts only as its caller could act, through the whole composed runtime: a real broker, real
 * MQTT clients with users and ACLs, simulated devices, the fast path (no model needed).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { Writable } from 'node:stream';
import t from 'tap';
import { type App, createApp } from '../app/app.js';
import { hashPassword } from '../runtime/auth/password.js';
import { makeTestContext } from '../app/testing/test-context.js';
import { createLogging } from '../runtime/logging.js';
import { principalWithFilters } from '../runtime/operations/principal.js';
import { ConfirmationStore } from './confirmations.js';

const PASSWORD = 'correct horse battery';

// biome-ignore lint/suspicious/noExplicitAny: the tests read nested fields of JSON answers
type Answer = Record<string, any>;

interface Teardown {
  teardown(fn: () => unknown): void;
}

async function config() {
  const hash = await hashPassword(PASSWORD);
  return {
    broker: {
      anonymous: 'never',
      users: [
        // May ask the agent and switch the lamp, nothing else: the agent may not do more for it.
        { username: 'panel', password_hash: hash, publish: ['clawbox/agent/request', 'clawbox/agent/confirm', 'clawbox/lamp/set'], subscribe: ['clawbox/#'] },
        { username: 'owner', password_hash: hash, publish: ['#'], subscribe: ['#'] },
        { username: 'guest', password_hash: hash, publish: ['#'], subscribe: ['#'] },
      ],
    },
    devices: [
      { id: 'lamp', name: 'Lamp', driver: 'simulated', capabilities: ['switch'] },
      { id: 'porch', name: 'Porch light', driver: 'simulated', capabilities: ['switch'] },
      { id: 'frontdoor', name: 'Front door', driver: 'simulated', capabilities: ['switch'], device_class: 'lock' },
      { id: 'vault', name: 'Vault', driver: 'simulated', capabilities: ['switch'], agent: 'deny' },
      { id: 'slow', name: 'Slow fan', driver: 'simulated', capabilities: ['switch'], simulated: { latency_ms: 400 } },
    ],
  };
}

async function startApp(t: Teardown, raw: Record<string, unknown>, stateDir?: string): Promise<{ app: App; url: string; stateDir: string; stop(): Promise<void> }> {
  const test = makeTestContext({ config: raw, ...(stateDir ? { stateDir } : {}) });
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const logging = createLogging({ level: 'silent', components: {}, pretty: false, destination: sink });
  const app = createApp({ config: test.ctx.config, logging, env: {} });
  await app.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await app.stop();
  };
  t.teardown(async () => {
    await stop();
    if (!stateDir) test.cleanup();
  });
  return { app, url: `mqtt://127.0.0.1:${app.broker.port}`, stateDir: test.stateDir, stop };
}

async function connect(t: Teardown, url: string, username: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { username, password: PASSWORD, reconnectPeriod: 0, connectTimeout: 5000 });
  t.teardown(() => client.endAsync(true));
  return client;
}

/** Publishes a request and resolves with the response that echoes its transaction. */
async function ask(client: MqttClient, topic: string, body: Record<string, unknown>): Promise<Answer> {
  const transaction = `tx-${Math.random().toString(36).slice(2)}`;
  await client.subscribeAsync('clawbox/agent/response', { qos: 1 });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${topic} ${JSON.stringify(body)}`)), 10_000);
    const onMessage = (got: string, payload: Buffer) => {
      if (got !== 'clawbox/agent/response') return;
      const answer = JSON.parse(payload.toString()) as Answer;
      if (answer.transaction !== transaction) return;
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve(answer);
    };
    client.on('message', onMessage);
    client.publish(topic, JSON.stringify({ ...body, transaction }), { qos: 1 });
  });
}

const stateOf = (app: App, id: string) => app.devices.get(id)?.state.state;

t.test('the agent may only do what its caller may do (MQTT ACL)', async (t) => {
  const { app, url } = await startApp(t, await config());
  const panel = await connect(t, url, 'panel');

  const lamp = await ask(panel, 'clawbox/agent/request', { text: 'turn on the lamp' });
  t.equal(lamp.status, 'ok', 'a device the caller may switch');
  t.equal(stateOf(app, 'lamp'), 'ON');

  const porch = await ask(panel, 'clawbox/agent/request', { text: 'turn on the porch light' });
  t.equal(porch.status, 'ok', 'answered');
  t.same(porch.data.actions, [], 'nothing ran');
  t.match(porch.data.refused, [{ device: 'porch', code: 'FORBIDDEN' }], 'refused as FORBIDDEN, naming the device');
  t.equal(stateOf(app, 'porch'), 'OFF', 'the porch light did not move');
  const decisions = await app.audit.query({ op: 'agent.request', device: 'porch' });
  t.match(
    decisions,
    [{ principal: { kind: 'mqtt', id: 'panel' }, decision: 'forbidden', outcome: 'not_run', rule: 'fast-path intent', proposed: [{ device: 'porch', code: 'FORBIDDEN' }] }],
    'the refused decision is audited: who asked, what was proposed, why it did not run',
  );

  const owner = await connect(t, url, 'owner');
  const allowed = await ask(owner, 'clawbox/agent/request', { text: 'turn on the porch light' });
  t.equal(allowed.data.actions[0]?.device, 'porch', 'a caller with the permission gets the action');
  t.equal(stateOf(app, 'porch'), 'ON');
});

t.test('a lock waits for confirmation by the same caller, once, and deny hides a device', async (t) => {
  const { app, url } = await startApp(t, await config());
  const owner = await connect(t, url, 'owner');
  const guest = await connect(t, url, 'guest');
  const panel = await connect(t, url, 'panel');

  const proposed = await ask(owner, 'clawbox/agent/request', { text: 'turn on the front door' });
  t.equal(proposed.status, 'ok');
  t.same(proposed.data.actions, [], 'nothing ran yet');
  const id = proposed.data.confirmations?.[0]?.id as string;
  t.match(id, /^[0-9a-f]{8}$/, 'a confirmation id');
  t.match(proposed.data.text, new RegExp(`confirm ${id}`), 'the reply says how to confirm');
  t.equal(stateOf(app, 'frontdoor'), 'OFF', 'the lock did not move');

  const forPanel = await ask(panel, 'clawbox/agent/request', { text: 'turn on the front door' });
  t.match(forPanel.data.refused, [{ device: 'frontdoor', code: 'FORBIDDEN' }], 'no confirmation is offered to a caller without the permission');

  const stranger = await ask(guest, 'clawbox/agent/confirm', { id });
  t.match(stranger, { status: 'error', error: { code: 'CONFIRMATION_INVALID' } }, 'another principal cannot confirm');
  t.equal(stateOf(app, 'frontdoor'), 'OFF');

  const confirmed = await ask(owner, 'clawbox/agent/confirm', { id });
  t.equal(confirmed.status, 'ok', 'the caller that was asked confirms');
  t.equal(stateOf(app, 'frontdoor'), 'ON', 'and the lock moves');

  const again = await ask(owner, 'clawbox/agent/request', { text: `confirm ${id}` });
  t.match(again, { status: 'error', error: { code: 'CONFIRMATION_INVALID' } }, 'a confirmation is used once (also through chat text)');

  const vault = await ask(owner, 'clawbox/agent/request', { text: 'turn on the vault' });
  t.not(vault.data?.actions?.[0]?.device, 'vault', 'a denied device is not acted on');
  t.equal(stateOf(app, 'vault'), 'OFF');
});

t.test('confirmations expire and are bounded', async (t) => {
  let now = 1_000;
  const store = new ConfirmationStore({ ttlMs: 60_000, max: 2, now: () => now });
  const alice = principalWithFilters('mqtt', 'alice', ['#']);
  const first = store.create(alice, 'frontdoor', { state: 'ON' });
  now += 60_001;
  t.throws(() => store.take(first.id, alice), { code: 'CONFIRMATION_INVALID' }, 'expired after the window');
  store.create(alice, 'a', { state: 'ON' });
  store.create(alice, 'b', { state: 'ON' });
  t.throws(() => store.create(alice, 'c', { state: 'ON' }), { code: 'LIMIT_REACHED' }, 'bounded');
});

t.test('a retained agent request is never executed, not when published and not at the next start', async (t) => {
  const raw = await config();
  const first = await startApp(t, raw);
  const owner = await connect(t, first.url, 'owner');
  const refused = await new Promise<Answer>((resolve) => {
    owner.subscribe('clawbox/agent/response');
    owner.on('message', (topic, payload) => {
      if (topic === 'clawbox/agent/response') resolve(JSON.parse(payload.toString()) as Answer);
    });
    owner.publish('clawbox/agent/request', JSON.stringify({ text: 'turn on the lamp' }), { qos: 1, retain: true });
  });
  t.match(refused, { status: 'error', error: { code: 'PAYLOAD_INVALID', message: /retained/ } }, 'answered, not run');
  t.equal(stateOf(first.app, 'lamp'), 'OFF');
  await owner.endAsync(true);
  await first.stop();

  const second = await startApp(t, raw, first.stateDir);
  const again = await connect(t, second.url, 'owner');
  // The retained request is still in the broker (so a start could have replayed it) ...
  const retained = await new Promise<string>((resolve) => {
    again.on('message', (topic, payload, packet) => {
      if (topic === 'clawbox/agent/request' && packet.retain) resolve(payload.toString());
    });
    again.subscribe('clawbox/agent/request');
  });
  t.match(retained, /turn on the lamp/, 'the retained request survived the restart');
  // ... and a later request round trip proves the agent path is running: the lamp is still off.
  const query = await ask(again, 'clawbox/agent/request', { text: 'turn off the porch light' });
  t.equal(query.status, 'ok');
  t.equal(stateOf(second.app, 'lamp'), 'OFF', 'the retained request did not run at start');
});

t.test('a command whose deadline passes while it waits is reported not run, and does not run', async (t) => {
  const { app } = await startApp(t, await config());
  const owner = principalWithFilters('mqtt', 'owner', ['#']);
  const call = { principal: owner, source: 'test' };
  const busy = app.frontDoor.invoke('device.set', { device: 'slow', command: { state: 'ON' } }, call);
  const late = app.frontDoor.invoke('device.set', { device: 'slow', command: { state: 'OFF' } }, { ...call, deadlineMs: 50 });
  const [first, second] = await Promise.allSettled([busy, late]);
  t.equal(first.status, 'fulfilled', 'the first command ran and was acknowledged');
  t.match(second, { status: 'rejected', reason: { code: 'DEADLINE_EXCEEDED', details: { not_run: true } } }, 'the second was not run');
  t.equal(stateOf(app, 'slow'), 'ON', 'and the device shows only the first');
  const records = await app.audit.query({ device: 'slow' });
  // In either order: the late command's record is written at its deadline, which may come before the first
  // command's state is on disk and its record written.
  t.same(
    records.map((r) => r.outcome).sort(),
    ['done', 'not_run'],
    'the audit log says the same: one done with its acknowledgement, one not run',
  );
});

t.test('a follow-up in the same session reaches the fast path through the scheduler ("turn it off")', async (t) => {
  const { app, url } = await startApp(t, await config());
  const owner = await connect(t, url, 'owner');
  const on = await ask(owner, 'clawbox/agent/request', { text: 'turn on the lamp', session: 'kitchen-panel' });
  t.equal(on.status, 'ok');
  t.equal(stateOf(app, 'lamp'), 'ON');
  const off = await ask(owner, 'clawbox/agent/request', { text: 'turn it off', session: 'kitchen-panel' });
  t.match(off, { status: 'ok', data: { path: 'fast', actions: [{ device: 'lamp' }] } }, 'answered on the fast path, no model needed');
  t.equal(stateOf(app, 'lamp'), 'OFF');
});

/**
 * The broker inside the whole runtime (createApp): MQTT over WebSocket through the real HTTP server,
 * bridge/state following the real lifecycle, and the broker's figures in /api/status.
 */
import { Writable } from 'node:stream';
import t from 'tap';
import { createApp } from './app.js';
import { createLogging } from '../runtime/logging.js';
import { makeTestContext } from './testing/test-context.js';
import { closeClient, collect, connect } from './testing/broker.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** The whole runtime (createApp) on a temp state dir and free ports, silent, stopped at teardown. */
async function startApp(t: Teardown, options: Parameters<typeof makeTestContext>[0] = {}) {
  const test = makeTestContext(options);
  t.teardown(() => test.cleanup());
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const logging = createLogging({ level: 'silent', components: {}, pretty: false, destination: sink });
  const app = createApp({ config: test.ctx.config, logging, env: {} });
  await app.start();
  t.teardown(() => app.stop());
  return app;
}

t.test('broker in the composed runtime: TCP, WebSocket on the HTTP port, status, bridge/state', async (t) => {
  const app = await startApp(t);

  const tcp = await connect(`mqtt://127.0.0.1:${app.broker.port}`);
  const ws = await connect(`ws://127.0.0.1:${app.http.port}/mqtt`);
  t.teardown(() => Promise.all([closeClient(tcp), closeClient(ws)]));
  const wsInbox = collect(ws);
  await ws.subscribeAsync('clawbox/bridge/state', { qos: 1 });
  t.equal((await wsInbox.next(1))[0]?.payload, 'online', 'online once serving');
  await ws.subscribeAsync('it/works', { qos: 1 });
  await tcp.publishAsync('it/works', 'tcp to ws', { qos: 1 });
  t.equal((await wsInbox.next(2))[1]?.payload, 'tcp to ws');

  const response = await fetch(`http://127.0.0.1:${app.http.port}/api/status`);
  const body = (await response.json()) as { sections?: { broker?: { clients?: number } } };
  t.equal(body.sections?.broker?.clients, 2, '/api/status shows the broker clients');

  await app.stop();
  t.equal((await wsInbox.next(3))[2]?.payload, 'offline', 'offline announced on stop');
});

t.test('MQTT and HTTP logins share one guard: wrong MQTT passwords back the address off on HTTP too', async (t) => {
  const { hashPassword } = await import('../runtime/auth/password.js');
  const { FREE_FAILURES } = await import('../runtime/auth/login-guard.js');
  const mqtt = (await import('mqtt')).default;
  const token = 'a-long-enough-test-token-0123456789';
  const app = await startApp(t, {
    config: {
      broker: { anonymous: 'never', users: [{ username: 'panel', password_hash: await hashPassword('right password'), publish: ['#'], subscribe: ['#'] }] },
      http: { token },
    },
    // Appliance mode: loopback callers need the token too.
    mode: 'appliance',
  });
  const status = (bearer: string) => fetch(`http://127.0.0.1:${app.http.port}/api/status`, { headers: { authorization: `Bearer ${bearer}` } });

  const codes: number[] = [];
  // As many wrong MQTT passwords as the guard forgives ...
  for (let i = 0; i < FREE_FAILURES; i++) {
    const code = await mqtt
      .connectAsync(`mqtt://127.0.0.1:${app.broker.port}`, { username: 'panel', password: `wrong ${i}`, reconnectPeriod: 0, connectTimeout: 5000 })
      .then(
        async (client) => {
          await client.endAsync(true);
          return 0;
        },
        (error: { code?: number }) => error.code ?? -1,
      );
    codes.push(code);
  }
  t.same(codes, Array(FREE_FAILURES).fill(4), 'each one a plain "bad username or password"');
  // ... then one wrong token over HTTP: on a shared guard it is this address's next failure and starts a
  // backoff, so even the right token is refused right after; on a guard of its own it would be the first.
  t.equal((await status('wrong-token-but-long-enough-000000')).status, 401, 'the wrong token is refused');
  const after = await status(token);
  t.equal(after.status, 429, 'the address is backed off on HTTP by what it did on MQTT');
  t.ok(Number(after.headers.get('retry-after')) > 0, 'with Retry-After');
});

t.test('bridge requests of every feature share one table; models are listed over MQTT and HTTP', async (t) => {
  const app = await startApp(t);
  const client = await connect(`mqtt://127.0.0.1:${app.broker.port}`);
  t.teardown(() => closeClient(client));
  const inbox = collect(client);
  await client.subscribeAsync('clawbox/bridge/response/#', { qos: 1 });
  const ask = async (name: string, body: Record<string, unknown>) => {
    const before = inbox.all.length;
    await client.publishAsync(`clawbox/bridge/request/${name}`, JSON.stringify(body), { qos: 1 });
    const [message] = (await inbox.next(before + 1)).slice(before);
    t.equal(message?.topic, `clawbox/bridge/response/${name}`);
    return JSON.parse(message?.payload ?? '{}') as { status: string; data?: unknown; error?: { code: string }; transaction?: unknown };
  };
  t.match(await ask('models', { transaction: 1 }), { status: 'ok', data: { configured: [] }, transaction: 1 }, 'models.list over MQTT');
  t.match(await ask('devices', {}), { status: 'ok', data: [{ id: 'lamp' }] }, 'devices.list beside it');
  t.match(await ask('nope', { transaction: 'x' }), { status: 'error', error: { code: 'REQUEST_UNKNOWN' }, transaction: 'x' }, 'one answer for unknown names');
  const http = await fetch(`http://127.0.0.1:${app.http.port}/api/models`);
  t.match(await http.json(), { status: 'ok', data: { configured: [], loaded: { state: 'no-model' } } }, 'GET /api/models');
});

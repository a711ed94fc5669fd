/**
 * The broker inside the whole runtime (createApp): MQTT over WebSocket through the real HTTP server,
 * bridge/state following the real lifecycle, and the broker's figures in /api/status.
 */
import { Writable } from 'node:stream';
import t from 'tap';
import { createApp } from './app.js';
import { createLogging } from '../runtime/logging.js';
import { makeTestContext } from '../runtime/broker/test-context.js';
import { closeClient, collect, connect } from '../runtime/broker/test-helpers.js';

t.test('broker in the composed runtime: TCP, WebSocket on the HTTP port, status, bridge/state', async (t) => {
  const test = makeTestContext();
  t.teardown(() => test.cleanup());
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const logging = createLogging({ level: 'silent', components: {}, pretty: false, destination: sink });
  const app = createApp({ config: test.ctx.config, logging, env: {} });
  await app.start();
  t.teardown(() => app.stop());

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

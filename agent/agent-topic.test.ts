import t from 'tap';
import { closeClient, collect, connect, startTestBroker } from '../runtime/broker/test-helpers.js';
import { Agent } from './agent.js';
import { AgentTopic } from './agent-topic.js';
import { SimDirectory } from './testing/sim-directory.js';

t.test('agent over MQTT: request -> response with envelope, bad payloads rejected', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const home = new SimDirectory();
  const agent = new Agent({ directory: home, engine: () => null });
  const topic = new AgentTopic({ messaging: tb.broker, handle: (request) => agent.handle(request) });
  await topic.start(tb.test.ctx);
  t.teardown(() => topic.stop());

  const client = await connect(tb.url);
  t.teardown(() => closeClient(client));
  const inbox = collect(client);
  await client.subscribeAsync('clawbox/agent/response', { qos: 1 });

  await client.publishAsync('clawbox/agent/request', JSON.stringify({ text: 'turn on the kitchen lamp', transaction: 'a1' }), { qos: 1 });
  const [ok] = await inbox.next(1);
  const body = JSON.parse(ok!.payload);
  t.match(body, { status: 'ok', transaction: 'a1', data: { path: 'fast', text: 'Turned Kitchen Lamp on.', actions: [{ device: 'kitchen_lamp', command: { state: 'ON' } }] } });
  t.type(body.data.timings.total_ms, 'number');
  t.same(home.executed.map((e) => e.id), ['kitchen_lamp']);

  const bad = ['not json', JSON.stringify({ text: '' , transaction: 7 }), JSON.stringify({ text: 'x', evil: true }), JSON.stringify([1]), JSON.stringify({ text: 5 })];
  for (const payload of bad) await client.publishAsync('clawbox/agent/request', payload, { qos: 1 });
  // next(n) waits until n messages in total have arrived and returns them all.
  const errors = (await inbox.next(1 + bad.length)).slice(1).map((m) => JSON.parse(m.payload));
  t.equal(errors.length, bad.length);
  for (const e of errors) t.match(e, { status: 'error', error: { code: 'PAYLOAD_INVALID' } });
  t.equal(errors.find((e) => e.transaction === 7)?.error.code, 'PAYLOAD_INVALID', 'transaction echoed on errors');
  t.equal(home.executed.length, 1, 'bad payloads changed nothing');

  await client.publishAsync('clawbox/agent/request', JSON.stringify({ text: 'write me a poem', transaction: 'p' }), { qos: 1 });
  const noModel = (await inbox.next(bad.length + 2)).at(-1)!;
  t.match(JSON.parse(noModel.payload), { status: 'error', transaction: 'p', error: { code: 'MODEL_NOT_LOADED' } });
});

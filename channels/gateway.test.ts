/**
 * The channel gateway in a real composed runtime (createApp, demo devices, real agent fast path): the
 * HTTP chat endpoint, the OpenAI-compatible endpoint, and the line-chat channel with pairing.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createContentSafety } from '../plugins/builtin/content-safety/safety.js';
import { ClawboxError } from '../runtime/errors.js';
import { type AgentHandle, lineClient, startAppWithGateway } from './test-helpers.js';

let busy = false;
const busyHandle: AgentHandle = async () => {
  throw new ClawboxError('BUSY', 'all model slots are taken', { retry_after_ms: 2500 });
};

t.test('channels in the composed runtime', async (t) => {
  const safety = createContentSafety({ config: { rules: [{ id: 'no-secrets', category: 'secret', words: ['topsecret'] }], categories: { secret: 'block' } } });
  const agentSaw: string[] = [];
  const env = await startAppWithGateway({
    agent: (app) => () => {
      const handle = app.agent.handle;
      if (busy || !handle) return busyHandle;
      return (request) => {
        agentSaw.push(request.text);
        return handle(request);
      };
    },
    safety,
  });
  t.teardown(() => env.stop());
  const { app, gateway } = env;
  const base = `http://127.0.0.1:${app.http.port}`;
  const post = (path: string, body: unknown) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const lamp = () => (app.devices.get('lamp')?.state as { state?: string } | undefined)?.state;

  await t.test('POST /api/chat turns on the demo lamp on the fast path', async (t) => {
    const response = await post('/api/chat', { text: 'turn on the lamp' });
    t.equal(response.status, 200);
    const body = (await response.json()) as { status: string; data: { text: string; actions: { device: string }[]; path: string; session: string } };
    t.equal(body.status, 'ok');
    t.equal(body.data.path, 'fast');
    t.equal(body.data.actions[0]?.device, 'lamp');
    t.equal(body.data.session, 'http:default');
    t.type(body.data.text, 'string');
    t.equal(lamp(), 'ON', 'the lamp is on');
    t.equal(gateway.figures().pending_messages, 0, 'answered messages leave the inbox');
  });

  await t.test('POST /api/chat refuses bad bodies with the JSON error shape', async (t) => {
    for (const bad of [{}, { text: '' }, { text: 'hi', extra: 1 }, { text: 'x', session: 'a b' }]) {
      const response = await post('/api/chat', bad);
      t.equal(response.status, 400, JSON.stringify(bad));
      t.equal(((await response.json()) as { error: { code: string } }).error.code, 'PAYLOAD_INVALID');
    }
  });

  await t.test('OpenAI-compatible /v1/chat/completions answers a standard request', async (t) => {
    const response = await post('/v1/chat/completions', {
      model: 'clawbox',
      messages: [
        { role: 'system', content: 'You are a helpful home assistant.' },
        { role: 'user', content: 'turn on the lamp' },
        { role: 'assistant', content: 'Done.' },
        { role: 'user', content: [{ type: 'text', text: 'turn off the lamp' }] },
      ],
      temperature: 0.2,
      stream: false,
    });
    t.equal(response.status, 200);
    const body = (await response.json()) as {
      object: string;
      model: string;
      choices: { index: number; message: { role: string; content: string }; finish_reason: string }[];
      usage: { total_tokens: number };
    };
    t.equal(body.object, 'chat.completion');
    t.equal(body.model, 'clawbox');
    t.equal(body.choices[0]?.message.role, 'assistant');
    t.type(body.choices[0]?.message.content, 'string');
    t.ok(body.choices[0]?.message.content.length);
    t.equal(body.choices[0]?.finish_reason, 'stop');
    t.equal(lamp(), 'OFF', 'the last user message was acted on');

    // stream: true (what most OpenAI clients send): server-sent chunks, then [DONE].
    const streamed = await post('/v1/chat/completions', {
      model: 'clawbox',
      messages: [{ role: 'user', content: 'turn on the lamp' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    t.equal(streamed.status, 200);
    t.match(streamed.headers.get('content-type'), /^text\/event-stream/);
    const events = (await streamed.text()).split('\n\n').filter(Boolean);
    t.equal(events.at(-1), 'data: [DONE]', 'ends with [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, '')) as Record<string, unknown>);
    t.match(chunks, [
      { object: 'chat.completion.chunk', model: 'clawbox', choices: [{ index: 0, delta: { role: 'assistant', content: /\S/ }, finish_reason: null }] },
      { object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
      { object: 'chat.completion.chunk', choices: [], usage: { total_tokens: Number } },
    ]);
    t.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one completion id across chunks');
    t.equal(lamp(), 'ON', 'the streamed request was acted on');
    t.equal((await post('/api/chat', { text: 'turn off the lamp' })).status, 200);
    t.equal(lamp(), 'OFF');
    const noUser = await post('/v1/chat/completions', { model: 'clawbox', messages: [{ role: 'system', content: 'x' }] });
    t.equal(noUser.status, 400);
  });

  await t.test('BUSY from the agent is 503 with Retry-After', async (t) => {
    busy = true;
    t.teardown(() => {
      busy = false;
    });
    const response = await post('/api/chat', { text: 'turn on the lamp' });
    t.equal(response.status, 503);
    t.equal(response.headers.get('retry-after'), '3');
    const streamed = await post('/v1/chat/completions', { model: 'clawbox', messages: [{ role: 'user', content: 'hi' }], stream: true });
    t.equal(streamed.status, 503, 'an error before the answer is a plain HTTP error, not a stream');
    t.match(await streamed.json(), { status: 'error', error: { code: 'BUSY' } });
    t.match(await response.json(), { status: 'error', error: { code: 'BUSY', retry_after_ms: 2500 } });
    const openai = await post('/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    t.equal(openai.status, 503);
    t.equal(openai.headers.get('retry-after'), '3');
  });

  await t.test('content safety: blocked input refused, masked input stored masked', async (t) => {
    const blocked = await post('/api/chat', { text: 'tell me the topsecret plan' });
    t.equal(blocked.status, 403);
    t.match(await blocked.json(), { error: { code: 'FORBIDDEN' } });
    const masked = await post('/api/chat', { text: 'my card is 4111 1111 1111 1111, turn on the lamp', session: 'card' });
    t.not(masked.status, 403, 'accepted (answered by the fast path or, without a model here, MODEL_NOT_LOADED)');
    t.same(agentSaw.at(-1), 'my card is *******************, turn on the lamp', 'the agent saw it masked');
    t.notMatch(readFileSync(path.join(env.stateDir, 'chat-inbox.json'), 'utf8'), /4111/, 'the card number never reaches the state store');
  });

  await t.test('line chat: an unknown sender gets a pairing code, is ignored until approved, then answered', async (t) => {
    const port = gateway.channel<import('./line-chat.js').LineChatChannel>('line-chat')?.port ?? 0;
    t.ok(port > 0);
    const alice = await lineClient(port);
    t.teardown(() => alice.close());
    alice.say('/nick alice');
    t.equal(await alice.next(), '* you are alice');
    alice.say('turn on the lamp');
    const pairingLine = await alice.next();
    const code = /Pairing code: ([A-Z0-9]{6})/.exec(pairingLine)?.[1];
    t.ok(code, `a pairing code is sent: ${pairingLine}`);
    t.equal(lamp(), 'OFF', 'the unpaired message did nothing');
    alice.say('turn on the lamp');
    alice.say('/nick alice');
    t.equal(await alice.next(), '* you are alice', 'the second unpaired message got no answer and did nothing');
    t.equal(lamp(), 'OFF');
    t.equal(gateway.figures().pending_messages, 0, 'unpaired messages are not stored');
    t.same(
      gateway.pairingRequests().map((r) => [r.code, r.sender.sender_id]),
      [[code, 'alice']],
      'one request per sender',
    );

    const wrong = await fetch(`http://127.0.0.1:${app.http.port}/api/channels/pairings/NOPE99/approve`, { method: 'POST' });
    t.equal(wrong.status, 404);
    const approved = await fetch(`http://127.0.0.1:${app.http.port}/api/channels/pairings/${code}/approve`, { method: 'POST' });
    t.equal(approved.status, 200);
    t.match(await approved.json(), { status: 'ok', data: { channel: 'line-chat', sender_id: 'alice' } });

    alice.say('turn on the lamp');
    const answer = await alice.next();
    t.notOk(answer.startsWith('!'), `answered: ${answer}`);
    t.equal(lamp(), 'ON', 'the paired sender controls the lamp');

    // A stranger without a nick is a different sender, still unpaired.
    const stranger = await lineClient(port);
    t.teardown(() => stranger.close());
    stranger.say('turn off the lamp');
    t.match(await stranger.next(), /Pairing code: [A-Z0-9]{6}/);
    t.equal(lamp(), 'ON');
  });
});

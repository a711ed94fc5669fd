/**
 * The channel gateway in a real composed runtime (createApp, demo devices, the real agent behind a
 * counting stand-in, the real content-safety filter): the HTTP chat endpoint, the OpenAI-compatible
 * endpoint, and the line-chat channel with pairing, all through chat.message.
 */
import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import t from 'tap';
import { Writable } from 'node:stream';
import { createApp } from '../app/app.js';
import { createContentSafety } from '../plugins/builtin/content-safety/safety.js';
import { makeTestContext } from '../app/testing/test-context.js';
import { ClawboxError } from '../runtime/errors.js';
import { createLogging } from '../runtime/logging.js';
import { lineClient, realAgent, startAppWithGateway } from './test-helpers.js';

const SAFETY_CONFIG = { rules: [{ id: 'no-secrets', category: 'secret', words: ['topsecret'] }], categories: { secret: 'block' } };

t.test('channels in the composed runtime', async (t) => {
  const safety = createContentSafety({ config: SAFETY_CONFIG });
  let busy = false;
  // What reached the agent: the stand-in counts, then passes the request on to the real agent.request.
  const agentSaw: string[] = [];
  const env = await startAppWithGateway({
    agent: (app) => async (input, ctx) => {
      agentSaw.push(input.text);
      if (busy) throw new ClawboxError('BUSY', 'all model slots are taken', { retry_after_ms: 2500 });
      // A reply the filter must withhold.
      if (input.text === 'what is the plan') return { text: 'the topsecret plan is ready', actions: [], path: 'fast', timings: {} };
      return realAgent(app, input, ctx);
    },
    safety,
  });
  t.teardown(() => env.stop());
  const { app, gateway } = env;
  const base = `http://127.0.0.1:${app.http.port}`;
  const post = (path: string, body: unknown) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const lamp = () => (app.devices.get('lamp')?.state as { state?: string } | undefined)?.state;
  const inboxFile = path.join(env.stateDir, 'chat-inbox.json');

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
    t.equal(gateway.figures().pending_messages, 0);
    t.notOk(existsSync(inboxFile), 'a synchronous HTTP chat never writes the durable inbox');
  });

  await t.test('POST /api/chat refuses bad bodies with the JSON error shape', async (t) => {
    for (const bad of [{}, { text: '' }, { text: 'hi', extra: 1 }, { text: 'x', session: 'a b' }]) {
      const response = await post('/api/chat', bad);
      t.equal(response.status, 400, JSON.stringify(bad));
      t.equal(((await response.json()) as { error: { code: string } }).error.code, 'PAYLOAD_INVALID');
    }
    const long = await post('/api/chat', { text: 'x'.repeat(1001) });
    t.equal(long.status, 413);
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
    // A fast-path answer is whole when it is known: the role, then its text in one piece.
    t.match(chunks, [
      { object: 'chat.completion.chunk', model: 'clawbox', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
      { object: 'chat.completion.chunk', model: 'clawbox', choices: [{ index: 0, delta: { content: /\S/ }, finish_reason: null }] },
      { object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
      { object: 'chat.completion.chunk', choices: [], usage: { total_tokens: Number } },
    ]);
    t.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one completion id across chunks');
    t.equal(lamp(), 'ON', 'the streamed request was acted on');
    t.equal((await post('/api/chat', { text: 'turn off the lamp' })).status, 200);
    t.equal(lamp(), 'OFF');
    const noUser = await post('/v1/chat/completions', { model: 'clawbox', messages: [{ role: 'system', content: 'x' }] });
    t.equal(noUser.status, 400);
    t.notOk(existsSync(inboxFile), 'nor does an OpenAI request');
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
    t.match(await streamed.json(), { error: { code: 'busy', type: 'server_error' } }, 'in the OpenAI error shape');
    t.match(await response.json(), { status: 'error', error: { code: 'BUSY', retry_after_ms: 2500 } });
    const openai = await post('/v1/chat/completions', { model: 'clawbox', messages: [{ role: 'user', content: 'hi' }] });
    t.equal(openai.status, 503);
    t.equal(openai.headers.get('retry-after'), '3');
  });

  await t.test('content safety on HTTP chat and OpenAI: blocked input never reaches the agent, blocked replies are withheld', async (t) => {
    const seen = agentSaw.length;
    const blocked = await post('/api/chat', { text: 'tell me the topsecret plan' });
    t.equal(blocked.status, 422);
    t.match(await blocked.json(), { status: 'error', error: { code: 'CONTENT_BLOCKED' } });
    const openai = await post('/v1/chat/completions', { model: 'clawbox', messages: [{ role: 'user', content: 'the topsecret word' }] });
    t.equal(openai.status, 422);
    t.match(await openai.json(), { error: { code: 'content_blocked', type: 'invalid_request_error' } });
    t.equal((await post('/api/chat', { text: 'turn on the lamp' })).status, 200, 'the next allowed message gets through');
    t.same(agentSaw.slice(seen), ['turn on the lamp'], 'the agent saw only the allowed message');

    const masked = await post('/api/chat', { text: 'my card is 4111 1111 1111 1111, turn on the lamp', session: 'card' });
    t.not(masked.status, 422, 'accepted (answered by the fast path or, without a model here, MODEL_NOT_LOADED)');
    t.same(agentSaw.at(-1), 'my card is *******************, turn on the lamp', 'the agent saw it masked');

    const withheld = await post('/api/chat', { text: 'what is the plan' });
    t.equal(withheld.status, 200);
    t.match(await withheld.json(), { status: 'ok', data: { text: '[answer withheld by content safety]', withheld: true } });
    const withheldOpenai = await post('/v1/chat/completions', { model: 'clawbox', messages: [{ role: 'user', content: 'what is the plan' }] });
    const completion = (await withheldOpenai.json()) as { choices: { message: { content: string } }[] };
    t.equal(completion.choices[0]?.message.content, '[answer withheld by content safety]');
  });

  await t.test('line chat: an unknown sender gets a pairing code, is ignored until approved, then answered', async (t) => {
    const port = gateway.channel<import('./line-chat.js').LineChatChannel>('line-chat')?.port ?? 0;
    t.ok(port > 0);
    await post('/api/chat', { text: 'turn off the lamp' });
    t.equal(lamp(), 'OFF');
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

    // Content safety on a durable channel: refused before it is stored, and a blocked reply withheld.
    const seen = agentSaw.length;
    alice.say('the topsecret code is 1234');
    t.match(await alice.next(), /^! .*blocked by content safety/, 'the blocked message is refused at once');
    alice.say('what is the plan');
    t.equal(await alice.next(), '[answer withheld by content safety]');
    t.same(agentSaw.slice(seen), ['what is the plan'], 'the blocked message never reached the agent');
    t.notMatch(readFileSync(inboxFile, 'utf8'), /topsecret/, 'nor the state store');

    // A stranger without a nick is a different sender, still unpaired.
    const stranger = await lineClient(port);
    t.teardown(() => stranger.close());
    stranger.say('turn off the lamp');
    t.match(await stranger.next(), /Pairing code: [A-Z0-9]{6}/);
    t.equal(lamp(), 'ON');
  });
});

t.test('an HTTP chat whose client disconnects before the answer cancels its work', async (t) => {
  let called!: () => void;
  const reached = new Promise<void>((resolve) => {
    called = resolve;
  });
  let sawAbort!: (aborted: boolean) => void;
  const aborted = new Promise<boolean>((resolve) => {
    sawAbort = resolve;
  });
  // The stand-in agent holds the request until its signal says the caller went away.
  const env = await startAppWithGateway({
    agent: () => (_input, ctx) =>
      new Promise((_resolve, reject) => {
        ctx.signal.addEventListener(
          'abort',
          () => {
            sawAbort(ctx.signal.aborted);
            reject(ctx.signal.reason);
          },
          { once: true },
        );
        called();
      }),
  });
  t.teardown(() => env.stop());
  const req = httpRequest({ host: '127.0.0.1', port: env.app.http.port, path: '/api/chat', method: 'POST', headers: { 'content-type': 'application/json' } });
  req.on('error', () => {});
  req.end(JSON.stringify({ text: 'turn on the lamp' }));
  await reached;
  req.destroy();
  t.equal(await aborted, true, 'the agent request saw its signal abort');
  t.equal((env.app.devices.get('lamp')?.state as { state?: string } | undefined)?.state, 'OFF', 'nothing ran for the departed caller');
});

t.test('the HTTP caller bounds what its chat sender may have the agent do', async (t) => {
  const token = 'chat-only-token-0123456789';
  const env = await startAppWithGateway({
    mode: 'appliance',
    config: {
      http: { token, permissions: ['agent/request'] },
      devices: [{ id: 'lamp', driver: 'simulated', capabilities: ['switch'] }],
    },
    channels: {},
  });
  t.teardown(() => env.stop());
  const response = await fetch(`http://127.0.0.1:${env.app.http.port}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ text: 'turn on the lamp' }),
  });
  const body = (await response.json()) as { status: string; data?: { actions: unknown[]; refused?: { device: string; code: string }[] } };
  t.equal(response.status, 200, JSON.stringify(body));
  t.match(body.data?.refused, [{ device: 'lamp', code: 'FORBIDDEN' }], 'the agent was refused the lamp for this caller');
  t.equal((env.app.devices.get('lamp')?.state as { state?: string } | undefined)?.state, 'OFF', 'the lamp did not move');
});

t.test('the composed app screens chat with the policy of the content-safety plugin', async (t) => {
  const test = makeTestContext({ config: { plugins: { config: { 'content-safety': { rules: [{ category: 'secret', words: ['topsecret'] }] } } } } });
  const logging = createLogging({ level: 'silent', components: {}, pretty: false, destination: new Writable({ write: (_c, _e, done) => done() }) });
  const app = createApp({ config: test.ctx.config, logging, env: {} });
  await app.start();
  t.teardown(async () => {
    await app.stop();
    test.cleanup();
  });
  const post = (text: string) =>
    fetch(`http://127.0.0.1:${app.http.port}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
  for (const text of ['my key is AKIAABCDEFGHIJKLMNOP', 'the topsecret plan']) {
    const blocked = await post(text);
    t.equal(blocked.status, 422, text);
    t.match(await blocked.json(), { status: 'error', error: { code: 'CONTENT_BLOCKED' } });
  }
  const allowed = await post('turn on the lamp');
  t.equal(allowed.status, 200, 'an ordinary message is answered');
  t.equal((app.devices.get('lamp')?.state as { state?: string } | undefined)?.state, 'ON');
});

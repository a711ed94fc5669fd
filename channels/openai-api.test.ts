/**
 * The OpenAI-compatible API with the official `openai` SDK against the real composed runtime (createApp,
 * real HTTP server, real agent and scheduler): a runtime without a model (demo devices, the fast path),
 * and one with a generated tiny GGUF (random weights: its replies are gibberish, which is all streaming
 * needs) and no devices, so every model answer is reply text.
 */
import path from 'node:path';
import { Writable } from 'node:stream';
import OpenAI from 'openai';
import t from 'tap';
import { type App, createApp } from '../app/app.js';
import { makeTestContext } from '../app/testing/test-context.js';
import { tempDir } from '../models/testing/fixtures.js';
import { generateModel } from '../models/gguf/generate.js';
import { createLogging } from '../runtime/logging.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

async function startApp(t: Teardown, config: Record<string, unknown> = {}): Promise<App> {
  const test = makeTestContext({ config });
  t.teardown(() => test.cleanup());
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const logging = createLogging({ level: 'silent', components: {}, pretty: false, destination: sink });
  const app = createApp({ config: test.ctx.config, logging, env: {} });
  await app.start();
  t.teardown(() => app.stop());
  return app;
}

/** An SDK client that counts the HTTP requests it makes (to see that it does not retry). */
function client(app: App, maxRetries = 2) {
  const counter = { requests: 0 };
  const openai = new OpenAI({
    apiKey: 'not-needed-on-loopback',
    baseURL: `http://127.0.0.1:${app.http.port}/v1`,
    maxRetries,
    timeout: 60_000,
    fetch: (url, init) => {
      counter.requests++;
      return fetch(url, init);
    },
  });
  return { openai, counter };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

t.test('without a model: list, retrieve, the fast path, streaming, and errors the SDK understands', async (t) => {
  const app = await startApp(t);
  const { openai, counter } = client(app);

  const list = await openai.models.list();
  t.same(
    list.data.map((m) => m.id),
    ['clawbox'],
    'the agent is listed',
  );
  t.match(await openai.models.retrieve('clawbox'), { id: 'clawbox', object: 'model', owned_by: 'clawbox' });
  const missing = await openai.models.retrieve('gpt-4o').catch((e: unknown) => e);
  t.ok(missing instanceof OpenAI.NotFoundError, 'an unknown model is a NotFoundError');
  t.match(missing, { status: 404, code: 'model_not_found' });

  const done = await openai.chat.completions.create({ model: 'clawbox', messages: [{ role: 'user', content: 'turn on the lamp' }] });
  t.match(done, { object: 'chat.completion', choices: [{ message: { role: 'assistant' }, finish_reason: 'stop' }] });
  t.match(done.choices[0]?.message.content, /lamp/i, 'the fast path answered');
  t.equal((app.devices.get('lamp')?.state as { state?: string } | undefined)?.state, 'ON', 'and the lamp is on');

  const stream = await openai.chat.completions.create({ model: 'clawbox', messages: [{ role: 'user', content: 'turn off the lamp' }], stream: true });
  let text = '';
  let finish: string | null = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  t.match(text, /lamp/i, 'a streamed fast-path answer arrives whole');
  t.equal(finish, 'stop');

  const unknownModel = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
  t.match(unknownModel, { status: 404, code: 'model_not_found', param: 'model' }, 'an unknown model in a request: 404 model_not_found');

  const before = counter.requests;
  const noModel = await openai.chat.completions.create({ model: 'clawbox', messages: [{ role: 'user', content: 'write me a poem about the sea' }] }).catch((e: unknown) => e);
  t.ok(noModel instanceof OpenAI.UnprocessableEntityError, 'no model installed: 422');
  t.match(noModel, { status: 422, code: 'model_not_loaded' });
  t.equal(counter.requests - before, 1, 'and the SDK does not retry it');

  const n = await openai.chat.completions.create({ model: 'clawbox', n: 2, messages: [{ role: 'user', content: 'turn on the lamp' }] }).catch((e: unknown) => e);
  t.ok(n instanceof OpenAI.BadRequestError, 'n > 1 is refused');
  t.match(n, { status: 400, param: 'n' });

  const tools = await openai.chat.completions
    .create({
      model: 'clawbox',
      messages: [{ role: 'user', content: 'what is the weather' }],
      tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    })
    .catch((e: unknown) => e);
  t.match(tools, { status: 422, code: 'model_not_loaded' }, 'tools need the model: without one, the same clear 422');
  const badChoice = await openai.chat.completions
    .create({
      model: 'clawbox',
      messages: [{ role: 'user', content: 'hi' }],
      tools: [{ type: 'function', function: { name: 'weather' } }],
      tool_choice: { type: 'function', function: { name: 'nope' } },
    })
    .catch((e: unknown) => e);
  t.match(badChoice, { status: 400, param: 'tool_choice' }, 'a tool_choice naming no declared tool is refused');

  const bad = await openai.chat.completions.create({ model: 'clawbox', messages: [] }).catch((e: unknown) => e);
  t.match(bad, { status: 400, error: { type: 'invalid_request_error' } }, 'a malformed request: 400 in the OpenAI error shape');
});

t.test('with a model: streamed tokens, 8 concurrent streams, and a disconnect aborts the generation', async (t) => {
  const dir = await tempDir(t);
  const model = await generateModel({ path: path.join(dir, 'tiny.gguf'), shape: 'tiny', quant: 'Q8_0', seed: 7 });
  const app = await startApp(t, {
    devices: [],
    models: [{ name: 'tiny', path: model.path, context_size: 2048, sequences: 8, threads: 1, batch_threads: 1 }],
    // What is tested here is streaming and tools, not admission: a loaded test machine makes the scheduler's
    // estimates cautious, so people get a minute rather than 15 s.
    scheduler: { chat_deadline_ms: 60_000, max_deadline_ms: 60_000 },
  });
  const base = `http://127.0.0.1:${app.http.port}`;
  const lane = async () => {
    const status = (await (await fetch(`${base}/api/status`)).json()) as {
      sections?: { scheduler?: { lanes?: { main?: { service_model?: { samples?: number; stall_multiplier?: number } } } } };
    };
    return status.sections?.scheduler?.lanes?.main?.service_model ?? {};
  };
  // Ready when the agent measured the model (else the scheduler probes one request at a time).
  await until(async () => ((await lane()).samples ?? 0) >= 3, 'the model to load and be calibrated', 120_000);
  // On a loaded test machine a burst can look like stalls, which makes admission cautious for a few seconds.
  const calm = () => until(async () => ((await lane()).stall_multiplier ?? 1) <= 1.2, 'the stall estimate to settle');
  const { openai } = client(app, 0);
  t.same((await openai.models.list()).data.map((m) => m.id), ['clawbox', 'tiny'], 'configured models are listed too');

  /** One streamed answer: its content pieces and when each arrived. */
  const streamOne = async (user: string) => {
    const stream = await openai.chat.completions.create({ model: 'tiny', user, messages: [{ role: 'user', content: `tell me a story ${user}` }], stream: true });
    const pieces: { text: string; at: number }[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      const text = chunk.choices[0]?.delta.content;
      if (text) pieces.push({ text, at: performance.now() });
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    return { pieces, finish };
  };

  const one = await streamOne('solo');
  t.ok(one.pieces.length >= 2, `the reply comes in pieces as it is generated (${one.pieces.length})`);
  t.equal(one.finish, 'stop');

  const engine = app.models.engine('main');
  t.ok(engine, 'the model is loaded');
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, engine?.sequences().busy ?? 0);
  }, 2);
  const all = await Promise.all(Array.from({ length: 8 }, (_, i) => streamOne(`user${i}`)));
  clearInterval(sampler);
  t.equal(all.length, 8, 'all 8 concurrent streams completed');
  for (const [i, result] of all.entries()) {
    t.ok(result.pieces.length >= 2 && result.finish === 'stop', `stream ${i}: ${result.pieces.length} pieces, finished`);
  }
  t.ok(peak >= 2, `streams ran side by side on the model's sequences (peak ${peak} busy)`);

  await calm();
  // Tools: grammar-constrained calls of the client's own functions (short names keep the random model's
  // output well inside the agent's output budget).
  const weather = { type: 'function' as const, function: { name: 'w', description: 'the weather in a city', parameters: { type: 'object', properties: { c: { type: 'string', maxLength: 8 } }, required: ['c'] } } };
  const clock = { type: 'function' as const, function: { name: 't', parameters: { type: 'object', properties: { z: { enum: ['utc', 'local'] } }, required: ['z'] } } };
  const called = await openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'weather in Oslo?' }], tools: [weather, clock], tool_choice: 'required' });
  const call = called.choices[0]?.message.tool_calls?.[0];
  t.equal(called.choices[0]?.finish_reason, 'tool_calls', 'tool_choice required: a call');
  t.ok(call && call.type === 'function' && ['w', 't'].includes(call.function.name), `a declared function: ${JSON.stringify(call)}`);
  const args = JSON.parse(call?.type === 'function' ? call.function.arguments : 'null') as Record<string, unknown>;
  t.ok(call?.type === 'function' && (call.function.name === 'w' ? typeof args.c === 'string' && (args.c as string).length <= 8 : ['utc', 'local'].includes(args.z as string)), `arguments of its schema: ${JSON.stringify(args)}`);

  const named = await openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'what time is it' }], tools: [weather, clock], tool_choice: { type: 'function', function: { name: 't' } } });
  const namedCall = named.choices[0]?.message.tool_calls?.[0];
  t.equal(namedCall?.type === 'function' ? namedCall.function.name : null, 't', 'a named tool_choice calls that function');

  const streamedCall = await openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'weather?' }], tools: [weather], tool_choice: 'required', stream: true });
  let streamedName = '';
  let streamedFinish: string | null = null;
  for await (const chunk of streamedCall) {
    streamedName += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.name ?? '';
    streamedFinish = chunk.choices[0]?.finish_reason ?? streamedFinish;
  }
  t.equal(streamedName, 'w', 'a streamed call arrives as a tool_calls delta');
  t.equal(streamedFinish, 'tool_calls');

  const followUp = await openai.chat.completions.create({
    model: 'tiny',
    messages: [
      { role: 'user', content: 'weather in Oslo?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'w', arguments: '{"c":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny, 21 C' },
    ],
    tools: [weather],
    tool_choice: 'none',
  });
  t.type(followUp.choices[0]?.message.content, 'string', 'tool_choice none: a text answer, with the function result in the conversation');

  // A client that goes away mid-stream: its generation is aborted in the engine.
  await calm();
  const abortedBefore = engine!.status().requests.aborted;
  const controller = new AbortController();
  const stream = await openai.chat.completions.create(
    { model: 'tiny', messages: [{ role: 'user', content: 'a long story please' }], stream: true },
    { signal: controller.signal },
  );
  const iterator = stream[Symbol.asyncIterator]();
  let first = await iterator.next();
  while (!first.done && !first.value.choices[0]?.delta.content) first = await iterator.next();
  controller.abort();
  await iterator.return?.();
  await until(() => engine!.status().requests.aborted > abortedBefore, 'the engine to abort the generation');
  t.pass('the disconnect aborted the generation');
});

t.test('POST /api/chat/stream: token events, then the reply', async (t) => {
  const app = await startApp(t);
  const response = await fetch(`http://127.0.0.1:${app.http.port}/api/chat/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'turn on the lamp' }),
  });
  t.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const events = (await response.text())
    .split('\n\n')
    .filter(Boolean)
    .map((block) => ({ event: /^event: (.*)$/m.exec(block)?.[1], data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as { text: string } }));
  const reply = events.at(-1);
  t.equal(reply?.event, 'reply', 'the last event is the reply');
  t.equal(
    events.filter((e) => e.event === 'token').map((e) => e.data.text).join(''),
    reply?.data.text,
    'the tokens joined are the reply text',
  );
  const busy = await fetch(`http://127.0.0.1:${app.http.port}/api/chat/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'write me a poem' }),
  });
  t.equal(busy.status, 503, 'an error before the first event is a plain HTTP error');
  t.match(await busy.json(), { status: 'error', error: { code: 'MODEL_NOT_LOADED' } });
});

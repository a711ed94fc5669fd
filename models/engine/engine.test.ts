import { Writable } from 'node:stream';
import { Ajv } from 'ajv';
import { type Llama, LlamaLogLevel, getLlama } from 'node-llama-cpp';
import pino from 'pino';
import t from 'tap';
import { withModelDefaults } from '../config-schema.js';
import { STORIES_PATH, rejectionCode, storiesSkipReason, tinyModel } from '../testing/fixtures.js';
import { type LlamaFactory, selectBackend } from './backend.js';
import { ModelEngine } from './engine.js';
import { ServiceRates } from './rates.js';
import { chooseThreads } from './threads.js';

/** A logger that records what it was told, to count warnings. */
function recordingLogger() {
  const lines: Array<{ level: number; msg: string; code?: string }> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines, warnings: () => lines.filter((l) => l.level === 40) };
}

let cpu: Llama;
t.before(async () => {
  cpu = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
});
t.teardown(() => cpu.dispose());

/** The shared CPU backend handed out by a factory: engines that "own" it must not dispose it. */
function shared(real: Llama): Llama {
  return new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'dispose') return async () => {};
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A stand-in for a GPU build: the real CPU backend wearing a GPU's name. Only what cannot exist here is faked. */
function fakeGpu(real: Llama, options: { devices: string[]; loadFails?: boolean }): Llama {
  return new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'gpu') return 'cuda';
      if (prop === 'getGpuDeviceNames') return async () => options.devices;
      if (prop === 'getVramState') return async () => ({ total: 8e9, used: 1e9, free: 7e9, unifiedSize: 0 });
      if (prop === 'dispose') return async () => {};
      if (prop === 'loadModel' && options.loadFails) {
        return async () => {
          throw new Error('ggml_cuda_init: failed to initialize CUDA: no CUDA-capable device is detected');
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

t.test('thread choice follows free cores, not all cores', async (t) => {
  t.match(chooseThreads({ mathCores: 2, availableCpus: 2, freeCores: 2 }), { threads: 1, batchThreads: 2 });
  t.match(chooseThreads({ mathCores: 2, availableCpus: 2, freeCores: 1 }), { threads: 1, batchThreads: 1 }, 'a busy core is never used');
  t.match(chooseThreads({ mathCores: 4, availableCpus: 8, freeCores: 8 }), { threads: 4, batchThreads: 4 }, 'capped by math cores');
  t.match(chooseThreads({ mathCores: 8, availableCpus: 8, freeCores: 5.5 }), { threads: 4, batchThreads: 5 });
  t.match(chooseThreads({ mathCores: 1, availableCpus: 1, freeCores: 0 }), { threads: 1, batchThreads: 1 }, 'never zero');
});

t.test('service rates: EWMA, stall reacts at once, estimate', async (t) => {
  const rates = new ServiceRates();
  t.equal(rates.estimateMs({ evaluate_tokens: 10, output_tokens: 5 }), null, 'no estimate before measurements');
  rates.observePrefill(100, 100); // 1 ms/token
  for (let i = 0; i < 20; i++) rates.observeDecodeGap(10);
  t.equal(rates.snapshot().decode_tok_s, 100);
  t.equal(rates.estimateMs({ evaluate_tokens: 20, output_tokens: 5 }), 20 + 50);
  rates.observeDecodeGap(200); // a stall: another process took the core
  t.ok(rates.snapshot().decode_tok_s! < 20, `a single stall lowers the decode rate sharply (${rates.snapshot().decode_tok_s})`);
});

t.test('backend selection falls back to CPU with one warning, never a crash', async (t) => {
  const calls: unknown[] = [];
  const failingGpu: LlamaFactory = async (gpu) => {
    calls.push(gpu);
    if (gpu !== false) throw new Error(`${gpu} binary failed to load: libcuda.so.1: cannot open shared object file`);
    return cpu;
  };
  for (const setting of ['cuda', 'vulkan', 'metal', 'auto'] as const) {
    const rec = recordingLogger();
    const selected = await selectBackend(setting, rec.logger, { factory: failingGpu, gpuPresent: () => true });
    t.equal(selected.backend, 'cpu', `${setting} -> cpu`);
    t.equal(selected.fallback?.from, setting);
    t.match(selected.fallback?.reason, /libcuda/);
    t.equal(rec.warnings().length, 1, `${setting}: exactly one warning`);
  }
  t.same(calls, ['cuda', false, 'vulkan', false, 'metal', false, 'auto', false]);

  const rec = recordingLogger();
  const noNodes = await selectBackend('auto', rec.logger, { factory: failingGpu, gpuPresent: () => false });
  t.equal(noNodes.backend, 'cpu');
  t.equal(noNodes.fallback, null, 'auto without GPU hardware is not a fallback');
  t.equal(rec.warnings().length, 0);

  const deviceless: LlamaFactory = async (gpu) => (gpu === false ? cpu : fakeGpu(cpu, { devices: [] }));
  const forced = await selectBackend('cuda', rec.logger, { factory: deviceless, gpuPresent: () => true });
  t.equal(forced.backend, 'cpu', 'a GPU build without devices falls back');
  t.match(forced.fallback?.reason, /no GPU device/);
  const withDevice: LlamaFactory = async (gpu) => (gpu === false ? cpu : fakeGpu(cpu, { devices: ['Fake GPU 8GB'] }));
  const gpu = await selectBackend('auto', rec.logger, { factory: withDevice, gpuPresent: () => true });
  t.equal(gpu.backend, 'cuda');

  const nothing: LlamaFactory = async () => {
    throw new Error('no prebuilt binary');
  };
  t.equal(await rejectionCode(selectBackend('cpu', rec.logger, { factory: nothing })), 'MODEL_BACKEND_UNAVAILABLE');
  t.equal(await rejectionCode(selectBackend('cuda', rec.logger, { factory: nothing, gpuPresent: () => true })), 'MODEL_BACKEND_UNAVAILABLE');
});

t.test('a GPU that fails while loading the model falls back to CPU and reports it', async (t) => {
  const model = await tinyModel(t);
  const rec = recordingLogger();
  const factory: LlamaFactory = async (gpu) => (gpu === false ? shared(cpu) : fakeGpu(cpu, { devices: ['Fake GPU'], loadFails: true }));
  const engine = await ModelEngine.load({
    entry: withModelDefaults({ name: 'tiny', path: model.path, gpu: 'cuda', context_size: 256, sequences: 1, threads: 1, batch_threads: 1 }),
    logger: rec.logger,
    backend: { factory, gpuPresent: () => true },
  });
  t.teardown(() => engine.dispose());
  t.equal(engine.info.backend, 'cpu');
  t.equal(engine.info.requested_backend, 'cuda');
  t.match(engine.info.fallback?.reason, /CUDA/);
  t.equal(rec.warnings().length, 1, 'one warning');
  const out = await engine.generate({ prompt: 'turn on the lamp', maxTokens: 3 });
  t.equal(out.generated_tokens, 3, 'still generates on CPU');
});

t.test('engine on the real model', { skip: storiesSkipReason() }, async (t) => {
  const rec = recordingLogger();
  const engine = await ModelEngine.load({
    entry: withModelDefaults({ name: 'stories', path: STORIES_PATH, context_size: 512, sequences: 4, threads: 1, batch_threads: 1 }),
    logger: rec.logger,
    llama: cpu,
  });
  t.teardown(() => engine.dispose());
  t.match(engine.info, { backend: 'cpu', context_size: 512, sequences: 4, threads: 1, gpu_layers: 0 });
  const prefix = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. '.repeat(3);

  await t.test('prefix reuse gives the same greedy output as a cold run', async (t) => {
    const cold = await engine.generate({ prefix, prompt: 'One day, Lily saw a', maxTokens: 16 });
    const warm = await engine.generate({ prefix, prompt: 'One day, Lily saw a', maxTokens: 16 });
    t.equal(warm.text, cold.text);
    t.ok(cold.text.length > 0);
    t.ok(warm.cached_tokens >= engine.tokenize(prefix).length, `warm run reused the prefix (${warm.cached_tokens} tokens)`);
    t.ok(warm.evaluated_tokens < cold.evaluated_tokens);
    // A different request after the same prefix reuses the prefix and only the prefix.
    const other = await engine.generate({ prefix, prompt: 'The sun was', maxTokens: 8 });
    t.ok(other.cached_tokens >= engine.tokenize(prefix).length);
    // warmPrefix fills the other sequences; a request on any of them is then warm.
    const warmed = await engine.warmPrefix(prefix);
    t.equal(warmed.sequences, 3, 'the three sequences that had not seen it');
    const parallel = await Promise.all([0, 1, 2, 3].map(() => engine.generate({ prefix, prompt: 'One day, Lily saw a', maxTokens: 16 })));
    t.same(new Set(parallel.map((p) => p.sequence)).size, 4, 'four sequences in parallel');
    for (const p of parallel) {
      t.equal(p.text, cold.text, `sequence ${p.sequence} identical`);
      t.ok(p.cached_tokens > 0);
    }
  });

  await t.test('parallel requests on separate sequences do not mix', async (t) => {
    const prompts = ['Tom had a red ball', 'The cat sat on the', 'Sue and Ben went to the sea', 'A big dog ran'];
    const alone = [];
    for (const prompt of prompts) alone.push((await engine.generate({ prompt, maxTokens: 10 })).text);
    const together = await Promise.all(prompts.map((prompt, i) => engine.generate({ prompt, maxTokens: 10, session: `s${i}` })));
    t.same(
      together.map((r) => r.text),
      alone,
    );
  });

  await t.test('grammar-constrained output parses and matches the schema', async (t) => {
    const schema = {
      type: 'object',
      properties: { device: { enum: ['kitchen_lamp', 'hall_light'] }, state: { enum: ['ON', 'OFF'] } },
      required: ['device', 'state'],
    };
    const validate = new Ajv().compile(schema);
    const grammar = await engine.grammarFor(schema);
    for (const prompt of ['Lily wanted to', 'turn on the light', '{']) {
      const out = await engine.generate({ prefix, prompt, maxTokens: 40, grammar });
      t.equal(out.stop_reason, 'grammar', 'stops as soon as the JSON is complete');
      t.ok(validate(out.json), `${JSON.stringify(out.json)} validates`);
    }
  });

  await t.test('cancellation: an aborted request stops and frees its sequence', async (t) => {
    const controller = new AbortController();
    const pending = engine.generate({ prompt: 'Once upon a time', maxTokens: 400, signal: controller.signal, onText: () => controller.abort() });
    t.equal(await rejectionCode(pending), 'DEADLINE_EXCEEDED');
    const pre = new AbortController();
    pre.abort();
    t.equal(await rejectionCode(engine.generate({ prompt: 'x', maxTokens: 2, signal: pre.signal })), 'DEADLINE_EXCEEDED');
    t.equal(engine.sequences().busy, 0, 'all sequences free');
    t.ok(engine.status().requests.aborted >= 1);
    const after = await engine.generate({ prompt: 'Once upon a time', maxTokens: 4 });
    t.equal(after.generated_tokens, 4, 'engine still serves');
  });

  await t.test('requests beyond the sequences queue, and a queued request can be cancelled', async (t) => {
    const running = [0, 1, 2, 3].map(() => engine.generate({ prompt: 'Once upon a time', maxTokens: 30 }));
    const controller = new AbortController();
    const queued = engine.generate({ prompt: 'Once upon a time', maxTokens: 30, signal: controller.signal });
    const waiting = engine.generate({ prompt: 'Once upon a time', maxTokens: 5 });
    t.equal(engine.sequences().waiting, 2, 'two requests wait for a sequence');
    controller.abort();
    t.equal(await rejectionCode(queued), 'DEADLINE_EXCEEDED');
    await Promise.all(running);
    t.equal((await waiting).generated_tokens, 5);
    t.ok((await waiting).timings.queue_ms > 0);
  });

  await t.test('limits, threads and measured rates', async (t) => {
    t.equal(await rejectionCode(engine.generate({ prompt: 'word '.repeat(600), maxTokens: 4 })), 'PAYLOAD_TOO_LARGE');
    t.equal(await rejectionCode(engine.generate({ prompt: 'x', maxTokens: 0 })), 'PAYLOAD_INVALID');
    engine.setThreads({ threads: 1, batchThreads: 99 });
    t.ok(engine.threads.batchThreads <= 2, 'clamped to the context ceiling');
    t.equal(engine.llama.maxThreads, 1, 'idle: single-token thread count applies');
    const fixed = await engine.recheckThreads({ threads: 1, batch_threads: 2 }, 20);
    t.match(fixed, { threads: 1, batchThreads: 1 }, 'configured counts stay (clamped to the ceiling of 1)');
    const auto = await engine.recheckThreads({ threads: 'auto', batch_threads: 'auto' }, 20);
    t.ok(auto.threads >= 1 && auto.batchThreads >= auto.threads, `re-measured: ${auto.reason}`);
    const rates = engine.rates.snapshot();
    t.ok(rates.decode_tok_s! > 0 && rates.prefill_tok_s! > 0, 'rates measured');
    t.ok(engine.rates.estimateMs({ evaluate_tokens: 20, output_tokens: 10 })! > 0);
    t.ok(engine.status().requests.completed > 5);
  });
});

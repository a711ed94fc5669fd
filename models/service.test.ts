import { copyFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Llama, LlamaLogLevel, getLlama } from 'node-llama-cpp';
import t, { type Test } from 'tap';
import { makeTestContext } from '../app/testing/test-context.js';
import { generateModel } from './gguf/generate.js';
import { meta, writeGguf } from './gguf/writer.js';
import { type ModelStateEvent, ModelService } from './service.js';
import { tempDir } from './testing/fixtures.js';

let cpu: Llama;
t.before(async () => {
  cpu = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
});
t.teardown(() => cpu.dispose());

/** The shared backend, protected from engines disposing it. */
function sharedCpu(): Llama {
  return new Proxy(cpu, {
    get(target, prop, receiver) {
      if (prop === 'dispose') return async () => {};
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function startService(t: Test, models: unknown[]) {
  const test = makeTestContext({ config: { models }, logLevel: 'warn' });
  const events: ModelStateEvent[] = [];
  test.ctx.bus.on('model.state', (e) => events.push(e));
  const service = new ModelService({ llama: sharedCpu() });
  t.teardown(async () => {
    await service.stop();
    test.cleanup();
  });
  await service.start(test.ctx);
  await service.whenSettled();
  return { service, ctx: test.ctx, events };
}

t.test('no model configured: no-model mode, status says so', async (t) => {
  const { service, ctx } = await startService(t, []);
  t.equal(service.engine(), null);
  t.equal(service.state().state, 'no-model');
  const snapshot = await ctx.status.snapshot();
  t.match(snapshot.model, { state: 'no-model', name: null });
});

t.test('a good model loads in the background and reports its figures', async (t) => {
  const dir = await tempDir(t);
  const model = await generateModel({ path: path.join(dir, 'tiny.gguf'), shape: 'tiny', quant: 'Q4_0', seed: 2 });
  const { service, ctx, events } = await startService(t, [
    { name: 'tiny', path: model.path, sha256: model.sha256, context_size: 256, sequences: 2, threads: 1, batch_threads: 1 },
  ]);
  t.equal(service.state().state, 'ready');
  const engine = service.engine();
  t.ok(engine);
  const snapshot = (await ctx.status.snapshot()).model as Record<string, unknown>;
  t.match(snapshot, {
    name: 'tiny',
    state: 'ready',
    backend: 'cpu',
    gpu_layers: 0,
    threads: 1,
    batch_threads: 1,
    context_size: 256,
    quantization: 'Q4_0',
    architecture: 'llama',
    parameters: model.parameters,
    file: model.path,
    sequences: { total: 2, busy: 0 },
  });
  t.type(snapshot.load_ms, 'number');
  t.same(
    events.map((e) => e.state),
    ['verifying', 'loading', 'ready'],
  );
  const out = await engine!.generate({ prompt: 'turn on', maxTokens: 2 });
  t.equal(out.generated_tokens, 2);
  await service.stop();
  t.equal(service.engine(), null, 'stop unloads');
});

t.test('model faults give their specific codes and the runtime stays up without a model', async (t) => {
  const dir = await tempDir(t);
  const good = await generateModel({ path: path.join(dir, 'good.gguf'), shape: 'tiny', quant: 'Q8_0', seed: 3 });
  const notGguf = path.join(dir, 'readme.gguf');
  await writeFile(notGguf, '# not a model\n');
  const truncated = path.join(dir, 'truncated.gguf');
  await copyFile(good.path, truncated);
  await truncate(truncated, Math.floor(good.bytes / 2));
  const alien = path.join(dir, 'alien.gguf');
  await writeGguf(alien, [['general.architecture', meta.str('frobnicator')]], []);
  // Wide and deep KV cache: 64 sequences x 131072 tokens needs ~34 GB of RAM.
  const huge = await generateModel({
    path: path.join(dir, 'wide.gguf'),
    shape: { n_vocab: 512, n_embd: 512, n_layer: 2, n_head: 8, n_head_kv: 8, n_ff: 32, context_length: 131072 },
    quant: 'Q4_0',
  });
  const cases = [
    ['MODEL_FILE_MISSING', { path: path.join(dir, 'nowhere.gguf') }],
    ['MODEL_NOT_GGUF', { path: notGguf }],
    ['MODEL_TRUNCATED', { path: truncated }],
    ['MODEL_UNSUPPORTED', { path: alien }],
    ['MODEL_HASH_MISMATCH', { path: good.path, sha256: '0'.repeat(64) }],
    ['MODEL_OUT_OF_MEMORY', { path: huge.path, context_size: 131072, sequences: 64 }],
  ] as const;
  for (const [code, entry] of cases) {
    await t.test(code, async (t) => {
      const { service, ctx, events } = await startService(t, [{ name: 'm', threads: 1, batch_threads: 1, ...entry }]);
      t.equal(service.engine(), null, 'no engine');
      t.match(service.state(), { state: 'error', error: { code } });
      t.match((await ctx.status.snapshot()).model, { state: 'error', error: { code } });
      t.match(events.at(-1), { state: 'error', error: { code } });
      const logged = ctx.logRing.entries().filter((e) => e.level === 'error');
      t.equal(logged.length, 1, 'one error logged');
      t.equal(logged[0]?.code, code, 'the log line carries the code');
    });
  }
  // A relative path resolves against the config file's folder, and a small model loads after main.
  await t.test('main and small', async (t) => {
    const { service } = await startService(t, [
      { name: 'main', path: good.path, context_size: 256, sequences: 1, threads: 1, batch_threads: 1 },
      { name: 'small', role: 'small', path: path.join(dir, 'missing-small.gguf') },
    ]);
    t.equal(service.state('main').state, 'ready');
    t.match(service.state('small'), { state: 'error', error: { code: 'MODEL_FILE_MISSING' } });
    t.match(service.status(), { state: 'ready', small: { state: 'error' } });
  });
});

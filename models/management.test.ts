/**
 * Model management on a running ModelService with real node-llama-cpp on the CPU and generated tiny GGUF
 * models (pulls come from a loopback HTTP server, nothing from outside): standby entries do not load,
 * activation keeps the old model serving until the new one loaded and unloads it once its requests
 * finished, a failure to record the switch changes nothing, the first pulled model on an empty box
 * becomes main and loads, and a pull with the wrong sha256 adds nothing.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { type Llama, LlamaLogLevel, getLlama } from 'node-llama-cpp';
import t, { type Test } from 'tap';
import { makeTestContext } from '../app/testing/test-context.js';
import { generateModel } from './gguf/generate.js';
import { inspectGguf } from './gguf/reader.js';
import type { PullJobView } from './management.js';
import { ModelService } from './service.js';
import { tempDir } from './testing/fixtures.js';
import { startModelServer } from './testing/model-server.js';

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

const SMALL = { context_size: 256, sequences: 1, threads: 1, batch_threads: 1, gpu: 'cpu' };

async function start(t: Test, models: unknown[], stateDir?: string) {
  const test = makeTestContext({ config: { models }, ...(stateDir ? { stateDir } : {}) });
  const pulls: PullJobView[] = [];
  test.ctx.bus.on('model.pull', (view) => pulls.push(view));
  const service = new ModelService({ llama: sharedCpu(), keepFreeBytes: 0, downloadPollMs: 0, threadRecheckMs: 0 });
  t.teardown(async () => {
    await service.stop();
    test.cleanup();
  });
  await service.start(test.ctx);
  await service.whenSettled();
  return { service, ctx: test.ctx, pulls, configFile: test.ctx.configSource! };
}

const roles = (service: ModelService) => service.configured().map((m) => [m.name, m.role]);

async function finished(service: ModelService): Promise<PullJobView> {
  for (;;) {
    const job = service.manager!.view().pull!;
    if (job.finished_at) return job;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

t.test('standby does not load; activation swaps only once the new model is loaded, retires the old one, and lasts', async (t) => {
  const dir = await tempDir(t);
  const stateDir = path.join(dir, 'state');
  const a = await generateModel({ path: path.join(dir, 'a.gguf'), shape: 'tiny', quant: 'Q8_0', seed: 1 });
  const b = await generateModel({ path: path.join(dir, 'b.gguf'), shape: 'tiny', quant: 'Q8_0', seed: 2 });
  const c = await generateModel({ path: path.join(dir, 'c.gguf'), shape: 'tiny', quant: 'Q8_0', seed: 3 });
  const models = [
    { name: 'a', path: a.path, sha256: a.sha256, role: 'main', ...SMALL },
    { name: 'b', path: b.path, sha256: b.sha256, role: 'standby', ...SMALL },
  ];
  const { service, configFile } = await start(t, models, stateDir);
  const configBefore = await readFile(configFile, 'utf8');
  t.match(service.status(), { name: 'a', state: 'ready' });
  t.notOk('small' in service.status(), 'a standby model is not loaded');
  const old = service.engine('main')!;

  // A request on the old engine while the switch happens: it must finish, and only then is the engine unloaded.
  const running = old.generate({ prompt: 'hello there', maxTokens: 24 });
  const result = await service.manager!.activate('b', new AbortController().signal);
  t.match(result, { name: 'b', previous: 'a', changed: true });
  t.not(service.engine('main'), old, 'new requests go to the new engine');
  t.match(service.status(), { name: 'b', state: 'ready' });
  const answer = await running.then(
    (r) => r,
    (error: unknown) => error,
  );
  t.notOk(answer instanceof Error, `the request in flight on the old model finished (${answer instanceof Error ? answer.message : 'ok'})`);
  t.same(roles(service), [
    ['a', 'standby'],
    ['b', 'main'],
  ]);
  t.match(await service.manager!.activate('b', new AbortController().signal), { changed: false }, 'activating the main model again changes nothing');
  t.equal(await readFile(configFile, 'utf8'), configBefore, 'the config file is not rewritten (read-only on the appliance)');
  await service.stop();

  const restarted = await start(t, models, stateDir);
  t.match(restarted.service.status(), { name: 'b', state: 'ready' }, 'after a restart the chosen model is main again');
  await restarted.service.stop();
  // The admin names another main model in the config: that edit wins over the older choice.
  const edited = await start(t, [{ ...models[0], role: 'standby' }, models[1], { name: 'c', path: c.path, role: 'main', ...SMALL }], stateDir);
  t.match(edited.service.status(), { name: 'c', state: 'ready' }, 'a later config edit wins');
});

t.test('the old model serves while the new one loads; a switch that cannot be recorded changes nothing', async (t) => {
  const dir = await tempDir(t);
  const a = await generateModel({ path: path.join(dir, 'a.gguf'), shape: 'tiny', quant: 'Q8_0', seed: 3 });
  const b = await generateModel({ path: path.join(dir, 'b.gguf'), shape: 'tiny', quant: 'Q8_0', seed: 4 });
  const { service, ctx } = await start(t, [
    { name: 'a', path: a.path, role: 'main', ...SMALL },
    { name: 'b', path: b.path, sha256: b.sha256, role: 'standby', ...SMALL },
  ]);
  const old = service.engine('main')!;
  const model = { entry: { ...service.manager!.catalogue()[1]!.entry, role: 'main' as const }, file: b.path, summary: await inspectGguf(b.path), sha256: b.sha256 };
  let atCommit: unknown = null;
  let running: Promise<unknown> | null = null;
  await service.replaceMain(model, new AbortController().signal, async () => {
    atCommit = service.engine('main');
    // A request that starts on the old model just before the switch.
    running = old.generate({ prompt: 'once upon a time', maxTokens: 64 });
  });
  t.equal(atCommit, old, 'when the new model had loaded, the old one was still the one serving');
  t.not(service.engine('main'), old);
  const answer = await running!.catch((error: unknown) => error);
  t.notOk(answer instanceof Error, `the old model finished the request it had begun before it was unloaded (${answer instanceof Error ? answer.message : 'ok'})`);

  // The record turned into a folder: the switch cannot be recorded, so it does not happen.
  const before = service.engine('main');
  const record = path.join(ctx.stateDir, 'model-choices.json');
  await rm(record, { force: true });
  await mkdir(record);
  const c = await generateModel({ path: path.join(dir, 'c.gguf'), shape: 'tiny', quant: 'Q8_0', seed: 5 });
  const modelC = { entry: { ...model.entry, name: 'c', path: c.path }, file: c.path, summary: await inspectGguf(c.path), sha256: c.sha256 };
  await t.rejects(
    service.replaceMain(modelC, new AbortController().signal, async () => {
      throw Object.assign(new Error('cannot write'), { code: 'EISDIR' });
    }),
    /cannot write/,
  );
  t.equal(service.engine('main'), before, 'the model serving is unchanged');
  t.match(service.status(), { name: 'b', state: 'ready' });
  await t.rejects(service.manager!.activate('a', new AbortController().signal), { code: 'STATE_UNWRITABLE' }, 'through the manager: the coded error');
  t.equal(service.engine('main'), before);
  t.same(roles(service), [
    ['a', 'main'],
    ['b', 'standby'],
  ], 'and the catalogue as it was');
});

t.test('the first model pulled onto an empty box becomes main and loads; a wrong sha256 adds nothing', async (t) => {
  const dir = await tempDir(t);
  const served = await generateModel({ path: path.join(dir, 'served.gguf'), shape: 'tiny', quant: 'Q8_0', seed: 6 });
  const server = await startModelServer({ file: served.path });
  t.teardown(() => server.close());
  const { service, pulls, ctx } = await start(t, []);
  t.match(service.status(), { state: 'no-model' });

  service.manager!.startPull({ uri: `${server.url}/files/wrong.gguf`, sha256: 'a'.repeat(64) });
  const wrong = await finished(service);
  t.match(wrong, { phase: 'failed', error: { code: 'MODEL_HASH_MISMATCH' } });
  t.notOk(existsSync(path.join(ctx.stateDir, 'models', 'wrong.gguf')), 'the wrong file is deleted');
  t.same(service.configured(), [], 'and nothing is added');

  const job = service.manager!.startPull({ uri: `${server.url}/files/tiny.gguf?sig=secret`, sha256: served.sha256 });
  t.match(job, { name: 'tiny', role: 'main', phase: 'resolving', uri: `${server.url}/files/tiny.gguf?…` }, 'the URI is shown without its query');
  t.throws(() => service.manager!.startPull({ uri: `${server.url}/files/other.gguf` }), { code: 'BUSY' }, 'one pull at a time');
  const done = await finished(service);
  t.match(done, { phase: 'done', total_bytes: served.bytes, error: null });
  t.match(service.status(), { name: 'tiny', state: 'ready' }, 'loaded as the main model');
  t.same(roles(service), [['tiny', 'main']]);
  t.ok(
    ['resolving', 'downloading', 'verifying', 'adding', 'loading', 'done'].every((phase) => pulls.some((p) => p.phase === phase && p.name === 'tiny')),
    `every phase reported on the bus (${[...new Set(pulls.map((p) => p.phase))].join(', ')})`,
  );
  t.throws(() => service.manager!.startPull({ uri: `${server.url}/files/tiny.gguf` }), { code: 'USAGE' }, 'a second model of the same name is refused before downloading');
});

t.test('a main model that failed to load loads again once its file is fixed', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'late.gguf');
  const { service } = await start(t, [{ name: 'late', path: file, role: 'main', ...SMALL }]);
  t.match(service.status(), { name: 'late', state: 'error', error: { code: 'MODEL_FILE_MISSING' } });
  await t.rejects(service.manager!.activate('late', new AbortController().signal), { code: 'MODEL_FILE_MISSING' }, 'still missing: the coded error');
  await generateModel({ path: file, shape: 'tiny', quant: 'Q8_0', seed: 8 });
  t.match(await service.manager!.activate('late', new AbortController().signal), { name: 'late', changed: true });
  t.match(service.status(), { name: 'late', state: 'ready' });
  t.notOk('error' in service.status(), 'the old error is gone');
});

import { Ajv } from 'ajv';
import { type Llama, LlamaLogLevel, getLlama } from 'node-llama-cpp';
import pino from 'pino';
import t, { type Test } from 'tap';
import { withModelDefaults } from '../models/config-schema.js';
import { type GenerateRequest, ModelEngine } from '../models/engine/engine.js';
import { STORIES_PATH, rejectionCode, storiesSkipReason, tinyModel } from '../models/testing/fixtures.js';
import { HOME, SimDirectory, commandSchemaFor } from './testing/sim-directory.js';
import { deviceDirectory } from '../app/agent-wiring.js';
import { startStack } from '../devices/fixtures/stack.js';
import { parseDeviceEntry } from '../devices/registry.js';
import { ClawboxError } from '../runtime/errors.js';
import { type ActOutcome, Agent, type AgentEngine, BRIEF_OUTPUT_TOKENS } from './agent.js';
import type { StateValue } from './directory.js';
import { SessionStore } from './sessions.js';
import { CommandValidator } from './validate.js';

const quiet = pino({ level: 'silent' });

t.test('fast path executes validated commands without a model', async (t) => {
  const home = new SimDirectory();
  const agent = new Agent({ directory: home });
  t.teardown(() => agent.close());

  const on = await agent.handle({ text: 'turn on the kitchen lamp', transaction: 'tx-1' });
  t.match(on, { path: 'fast', text: 'Turned Kitchen Lamp on.', transaction: 'tx-1' });
  t.same(on.actions, [{ device: 'kitchen_lamp', command: { state: 'ON' }, result: { device: 'kitchen_lamp', command: { state: 'ON' }, state: { state: 'ON', brightness: 0 } } }]);
  t.same(home.executed, [{ id: 'kitchen_lamp', command: { state: 'ON' }, transaction: 'tx-1' }], 'executed once, with the transaction');
  t.same(Object.keys(on.timings).sort(), ['decode_ms', 'prefill_ms', 'queue_ms', 'total_ms']);

  const dim = await agent.handle({ text: 'dim the kitchen lamp to 30%' });
  t.same(dim.actions[0]?.command, { brightness: 30 });

  const question = await agent.handle({ text: 'what is the living room temperature?' });
  t.match(question, { path: 'fast', text: 'The Living Room Sensor temperature is 21.5 °C.', actions: [] });

  const tooBright = await agent.handle({ text: 'set the kitchen lamp to 150 percent' });
  t.equal(tooBright.actions.length, 0, 'out of range: nothing executed');
  t.match(tooBright.refused, [{ device: 'kitchen_lamp', code: 'COMMAND_INVALID', reason: /brightness must be <= 100 \(got 150\)/ }]);
  t.match(tooBright.text, /can't do that/);

  const forbidden = await agent.handle({ text: 'turn off the desk fan', allow: ['hall_light'] });
  t.match(forbidden.refused, [{ code: 'FORBIDDEN' }]);

  home.offline.add('hall_light');
  const offline = await agent.handle({ text: 'turn off the hall light' });
  t.match(offline.actions, [{ device: 'hall_light', result: { error: { code: 'DEVICE_UNAVAILABLE' } } }]);
  t.match(offline.text, /did not do it/);
  t.equal(home.executed.length, 2, 'refused and failed commands were never executed');
});

t.test('no model: the fast path still works, everything else says MODEL_NOT_LOADED', async (t) => {
  const agent = new Agent({ directory: new SimDirectory(), engine: () => null });
  t.equal((await agent.handle({ text: 'open the garage door' })).path, 'fast');
  t.equal(await rejectionCode(agent.handle({ text: 'tell me a story about the garage' })), 'MODEL_NOT_LOADED');
  t.equal(await rejectionCode(agent.handle({ text: 'tell me a story' }, { path: 'fast' })), 'NOT_FOUND');
  t.equal(await rejectionCode(agent.handle({ text: '   ' })), 'PAYLOAD_INVALID');
  t.equal(await rejectionCode(agent.handle({ text: 42 as unknown as string })), 'PAYLOAD_INVALID');
  t.equal(await rejectionCode(agent.handle({ text: 'x'.repeat(5000) })), 'PAYLOAD_TOO_LARGE');
  t.ok(await agent.match('turn on the kitchen lamp'));
  t.equal(await agent.match('tell me a story'), null);
});

t.test('fast path: several actions, each through the caller\'s front door; a refusal of one leaves the others', async (t) => {
  const home = new SimDirectory();
  const agent = new Agent({ directory: home });
  t.teardown(() => agent.close());
  const acted: string[] = [];
  const act = async (device: string, command: Record<string, unknown>): Promise<ActOutcome> => {
    acted.push(`${device} ${JSON.stringify(command)}`);
    if (device === 'desk_fan') throw new ClawboxError('FORBIDDEN', 'not yours');
    if (device === 'garage_door') return { kind: 'confirm', confirmation: { id: 'c1', device, command: command as Record<string, StateValue>, expires_at: 'later' } };
    return { kind: 'done', result: await home.execute(device, command as Record<string, StateValue>, { source: 'agent' }) };
  };
  const multi = await agent.handle({ text: 'kitchen lamp on and open the office blinds', act });
  t.same(acted, ['kitchen_lamp {"state":"ON"}', 'office_blinds {"state":"OPEN"}'], 'two actions, in the order said, each through act');
  t.same(multi.actions.map((a) => a.device), ['kitchen_lamp', 'office_blinds']);
  t.match(multi.text, /Turned Kitchen Lamp on\. Opening Office Blinds\./);

  acted.length = 0;
  const everything = await agent.handle({ text: 'turn everything off', act });
  t.same(acted.sort(), ['desk_fan {"state":"OFF"}', 'hall_light {"state":"OFF"}', 'kitchen_lamp {"state":"OFF"}'], 'every switchable device; the heating is not "everything"');
  t.same(everything.actions.map((a) => a.device).sort(), ['hall_light', 'kitchen_lamp']);
  t.match(everything.refused, [{ device: 'desk_fan', code: 'FORBIDDEN' }], 'the forbidden one is reported, not run');

  const pending = await agent.handle({ text: 'close the garage door and the office blinds', act });
  t.match(pending.confirmations, [{ id: 'c1', device: 'garage_door' }], 'a sensitive device waits for confirmation');
  t.same(pending.actions.map((a) => a.device), ['office_blinds']);

  acted.length = 0;
  const contradiction = await rejectionCode(agent.handle({ text: 'turn the kitchen lamp on and off', act }));
  t.equal(contradiction, 'MODEL_NOT_LOADED', 'a contradiction is not a command');
  t.same(acted, [], 'nothing ran');
});

t.test('fast path: questions read state and never act; a question back is answered in the same session', async (t) => {
  const home = new SimDirectory();
  const agent = new Agent({ directory: home });
  t.teardown(() => agent.close());
  let acts = 0;
  const act = async (): Promise<ActOutcome> => {
    acts++;
    return { kind: 'done', result: null };
  };
  const lights = await agent.handle({ text: 'are the lights on?', act });
  t.same(lights.answers, [
    { device: 'kitchen_lamp', property: 'state', value: 'OFF' },
    { device: 'hall_light', property: 'state', value: 'ON' },
  ]);
  t.equal(lights.text, 'Kitchen Lamp is off. Hall Light is on.');

  const which = await agent.handle({ text: "what's the temperature?", session: 's1', act });
  t.same(which.question, { subject: 'temperature', candidates: ['living_room_sensor', 'thermostat'] });
  t.equal(which.text, 'Which temperature: Living Room Sensor or Bedroom Thermostat?');
  const other = await rejectionCode(agent.handle({ text: 'the first one', session: 's2', act }));
  t.equal(other, 'MODEL_NOT_LOADED', 'another session has no question to answer');
  const answer = await agent.handle({ text: 'the sensor', session: 's1', act });
  t.same(answer.answers, [{ device: 'living_room_sensor', property: 'temperature', value: 21.5 }]);
  t.equal(answer.text, 'The Living Room Sensor temperature is 21.5 °C.');
  t.equal(acts, 0, 'no question acted');

  await agent.handle({ text: 'turn on the desk fan', session: 's1' });
  const it = await agent.handle({ text: 'turn it off again', session: 's1' });
  t.same(it.actions.map((a) => [a.device, a.command]), [['desk_fan', { state: 'OFF' }]], '"it" is the device of the previous turn');
});

t.test('fast path: relative changes start from the fresh state; Chinese is answered in Chinese', async (t) => {
  const home = new SimDirectory();
  const agent = new Agent({ directory: home });
  t.teardown(() => agent.close());
  (home.devices.find((d) => d.id === 'kitchen_lamp') as { state: Record<string, StateValue> }).state = { state: 'ON', brightness: 40 };
  const brighter = await agent.handle({ text: 'make the kitchen lamp a bit brighter', session: 'r' });
  t.same(brighter.actions[0]?.command, { brightness: 50 });
  const more = await agent.handle({ text: 'a bit more', session: 'r' });
  t.same(more.actions[0]?.command, { brightness: 60 }, 'the follow-up continues from the new state');
  const warmer = await agent.handle({ text: 'make it 2 degrees warmer' });
  t.same(warmer.actions[0]?.command, { target_temperature: 21 });
  const zh = await agent.handle({ text: '把温度调到22度' });
  t.same(zh.actions.map((a) => [a.device, a.command]), [['thermostat', { target_temperature: 22 }]]);
  t.equal(zh.text, '已将Bedroom Thermostat温度设为 22°C。');
});

t.test('sessions: bounded history and idle expiry', async (t) => {
  let now = 0;
  const expired: string[] = [];
  const store = new SessionStore({ maxTurns: 3, maxChars: 100, idleMs: 1000, maxSessions: 2, now: () => now });
  store.onExpire = (id) => expired.push(id);
  for (let i = 0; i < 5; i++) store.append('a', `u${i}`, `a${i}`);
  t.same(store.history('a').map((turn) => turn.user), ['u2', 'u3', 'u4'], 'last 3 turns');
  store.append('a', 'x'.repeat(95), 'y'.repeat(10));
  t.equal(store.history('a').length, 1, 'character bound drops old turns');
  now = 500;
  store.append('b', 'hi', 'hello');
  now = 1200;
  t.same(store.history('a'), [], 'a idle for 1200 ms is forgotten');
  t.equal(store.history('b').length, 1, 'b idle for 700 ms is kept');
  store.append('c', 'x', 'y');
  store.append('d', 'x', 'y');
  t.equal(store.size, 2, 'at most 2 sessions');
  t.same(expired, ['a', 'b'], 'expiry is reported (the engine forgets the affinity)');
});

t.test('validator explains what is wrong', async (t) => {
  const validator = new CommandValidator();
  const schema = commandSchemaFor({ id: 'x', name: 'x', capabilities: [{ type: 'thermostat', min: 5, max: 30 }] })!;
  t.same(validator.validate(schema, { target_temperature: 21.5 }), { ok: true });
  t.match(validator.validate(schema, { target_temperature: 31 }), { ok: false, reason: /target_temperature must be <= 30 \(got 31\)/ });
  t.match(validator.validate(schema, { target_temperature: 21.3 }), { ok: false, reason: /multiple of 0.5/ });
  t.match(validator.validate(schema, { mode: 'turbo' }), { ok: false, reason: /mode must be one of off, heat/ });
  t.match(validator.validate(schema, { colour: 'red' }), { ok: false, reason: /no property "colour"/ });
  t.match(validator.validate(schema, {}), { ok: false, reason: /empty/ });
});

/** Records what the agent asks the engine for; the real engine does the work. */
function recording(engine: ModelEngine): AgentEngine & { requests: GenerateRequest[] } {
  const requests: GenerateRequest[] = [];
  return {
    requests,
    generate: (request) => {
      requests.push(request);
      return engine.generate(request);
    },
    grammarFor: (schema) => engine.grammarFor(schema),
    warmPrefix: (prefix) => engine.warmPrefix(prefix),
    gbnf: (text) => engine.gbnf(text),
    shape: (request) => engine.shape(request),
  };
}

let cpu: Llama;
t.before(async () => {
  cpu = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
});
t.teardown(() => cpu.dispose());

async function loadEngine(t: Test, file: string): Promise<ModelEngine> {
  const engine = await ModelEngine.load({
    entry: withModelDefaults({ name: 'm', path: file, context_size: 1024, sequences: 4, threads: 1, batch_threads: 1 }),
    logger: quiet,
    llama: cpu,
  });
  t.teardown(() => engine.dispose());
  return engine;
}

const PROMPTS = ['make it cosy in here', 'I am going to bed', 'it is too dark', 'play some music', 'hello', 'I feel cold'];

async function modelPathChecks(t: Test, engine: ModelEngine, jumpForward = true) {
  const home = new SimDirectory();
  const spy = recording(engine);
  const agent = new Agent({ directory: home, engine: () => spy, logger: quiet, maxTokens: 96, jumpForward });
  t.teardown(() => agent.close());
  await agent.refreshPrefix();
  const ajv = new Ajv({ strict: false });
  for (const text of PROMPTS) {
    const before = home.executed.length;
    const response = await agent.handle({ text });
    t.equal(response.path, 'model', `"${text}" went to the model`);
    // Whatever the model said, only schema-valid commands reached a device.
    for (const action of response.actions) {
      const schema = home.commandSchema(action.device)!;
      t.ok(ajv.validate(schema, action.command), `executed ${action.device} ${JSON.stringify(action.command)} is valid`);
    }
    t.equal(home.executed.length - before, response.actions.length, 'executed exactly the reported actions');
    for (const refusal of response.refused ?? []) t.ok(refusal.reason.length > 0, `refused: ${refusal.reason}`);
    t.ok(response.tokens && response.tokens.generated > 0);
    if (jumpForward) t.ok(response.tokens!.forced > 0, `jump-forward forced ${response.tokens!.forced} tokens`);
    else t.equal(response.tokens!.forced, 0);
  }
  // The grammar shapes every answer into a tool call that parses.
  const parsed = spy.requests.length;
  t.equal(parsed, PROMPTS.length);
  // Prefix reuse: after the first request the system prompt comes from the KV cache.
  const estimate = await agent.estimate({ text: 'hello' });
  t.ok(estimate && estimate.cached_tokens >= engine.tokenize(spy.requests[0]!.prefix!).length, 'estimate sees the cached prefix');
  const again = await agent.handle({ text: 'hello' });
  t.ok(estimate!.prompt_tokens <= again.tokens!.prompt, 'estimate counts the prompt (the guide adds its start)');
  t.ok(again.tokens!.cached >= engine.tokenize(spy.requests[0]!.prefix!).length, `prefix reused (${again.tokens!.cached} cached tokens)`);
}

t.test('model path on a generated tiny model', async (t) => {
  const model = await tinyModel(t, { quant: 'Q8_0' });
  await modelPathChecks(t, await loadEngine(t, model.path));
});

t.test('model path on the real model', { skip: storiesSkipReason() }, async (t) => {
  const engine = await loadEngine(t, STORIES_PATH);
  await t.test('grammar-constrained tool calls parse; only valid commands execute', (t) => modelPathChecks(t, engine));
  await t.test('the same with one JSON grammar (no jump-forward)', (t) => modelPathChecks(t, engine, false));

  await t.test('an out-of-range value proposed by the model is refused by validation', async (t) => {
    // One device whose only command is a number in [40, 41]: the grammar lets any integer through,
    // and greedy decoding of this model does not pick 40 or 41.
    const narrow = new SimDirectory([{ id: 'oven', name: 'Oven', capabilities: [{ type: 'oven' }], state: {} }]);
    narrow.commandSchema = () => ({
      type: 'object',
      properties: { target_temperature: { type: 'integer', minimum: 40, maximum: 41 } },
      required: ['target_temperature'],
      additionalProperties: false,
    });
    const spy = recording(engine);
    const agent = new Agent({ directory: narrow, engine: () => spy, logger: quiet, maxTokens: 96 });
    t.teardown(() => agent.close());
    let refusedForRange = 0;
    for (const text of ['set the oven', 'bake a cake', 'Lily and Tom wanted to bake']) {
      const response = await agent.handle({ text });
      const proposed = response.refused?.[0];
      if (proposed?.code === 'COMMAND_INVALID') {
        refusedForRange++;
        t.match(proposed.reason, /target_temperature must be (<=|>=) 4[01]/, `refused: ${proposed.reason}`);
        t.match(response.text, /can't do that/);
      }
      t.equal(response.actions.length + (response.refused?.length ?? 0), 1, `one proposal: ${JSON.stringify(response.refused ?? response.actions)}`);
    }
    t.ok(refusedForRange >= 1, `at least one out-of-range proposal refused (${refusedForRange})`);
    t.equal(narrow.executed.filter((e) => Number(e.command.target_temperature) > 41 || Number(e.command.target_temperature) < 40).length, 0, 'none executed');
  });

  await t.test('brief (the short rung): the reply is cut at the brief limit; a reply cut by the budget is kept', async (t) => {
    // Only a sensor: nothing to control, so every answer is a free-text reply.
    const sensorOnly = new SimDirectory(HOME.filter((d) => d.id === 'living_room_sensor'));
    const LIMIT = 10;
    for (const jumpForward of [true, false]) {
      const agent = new Agent({ directory: sensorOnly, engine: () => engine, logger: quiet, maxTokens: 96, jumpForward, briefReplyChars: LIMIT });
      t.teardown(() => agent.close());
      const decoder = jumpForward ? 'jump-forward' : 'one grammar';
      let longest = 0;
      for (const text of ['tell me a story', 'Lily and Tom went to the park']) {
        const full = await agent.handle({ text }, { path: 'model' });
        longest = Math.max(longest, full.text.length);
        // One grammar samples the whole JSON (this model's tokens are ~1 character): more budget there.
        const budget = jumpForward ? BRIEF_OUTPUT_TOKENS : 64;
        const brief = await agent.handle({ text }, { path: 'model', brief: true, maxTokens: budget });
        t.equal(brief.refused, undefined, `${decoder}: "${text}" answered briefly: "${brief.text}"`);
        t.ok(brief.text.length <= LIMIT, `${decoder}: ${brief.text.length} <= ${LIMIT} characters`);
        t.ok(brief.tokens!.generated <= budget, `${decoder}: ${brief.tokens!.generated} tokens`);
        if (jumpForward) {
          // Cut by the output budget instead: still an answer, not MODEL_OUTPUT_INVALID.
          const cut = await agent.handle({ text }, { path: 'model', maxTokens: 4 });
          t.equal(cut.refused, undefined, `${decoder}: a reply cut at 4 tokens is kept: "${cut.text}"`);
        }
      }
      t.ok(longest > LIMIT, `${decoder}: full replies run longer (${longest} characters), so the limit did the cutting`);
    }
  });

  await t.test('two sessions in parallel do not mix histories', async (t) => {
    const spy = recording(engine);
    const agent = new Agent({ directory: new SimDirectory(), engine: () => spy, logger: quiet, maxTokens: 96 });
    t.teardown(() => agent.close());
    const texts = { alice: ['alice asks about the red ball', 'alice again'], bob: ['bob wants the blue kite', 'bob again'] };
    for (let turn = 0; turn < 2; turn++) {
      await Promise.all(
        (['alice', 'bob'] as const).map((session) => agent.handle({ text: texts[session][turn]!, session }, { path: 'model' })),
      );
    }
    const history = (id: 'alice' | 'bob') => agent.sessions.history(id).map((h) => h.user);
    t.same(history('alice'), texts.alice);
    t.same(history('bob'), texts.bob);
    const secondTurn = (who: string) => spy.requests.filter((r) => r.session === who)[1]!.prompt;
    t.match(secondTurn('alice'), /alice asks about the red ball/);
    t.notMatch(secondTurn('alice'), /bob/);
    t.match(secondTurn('bob'), /bob wants the blue kite/);
    t.notMatch(secondTurn('bob'), /alice/);
  });

  await t.test('a changed device list rebuilds the prefix', async (t) => {
    const home = new SimDirectory();
    const spy = recording(engine);
    const agent = new Agent({ directory: home, engine: () => spy, logger: quiet, maxTokens: 32 });
    t.teardown(() => agent.close());
    await agent.handle({ text: 'hello' }, { path: 'model' });
    t.notMatch(spy.requests[0]!.prefix, /porch_light/);
    home.add({ id: 'porch_light', name: 'Porch Light', capabilities: [{ type: 'switch' }], state: { state: 'OFF' } });
    await agent.handle({ text: 'hello' }, { path: 'model' });
    t.match(spy.requests[1]!.prefix, /porch_light "Porch Light"/);
    t.equal((await agent.handle({ text: 'turn on the porch light' })).path, 'fast', 'the new device is in the fast path too');
  });
});

t.test('config aliases and area reach the fast path through the device layer', async (t) => {
  const stack = await startStack(t, {
    config: {
      devices: [
        { id: 'ceiling', name: 'Ceiling light', area: 'kitchen', aliases: ['big light'], driver: 'simulated', capabilities: ['switch', 'dimmer'] },
        { id: 'reading', name: 'Reading lamp', area: 'study', driver: 'simulated', capabilities: ['switch'] },
      ],
    },
  });
  t.match(stack.service.get('ceiling'), { area: 'kitchen', aliases: ['big light'] });
  t.notOk('area' in stack.service.get('reading')! && 'aliases' in stack.service.get('reading')!, 'absent when not configured');
  const agent = new Agent({ directory: deviceDirectory(stack.service, () => null) });
  t.teardown(() => agent.close());
  const on = await agent.handle({ text: 'turn on the big light' });
  t.same(on.actions.map((a) => [a.device, a.command]), [['ceiling', { state: 'ON' }]]);
  const off = await agent.handle({ text: 'kitchen lights off' });
  t.same(off.actions.map((a) => [a.device, a.command]), [['ceiling', { state: 'OFF' }]], 'the area names it; the study lamp is not in the kitchen');
  t.equal(await rejectionCode(Promise.resolve().then(() => parseDeviceEntry({ id: 'x', driver: 'simulated', capabilities: ['switch'], aliases: ['a'.repeat(61)] }))), 'PAYLOAD_INVALID', 'aliases are bounded');
});

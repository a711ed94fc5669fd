/**
 * The agent's tools and documents, through the front door as a caller: agent.request reaches the real
 * compute and db-query plugins (plugin.call, the caller's permission, schema checks) and a real knowledge
 * base (kb.search) built from the test documents. The model path runs with a stand-in engine that answers
 * with a fixed tool call — a tiny generated model cannot be made to choose a tool — and once with a real
 * generated GGUF, to show the grammar with tools offered still runs and yields a valid answer.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { LlamaLogLevel, getLlama } from 'node-llama-cpp';
import pino from 'pino';
import t, { type Test } from 'tap';
import { agentTools } from '../app/agent-wiring.js';
import { KNOWLEDGE_DEFAULTS, knowledgeOperations } from '../knowledge/index.js';
import { KnowledgeBase } from '../knowledge/store.js';
import { withModelDefaults } from '../models/config-schema.js';
import { type GenerateRequest, type GenerateResult, ModelEngine } from '../models/engine/engine.js';
import { tinyModel } from '../models/testing/fixtures.js';
import { pluginOperations } from '../plugins/operations.js';
import { startHost } from '../plugins/test/support.js';
import { FrontDoor } from '../runtime/operations/front-door.js';
import { type Principal, principalWithFilters } from '../runtime/operations/principal.js';
import { Agent, type AgentEngine, type AgentResponse } from './agent.js';
import { mathExpression } from './compute-questions.js';
import { ConfirmationStore } from './confirmations.js';
import { knowledgeQuestion } from './knowledge-questions.js';
import { agentOperations } from './operations.js';
import { SimDirectory } from './testing/sim-directory.js';

const quiet = pino({ level: 'silent' });
const DOCS = fileURLToPath(new URL('../knowledge/test-fixtures/docs/', import.meta.url));

/** A stand-in engine whose every answer is `output` (a tool call, a reply ...): records what it was asked. */
function scripted(output: () => unknown): AgentEngine & { requests: GenerateRequest[] } {
  const requests: GenerateRequest[] = [];
  return {
    requests,
    grammarFor: async (schema) => ({ schema }) as never,
    generate: async (request): Promise<GenerateResult> => {
      requests.push(request);
      const json = output();
      return {
        text: JSON.stringify(json),
        json,
        stop_reason: 'eos',
        prompt_tokens: 10,
        cached_tokens: 0,
        evaluated_tokens: 10,
        generated_tokens: 5,
        forced_tokens: 0,
        sequence: 0,
        timings: { queue_ms: 0, prefill_ms: 1, decode_ms: 1, total_ms: 2 },
      };
    },
  };
}

async function stack(t: Test, engine: AgentEngine | null = null) {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-agent-tools-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dbFile = path.join(dir, 'home.sqlite');
  const db = new Database(dbFile);
  db.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY, sensor TEXT, value REAL)');
  const insert = db.prepare('INSERT INTO readings (sensor, value) VALUES (?, ?)');
  for (const [sensor, value] of [['temperature', 21.5], ['temperature', 21.7], ['humidity', 45]] as const) insert.run(sensor, value);
  db.close();
  const { host } = await startHost(t, { plugins: { call_timeout_ms: 60_000, start_timeout_ms: 60_000, config: { 'db-query': { connections: { home: { driver: 'sqlite', path: dbFile } } } } } });
  cpSync(DOCS, path.join(dir, 'docs'), { recursive: true });
  const kb = new KnowledgeBase(path.join(dir, 'kb.sqlite'), KNOWLEDGE_DEFAULTS);
  t.teardown(() => kb.close());
  await kb.add(path.join(dir, 'docs'));

  const frontDoor = new FrontDoor({ logger: quiet, audit: { record: async () => {} } });
  const agent = new Agent({ directory: new SimDirectory(), engine: () => engine, logger: quiet, tools: () => agentTools(host) });
  t.teardown(() => agent.close());
  for (const op of [
    ...pluginOperations(host),
    ...knowledgeOperations(() => kb),
    ...agentOperations({ handle: (request) => agent.handle(request), policyOf: () => 'allow', confirmations: new ConfirmationStore() }),
  ]) {
    frontDoor.register(op);
  }
  const ask = (principal: Principal, text: string) => frontDoor.invoke<AgentResponse>('agent.request', { text, session: 's1' }, { principal, source: 'http' });
  return { ask, agent, host, docs: path.join(dir, 'docs') };
}

const everything = principalWithFilters('http', 'owner', ['#']);
const chatOnly = principalWithFilters('http', 'guest', ['agent/request']);

t.test('maths questions become compute expressions; anything else does not', async (t) => {
  t.same(mathExpression('what is 15 % of 240?'), { expression: '15 / 100 * 240', asked: '15 % of 240' });
  t.same(mathExpression('15*3+2'), { expression: '15*3+2', asked: '15*3+2' });
  t.same(mathExpression('sqrt(2)')?.expression, 'sqrt(2)');
  t.same(mathExpression('calculate 2 to the power of 10')?.expression, '2 ^ 10');
  t.same(mathExpression("what's 12 inch to cm")?.expression, '12 inch to cm');
  for (const text of ['what is love', 'set the lamp to 50', '42', 'turn on the lamp', 'what is the temperature', 'make it 2 degrees warmer', 'import(x)', 'what is 2 + evaluate("1")']) {
    t.equal(mathExpression(text), null, `${JSON.stringify(text)} is no calculation`);
  }
  t.match(knowledgeQuestion('What does the manual say about eco mode?'), { about: 'eco mode' });
  t.match(knowledgeQuestion('according to the house rules, when are quiet hours?'), { about: 'when are quiet hours', query: /house rules/ });
  t.match(knowledgeQuestion('look up frost protection in the manual'), { about: 'frost protection' });
  t.match(knowledgeQuestion('手册里关于节能模式怎么说'), { about: '节能模式' });
  t.equal(knowledgeQuestion('turn on the lamp'), null);
});

t.test('without a model: compute on the fast path, as the caller, through plugin.call', async (t) => {
  const { ask } = await stack(t);
  t.match(await ask(everything, 'what is 15 % of 240?'), { path: 'fast', text: '15 % of 240 = 36', tool: { id: 'compute/evaluate', result: { value: 36 } } });
  t.match(await ask(everything, '15*3+2'), { text: '15*3+2 = 47' });
  t.match(await ask(everything, 'sqrt(2)'), { text: /^sqrt\(2\) = 1\.41421356/ });
  await t.rejects(ask(chatOnly, 'what is 15 % of 240'), { code: 'FORBIDDEN' }, 'a caller who may not call compute gets no answer from it');
  await t.rejects(ask(everything, 'tell me a joke'), { code: 'MODEL_NOT_LOADED' });
});

t.test('without a model: "what does the manual say" answers with the passage and cites it', async (t) => {
  const { ask, docs } = await stack(t);
  const eco = await ask(everything, 'What does the manual say about eco mode?');
  t.match(eco, { path: 'fast', text: /lowers the set point by 3 °C.*\(source: Clawtherm T2 Thermostat — User Manual — Modes > Eco mode\)$/ });
  t.same(eco.sources, [{ source: path.join(docs, 'thermostat-manual.md'), title: 'Clawtherm T2 Thermostat — User Manual', heading: 'Modes > Eco mode' }]);
  t.match(await ask(everything, 'according to the house rules, when are quiet hours?'), { text: /22:00 to 7:00.*\(source: House rules — Quiet hours\)/ });
  t.match(await ask(everything, 'what does the manual say about xylophones'), { text: 'The documents say nothing about xylophones.' });
  await t.rejects(ask(chatOnly, 'what does the manual say about eco mode'), { code: 'MODEL_NOT_LOADED' }, 'no kb.search permission: no passages');
});

t.test('model path: a tool call is checked, run as the caller, and its result checked', async (t) => {
  let output: unknown = null;
  const engine = scripted(() => output);
  const { ask } = await stack(t, engine);

  output = { device: 'tool:db-query/query', command: { args: { connection: 'home', sql: 'SELECT COUNT(*) AS n FROM readings', max_rows: 1 } } };
  const rows = await ask(everything, 'how many rows are in the readings table?');
  t.match(rows, { path: 'model', text: '3', tool: { id: 'db-query/query', result: { rows: [{ n: 3 }] } } });
  const prompt = engine.requests.at(-1)!;
  t.match(prompt.prefix, /tool:db-query\/query: Runs one SQL statement/, 'the tools are described in the cached prefix');
  t.match(prompt.prefix, /tool:compute\/evaluate/);
  t.notMatch(prompt.prefix, /tool:iot-control/, 'device tools are not offered twice');

  // The second pass puts the checked result into words, and is used only when it quotes the result.
  const replies = [
    { device: 'tool:db-query/query', command: { args: { connection: 'home', sql: 'SELECT COUNT(*) AS n FROM readings', max_rows: 1 } } },
    { device: 'none', reply: 'There are 3 rows in the readings table.' },
    { device: 'tool:db-query/query', command: { args: { connection: 'home', sql: 'SELECT COUNT(*) AS n FROM readings', max_rows: 1 } } },
    { device: 'none', reply: 'There are 5 rows.' },
  ];
  output = null;
  const queue = [...replies];
  const phrased = scripted(() => queue.shift());
  const second = await stack(t, phrased);
  t.match(await second.ask(everything, 'how many rows are in the readings table?'), { text: 'There are 3 rows in the readings table.', tool: { id: 'db-query/query' } });
  t.match(phrased.requests[1], { maxTokens: 48, prompt: /Tool result: \{"columns":\["n"\],"rows":\[\{"n":3\}\]/ });
  t.match(await second.ask(everything, 'and how many now?'), { text: '3' }, 'a misquoted result is not used');

  output = { device: 'tool:compute/evaluate', command: { args: { expression: '0.15 * 240' } } };
  t.match(await ask(everything, 'what is fifteen percent of two hundred and forty'), { path: 'model', text: '36' });

  output = { device: 'tool:db-query/query', command: { args: { connection: 'home' } } };
  t.match(await ask(everything, 'count the readings'), { refused: [{ code: 'PAYLOAD_INVALID', reason: /sql/ }] }, 'arguments are checked against the tool schema');
  output = { device: 'tool:db-query/query', command: { args: { connection: 'home', sql: 'DELETE FROM readings', max_rows: 1 } } };
  t.match(await ask(everything, 'delete the readings'), { refused: [{ reason: /db-query\/query/ }] }, 'the read-only connection refuses a write');
  output = { device: 'tool:db-query/query', command: { args: { connection: 'home', sql: 'SELECT COUNT(*) AS n FROM readings', max_rows: 1 } } };
  t.match(await ask(chatOnly, 'how many rows are in the readings table?'), { refused: [{ code: 'FORBIDDEN' }] }, 'the caller needs the tool permission');
  output = { device: 'tool:shell/run', command: { args: { cmd: 'rm -rf /' } } };
  t.match(await ask(everything, 'clean up'), { refused: [{ code: 'NOT_FOUND' }] }, 'an unknown tool is refused');
  t.match(await ask(everything, 'count the readings again'), { refused: [{ code: 'NOT_FOUND' }] });

  output = { device: 'none', reply: 'Eco mode lowers the set point by 3 degrees while you are away.' };
  const cited = await ask(everything, 'How does eco mode work on the thermostat?');
  t.match(cited, { path: 'model', text: /away\. \(source: Clawtherm T2 Thermostat — User Manual — Modes > Eco mode\)$/ });
  t.match(engine.requests.at(-1)!.prompt, /From the owner's documents.*\n\[1\] Clawtherm T2 Thermostat — User Manual — Modes > Eco mode: Eco mode lowers/s, 'the passage is in the prompt');
});

t.test('a real generated model runs the grammar with the tools offered', async (t) => {
  const file = await tinyModel(t);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  t.teardown(() => llama.dispose());
  const engine = await ModelEngine.load({
    entry: withModelDefaults({ name: 'm', path: file.path, context_size: 4096, sequences: 1, threads: 1, batch_threads: 1 }),
    logger: quiet,
    llama,
  });
  t.teardown(() => engine.dispose());
  const { ask } = await stack(t, engine);
  const answer = await ask(everything, 'how many rows are in the readings table?');
  t.equal(answer.path, 'model');
  // Random weights choose at random: whatever they chose is a device command, a tool call, or a reply — never unchecked.
  const choseTool = answer.tool !== undefined || (answer.refused ?? []).some((r) => typeof r.device === 'string' && r.device.startsWith('tool:'));
  t.ok(answer.actions.length > 0 || choseTool || typeof answer.text === 'string', `a checked answer (${answer.text.slice(0, 60)})`);
});

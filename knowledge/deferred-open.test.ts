/**
 * A box with no knowledge folders and nothing added has nothing to search: the component does not open
 * SQLite at start, answers kb.search and kb.list as empty, and opens the index once `clawbox kb add` has
 * made its file (real SQLite file, real documents, the real front door).
 */
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import t from 'tap';
import type { RuntimeContext } from '../runtime/context.js';
import { FrontDoor } from '../runtime/operations/front-door.js';
import type { MqttAdapter } from '../runtime/operations/mqtt-adapter.js';
import { principalWithFilters } from '../runtime/operations/principal.js';
import { KnowledgeComponent, knowledgeFile } from './component.js';
import { KNOWLEDGE_DEFAULTS } from './config-schema.js';
import { KnowledgeBase } from './store.js';

const DOCS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'test-fixtures', 'docs');

t.test('no folders and no file: nothing opened at start, empty answers, opened once kb add made the file', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-kb-deferred-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stateDir = path.join(dir, 'state');
  const logger = pino({ level: 'silent' });
  const frontDoor = new FrontDoor({ logger, audit: { record: async () => {} } });
  // The MQTT bridge is not what this test is about: its registration is a no-op here.
  const mqtt = { bridge: () => () => {} } as unknown as MqttAdapter;
  const component = new KnowledgeComponent({ frontDoor, mqtt });
  const ctx = { config: { knowledge: { dirs: [] } }, stateDir, logger: () => logger } as unknown as RuntimeContext;
  await component.start(ctx);
  t.teardown(() => component.stop());
  const file = knowledgeFile(stateDir);
  t.notOk(existsSync(file), 'no index file made at start');
  t.equal(component.base, null, 'and none opened');

  const reader = principalWithFilters('http', 'reader', ['bridge/request/kb/#']);
  const ask = (name: string, input: Record<string, unknown>) => frontDoor.invoke(name, input, { principal: reader, source: 'http' });
  t.same(await ask('kb.search', { query: 'eco mode' }), { hits: [] }, 'search answers empty');
  t.same(await ask('kb.list', {}), { documents: [] }, 'list answers empty');
  t.notOk(existsSync(file), 'asking made no file either');

  // What `clawbox kb add DIR` does while the runtime runs: it writes the index file.
  const docs = path.join(dir, 'docs');
  cpSync(DOCS, docs, { recursive: true });
  const cli = new KnowledgeBase(file, KNOWLEDGE_DEFAULTS, null);
  await cli.add(docs);
  cli.close();

  const answer = (await ask('kb.search', { query: 'eco mode', limit: 1 })) as { hits: { source: string }[] };
  t.match(answer.hits, [{ source: path.join(docs, 'thermostat-manual.md') }], 'the next search opens the index and finds the passage');
  t.not(component.base, null, 'the component holds the open base now');
  t.equal(((await ask('kb.list', {})) as { documents: unknown[] }).documents.length, 3);

  await component.stop();
  t.equal(component.base, null, 'stop closes it');
});

/**
 * The knowledge base on real documents written for it (knowledge/test-fixtures/docs: a thermostat manual in
 * Markdown, house rules in HTML, a text note): indexing, BM25 search with sources, re-indexing on change,
 * bounds, hostile queries, hybrid fusion, the kb.search operation's permission and the CLI.
 */
import { cpSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import t, { type Test } from 'tap';
import { loadConfig } from '../app/config.js';
import { FrontDoor } from '../runtime/operations/front-door.js';
import { principalWithFilters } from '../runtime/operations/principal.js';
import { chunkText } from './chunk.js';
import { KNOWLEDGE_DEFAULTS } from './config-schema.js';
import { htmlToText } from './extract.js';
import { KB_SEARCH_INPUT, knowledgeOperations, runKbCommand } from './index.js';
import { type Embedder, KnowledgeBase, cjkTrigramQuery, ftsQuery } from './store.js';

const DOCS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'test-fixtures', 'docs');

function workspace(t: Test) {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-kb-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const docs = path.join(dir, 'docs');
  cpSync(DOCS, docs, { recursive: true });
  return { dir, docs, db: path.join(dir, 'state', 'knowledge', 'knowledge.sqlite') };
}

type Limits = ConstructorParameters<typeof KnowledgeBase>[1];
function open(t: Test, file: string, limits: Partial<Limits> = {}, embedder: Embedder | null = null) {
  const kb = new KnowledgeBase(file, { ...KNOWLEDGE_DEFAULTS, ...limits }, embedder);
  t.teardown(() => kb.close());
  return kb;
}

t.test('documents are cut at headings and paragraphs; HTML loses its markup, scripts and comments', async (t) => {
  const passages = chunkText('# Manual\n\nIntro.\n\n## Modes\n\n### Eco mode\n\nEco lowers the set point.\n\nSecond paragraph.', 800);
  t.same(passages, [
    { heading: 'Manual', text: 'Intro.' },
    { heading: 'Manual > Modes > Eco mode', text: 'Eco lowers the set point.\n\nSecond paragraph.' },
  ]);
  const long = chunkText(`# Long\n\n${'A sentence of some length. '.repeat(200)}`, 300);
  t.ok(long.length > 5 && long.every((p) => p.text.length <= 460 && p.heading === 'Long'), 'a long section becomes several passages under its heading');
  const text = htmlToText('<h2>Rubbish &amp; recycling</h2><script>var x = "hidden";</script><!-- secret --><ul><li>Paper: blue bin</li></ul><p>22&nbsp;&deg;C</p>');
  t.equal(text, '## Rubbish & recycling\n\n- Paper: blue bin\n\n22 °C');
});

t.test('a folder is indexed; search answers with the passage and its source', async (t) => {
  const { docs, db } = workspace(t);
  const kb = open(t, db);
  const report = await kb.add(docs);
  t.same(report.added.map((f) => path.basename(f)).sort(), ['house-rules.html', 'thermostat-manual.md', 'wifi.txt']);
  t.same(kb.list().map((d) => d.title).sort(), ['Clawtherm T2 Thermostat — User Manual', 'Guest Wi-Fi', 'House rules']);

  const [eco] = await kb.search('what does the manual say about eco mode?');
  t.match(eco, { source: path.join(docs, 'thermostat-manual.md'), heading: /Modes > Eco mode$/, text: /lowers the set point by 3 °C/, via: 'bm25' });
  const [quiet] = await kb.search('when are the quiet hours');
  t.match(quiet, { source: path.join(docs, 'house-rules.html'), heading: /Quiet hours/, text: /22:00 to 7:00/ });
  const [wifi] = await kb.search('guest wifi password');
  t.match(wifi, { source: path.join(docs, 'wifi.txt') });
  t.same(await kb.search('secret-word-zebra'), [], 'an HTML comment is not indexed');
  t.same(await kb.search('tracking'), [], 'nor a script');

  // Hostile queries: FTS5 syntax is never passed through.
  for (const q of ['"eco', 'eco OR', 'NEAR(eco mode)', 'heading:eco', '*', 'eco AND NOT mode', ')(', '-', "'; DROP TABLE documents; --"]) {
    const hits = await kb.search(q);
    t.ok(Array.isArray(hits), `${JSON.stringify(q)} is answered, not an error`);
  }
  t.equal(ftsQuery('the of a'), null, 'only stop words: no query');
  t.equal(kb.list().length, 3, 'and nothing changed');
});

t.test('Chinese documents are found by trigrams of the question', async (t) => {
  const { dir } = workspace(t);
  const kb = open(t, path.join(dir, 'zh.sqlite'));
  await kb.add(path.join(path.dirname(DOCS), 'docs-zh'));
  t.match((await kb.search('节能模式'))[0], { title: '温控器使用说明', heading: '节能模式', text: /降低 3 度/ });
  t.match((await kb.search('手册里关于节能模式怎么说'))[0], { heading: '节能模式' }, 'a whole sentence finds the passage too');
  t.match((await kb.search('怎么设定温度'))[0], { heading: '设定温度' });
  t.same(await kb.search('洗衣机'), [], 'no shared trigram: nothing');
  t.equal(cjkTrigramQuery('eco mode'), null);
  t.equal(cjkTrigramQuery('节能模式'), '"节能模" OR "能模式"');
});

t.test('re-indexing follows the files: changed, unchanged, touched, removed', async (t) => {
  const { docs, db } = workspace(t);
  const kb = open(t, db);
  await kb.add(docs);
  const wifi = path.join(docs, 'wifi.txt');
  t.same((await kb.add(docs)).unchanged.length, 3, 'a second add finds nothing new');
  const later = new Date(Date.now() + 5000);
  utimesSync(wifi, later, later);
  const touched = await kb.refresh();
  t.same(touched.unchanged, [path.join(docs, 'house-rules.html'), path.join(docs, 'thermostat-manual.md'), wifi].sort(), 'a new mtime with the same content is not re-indexed');
  writeFileSync(wifi, 'Guest Wi-Fi\n\nThe guest network is now called Lighthouse.\n');
  const changed = await kb.refresh();
  t.same(changed.updated, [wifi]);
  t.match((await kb.search('lighthouse'))[0], { source: wifi });
  t.same(await kb.search('fridge'), [], 'the old text is gone from the index');
  rmSync(wifi);
  t.same((await kb.refresh()).removed, [wifi]);
  t.equal(kb.list().length, 2);
  t.same(kb.remove(docs).length, 2, 'removing the folder removes what came from it');
  t.throws(() => kb.remove(docs), { code: 'NOT_FOUND' });
});

t.test('bounds: a refused document changes nothing and says which limit', async (t) => {
  const { docs, db } = workspace(t);
  const kb = open(t, db, { max_documents: 2 });
  const report = await kb.add(docs);
  t.equal(report.added.length, 2);
  t.match(report.skipped, [{ code: 'LIMIT_REACHED', reason: /knowledge\.max_documents/ }]);
  t.equal(kb.list().length, 2);

  const small = open(t, path.join(path.dirname(db), 'small.sqlite'), { max_chunks: 3 });
  await t.rejects(small.add(path.join(docs, 'thermostat-manual.md')), { code: 'LIMIT_REACHED', message: /knowledge\.max_chunks/ });
  t.same(small.list(), [], 'nothing half-written');
  const tiny = open(t, path.join(path.dirname(db), 'tiny.sqlite'), { max_document_bytes: 1024 });
  await t.rejects(tiny.add(path.join(docs, 'thermostat-manual.md')), { code: 'PAYLOAD_TOO_LARGE', message: /max_document_bytes/ });
  const bytes = open(t, path.join(path.dirname(db), 'bytes.sqlite'), { max_total_bytes: 1500 });
  const partial = await bytes.add(docs);
  t.match(partial.skipped, [{ code: 'LIMIT_REACHED', reason: /max_total_bytes/ }]);
  writeFileSync(path.join(docs, 'manual.pdf'), '%PDF-1.4 not really');
  await t.rejects(kb.add(path.join(docs, 'manual.pdf')), { code: 'PAYLOAD_INVALID', message: /unsupported document type/ });
  await t.rejects(kb.add(path.join(docs, 'missing.md')), { code: 'NOT_FOUND' });
});

t.test('hybrid search fuses BM25 with vector similarity', async (t) => {
  const { docs, db } = workspace(t);
  // A stand-in embedder (words hashed into a vector): the fusion is what is under test here; the real
  // node-llama-cpp embedder runs in knowledge-embedding.test.ts.
  let calls = 0;
  const embedder: Embedder = {
    id: 'hash-v1',
    embed: async (texts) =>
      texts.map((text) => {
        calls++;
        const v = new Float32Array(64);
        for (const w of text.toLowerCase().match(/\p{L}+/gu) ?? []) v[[...w].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 64, 7)]! += 1;
        return v;
      }),
  };
  const kb = open(t, db, {}, embedder);
  await kb.add(docs);
  t.ok(calls >= 8, 'every passage was embedded');
  const [hit] = await kb.search('frost protection pipes freeze');
  t.match(hit, { via: 'hybrid', heading: /Frost protection/ });
  const again = calls;
  await kb.refresh();
  t.equal(calls, again, 'unchanged documents keep their vectors');
  const other = open(t, db, {}, { ...embedder, id: 'hash-v2' });
  t.ok((await other.refresh()).updated.length === 3, 'a new embedding model re-embeds');
});

t.test('kb.search at the front door: permission, validation, answer', async (t) => {
  const { docs, db } = workspace(t);
  const kb = open(t, db);
  await kb.add(docs);
  const frontDoor = new FrontDoor({ logger: pino({ level: 'silent' }), audit: { record: async () => {} } });
  for (const op of knowledgeOperations(() => kb)) frontDoor.register(op);
  const reader = principalWithFilters('http', 'reader', ['bridge/request/kb/#']);
  const stranger = principalWithFilters('http', 'stranger', ['lamp/set']);
  const answer = (await frontDoor.invoke('kb.search', { query: 'eco mode', limit: 1 }, { principal: reader, source: 'http' })) as { hits: unknown[] };
  t.match(answer.hits, [{ source: path.join(docs, 'thermostat-manual.md') }]);
  await t.rejects(frontDoor.invoke('kb.search', { query: 'eco mode' }, { principal: stranger, source: 'http' }), { code: 'FORBIDDEN' });
  await t.rejects(frontDoor.invoke('kb.search', { query: '' }, { principal: reader, source: 'http' }), { code: 'PAYLOAD_INVALID' });
  await t.rejects(frontDoor.invoke('kb.search', { query: 'x', limit: 1000 }, { principal: reader, source: 'http' }), { code: 'PAYLOAD_INVALID' });
  t.equal(KB_SEARCH_INPUT.properties.query.maxLength, 500);
  const listed = (await frontDoor.invoke('kb.list', {}, { principal: reader, source: 'http' })) as { documents: unknown[] };
  t.equal(listed.documents.length, 3);
  const none = new FrontDoor({ logger: pino({ level: 'silent' }), audit: { record: async () => {} } });
  for (const op of knowledgeOperations(() => null)) none.register(op);
  await t.rejects(none.invoke('kb.search', { query: 'eco' }, { principal: reader, source: 'http' }), { code: 'NOT_FOUND' });
});

t.test('clawbox kb add | list | search | remove', async (t) => {
  const { dir, docs } = workspace(t);
  const configFile = path.join(dir, 'config.yaml');
  writeFileSync(configFile, `state_dir: ${path.join(dir, 'state')}\nknowledge:\n  chunk_chars: 600\n`);
  const run = async (...args: string[]) => {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const code = await runKbCommand([...args, '--config', configFile], loadConfig, { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s), env: {} });
    return { code, stdout: stdout.join(''), stderr: stderr.join('') };
  };
  const added = await run('add', docs);
  t.equal(added.code, 0, added.stderr);
  t.match(added.stdout, /added\s+.*thermostat-manual\.md/);
  t.match(added.stdout, /3 documents/);
  t.match((await run('list')).stdout, /house-rules\.html {2}"House rules"/);
  const search = await run('search', 'eco', 'mode', '--limit', '1', '--json');
  t.equal(search.code, 0);
  t.match(JSON.parse(search.stdout), { hits: [{ source: path.join(docs, 'thermostat-manual.md'), heading: /Eco mode/ }] });
  t.equal((await run('search', 'xylophone')).code, 1, 'no match: exit 1');
  t.match(await run('remove', path.join(docs, 'wifi.txt')), { code: 0, stdout: /removed .*wifi\.txt/ });
  t.match(await run('remove', path.join(docs, 'wifi.txt')), { code: 1, stderr: /clawbox kb: NOT_FOUND/ });
  t.match(await run('add'), { code: 64, stderr: /USAGE/ });
  t.match(await run('frobnicate'), { code: 64 });
  t.match(await run('search', 'eco', '--limit', 'lots'), { code: 64 });
});

/**
 * Hybrid search with a real node-llama-cpp embedding model: a GGUF made by the repo's generator (random
 * weights, so the vectors mean nothing — what is tested is that the path runs: load, embed every passage,
 * store, embed the query, fuse with BM25, and free the model).
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { tinyModel } from '../models/testing/fixtures.js';
import { KNOWLEDGE_DEFAULTS } from './config-schema.js';
import { loadLlamaEmbedder } from './embedder.js';
import { KnowledgeBase } from './store.js';

const DOCS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'test-fixtures', 'docs');

t.test('a generated GGUF embeds passages and queries; search is hybrid', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-kb-emb-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(DOCS, path.join(dir, 'docs'), { recursive: true });
  const model = await tinyModel(t);
  const embedder = await loadLlamaEmbedder(model.path);
  t.teardown(() => embedder.dispose());
  const [a, b] = await embedder.embed(['eco mode lowers the set point', 'quiet hours']);
  t.ok(a instanceof Float32Array && a.length > 0 && a.length === b!.length, `vectors of ${a!.length} dimensions`);
  t.ok(a!.some((x) => x !== 0), 'not all zeros');
  const kb = new KnowledgeBase(path.join(dir, 'kb.sqlite'), KNOWLEDGE_DEFAULTS, embedder);
  t.teardown(() => kb.close());
  const report = await kb.add(path.join(dir, 'docs'));
  t.equal(report.added.length, 3);
  const hits = await kb.search('eco mode', 3);
  t.ok(hits.length > 0 && hits.every((h) => h.via === 'hybrid'), 'hybrid hits');
  t.ok(hits.some((h) => /Eco mode/.test(h.heading)), 'the BM25 match is among them');
  await t.rejects(loadLlamaEmbedder(path.join(dir, 'missing.gguf')), { code: 'MODEL_FILE_MISSING' });
});

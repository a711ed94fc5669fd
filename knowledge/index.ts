/**
 * The knowledge base: documents (Markdown, text, HTML) cut into passages and indexed in SQLite FTS5
 * (BM25), hybrid with node-llama-cpp embeddings when an embedding model is configured. Other folders use
 * this file only; the agent reaches the knowledge base through the front door (kb.search).
 */
export { KnowledgeComponent, knowledgeFile } from './component.js';
export { KNOWLEDGE_DEFAULTS, type KnowledgeConfig, knowledgeConfigSchema } from './config-schema.js';
export { KB_SEARCH_INPUT, type KbSearchInput, knowledgeOperations } from './operations.js';
// Types only: better-sqlite3 (under store.ts) loads when the knowledge base starts, not with this file.
export type { AddReport, Embedder, KnowledgeBase, KnowledgeDocument, SearchHit } from './store.js';

/** `clawbox kb …` (cli.ts, loaded on use). */
export async function runKbCommand(...args: Parameters<typeof import('./cli.js').runKbCommand>): Promise<number> {
  return (await import('./cli.js')).runKbCommand(...args);
}
export { registerKnowledgeRoutes } from './http-routes.js';

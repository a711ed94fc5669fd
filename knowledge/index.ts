/**
 * The knowledge base: documents (Markdown, text, HTML) cut into passages and indexed in SQLite FTS5
 * (BM25), hybrid with node-llama-cpp embeddings when an embedding model is configured. Other folders use
 * this file only; the agent reaches the knowledge base through the front door (kb.search).
 */
export { KnowledgeComponent, knowledgeFile } from './component.js';
export { KNOWLEDGE_DEFAULTS, type KnowledgeConfig, knowledgeConfigSchema } from './config-schema.js';
export { KB_HELP, runKbCommand } from './cli.js';
export { KB_SEARCH_INPUT, type KbSearchInput, knowledgeOperations } from './operations.js';
export { type AddReport, type Embedder, type KnowledgeDocument, KnowledgeBase, type SearchHit, ftsQuery } from './store.js';
export { registerKnowledgeRoutes } from './http-routes.js';

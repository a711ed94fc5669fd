/**
 * The `knowledge:` section: where documents come from, how they are cut, and the bounds that keep the
 * index small. Pure data; app/config.ts composes it into the runtime schema.
 */
const int = (minimum: number, maximum: number, fallback: number, description: string) =>
  ({ type: 'integer', minimum, maximum, default: fallback, description }) as const;

export const knowledgeConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: true, description: 'Keep a knowledge base the agent can quote (clawbox kb).' },
    dirs: {
      type: 'array',
      default: [],
      maxItems: 64,
      items: { type: 'string', minLength: 1, maxLength: 4096 },
      description: 'Folders (or files) indexed at start and re-indexed when they change; `clawbox kb add` adds more.',
    },
    rescan_s: int(0, 86_400, 60, 'Seconds between checks for changed, new or removed documents (0: at start only).'),
    max_documents: int(1, 100_000, 2_000, 'Documents kept at most.'),
    max_document_bytes: int(1_024, 100 * 1024 * 1024, 5 * 1024 * 1024, 'Largest document file accepted.'),
    max_total_bytes: int(1_024, 4 * 1024 * 1024 * 1024, 200 * 1024 * 1024, 'Text kept in the index at most, over all documents.'),
    max_chunks: int(1, 1_000_000, 100_000, 'Passages kept at most, over all documents.'),
    chunk_chars: int(200, 8_000, 800, 'Target length of one passage.'),
    passages: int(0, 10, 2, 'Passages given to the model with a request (0: none).'),
    embedding_model: {
      type: 'string',
      minLength: 1,
      maxLength: 4096,
      description: 'A GGUF embedding model: search becomes hybrid (BM25 and vector similarity, rank-fused).',
    },
  },
} as const;

export interface KnowledgeConfig {
  enabled: boolean;
  dirs: string[];
  rescan_s: number;
  max_documents: number;
  max_document_bytes: number;
  max_total_bytes: number;
  max_chunks: number;
  chunk_chars: number;
  passages: number;
  embedding_model?: string;
}

/** Every default, for callers that build a config by hand (tests, the CLI without a config file). */
export const KNOWLEDGE_DEFAULTS: KnowledgeConfig = {
  enabled: true,
  dirs: [],
  rescan_s: 60,
  max_documents: 2_000,
  max_document_bytes: 5 * 1024 * 1024,
  max_total_bytes: 200 * 1024 * 1024,
  max_chunks: 100_000,
  chunk_chars: 800,
  passages: 2,
};

declare module '../runtime/config/schema.js' {
  interface ConfigSections {
    knowledge: KnowledgeConfig;
  }
}

/**
 * The knowledge base's operations: kb.search (passages for a question, with their source) and kb.list.
 * Their permissions are the MQTT bridge topics, `bridge/request/kb/search` and `bridge/request/kb/list`,
 * so an MQTT user needs that publish ACL and an HTTP token or chat sender that filter. The agent reaches
 * the knowledge base through kb.search as its caller, so a caller who may not search gets no passages.
 */
import { ClawboxError } from '../runtime/errors.js';
import { type AnyOperation, defineOperation } from '../runtime/operations/operation.js';
import type { KnowledgeDocument, SearchHit } from './store.js';

export interface KnowledgeSearcher {
  search(query: string, limit: number, signal?: AbortSignal): Promise<SearchHit[]>;
  list(): KnowledgeDocument[];
}

export interface KbSearchInput {
  query: string;
  limit?: number;
}

export const KB_SEARCH_INPUT = {
  type: 'object',
  required: ['query'],
  additionalProperties: false,
  properties: {
    query: { type: 'string', minLength: 1, maxLength: 500 },
    limit: { type: 'integer', minimum: 1, maximum: 20, default: 5 },
  },
} as const;

export function knowledgeOperations(kb: () => KnowledgeSearcher | null | Promise<KnowledgeSearcher | null>): AnyOperation[] {
  const open = async (): Promise<KnowledgeSearcher> => {
    const base = await kb();
    if (!base) throw new ClawboxError('NOT_FOUND', 'the knowledge base is not running (knowledge.enabled is false)');
    return base;
  };
  return [
    defineOperation<KbSearchInput, { hits: SearchHit[] }>({
      name: 'kb.search',
      summary: 'the passages of the knowledge base that best answer a question, each with its source',
      input: KB_SEARCH_INPUT,
      permission: () => 'bridge/request/kb/search',
      changesWorld: false,
      deadlineMs: 10_000,
      handler: async (input, ctx) => ({ hits: await (await open()).search(input.query, input.limit ?? 5, ctx.signal) }),
    }),
    defineOperation<Record<string, never>, { documents: KnowledgeDocument[] }>({
      name: 'kb.list',
      summary: 'the documents in the knowledge base',
      input: { type: 'object', additionalProperties: false, properties: {} },
      permission: () => 'bridge/request/kb/list',
      changesWorld: false,
      deadlineMs: 5_000,
      handler: async () => ({ documents: (await open()).list() }),
    }),
  ];
}

/**
 * The knowledge base on the HTTP API, run by the front door as the HTTP caller (transport only):
 *   GET /api/kb/search?q=…&limit=N  -> kb.search
 *   GET /api/kb/documents           -> kb.list
 */
import type { HttpMethod, RouteHandler } from '../runtime/http/http-server.js';
import { okEnvelope } from '../runtime/operations/envelope.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';

export function registerKnowledgeRoutes(http: { addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void }, frontDoor: FrontDoor): () => void {
  const off = [
    http.addRoute('GET', '/api/kb/search', async (request) => {
      const limit = request.url.searchParams.get('limit');
      // The front door validates: a missing query or a limit that is no integer is PAYLOAD_INVALID.
      const input = { query: request.url.searchParams.get('q') ?? '', ...(limit !== null ? { limit: /^\d{1,3}$/.test(limit) ? Number(limit) : limit } : {}) };
      return okEnvelope(await frontDoor.invoke('kb.search', input, { principal: request.principal, source: 'http', signal: request.signal }));
    }),
    http.addRoute('GET', '/api/kb/documents', async (request) =>
      okEnvelope(await frontDoor.invoke('kb.list', {}, { principal: request.principal, source: 'http', signal: request.signal })),
    ),
  ];
  return () => {
    for (const remove of off) remove();
  };
}

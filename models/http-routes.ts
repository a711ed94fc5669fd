/**
 * How the model operation appears on the HTTP API: `GET /api/models` -> models.list, run by the front door
 * as the HTTP caller. Transport only.
 */
import type { HttpMethod, RouteHandler } from '../runtime/http/http-server.js';
import { okEnvelope } from '../runtime/operations/envelope.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';

export function registerModelRoutes(http: { addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void }, frontDoor: FrontDoor): () => void {
  return http.addRoute('GET', '/api/models', async (request) =>
    okEnvelope(await frontDoor.invoke('models.list', {}, { principal: request.principal, source: 'http', signal: request.signal })),
  );
}

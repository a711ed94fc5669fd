/**
 * How the model operations appear on the HTTP API, run by the front door as the HTTP caller. Transport only.
 *
 *   GET  /api/models                    models.list         configured, loaded, pull job, work in progress
 *   POST /api/models/pull               models.pull         body {"uri", "name"?, "sha256"?} -> the job
 *   POST /api/models/pull/cancel        models.pull.cancel  -> the job
 *   POST /api/models/:name/verify       models.verify       -> {ok, sha256, expected, …}
 *   POST /api/models/:name/activate     models.activate     -> {name, previous, changed}
 */
import type { HttpMethod, RouteHandler, RouteRequest } from '../runtime/http/http-server.js';
import { okEnvelope } from '../runtime/operations/envelope.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';
import { splitTransaction } from '../runtime/operations/mqtt-adapter.js';

/** A pull request is a URI, a name and a hash. */
const MAX_BODY_BYTES = 8 << 10;

export function registerModelRoutes(http: { addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void }, frontDoor: FrontDoor): () => void {
  const run = (operation: string, input: unknown, request: RouteRequest) =>
    frontDoor.invoke(operation, input, { principal: request.principal, source: 'http', signal: request.signal });
  const removers = [
    http.addRoute('GET', '/api/models', async (request) => okEnvelope(await run('models.list', {}, request))),
    http.addRoute('POST', '/api/models/pull', async (request) => {
      const { fields, transaction } = splitTransaction(await request.json(MAX_BODY_BYTES));
      return okEnvelope(await run('models.pull', fields, request), transaction);
    }),
    http.addRoute('POST', '/api/models/pull/cancel', async (request) => okEnvelope(await run('models.pull.cancel', {}, request))),
    http.addRoute('POST', '/api/models/:name/verify', async (request) => okEnvelope(await run('models.verify', { name: request.params.name ?? '' }, request))),
    http.addRoute('POST', '/api/models/:name/activate', async (request) => okEnvelope(await run('models.activate', { name: request.params.name ?? '' }, request))),
  ];
  return () => {
    for (const remove of removers) remove();
  };
}

/**
 * How the update operations appear on the HTTP API, run by the front door as the HTTP caller. Transport only.
 *
 *   GET  /api/system/update          system.update.status
 *   POST /api/system/update/check    system.update.check   body {"url", "allow_downgrade"?} -> the job
 *   POST /api/system/update/apply    system.update.apply   body {"url", "allow_downgrade"?} -> the job
 *   POST /api/system/update/cancel   system.update.cancel  -> the job
 *   POST /api/system/reboot          system.reboot         -> {"rebooting": true}
 */
import type { HttpMethod, RouteHandler, RouteRequest } from '../runtime/http/http-server.js';
import { okEnvelope } from '../runtime/operations/envelope.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';
import { splitTransaction } from '../runtime/operations/mqtt-adapter.js';

/** A URL and a flag. */
const MAX_BODY_BYTES = 8 << 10;

export function registerUpdateRoutes(http: { addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void }, frontDoor: FrontDoor): () => void {
  const run = (operation: string, input: unknown, request: RouteRequest) =>
    frontDoor.invoke(operation, input, { principal: request.principal, source: 'http', signal: request.signal });
  const withBody = (operation: string) => async (request: RouteRequest) => {
    const { fields, transaction } = splitTransaction(await request.json(MAX_BODY_BYTES));
    return okEnvelope(await run(operation, fields, request), transaction);
  };
  const removers = [
    http.addRoute('GET', '/api/system/update', async (request) => okEnvelope(await run('system.update.status', {}, request))),
    http.addRoute('POST', '/api/system/update/check', withBody('system.update.check')),
    http.addRoute('POST', '/api/system/update/apply', withBody('system.update.apply')),
    http.addRoute('POST', '/api/system/update/cancel', async (request) => okEnvelope(await run('system.update.cancel', {}, request))),
    http.addRoute('POST', '/api/system/reboot', async (request) => okEnvelope(await run('system.reboot', {}, request))),
  ];
  return () => {
    for (const remove of removers) remove();
  };
}

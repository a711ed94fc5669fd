/**
 * `GET /api/devices/:id/history[?property=P&limit=N]` -> device.history, run by the front door as the
 * HTTP caller: `{device, series: {<property>: [{t, v}, …]}}`. Transport only.
 */
import type { HttpMethod, RouteHandler } from '../runtime/http/http-server.js';
import { okEnvelope } from '../runtime/operations/envelope.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';

export function registerHistoryRoute(http: { addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void }, frontDoor: FrontDoor): () => void {
  return http.addRoute('GET', '/api/devices/:id/history', async (request) => {
    const input: Record<string, unknown> = { device: request.params.id ?? '' };
    const property = request.url.searchParams.get('property');
    const limit = request.url.searchParams.get('limit');
    if (property) input.property = property;
    // A number when it is one; otherwise the operation's schema refuses the text with its coded error.
    if (limit) input.limit = /^\d{1,6}$/.test(limit) ? Number(limit) : limit;
    return okEnvelope(await frontDoor.invoke('device.history', input, { principal: request.principal, source: 'http', signal: request.signal }));
  });
}

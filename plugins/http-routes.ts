/**
 * How the plugin host's restart appears on the HTTP API, run by the front door as the HTTP caller.
 * Transport only.
 *
 *   POST /api/plugins/:name/restart    plugins.restart {kind: plugin}   -> the plugin's figures after the restart
 *   POST /api/channels/:name/restart   plugins.restart {kind: channel}  -> the channel plugin's figures
 */
import type { HttpMethod, RouteHandler, RouteRequest } from '../runtime/http/http-server.js';
import { okEnvelope } from '../runtime/operations/envelope.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';

export function registerPluginRoutes(http: { addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void }, frontDoor: FrontDoor): () => void {
  const restart = (kind: 'plugin' | 'channel') => (request: RouteRequest) =>
    frontDoor
      .invoke('plugins.restart', { kind, name: request.params.name ?? '' }, { principal: request.principal, source: 'http', signal: request.signal })
      .then((figures) => okEnvelope(figures));
  const removers = [http.addRoute('POST', '/api/plugins/:name/restart', restart('plugin')), http.addRoute('POST', '/api/channels/:name/restart', restart('channel'))];
  return () => {
    for (const remove of removers) remove();
  };
}

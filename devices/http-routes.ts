/**
 * How the device operations appear on the HTTP API (status page, scripts). Transport only: each request
 * becomes an operation call that the front door runs as the HTTP caller (auth.ts names it; its
 * permissions come from http.permissions), with `source: 'http'` and a signal that aborts when the
 * client disconnects.
 *
 *   GET  /api/devices               devices.list   -> DeviceSnapshot[]
 *   GET  /api/devices/:id           devices.list   -> DeviceSnapshot          (404 DEVICE_NOT_FOUND)
 *   GET  /api/devices/:id/schema    device.schema  -> {id, command, state} JSON Schemas
 *   POST /api/devices/:id/set       device.set     body: a command, e.g. {"state":"TOGGLE"} -> DeviceCommandResult
 *   POST /api/devices/:id/get       device.get     body: {} or {"<property>": ""}  -> DeviceSnapshot
 *   POST /api/devices               device.add     body: one `devices:` config entry -> DeviceSnapshot
 *   POST /api/devices/:id/rename    device.rename  body: {"name"} -> DeviceSnapshot
 *   DELETE /api/devices/:id         device.remove  -> {id}
 *
 * Answers are the one envelope: `{"status":"ok","data":…}` (a body's `transaction` echoed beside data) or
 * `{"status":"error","error":{"code","message"}}` with the code's HTTP status (403 FORBIDDEN for a caller
 * whose permissions lack the device).
 */
import { ClawboxError } from '../runtime/errors.js';
import type { HttpMethod, RouteHandler, RouteRequest } from '../runtime/http/http-server.js';
import { okEnvelope, readTransaction } from '../runtime/operations/envelope.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';
import { splitTransaction } from '../runtime/operations/mqtt-adapter.js';
import { DEFAULT_DEVICE_PAYLOAD_BYTES } from './device-service.js';

/** The part of HttpServer these routes need. */
export interface RouteHost {
  addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void;
}

export function registerDeviceRoutes(http: RouteHost, frontDoor: FrontDoor): () => void {
  const run = <O = unknown>(operation: string, input: unknown, request: RouteRequest) =>
    frontDoor.invoke<O>(operation, input, { principal: request.principal, source: 'http', signal: request.signal });
  const removers = [
    http.addRoute('GET', '/api/devices', async (request) => okEnvelope(await run('devices.list', {}, request))),
    http.addRoute('GET', '/api/devices/:id', async (request) => {
      const id = request.params.id ?? '';
      const device = (await run<{ id: string }[]>('devices.list', {}, request)).find((d) => d.id === id);
      if (!device) throw new ClawboxError('DEVICE_NOT_FOUND', `no device with id "${id.slice(0, 64)}"`);
      return okEnvelope(device);
    }),
    http.addRoute('GET', '/api/devices/:id/schema', async (request) =>
      okEnvelope(await run('device.schema', { id: request.params.id ?? '' }, request)),
    ),
    http.addRoute('POST', '/api/devices/:id/set', async (request) => {
      const body = await request.json(DEFAULT_DEVICE_PAYLOAD_BYTES);
      const { fields, transaction } = splitTransaction(body);
      return okEnvelope(await run('device.set', { device: request.params.id ?? '', command: fields }, request), transaction);
    }),
    http.addRoute('POST', '/api/devices/:id/get', async (request) => {
      const body = await request.json(DEFAULT_DEVICE_PAYLOAD_BYTES);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new ClawboxError('PAYLOAD_INVALID', 'a get request is {} or {"<property>": ""}');
      }
      const properties = Object.keys(body).filter((k) => k !== 'transaction');
      const input = { device: request.params.id ?? '', properties: properties.length ? properties : null };
      return okEnvelope(await run('device.get', input, request), readTransaction(body));
    }),
    http.addRoute('POST', '/api/devices', async (request) => {
      const { fields, transaction } = splitTransaction(await request.json(DEFAULT_DEVICE_PAYLOAD_BYTES));
      return okEnvelope(await run('device.add', fields, request), transaction);
    }),
    http.addRoute('POST', '/api/devices/:id/rename', async (request) => {
      const { fields, transaction } = splitTransaction(await request.json(DEFAULT_DEVICE_PAYLOAD_BYTES));
      const name = typeof fields === 'object' && fields !== null ? (fields as { name?: unknown }).name : undefined;
      return okEnvelope(await run('device.rename', { id: request.params.id ?? '', name }, request), transaction);
    }),
    http.addRoute('DELETE', '/api/devices/:id', async (request) => okEnvelope(await run('device.remove', { id: request.params.id ?? '' }, request))),
  ];
  return () => {
    for (const remove of removers) remove();
  };
}

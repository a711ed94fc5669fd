/**
 * The device endpoints of the HTTP API (status page, scripts), on the same validated path as every other
 * command. Registered by the composition root on the HTTP server:
 *
 *   GET  /api/devices               DeviceSnapshot[]
 *   GET  /api/devices/:id           DeviceSnapshot                  (404 DEVICE_NOT_FOUND)
 *   GET  /api/devices/:id/schema    {command, state} JSON Schemas
 *   POST /api/devices/:id/set       body: a command, e.g. {"state":"TOGGLE"} -> {"status":"ok","data":DeviceCommandResult}
 *   POST /api/devices/:id/get       body: {} or {"<property>": ""}  -> {"status":"ok","data":DeviceSnapshot}
 *
 * Errors are thrown as ClawboxError, which the HTTP server answers with the code's HTTP status.
 */
import { ClawboxError } from '../runtime/errors.js';
import type { HttpMethod, RouteHandler } from '../runtime/http/http-server.js';
import type { DeviceService } from './device-service.js';
import { DEFAULT_DEVICE_PAYLOAD_BYTES } from './device-service.js';

/** The part of HttpServer these routes need. */
export interface RouteHost {
  addRoute(method: HttpMethod, path: string, handler: RouteHandler): () => void;
}

export function registerDeviceRoutes(http: RouteHost, devices: DeviceService): () => void {
  const find = (id: string | undefined) => {
    const device = id === undefined ? undefined : devices.get(id);
    if (!device) throw new ClawboxError('DEVICE_NOT_FOUND', `no device with id "${String(id).slice(0, 64)}"`);
    return device;
  };
  const removers = [
    http.addRoute('GET', '/api/devices', () => ({ status: 'ok', data: devices.list() })),
    http.addRoute('GET', '/api/devices/:id', ({ params }) => ({ status: 'ok', data: find(params.id) })),
    http.addRoute('GET', '/api/devices/:id/schema', ({ params }) => {
      const id = find(params.id).id;
      return { status: 'ok', data: { command: devices.commandSchema(id), state: devices.stateSchema(id) } };
    }),
    http.addRoute('POST', '/api/devices/:id/set', async ({ params, json }) => {
      const body = await json(DEFAULT_DEVICE_PAYLOAD_BYTES);
      const transaction = typeof body === 'object' && body !== null ? (body as { transaction?: unknown }).transaction : undefined;
      const result = await devices.execute(params.id ?? '', body, {
        source: 'http',
        ...(typeof transaction === 'string' || typeof transaction === 'number' ? { transaction } : {}),
      });
      return { status: 'ok', data: result };
    }),
    http.addRoute('POST', '/api/devices/:id/get', async ({ params, json }) => {
      const body = await json(DEFAULT_DEVICE_PAYLOAD_BYTES);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new ClawboxError('PAYLOAD_INVALID', 'a get request is {} or {"<property>": ""}');
      }
      const properties = Object.keys(body).filter((k) => k !== 'transaction');
      return { status: 'ok', data: await devices.read(params.id ?? '', properties.length ? properties : null, { source: 'http' }) };
    }),
  ];
  return () => {
    for (const remove of removers) remove();
  };
}

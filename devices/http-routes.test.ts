/**
 * The device HTTP endpoints on the real HttpServer: toggling a switch from the status page goes through
 * the same validation as MQTT, and errors carry their codes and HTTP statuses.
 */
import t from 'tap';
import { HttpServer } from '../runtime/http/http-server.js';
import { request } from '../runtime/http/test-helpers.js';
import { registerDeviceRoutes } from './http-routes.js';
import { startStack } from './fixtures/stack.js';

t.test('GET /api/devices, POST /api/devices/:id/set, errors', async (t) => {
  const stack = await startStack(t, { config: { devices: [{ id: 'lamp', driver: 'simulated', capabilities: ['switch'] }] } });
  const http = new HttpServer({ upgrades: {}, systemSampleMs: false });
  registerDeviceRoutes(http, stack.service);
  await http.start(stack.tc.ctx);
  t.teardown(() => http.stop());
  const port = http.port;
  const post = (path: string, body: string) =>
    request(port, path, { method: 'POST', body, headers: { 'content-type': 'application/json' } });

  const list = JSON.parse((await request(port, '/api/devices')).body);
  t.match(list, { status: 'ok', data: [{ id: 'lamp', availability: 'online' }] });

  const toggled = await post('/api/devices/lamp/set', '{"state":"TOGGLE"}');
  t.equal(toggled.status, 200);
  t.match(JSON.parse(toggled.body), { status: 'ok', data: { device: 'lamp', state: { state: 'ON' } } });
  t.equal(stack.service.get('lamp')?.state.state, 'ON');

  const bad = await post('/api/devices/lamp/set', '{"state":"DIM"}');
  t.equal(bad.status, 400);
  t.match(JSON.parse(bad.body), { status: 'error', error: { code: 'VALUE_OUT_OF_RANGE' } });
  const missing = await post('/api/devices/ghost/set', '{"state":"ON"}');
  t.equal(missing.status, 404);
  t.match(JSON.parse(missing.body), { error: { code: 'DEVICE_NOT_FOUND' } });
  t.equal((await request(port, '/api/devices/ghost')).status, 404);
  t.match(JSON.parse((await request(port, '/api/devices/lamp/schema')).body), { data: { command: { type: 'object' } } });
  t.match(JSON.parse((await post('/api/devices/lamp/get', '{"state":""}')).body), { data: { state: { state: 'ON' } } });
  t.equal(stack.service.get('lamp')?.state.state, 'ON', 'bad requests changed nothing');
});

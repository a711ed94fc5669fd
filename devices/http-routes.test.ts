/**
 * The device HTTP endpoints on the real HttpServer, run by the real front door: toggling a switch from
 * the status page goes through the same validation and permissions as MQTT, and errors carry their codes
 * and HTTP statuses.
 */
import t from 'tap';
import { HttpServer } from '../runtime/http/http-server.js';
import { request } from '../runtime/http/test-helpers.js';
import { startStack } from './fixtures/stack.js';
import { registerDeviceRoutes } from './http-routes.js';

t.test('GET /api/devices, POST /api/devices/:id/set, errors', async (t) => {
  const stack = await startStack(t, { config: { devices: [{ id: 'lamp', driver: 'simulated', capabilities: ['switch'] }] } });
  const http = new HttpServer({ upgrades: {}, systemSampleMs: false });
  registerDeviceRoutes(http, stack.frontDoor);
  await http.start(stack.tc.ctx);
  t.teardown(() => http.stop());
  const port = http.port;
  const post = (path: string, body: string) =>
    request(port, path, { method: 'POST', body, headers: { 'content-type': 'application/json' } });

  const list = JSON.parse((await request(port, '/api/devices')).body);
  t.match(list, { status: 'ok', data: [{ id: 'lamp', availability: 'online' }] });
  t.match(JSON.parse((await request(port, '/api/devices/lamp')).body), { status: 'ok', data: { id: 'lamp' } });

  const toggled = await post('/api/devices/lamp/set', '{"state":"TOGGLE","transaction":"t-1"}');
  t.equal(toggled.status, 200);
  t.match(JSON.parse(toggled.body), { status: 'ok', data: { device: 'lamp', state: { state: 'ON' } }, transaction: 't-1' });
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

t.test('a token with http.permissions ["lamp/set"] may switch the lamp and nothing else', async (t) => {
  const token = 'lamp-only-token-0123456789';
  const stack = await startStack(t, {
    config: {
      mode: 'appliance',
      http: { token, permissions: ['lamp/set'] },
      devices: [
        { id: 'lamp', driver: 'simulated', capabilities: ['switch'] },
        { id: 'frontdoor', driver: 'simulated', capabilities: ['switch'] },
      ],
    },
  });
  const http = new HttpServer({ upgrades: {}, systemSampleMs: false });
  registerDeviceRoutes(http, stack.frontDoor);
  await http.start(stack.tc.ctx);
  t.teardown(() => http.stop());
  const post = (path: string, body: string, auth = `Bearer ${token}`) =>
    request(http.port, path, { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: auth } });

  const lamp = await post('/api/devices/lamp/set', '{"state":"ON"}');
  t.equal(lamp.status, 200, lamp.body);
  t.equal(stack.service.get('lamp')?.state.state, 'ON', 'the lamp moved');

  const door = await post('/api/devices/frontdoor/set', '{"state":"ON"}');
  t.equal(door.status, 403);
  t.match(JSON.parse(door.body), { status: 'error', error: { code: 'FORBIDDEN', message: /frontdoor\/set/ } });
  t.equal(stack.service.get('frontdoor')?.state.state, 'OFF', 'the front door did not move');

  const read = await post('/api/devices/frontdoor/get', '{}');
  t.equal(read.status, 403, 'reading needs frontdoor/get');
  const list = await request(http.port, '/api/devices', { headers: { authorization: `Bearer ${token}` } });
  t.equal(list.status, 403, 'listing needs bridge/request/devices');
  t.equal((await post('/api/devices/lamp/set', '{"state":"OFF"}', 'Bearer wrong-token')).status, 401, 'a wrong token is no caller at all');
  t.equal(stack.service.get('lamp')?.state.state, 'ON');
});

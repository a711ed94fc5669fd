/**
 * Appliance-mode auth on a real server: 401 with challenges without credentials, bearer token, Basic
 * admin:<password> against a real scrypt hash, ?token= turning into a session cookie, /healthz public.
 * And when local mode still needs auth (a non-loopback address with credentials configured).
 */
import t from 'tap';
import { hashPassword } from '../auth/password.js';
import { makeTestContext } from '../../app/testing/test-context.js';
import { HttpAuth, isLoopbackHost } from './auth.js';
import { HttpServer } from './http-server.js';
import { json, request } from './test-helpers.js';

const TOKEN = 'tok-0123456789abcdef';
const PASSWORD = 'correct horse battery staple';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

t.test('appliance mode: every endpoint but /healthz needs credentials', async (t) => {
  const test = makeTestContext({
    mode: 'appliance',
    logLevel: 'warn',
    config: { http: { token: TOKEN, password_hash: await hashPassword(PASSWORD) } },
  });
  const http = new HttpServer({ upgrades: {}, systemSampleMs: false });
  await http.start(test.ctx);
  t.teardown(async () => {
    await http.stop();
    test.cleanup();
  });
  test.setLifecycle('serving');
  const port = http.port;

  for (const path of ['/api/status', '/api/events', '/metrics', '/no-such-page']) {
    const answer = await request(port, path);
    t.equal(answer.status, 401, `${path} without credentials`);
    // Bearer only: a browser must not pop up its Basic dialog; the web app has its own login form.
    t.equal(answer.headers['www-authenticate'], 'Bearer realm="clawbox"');
    t.match(json(answer), { status: 'error', error: { code: 'UNAUTHORIZED' } });
  }
  t.equal((await request(port, '/')).status, 200, 'the web app itself is public (its login form is part of it)');
  const health = await request(port, '/healthz');
  t.equal(health.status, 200, '/healthz stays public for supervisors');

  t.equal((await request(port, '/api/status', { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200, 'bearer token');
  t.equal((await request(port, '/metrics', { headers: { authorization: `bearer ${TOKEN}` } })).status, 200, 'scheme is case-insensitive');
  const wrongBearer = await request(port, '/api/status', { headers: { authorization: `Bearer ${TOKEN}x` } });
  t.equal(wrongBearer.status, 401);
  t.match(json(wrongBearer), { error: { code: 'UNAUTHORIZED', message: 'wrong credentials' } });

  t.equal((await request(port, '/api/status', { headers: { authorization: basic('admin', PASSWORD) } })).status, 200, 'Basic admin:password');
  t.equal((await request(port, '/api/status', { headers: { authorization: basic('admin', PASSWORD) } })).status, 200, 'again (cached)');
  t.equal((await request(port, '/api/status', { headers: { authorization: basic('admin', `${PASSWORD}!`) } })).status, 401, 'wrong password');
  t.equal((await request(port, '/api/status', { headers: { authorization: basic('root', PASSWORD) } })).status, 401, 'wrong user');
  t.equal((await request(port, '/api/status', { headers: { authorization: 'Basic %%%' } })).status, 401, 'garbage');
  t.equal((await request(port, '/api/status', { headers: { authorization: 'Digest x' } })).status, 401, 'unknown scheme');

  // A browser arriving with ?token= gets a session cookie and the same address without the token.
  const arrive = await request(port, `/?token=${TOKEN}`);
  t.equal(arrive.status, 303);
  t.equal(arrive.headers.location, '/');
  const setCookie = String(arrive.headers['set-cookie']);
  t.match(setCookie, /^clawbox_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/);
  t.notMatch(setCookie, new RegExp(TOKEN), 'the cookie is not the token');
  const cookie = setCookie.split(';')[0]!;
  t.equal((await request(port, '/', { headers: { cookie } })).status, 200, 'the page with the session cookie');
  t.equal((await request(port, '/api/status', { headers: { cookie: `other=1; ${cookie}` } })).status, 200, 'the API too');
  t.equal((await request(port, '/api/status', { headers: { cookie: 'clawbox_session=forged' } })).status, 401, 'a forged session');
  t.equal((await request(port, `/api/status?token=${TOKEN}`)).status, 200, '?token= on the API');
  t.equal((await request(port, '/api/status?token=nope-nope-nope-nope')).status, 401, 'wrong ?token=');
});

t.test('appliance mode with only a token: Basic admin:<token> works for browsers', async (t) => {
  const test = makeTestContext({ mode: 'appliance', logLevel: 'warn', config: { http: { token: TOKEN } } });
  const http = new HttpServer({ upgrades: {}, systemSampleMs: false });
  await http.start(test.ctx);
  t.teardown(async () => {
    await http.stop();
    test.cleanup();
  });
  t.equal((await request(http.port, '/api/status', { headers: { authorization: basic('admin', TOKEN) } })).status, 200);
  t.equal((await request(http.port, '/api/status', { headers: { authorization: basic('admin', '') } })).status, 401);
});

t.test('when auth is required', async (t) => {
  const http = (host: string, creds: { token?: string; password_hash?: string }) => ({ host, port: 0, ...creds });
  t.equal(new HttpAuth({ mode: 'appliance', http: http('127.0.0.1', { token: TOKEN }) }).required, true, 'appliance, even on loopback');
  t.equal(new HttpAuth({ mode: 'local', http: http('127.0.0.1', { token: TOKEN }) }).required, false, 'local on loopback goes without');
  t.equal(new HttpAuth({ mode: 'local', http: http('0.0.0.0', { token: TOKEN }) }).required, true, 'local on the network with a token');
  t.equal(new HttpAuth({ mode: 'local', http: http('::', { password_hash: 'scrypt$x' }) }).required, true, 'local on the network with a password');
  t.equal(new HttpAuth({ mode: 'local', http: http('0.0.0.0', {}) }).required, false, 'local on the network without credentials (warned)');

  for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', 'app.localhost', '::ffff:127.0.0.1']) {
    t.ok(isLoopbackHost(host), `${host} is loopback`);
  }
  for (const host of ['0.0.0.0', '::', '192.168.1.2', 'example.com', '127.example.com', 'localhost.example.com']) {
    t.notOk(isLoopbackHost(host), `${host} is not loopback`);
  }
});

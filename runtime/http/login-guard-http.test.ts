/**
 * The HTTP side of login abuse and log secrets, on a real server in appliance mode with the real logger
 * writing into a stream:
 * - a request that carries `?token=SECRET` (and the token in headers) and hits the error path leaves no
 *   SECRET in the log;
 * - wrong tokens from one address get 401 until the free failures are used, then 429 with Retry-After
 *   (also for the right token), until the window passes; success then resets the address;
 * - a flood of wrong Basic passwords runs scrypt only for the free failures.
 */
import { Writable } from 'node:stream';
import t from 'tap';
import { FREE_FAILURES, MAX_PENDING_PER_ADDRESS, loginTotals } from '../auth/login-guard.js';
import { hashPassword } from '../auth/password.js';
import { makeTestContext } from '../../app/testing/test-context.js';
import { REDACTED, createLogging } from '../logging.js';
import { HttpServer } from './http-server.js';
import { json, request } from './test-helpers.js';

const TOKEN = 'SECRET-token-0123456789';
const PASSWORD = 'correct horse battery staple';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function startServer(t: { teardown(fn: () => unknown): void }) {
  const test = makeTestContext({ mode: 'appliance', config: { http: { token: TOKEN, password_hash: await hashPassword(PASSWORD) } } });
  const lines: string[] = [];
  const logging = createLogging({
    level: 'debug',
    components: {},
    pretty: false,
    destination: new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  });
  // The real context, with a logger that writes where the test can read it.
  const ctx = { ...test.ctx, logger: (component: string) => logging.forComponent(component) };
  const http = new HttpServer({ upgrades: {}, systemSampleMs: false });
  await http.start(ctx);
  t.teardown(async () => {
    await http.stop();
    test.cleanup();
  });
  test.setLifecycle('serving');
  return { http, port: http.port, log: () => lines.join('') };
}

t.test('a failing request with ?token= leaves no secret in the log', async (t) => {
  const { http, port, log } = await startServer(t);
  http.addRoute('GET', '/api/broken', ({ req }) => {
    throw new Error(`handler failed for ${req.url}`);
  });
  const answer = await request(port, `/api/broken?token=${TOKEN}&page=2`, {
    headers: { cookie: `other=${TOKEN}`, 'x-debug': 'on' },
  });
  t.equal(answer.status, 500);
  const bearer = await request(port, `/api/broken?access_token=${TOKEN}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(bearer.status, 500);
  const out = log();
  t.match(out, 'http request failed', 'the error was logged');
  t.match(out, `token=${REDACTED}&page=2`, 'with the URL, minus the token');
  t.notMatch(out, /SECRET/, `no secret in the log:\n${out}`);
});

t.test('wrong tokens: 401 for the free failures, then 429 with Retry-After, then success resets', async (t) => {
  const { port } = await startServer(t);
  for (let i = 0; i < FREE_FAILURES; i++) {
    t.equal((await request(port, '/api/status', { headers: { authorization: `Bearer wrong-${i}` } })).status, 401, `wrong token ${i + 1}`);
  }
  t.equal((await request(port, '/api/status', { headers: { authorization: 'Bearer wrong-last' } })).status, 401, 'the failure that starts the backoff');
  const [throttled, viaQuery] = await Promise.all([
    request(port, '/api/status', { headers: { authorization: `Bearer ${TOKEN}` } }),
    request(port, `/?token=${TOKEN}`),
  ]);
  t.equal(throttled.status, 429, 'even the right token waits out the window');
  t.equal(throttled.headers['retry-after'], '1');
  t.match(json(throttled), { status: 'error', error: { code: 'BUSY', message: /too many failed logins/, retry_after_ms: Number } });
  t.equal(viaQuery.status, 429, 'the query token too');

  // Positive wait: retry as Retry-After says until the window has passed.
  let status = 429;
  for (let tries = 0; status === 429 && tries < 20; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    status = (await request(port, '/api/status', { headers: { authorization: `Bearer ${TOKEN}` } })).status;
  }
  t.equal(status, 200, 'the right token works after the window');
  t.equal((await request(port, '/api/status', { headers: { authorization: 'Bearer wrong-again' } })).status, 401, 'counting started again');
});

t.test('parallel wrong Basic passwords from one address: a few scrypt runs, the rest refused at once', async (t) => {
  const { port } = await startServer(t);
  const checksBefore = loginTotals.checks;
  const answers = await Promise.all(
    Array.from({ length: 30 }, (_, i) => request(port, '/api/status', { headers: { authorization: basic('admin', `guess-${i}`) } })),
  );
  const checks = loginTotals.checks - checksBefore;
  const statuses = answers.map((a) => a.status);
  t.same(
    statuses.filter((s) => s !== 401 && s !== 503),
    [],
    `only 401 (checked) or 503 (queue): ${statuses.join(',')}`,
  );
  // The bound is on checks running at once: on a loaded box the 30 requests reach the server spread out, and a
  // check that finished before a late one arrived gave its slot back, so the total may pass the bound a little;
  // without the limiter all 30 would run.
  t.ok(statuses.includes(503), 'the excess was refused at once');
  t.ok(checks <= 2 * MAX_PENDING_PER_ADDRESS, `${checks} scrypt runs for 30 attempts`);
  t.equal(statuses.filter((s) => s === 401).length, checks, 'every check answered 401');
  for (const a of answers.filter((x) => x.status === 503)) t.equal(a.headers['retry-after'], '1', 'Retry-After on a refusal');

  // Sequential failures past the free ones: then even the right password gets 429.
  for (let i = checks; i <= FREE_FAILURES; i++) await request(port, '/api/status', { headers: { authorization: basic('admin', `again-${i}`) } });
  const right = await request(port, '/api/status', { headers: { authorization: basic('admin', PASSWORD) } });
  t.equal(right.status, 429);
});

/**
 * Every answer of the HTTP server carries a valid `Date` (RFC 9110 §6.6.1), written by the runtime rather
 * than by Node (dated-response.ts says why): JSON answers, empty ones, routes that write their own head,
 * errors, 413s, refused upgrades, unparsable requests, and over HTTPS the answers and the plain-HTTP
 * redirect of the dual listener. Node's own formatter (`toUTCString`) is never called.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { makeTestContext } from '../../app/testing/test-context.js';
import { HttpServer, type HttpServerOptions } from './http-server.js';
import { type Answer, request } from './test-helpers.js';

const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

// Counts Node's own Date header formatting for the whole file: it must not happen.
let utcStringCalls = 0;
const toUTCString = Date.prototype.toUTCString;
Date.prototype.toUTCString = function (this: Date) {
  utcStringCalls++;
  return toUTCString.call(this);
};
t.teardown(() => {
  Date.prototype.toUTCString = toUTCString;
});

async function startHttp(t: Test, config: Record<string, unknown> = {}, options: Partial<HttpServerOptions> = {}): Promise<{ http: HttpServer; port: number }> {
  const test = makeTestContext({ logLevel: 'error', config });
  const http = new HttpServer({ upgrades: {}, systemSampleMs: false, ...options });
  await http.start(test.ctx);
  test.setLifecycle('serving');
  t.teardown(async () => {
    await http.stop();
    test.cleanup();
  });
  return { http, port: http.port };
}

/** Checks a Date header's form and that it names the time of the answer (to the second). */
function checkDate(t: Test, value: string | string[] | undefined, before: number, what: string): void {
  if (typeof value !== 'string' || !IMF_FIXDATE.test(value)) {
    t.fail(`${what}: Date header ${JSON.stringify(value)} is not an IMF-fixdate`);
    return;
  }
  const at = Date.parse(value);
  t.ok(at >= Math.floor(before / 1000) * 1000 && at <= Date.now(), `${what}: Date ${value} is the time of the answer`);
}

/** Sends `text` on a fresh connection and returns everything the server wrote before closing. */
async function rawExchange(port: number, text: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.write(text);
  let answer = '';
  socket.on('data', (d: Buffer) => {
    answer += d.toString();
  });
  await once(socket, 'close');
  return answer;
}

function rawDate(answer: string): string | undefined {
  return /\r\nDate: ([^\r]*)\r\n/.exec(answer)?.[1];
}

t.test('every answer over HTTP carries a Date, raw ones included', async (t) => {
  const { http, port } = await startHttp(t);
  http.addRoute('GET', '/api/empty', () => undefined);
  http.addRoute('GET', '/api/own-head', ({ res }) => {
    res.writeHead(201, { 'Content-Type': 'text/plain' }).end('made');
  });
  http.addRoute('GET', '/api/own-head-with-reason', ({ res }) => {
    res.writeHead(202, 'Taken', ['Content-Type', 'text/plain']).end('later');
  });
  http.addRoute('GET', '/api/streamed', ({ res }) => {
    res.write('a');
    res.end('b');
  });
  http.addRoute('GET', '/api/dated-by-route', ({ res }) => {
    res.setHeader('Date', 'Tue, 01 Jan 2030 00:00:00 GMT');
    res.end('x');
  });
  http.addRoute('POST', '/api/echo', async ({ json }) => ({ body: await json(10) }));
  utcStringCalls = 0;
  const before = Date.now();

  const answers: [string, Answer, number][] = [
    ['JSON', await request(port, '/healthz'), 200],
    ['empty', await request(port, '/api/empty'), 204],
    ['writeHead by the route', await request(port, '/api/own-head'), 201],
    ['writeHead with a reason and a header list', await request(port, '/api/own-head-with-reason'), 202],
    ['written in parts', await request(port, '/api/streamed'), 200],
    ['HEAD', await request(port, '/healthz', { method: 'HEAD' }), 200],
    ['not found', await request(port, '/api/nothing'), 404],
    ['wrong Host', await request(port, '/api/status', { headers: { host: 'evil.example' } }), 403],
    ['too large', await request(port, '/api/echo', { method: 'POST', body: JSON.stringify({ pad: 'x'.repeat(100) }) }), 413],
    ['bad JSON', await request(port, '/api/echo', { method: 'POST', body: '{' }), 400],
  ];
  for (const [what, answer, status] of answers) {
    t.equal(answer.status, status, `${what}: status`);
    checkDate(t, answer.headers.date, before, what);
  }
  t.equal((await request(port, '/api/dated-by-route')).headers.date, 'Tue, 01 Jan 2030 00:00:00 GMT', "a route's own Date stays");

  const upgrade = await rawExchange(port, 'GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  t.match(upgrade, /^HTTP\/1\.1 404 Not Found\r\n/);
  checkDate(t, rawDate(upgrade), before, 'refused upgrade');
  const garbage = await rawExchange(port, 'NOT HTTP AT ALL\r\n\r\n');
  t.match(garbage, /^HTTP\/1\.1 400 Bad Request\r\n/);
  checkDate(t, rawDate(garbage), before, 'unparsable request');

  t.equal(utcStringCalls, 0, "Node's Date formatting was never used");
});

t.test('over HTTPS: answers, the plain-HTTP redirect and its refused upgrade carry a Date', async (t) => {
  const { port } = await startHttp(t, { http: { host: '127.0.0.1', tls: { enabled: true } } });
  utcStringCalls = 0;
  const before = Date.now();

  const health = await request(port, '/healthz', { tls: true });
  t.equal(health.status, 200);
  checkDate(t, health.headers.date, before, 'HTTPS answer');
  const missing = await request(port, '/api/nothing', { tls: true });
  t.equal(missing.status, 404);
  checkDate(t, missing.headers.date, before, 'HTTPS error');

  const redirect = await request(port, '/healthz');
  t.equal(redirect.status, 308);
  t.equal(redirect.headers.location, `https://127.0.0.1:${port}/healthz`);
  checkDate(t, redirect.headers.date, before, 'redirect to HTTPS');
  const noHost = await rawExchange(port, 'GET / HTTP/1.0\r\n\r\n');
  t.match(noHost, /^HTTP\/1\.1 400 /);
  checkDate(t, rawDate(noHost), before, 'redirect refused for want of a Host');
  const upgrade = await rawExchange(port, 'GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  t.match(upgrade, /^HTTP\/1\.1 426 Upgrade Required\r\n/);
  checkDate(t, rawDate(upgrade), before, 'plain-HTTP upgrade refused');

  t.equal(utcStringCalls, 0, "Node's Date formatting was never used");
});

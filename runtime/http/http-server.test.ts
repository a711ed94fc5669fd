/**
 * The HTTP server on a real loopback port: the status document, health across the lifecycle (including a
 * real Lifecycle stopping), Prometheus text, the router's error shapes and limits, upgrades, the port
 * already in use, and the local-mode guards (Host check, cross-origin writes).
 */
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { type Server, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { type TestContext, makeTestContext } from '../../app/testing/test-context.js';
import type { Component } from '../context.js';
import { ClawboxError } from '../errors.js';
import { Lifecycle } from '../lifecycle.js';
import { HttpServer, type HttpServerOptions, type UpgradeHandler } from './http-server.js';
import { json, parsePrometheus, request } from './test-helpers.js';

async function startHttp(
  t: Test,
  options: Partial<HttpServerOptions> = {},
  context: Parameters<typeof makeTestContext>[0] = {},
): Promise<{ http: HttpServer; test: TestContext; port: number }> {
  const test = makeTestContext({ logLevel: 'warn', ...context });
  const http = new HttpServer({ upgrades: {}, systemSampleMs: false, ...options });
  await http.start(test.ctx);
  t.teardown(async () => {
    await http.stop();
    test.cleanup();
  });
  return { http, test, port: http.port };
}

t.test('/api/status carries identity, state, every section and recent warnings', async (t) => {
  const { test, port } = await startHttp(t, { systemSampleMs: 60_000 });
  test.setLifecycle('serving');
  let value = 1;
  test.ctx.status.register('model', () => ({ loaded: 'tiny', value }));
  test.ctx.status.register('broken', () => {
    throw new Error('provider exploded');
  });
  test.ctx.logger('devices').warn({ code: 'DEVICE_TIMEOUT' }, 'lamp did not answer');

  const answer = await request(port, '/api/status');
  t.equal(answer.status, 200);
  t.match(answer.headers['content-type'], /^application\/json/);
  t.equal(answer.headers['cache-control'], 'no-store');
  const doc = json(answer) as Record<string, unknown> & { sections: Record<string, unknown>; warnings: unknown[] };
  t.equal(doc.version, test.ctx.version);
  t.equal(doc.mode, 'local');
  t.equal(doc.state, 'serving');
  t.equal(doc.started_at, new Date(test.ctx.startedAt).toISOString());
  t.type(doc.uptime_s, 'number');
  t.same(doc.sections.model, { loaded: 'tiny', value: 1 });
  t.same(doc.sections.broken, { error: 'provider exploded' }, 'a failing section reports its error, the rest still render');
  t.match(doc.sections.system, {
    cpu: { cores: Number, load_avg: Array },
    memory: { total_bytes: Number, used_bytes: Number, available_bytes: Number, used_percent: Number },
    process: { rss_bytes: Number },
  });
  t.match(doc.warnings, [{ level: 'warn', component: 'devices', msg: 'lamp did not answer', code: 'DEVICE_TIMEOUT' }]);

  value = 2;
  const again = json(await request(port, '/api/status')) as { sections: { model: { value: number } } };
  t.equal(again.sections.model.value, 2, 'figures are read per request');
});

t.test('the system section fills in from systeminformation in the background', async (t) => {
  const { test, port } = await startHttp(t, { systemSampleMs: 60_000 });
  // The first sample (currentLoad takes ~0.5 s) must never hold up a request.
  for (;;) {
    const doc = json(await request(port, '/api/status')) as { sections: { system: { sampled_at: string | null; disk: unknown; cpu: { load_percent: unknown } } } };
    if (doc.sections.system.sampled_at !== null) {
      t.type(doc.sections.system.cpu.load_percent, 'number');
      t.match(doc.sections.system.disk, { mount: String, total_bytes: Number, used_percent: Number });
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.ok(test.ctx.status, 'sampled');
});

t.test('/healthz: 503 while starting, 200 when serving, 503 while the rest of the runtime stops', async (t) => {
  const test = makeTestContext({ logLevel: 'warn' });
  t.teardown(() => test.cleanup());
  const http = new HttpServer({ upgrades: {}, systemSampleMs: false });
  let releaseSlow!: () => void;
  let slowStopping!: () => void;
  const slowStopStarted = new Promise<void>((resolve) => {
    slowStopping = resolve;
  });
  // Started after http, so stopped before it: the window in which healthz must answer 503.
  const slow: Component = {
    name: 'slow',
    start: async () => {
      const doc = json(await request(http.port, '/healthz'));
      t.same(doc, { status: 'starting' }, 'http is up before the last component, and says starting');
    },
    stop: () =>
      new Promise<void>((resolve) => {
        releaseSlow = resolve;
        slowStopping();
      }),
  };
  const lifecycle = new Lifecycle([http, slow], test.ctx.bus, test.ctx.logger('lifecycle'));
  t.teardown(() => lifecycle.stop());
  await lifecycle.start(test.ctx);
  const port = http.port;

  const serving = await request(port, '/healthz');
  t.equal(serving.status, 200);
  t.same(json(serving), { status: 'serving' });

  const stopped = lifecycle.stop();
  await slowStopStarted;
  const stopping = await request(port, '/healthz');
  t.equal(stopping.status, 503, 'healthz flips while other components stop');
  t.same(json(stopping), { status: 'stopping' });
  t.equal(stopping.headers.connection, 'close', 'connections are let go while stopping');
  t.match(json(await request(port, '/api/status')), { state: 'stopping' }, 'the API still answers, and says so');
  releaseSlow();
  await stopped;
  await t.rejects(request(port, '/healthz'), { code: 'ECONNREFUSED' }, 'closed after its own stop');
});

t.test('/metrics is strict Prometheus text with the http request figures', async (t) => {
  const { test, port } = await startHttp(t);
  test.setLifecycle('serving');
  await request(port, '/healthz');
  await request(port, '/nope');
  const answer = await request(port, '/metrics');
  t.equal(answer.status, 200);
  t.match(answer.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const families = parsePrometheus(answer.body);
  const requests = families.get('clawbox_http_requests_total');
  t.equal(requests?.type, 'counter');
  t.ok(
    requests?.samples.some((s) => s.labels === '{method="GET",route="/healthz",status="200"}' && s.value >= 1),
    'healthz counted by route pattern',
  );
  t.ok(
    requests?.samples.some((s) => s.labels === '{method="GET",route="unmatched",status="404"}'),
    'unknown paths share one label (bounded cardinality)',
  );
  t.equal(families.get('clawbox_http_request_duration_seconds')?.type, 'histogram');
  t.equal(families.get('clawbox_http_event_streams')?.type, 'gauge');
  t.throws(() => parsePrometheus(answer.body.replace('# TYPE clawbox_http_requests_total counter\n', '')), 'the check can fail');
});

t.test('addRoute: params, returned JSON, typed errors, body limits and bad JSON', async (t) => {
  const { http, test, port } = await startHttp(t);
  test.setLifecycle('serving');
  const remove = http.addRoute('POST', '/api/echo/:name', async ({ params, json }) => ({ name: params.name, body: await json(100) }));
  http.addRoute('GET', '/api/things/:id', ({ params }) => {
    throw new ClawboxError('DEVICE_NOT_FOUND', `no device "${params.id}"`, { id: params.id });
  });
  http.addRoute('GET', '/api/broken', () => {
    throw new Error('bug');
  });
  t.throws(() => http.addRoute('POST', '/api/echo/:other', () => 1), /registered twice/);
  t.throws(() => http.addRoute('GET', 'no-slash', () => 1), /bad route pattern/);

  const ok = await request(port, '/api/echo/l%C3%A4mp', { method: 'POST', body: '{"on":true}', headers: { 'content-type': 'application/json' } });
  t.equal(ok.status, 200);
  t.same(json(ok), { name: 'lämp', body: { on: true } });

  const big = await request(port, '/api/echo/x', { method: 'POST', body: JSON.stringify({ pad: 'x'.repeat(200) }) });
  t.equal(big.status, 413);
  t.same(json(big), { status: 'error', error: { code: 'PAYLOAD_TOO_LARGE', message: 'request body is larger than 100 bytes', limit_bytes: 100 } });

  // No Content-Length (chunked): the limit holds while reading.
  const chunked = await request(port, '/api/echo/x', { method: 'POST', chunks: [Buffer.alloc(80, 32), Buffer.alloc(80, 32)] });
  t.equal(chunked.status, 413);

  const bad = await request(port, '/api/echo/x', { method: 'POST', body: '{"on":' });
  t.equal(bad.status, 400);
  t.match(json(bad), { status: 'error', error: { code: 'PAYLOAD_INVALID', message: /not valid JSON/ } });

  const missing = await request(port, '/api/things/lamp');
  t.equal(missing.status, 404);
  t.same(json(missing), { status: 'error', error: { id: 'lamp', code: 'DEVICE_NOT_FOUND', message: 'no device "lamp"' } });

  const broken = await request(port, '/api/broken');
  t.equal(broken.status, 500);
  t.match(json(broken), { status: 'error', error: { code: 'INTERNAL' } });

  const wrongMethod = await request(port, '/api/echo/x');
  t.equal(wrongMethod.status, 405);
  t.equal(wrongMethod.headers.allow, 'POST');
  t.match(json(wrongMethod), { error: { code: 'METHOD_NOT_ALLOWED' } });

  const unknown = await request(port, '/api/nothing-here');
  t.equal(unknown.status, 404);
  t.match(json(unknown), { status: 'error', error: { code: 'NOT_FOUND' } });

  remove();
  t.equal((await request(port, '/api/echo/x', { method: 'POST', body: '{}' })).status, 404, 'a removed route is gone');

  const head = await request(port, '/api/status', { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD answered by the GET route');
  t.equal(head.body, '');
});

t.test('the web app: served from the folder it is given, own-origin CSP, hashed assets cached, API not cached', async (t) => {
  const web = mkdtempSync(path.join(tmpdir(), 'clawbox-webroot-'));
  t.teardown(() => rmSync(web, { recursive: true, force: true }));
  mkdirSync(path.join(web, 'assets'));
  writeFileSync(path.join(web, 'index.html'), '<!doctype html><script type="module" src="/assets/main-AB12.js"></script>');
  writeFileSync(path.join(web, 'assets', 'main-AB12.js'), 'console.log(1)');
  writeFileSync(path.join(web, 'assets', 'notes.txt'), 'not an asset type');
  const { port } = await startHttp(t, { webRoot: web });
  const page = await request(port, '/');
  t.equal(page.status, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.equal(page.headers['cache-control'], 'no-cache', 'a new build is picked up at the next load');
  t.match(page.headers['content-security-policy'], /default-src 'none'; script-src 'self'; style-src 'self'/);
  t.notMatch(page.headers['content-security-policy'], /unsafe-inline|unsafe-eval/);
  t.equal(page.headers['x-content-type-options'], 'nosniff');
  t.equal(page.headers['x-frame-options'], 'DENY');
  t.match(page.body, /main-AB12\.js/);
  const script = await request(port, '/assets/main-AB12.js');
  t.equal(script.status, 200);
  t.match(script.headers['content-type'], /^text\/javascript/);
  t.match(script.headers['cache-control'], /immutable/);
  for (const bad of ['/assets/notes.txt', '/assets/..%2Findex.html', '/assets/missing.js']) {
    t.equal((await request(port, bad)).status, 404, `${bad} is not served`);
  }
  const api = await request(port, '/api/status');
  t.equal(api.headers['cache-control'], 'no-store');
  t.equal(api.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
});

t.test('without a built web app, / says how to build it', async (t) => {
  const { port } = await startHttp(t);
  const page = await request(port, '/');
  t.equal(page.status, 200);
  t.match(page.body, /npm run build/);
  t.notMatch(page.body, /(?:src|href|url)\s*[=(]\s*["']?https?:/i, 'nothing loaded from elsewhere');
});

t.test('local mode on loopback: open to loopback Host names only, no cross-origin writes', async (t) => {
  const { http, test, port } = await startHttp(t);
  test.setLifecycle('serving');
  http.addRoute('POST', '/api/poke', () => ({ poked: true }));
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
    t.equal((await request(port, '/api/status', { headers: { host } })).status, 200, `Host ${host}`);
  }
  const rebound = await request(port, '/api/status', { headers: { host: `attacker.example:${port}` } });
  t.equal(rebound.status, 403, 'a DNS-rebound name is refused');
  t.match(json(rebound), { error: { code: 'FORBIDDEN' } });
  t.equal((await request(port, '/healthz', { headers: { host: 'attacker.example' } })).status, 200, 'healthz stays public');

  const crossSite = await request(port, '/api/poke', { method: 'POST', headers: { origin: 'http://evil.example', 'content-type': 'text/plain' }, body: '{}' });
  t.equal(crossSite.status, 403);
  const sameSite = await request(port, '/api/poke', { method: 'POST', headers: { origin: `http://127.0.0.1:${port}` }, body: '{}' });
  t.equal(sameSite.status, 200);
  t.same(json(sameSite), { poked: true });
});

t.test('upgrades: a known path goes to its handler, any other gets 404 and a closed socket', async (t) => {
  const seen: string[] = [];
  const handler: UpgradeHandler = {
    handleUpgrade(req, socket) {
      seen.push(req.url ?? '');
      socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nhello');
    },
  };
  const { port } = await startHttp(t, { upgrades: { '/mqtt': handler } });
  const raw = async (path: string): Promise<string> => {
    const socket = connect(port, '127.0.0.1');
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
    });
    await once(socket, 'close');
    return text;
  };
  t.match(await raw('/mqtt?x=1'), /^HTTP\/1\.1 101 [\s\S]*hello$/);
  t.same(seen, ['/mqtt?x=1']);
  t.match(await raw('/other'), /^HTTP\/1\.1 404 Not Found/);
  t.match(await raw('/__proto__'), /^HTTP\/1\.1 404 Not Found/);
  t.same(seen, ['/mqtt?x=1']);
});

t.test('stop ends live streams and closes', async (t) => {
  const test = makeTestContext({ logLevel: 'warn' });
  t.teardown(() => test.cleanup());
  const http = new HttpServer({ upgrades: {}, systemSampleMs: false });
  await http.start(test.ctx);
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port: http.port, path: '/api/events', agent: false }, resolve).on('error', reject).end();
  });
  t.match(res.headers['content-type'], /^text\/event-stream/);
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (d: string) => {
    text += d;
  });
  while (!text.includes('event: status')) await new Promise((resolve) => setTimeout(resolve, 20));
  t.match(text, /^retry: 2000\n\nevent: status\ndata: \{"version"/);
  const ended = once(res, 'end');
  await http.stop();
  await ended;
  t.pass('the stream ended on stop');
  t.equal(http.port, 0);
});

t.test('a port in use is PORT_IN_USE naming host and port', async (t) => {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const busy = (blocker.address() as { port: number }).port;
  const test = makeTestContext({ logLevel: 'warn', env: { CLAWBOX_HTTP_PORT: String(busy) } });
  t.teardown(() => test.cleanup());
  const http = new HttpServer({ upgrades: {}, systemSampleMs: false });
  await t.rejects(http.start(test.ctx), {
    code: 'PORT_IN_USE',
    message: new RegExp(`^http port 127\\.0\\.0\\.1:${busy} is already in use`),
  });
  t.equal(http.port, 0);
  // It released what it registered, so a retry on a free port works.
  t.notOk(test.ctx.metrics.getSingleMetric('clawbox_http_requests_total'));
});

/**
 * The compute plugin's Wolfram|Alpha adapter against a local server that speaks the LLM API as documented
 * (GET /api/v1/llm-api?input=…&appid=…&maxchars=…: 200 text, 501 not understood, 400 no input, 403 bad
 * AppID); the real service is on the internet, which tests never reach. mathjs answers first; Wolfram|Alpha
 * only what mathjs cannot; offline or slow, the answer says why; the AppID appears in no error.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { redactText } from '../../../runtime/logging.js';
import { startHost } from '../../test/support.js';
import { createCompute } from './index.js';

const APP_ID = 'TEST-APPID-5ecret';
const LIMITS = { max_expression_length: 1000, max_nodes: 500, max_elements: 100_000, timeout_ms: 1000 };

async function wolframServer(t: Test) {
  const seen: URLSearchParams[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    seen.push(url.searchParams);
    if (url.pathname !== '/api/v1/llm-api') return void res.writeHead(404).end();
    const appid = url.searchParams.get('appid');
    const input = url.searchParams.get('input');
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    if (!appid) return void res.writeHead(403).end('Error 1: Appid missing');
    if (appid !== APP_ID) return void res.writeHead(403).end('Error 1: Invalid appid');
    if (!input) return void res.writeHead(400).end('Error: No input');
    if (input === 'slow question') return void setTimeout(() => res.writeHead(200).end('late'), 3000).unref();
    if (input.includes('distance from Earth to the Moon')) {
      return void res
        .writeHead(200)
        .end(
          'Query:\n"distance from Earth to the Moon"\n\nInput interpretation:\nMoon | distance from Earth\n\nResult:\n384400 km\n\nWolfram|Alpha website result for "distance from Earth to the Moon":\nhttps://www.wolframalpha.com/input?i=distance+from+Earth+to+the+Moon',
        );
    }
    res.writeHead(501).end(`Wolfram|Alpha could not understand: ${input}. Things to try instead:\nmoon`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/llm-api`, seen };
}

t.test('mathjs first, Wolfram|Alpha for the rest, each answer marked with its source', async (t) => {
  const { url, seen } = await wolframServer(t);
  const compute = createCompute({ ...LIMITS, wolfram: { app_id: APP_ID, url, timeout_ms: 1000, max_chars: 500 } });
  t.same(await compute.ask({ query: '15 / 100 * 240' }), { text: '36', source: 'mathjs' });
  t.equal(seen.length, 0, 'what mathjs answers never leaves the box');
  const moon = await compute.ask({ query: 'distance from Earth to the Moon' });
  t.match(moon, { source: 'wolfram-alpha', text: /Result:\n384400 km/, url: 'https://www.wolframalpha.com/input?i=distance+from+Earth+to+the+Moon' });
  t.equal(seen.at(-1)!.get('appid'), APP_ID);
  t.equal(seen.at(-1)!.get('maxchars'), '500');
  t.equal(seen.at(-1)!.get('input'), 'distance from Earth to the Moon');
  await t.rejects(compute.ask({ query: 'flibber the jabberwock' }), { code: 'NOT_FOUND', message: /did not understand "flibber the jabberwock"/ });
  t.same(compute.evaluate({ expression: '2+2' }), { text: '4', type: 'number', value: 4, source: 'mathjs' });
});

t.test('errors: a bad AppID, a slow answer, no network — never the AppID in a message', async (t) => {
  const { url } = await wolframServer(t);
  const errors: string[] = [];
  const expectError = async (promise: Promise<unknown>, code: string) => {
    const error = (await promise.then(
      () => null,
      (e: unknown) => e,
    )) as { code: string; message: string } | null;
    t.equal(error?.code, code, `${code}: ${error?.message}`);
    if (error) errors.push(error.message);
  };
  const wrongId = createCompute({ ...LIMITS, wolfram: { app_id: 'WRONG', url, timeout_ms: 1000, max_chars: 500 } });
  await expectError(wrongId.ask({ query: 'population of France' }), 'FORBIDDEN');
  const slow = createCompute({ ...LIMITS, wolfram: { app_id: APP_ID, url, timeout_ms: 200, max_chars: 500 } });
  await expectError(slow.ask({ query: 'slow question' }), 'DEADLINE_EXCEEDED');
  // A closed port: the box is offline; mathjs's own reason comes with it.
  const offline = createCompute({ ...LIMITS, wolfram: { app_id: APP_ID, url: 'http://127.0.0.1:9/api/v1/llm-api', timeout_ms: 1000, max_chars: 500 } });
  t.same(await offline.ask({ query: 'sqrt(16)' }), { text: '4', source: 'mathjs' }, 'offline, mathjs still answers');
  await expectError(offline.ask({ query: 'population of France' }), 'DEVICE_UNAVAILABLE');
  t.match(errors.at(-1), /Undefined symbol population; and Wolfram\|Alpha cannot be reached \((ECONNREFUSED|network error)\)/);
  const cancelled = new AbortController();
  cancelled.abort();
  await expectError(
    createCompute({ ...LIMITS, wolfram: { app_id: APP_ID, url, timeout_ms: 1000, max_chars: 500 } }).ask({ query: 'population of France' }, cancelled.signal),
    'DEADLINE_EXCEEDED',
  );
  const none = createCompute(LIMITS);
  await expectError(none.ask({ query: 'population of France' }), 'PAYLOAD_INVALID');
  for (const message of errors) t.notMatch(message, APP_ID, 'the AppID is in no error message');
  t.equal(redactText(`GET ${url}?input=x&appid=${APP_ID}`), `GET ${url}?input=x&appid=[redacted]`, 'nor in a logged URL');
});

t.test('through the plugin host: the ask tool answers from Wolfram|Alpha with the AppID from a file', async (t) => {
  const { url } = await wolframServer(t);
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-wolfram-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'wolfram-appid'), `${APP_ID}\n`, { mode: 0o600 });
  const { host } = await startHost(t, {
    plugins: { call_timeout_ms: 60_000, start_timeout_ms: 60_000, config: { compute: { wolfram: { app_id_file: path.join(dir, 'wolfram-appid'), url } } } },
  });
  t.match(await host.call('compute', 'ask', { query: 'distance from Earth to the Moon' }), { source: 'wolfram-alpha', text: /384400 km/ });
  t.match(await host.call('compute', 'ask', { query: '2^10' }), { source: 'mathjs', text: '1024' });
  await t.rejects(host.call('compute', 'ask', { query: '' }), { code: 'PAYLOAD_INVALID' }, 'arguments are checked');
});

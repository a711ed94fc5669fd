import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Runs `body` (an ES module) in a fresh node, after importing lean-builtins when `lean`; returns its JSON output. */
function inFreshNode(body: string, lean: boolean): Record<string, unknown> {
  const prelude = lean ? `await import(${JSON.stringify(path.join(here, 'lean-builtins.ts'))});\n` : '';
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', prelude + body], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(out) as Record<string, unknown>;
}

const LOADED = `const loaded = (name) => process.moduleLoadList.some((m) => m === 'NativeModule ' + name);`;

t.test('an ES module import of node:http loads neither undici nor http2', async (t) => {
  const result = inFreshNode(
    `${LOADED}
const http = await import('node:http');
const server = http.createServer((req, res) => res.end('ok'));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const answer = await new Promise((resolve, reject) => {
  http.get({ host: '127.0.0.1', port: server.address().port, path: '/' }, (res) => {
    let body = '';
    res.on('data', (c) => (body += c)).on('end', () => resolve(body));
  }).on('error', reject);
});
server.close();
console.log(JSON.stringify({ undici: loaded('internal/deps/undici/undici'), http2: loaded('http2'), answer, named: typeof http.WebSocket }));`,
    true,
  );
  t.equal(result.answer, 'ok', 'node:http still serves and requests');
  t.equal(result.undici, false, 'undici not loaded');
  t.equal(result.http2, false, 'http2 not loaded');
  t.equal(result.named, 'undefined', 'http.WebSocket is gone');
});

t.test('without it, the same import loads undici (what this module is for)', async (t) => {
  const result = inFreshNode(`${LOADED}\nawait import('node:http');\nconsole.log(JSON.stringify({ undici: loaded('internal/deps/undici/undici') }));`, false);
  // When a later Node stops doing this, this test says the module can go.
  t.equal(result.undici, true, 'Node 22 loads undici for an ES module import of node:http');
});

t.test('the platform WebSocket and fetch classes still load on first use', async (t) => {
  const result = inFreshNode(
    `${LOADED}
await import('node:http');
const before = loaded('internal/deps/undici/undici');
console.log(JSON.stringify({ before, ws: typeof globalThis.WebSocket, response: typeof Response, text: await new Response('hi').text() }));`,
    true,
  );
  t.equal(result.before, false);
  t.equal(result.ws, 'function');
  t.equal(result.response, 'function');
  t.equal(result.text, 'hi');
});

t.test('app/main.ts imports it before anything else', async (t) => {
  const { readFileSync } = await import('node:fs');
  const main = readFileSync(path.join(here, '../../app/main.ts'), 'utf8');
  const firstImport = /^import .*$/m.exec(main)?.[0];
  t.equal(firstImport, "import '../runtime/system/lean-builtins.js';");
});

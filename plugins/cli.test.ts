/**
 * `clawbox plugins list | info | new`: output and exit codes, and scaffolds that work — their own tests
 * pass (node --test, python3 -m unittest) and the real host loads and calls them.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { loadConfig } from '../app/config.js';
import { runPluginsCommand } from './cli.js';
import { FIXTURES, startHost } from './test/support.js';

const run = promisify(execFile);

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runPluginsCommand(args, loadConfig, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env });
  return { code, stdout, stderr };
}

t.test('list and info', async (t) => {
  const list = await cli(['list'], { PLUGIN_DIR: FIXTURES });
  t.equal(list.code, 0);
  t.match(list.stdout, /^NAME\s+VERSION\s+RUNTIME\s+FROM\s+TOOLS\n/);
  t.match(list.stdout, /compute\s+1\.0\.0\s+node\s+builtin\s+evaluate, ask, convert/);
  t.match(list.stdout, /py-basic\s+1\.0\.0\s+python\s+env\s+add, hello/);

  const json = JSON.parse((await cli(['list', '--json'])).stdout) as { plugins: { name: string }[]; refused: unknown[] };
  t.same(json.plugins.map((p) => p.name).sort(), ['compute', 'content-safety', 'db-query', 'imessage', 'iot-control', 'telegram', 'whatsapp']);
  t.match(list.stdout, /telegram\s+1\.0\.0\s+node\s+builtin\s+\(a chat channel, 4096 characters a message\)/);
  t.match((await cli(['info', 'telegram'])).stdout, /credential bot_token — /, 'a channel plugin names the credentials it needs');
  t.same(json.refused, []);

  const info = await cli(['info', 'db-query']);
  t.equal(info.code, 0);
  t.match(info.stdout, /db-query 1\.0\.0 — /);
  t.match(info.stdout, /runtime:\s+node \(process\)/);
  t.match(info.stdout, /permissions: devices false, .* network true, database true/);
  t.match(info.stdout, /\n {4}query — Runs one SQL statement/);
  t.match(JSON.parse((await cli(['info', 'iot-control', '--json'])).stdout), { name: 'iot-control', permissions: { devices: true } });

  t.match(await cli(['info', 'nope']), { code: 1, stderr: /plugin nope: not found/ });
  t.match(await cli([]), { code: 64, stdout: /Usage:/ });
  t.match(await cli(['frobnicate']), { code: 64, stderr: /unknown plugins command "frobnicate"/ });
  t.match(await cli(['list', '--bogus']), { code: 64, stderr: /bogus/ });
});

t.test('new: node and python scaffolds pass their own tests and load in the host', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-scaffold-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  const node = await cli(['new', 'hello-node', '--lang', 'node', '--dir', dir]);
  t.equal(node.code, 0, node.stderr);
  t.match(node.stdout, /created .*hello-node: clawbox\.plugin\.json, index\.mjs, test\.mjs, package\.json/);
  const py = await cli(['new', 'hello-py', '--lang', 'python', '--dir', dir]);
  t.equal(py.code, 0, py.stderr);

  const env = { PATH: process.env.PATH ?? '' };
  const nodeTest = await run(process.execPath, ['--test'], { cwd: path.join(dir, 'hello-node'), env });
  t.match(nodeTest.stdout, /# pass 1/);
  const pyTest = await run('python3', ['-m', 'unittest', '-v'], { cwd: path.join(dir, 'hello-py'), env });
  t.match(pyTest.stderr, /test_greet .* ok/);

  const { host } = await startHost(t, {
    plugins: { dirs: [dir], allow: ['hello-node', 'hello-py'], config: { 'hello-py': { greeting: 'Hoi' } } },
  });
  t.same(await host.call('hello-node', 'greet', { name: 'Ada' }), { text: 'Hello, Ada!' });
  t.same(await host.call('hello-py', 'greet', { name: 'Ada' }), { text: 'Hoi, Ada!' });
  await t.rejects(host.call('hello-py', 'greet', {}), { code: 'PAYLOAD_INVALID' });

  t.match(await cli(['new', 'hello-node', '--lang', 'node', '--dir', dir]), { code: 64, stderr: /already exists/ });
  t.match(await cli(['new', 'Bad_Name', '--lang', 'node', '--dir', dir]), { code: 64, stderr: /must be lower case/ });
  t.match(await cli(['new', 'x', '--lang', 'ruby', '--dir', dir]), { code: 64, stderr: /--lang must be node or python/ });
});

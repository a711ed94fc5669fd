/**
 * Discovery and manifests on real folders: sources in order, allow/deny, duplicate names, invalid
 * manifests, world-writable folders and symlinks escaping a plugin folder, each refused with a clear error.
 */
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { BUILTIN_PLUGIN_DIR, discoverPlugins, loadPluginFolder, pluginSources } from './discovery.js';
import { type manifestValidator, parseManifest } from './manifest.js';
import { FIXTURES } from './test/support.js';

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-plugins-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function manifest(name: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    name,
    version: '0.1.0',
    runtime: 'node',
    entry: 'index.js',
    tools: [{ name: 'ping', description: 'Answers.', arguments: { type: 'object' } }],
    ...extra,
  });
}

function makePlugin(root: string, folder: string, name = folder, extra: Record<string, unknown> = {}): string {
  const dir = path.join(root, folder);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  writeFileSync(path.join(dir, 'clawbox.plugin.json'), manifest(name, extra));
  writeFileSync(path.join(dir, 'index.js'), 'export default { tools: { ping: () => "pong" } };\n');
  return dir;
}

t.test('sources: built-ins, then $PLUGIN_DIR, then config dirs; the first of a name wins', async (t) => {
  const envDir = scratch(t);
  const cfgDir = scratch(t);
  makePlugin(envDir, 'alpha');
  makePlugin(cfgDir, 'alpha-again', 'alpha');
  makePlugin(cfgDir, 'beta');
  const sources = pluginSources({ dirs: [cfgDir] }, { PLUGIN_DIR: envDir });
  t.same(sources, [
    { dir: BUILTIN_PLUGIN_DIR, origin: 'builtin' },
    { dir: envDir, origin: 'env' },
    { dir: cfgDir, origin: 'config' },
  ]);
  const found = discoverPlugins(sources);
  const names = found.plugins.map((p) => `${p.name}:${p.origin}`);
  t.ok(names.includes('alpha:env') && names.includes('beta:config'), names.join(' '));
  for (const builtin of ['compute', 'content-safety', 'db-query', 'iot-control']) {
    t.ok(names.includes(`${builtin}:builtin`), `built-in ${builtin} found`);
  }
  t.match(found.problems, [{ name: 'alpha', error: { code: 'PLUGIN_INVALID', message: /already loaded from/ } }]);

  const filtered = discoverPlugins(sources, { allow: ['alpha', 'beta', 'compute'], deny: ['beta'] });
  t.same(filtered.plugins.map((p) => p.name), ['compute', 'alpha']);
  t.match(filtered.skipped, [
    { name: 'content-safety', reason: /not in plugins.allow/ },
    { name: 'db-query' },
    { name: 'imessage' },
    { name: 'iot-control' },
    { name: 'telegram' },
    { name: 'whatsapp' },
    { name: 'beta', reason: /plugins.deny/ },
  ]);
  t.same(discoverPlugins(sources, { deny: ['compute'] }).plugins.some((p) => p.name === 'compute'), false, 'deny alone');

  const missing = discoverPlugins([{ dir: path.join(envDir, 'nope'), origin: 'env' }]);
  t.match(missing.problems, [{ error: { code: 'PLUGIN_INVALID', message: /cannot be read: ENOENT/ } }], 'a missing folder is a problem, not a crash');
  const single = discoverPlugins([{ dir: path.join(FIXTURES, 'py-basic'), origin: 'config' }]);
  t.same(single.plugins.map((p) => p.name), ['py-basic'], 'a source may be one plugin folder');
});

t.test('unsafe folders are refused with a clear error', async (t) => {
  const root = scratch(t);
  const outside = scratch(t);
  writeFileSync(path.join(outside, 'secret.js'), 'export default 1;\n');

  const open = makePlugin(root, 'open');
  chmodSync(open, 0o777);
  const openFile = makePlugin(root, 'open-file');
  chmodSync(path.join(openFile, 'index.js'), 0o666);
  const escaping = makePlugin(root, 'escaping');
  symlinkSync(path.join(outside, 'secret.js'), path.join(escaping, 'lib.js'));
  const dangling = makePlugin(root, 'dangling');
  symlinkSync('../../elsewhere/x.js', path.join(dangling, 'x.js'));
  const inside = makePlugin(root, 'inside');
  symlinkSync('index.js', path.join(inside, 'alias.js'));
  makePlugin(outside, 'linked');
  symlinkSync(path.join(outside, 'linked'), path.join(root, 'linked'));
  makePlugin(root, 'entry-out', 'entry-out', { entry: 'sub/../../x.js' });
  const entryLink = makePlugin(root, 'entry-link', 'entry-link', { entry: 'main.js' });
  symlinkSync(path.join(outside, 'secret.js'), path.join(entryLink, 'main.js'));

  const found = discoverPlugins([{ dir: root, origin: 'config' }]);
  t.same(found.plugins.map((p) => p.name), ['inside'], 'only the safe plugin loads');
  const byFolder = Object.fromEntries(found.problems.map((p) => [path.basename(p.path), p.error.message]));
  t.match(byFolder.open, /plugin folder .*open is world-writable \(mode 777\); refused — run chmod o-w/);
  t.match(byFolder['open-file'], /file in a plugin .*index\.js is world-writable \(mode 666\)/);
  t.match(byFolder.escaping, /lib\.js is a symlink to .*secret\.js, outside the plugin folder/);
  t.match(byFolder.dangling, /x\.js is a symlink to .*elsewhere\/x\.js, outside the plugin folder/);
  t.match(byFolder.linked, /is a symlink to .*linked, outside/);
  t.match(byFolder['entry-out'], /manifest \/entry must match pattern/);
  t.match(byFolder['entry-link'], /symlink to .*secret\.js, outside the plugin folder/);
  t.ok(found.problems.every((p) => p.error.code === 'PLUGIN_INVALID'));

  const wideSource = scratch(t);
  makePlugin(wideSource, 'fine');
  chmodSync(wideSource, 0o777);
  t.match(discoverPlugins([{ dir: wideSource, origin: 'env' }]).problems, [
    { error: { message: /plugin source folder .* is world-writable/ } },
  ], 'a world-writable source folder (anyone could drop a plugin in) is refused');
});

t.test('manifests: every problem is named', async (t) => {
  const bad = (text: string) => t.throws(() => parseManifest(text, 'x.json'), { code: 'PLUGIN_INVALID' });
  bad('{not json');
  bad(manifest('Bad Name'));
  bad(manifest('ok', { runtime: 'ruby' }));
  bad(manifest('ok', { tools: [{ name: 'a', description: 'd', arguments: { type: 'nonsense' } }] }));
  bad(manifest('ok', { tools: [{ name: 'a', description: 'd', arguments: {} }, { name: 'a', description: 'd', arguments: {} }] }));
  bad(manifest('ok', { permissions: { shell: true } }));
  t.throws(() => parseManifest(manifest('ok', { runtime: 'ruby' }), 'x.json'), { message: /x\.json: manifest \/runtime must be equal to one of the allowed values \("node", "python"\)/ });
  t.throws(() => parseManifest(manifest('ok', { tools: [{ name: 'a', description: 'd', arguments: { type: 'nonsense' } }] }), 'x.json'), {
    message: /tools\.a\.arguments is not a usable JSON Schema/,
  });
  const ok = parseManifest(manifest('ok'), 'x.json');
  t.same(ok.manifest.permissions, { devices: false, topics: { publish: [], subscribe: [] }, network: false, database: false }, 'defaults');
  t.equal(ok.manifest.isolation, 'worker');

  // The fixtures and built-ins themselves are valid.
  const copy = scratch(t);
  cpSync(path.join(FIXTURES, 'node-basic'), path.join(copy, 'node-basic'), { recursive: true });
  t.same(discoverPlugins([{ dir: copy, origin: 'config' }]).problems, []);
});

t.test("a folder's manifest is checked by the validator its discovery pass hands in", async (t) => {
  const root = scratch(t);
  const first = makePlugin(root, 'first');
  const source = { dir: root, origin: 'config' as const };
  const refuseAll = Object.assign(() => false, { errors: [{ instancePath: '', message: 'refused by this pass' }] });
  const validateManifest = refuseAll as unknown as ReturnType<typeof manifestValidator>;
  t.throws(() => loadPluginFolder(first, source, validateManifest), { code: 'PLUGIN_INVALID', message: /refused by this pass/ });
  t.equal(loadPluginFolder(first, source).name, 'first', 'without one, the manifest schema decides');
});

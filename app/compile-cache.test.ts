/**
 * bin/compile-cache.js, as bin/clawbox.js uses it before importing the runtime: Node's compile cache in
 * `<state dir>/cache/node-compile` when the state dir exists, nothing created elsewhere, and never a failed
 * start. Each case runs in a Node process of its own (a process can enable the cache once).
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODULE = pathToFileURL(path.join(ROOT, 'bin/compile-cache.js')).href;
const { stateDirFromEnvironment } = (await import(MODULE)) as {
  stateDirFromEnvironment(env: NodeJS.ProcessEnv, args: string[], cwd: string): string;
};

/** Enables the cache in a fresh Node, loads a module, flushes; returns what enableCompileCache said. */
function runEnable(env: NodeJS.ProcessEnv, cwd: string, moduleFile: string, args = ['start', '--mode', 'local']): { status: number | null; dir: string | null; stderr: string } {
  const script = `
    import module from 'node:module';
    const { enableCompileCache } = await import(${JSON.stringify(MODULE)});
    const dir = enableCompileCache(process.env, ${JSON.stringify(args)});
    await import(${JSON.stringify(pathToFileURL(moduleFile).href)});
    module.flushCompileCache?.();
    process.stdout.write(JSON.stringify({ dir }));
  `;
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CLAWBOX_') && !k.startsWith('NODE_') && k !== 'STATE_DIRECTORY'));
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd, env: { ...clean, ...env }, encoding: 'utf8', timeout: 60_000 });
  const parsed = result.status === 0 ? (JSON.parse(result.stdout) as { dir: string | null }) : { dir: null };
  return { status: result.status, dir: parsed.dir, stderr: result.stderr };
}

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clawbox-compile-cache-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'some-module.mjs'), 'export const answer = [1, 2, 3].map((n) => n * 14).at(-1);\n');
  return dir;
}

t.test('an existing state dir gets the cache under cache/node-compile, filled once flushed', async (t) => {
  const dir = scratch(t);
  const state = path.join(dir, 'state');
  mkdirSync(state);
  const result = runEnable({ CLAWBOX_STATE_DIR: state }, dir, path.join(dir, 'some-module.mjs'));
  t.equal(result.status, 0, result.stderr);
  t.ok(result.dir?.startsWith(path.join(state, 'cache', 'node-compile')), `cache dir ${result.dir}`);
  const versions = readdirSync(path.join(state, 'cache', 'node-compile'));
  t.equal(versions.length, 1, 'one folder for this Node version');
  t.ok(readdirSync(path.join(state, 'cache', 'node-compile', versions[0]!)).length > 0, 'entries written by the flush');
});

t.test('no state dir yet: nothing enabled, nothing created', async (t) => {
  const dir = scratch(t);
  const result = runEnable({}, dir, path.join(dir, 'some-module.mjs'));
  t.equal(result.status, 0, result.stderr);
  t.equal(result.dir, null);
  t.notOk(existsSync(path.join(dir, '.clawbox')), 'no ./.clawbox made by a command run here');
});

t.test('only `clawbox start` uses it; root leaves a state dir another user owns alone', async (t) => {
  const dir = scratch(t);
  const state = path.join(dir, 'state');
  mkdirSync(state);
  for (const args of [['config', 'check'], ['--config', 'start', 'passwd'], ['update', 'status']]) {
    const result = runEnable({ CLAWBOX_STATE_DIR: state }, dir, path.join(dir, 'some-module.mjs'), args);
    t.equal(result.status, 0, result.stderr);
    t.equal(result.dir, null, `not for: clawbox ${args.join(' ')}`);
  }
  t.notOk(existsSync(path.join(state, 'cache')), 'nothing written');
  t.ok(runEnable({ CLAWBOX_STATE_DIR: state }, dir, path.join(dir, 'some-module.mjs'), ['--config', 'x.yaml', 'start']).dir, 'start after options');
  if (process.getuid?.() !== 0) return;
  const owned = path.join(dir, 'owned-by-someone');
  mkdirSync(owned);
  chownSync(owned, 4242, 4242);
  const asRoot = runEnable({ CLAWBOX_STATE_DIR: owned }, dir, path.join(dir, 'some-module.mjs'));
  t.equal(asRoot.dir, null, 'root does not write into it');
  t.notOk(existsSync(path.join(owned, 'cache')), 'no root-owned files left there');
});

t.test('an unwritable cache location costs the cache, not the start', async (t) => {
  const dir = scratch(t);
  const state = path.join(dir, 'state');
  mkdirSync(state);
  writeFileSync(path.join(state, 'cache'), 'a file where the cache folder would go\n');
  const result = runEnable({ CLAWBOX_STATE_DIR: state }, dir, path.join(dir, 'some-module.mjs'));
  t.equal(result.status, 0, `the process went on: ${result.stderr}`);
  t.equal(result.dir, null);
});

t.test('NODE_COMPILE_CACHE and NODE_DISABLE_COMPILE_CACHE are Node\'s to honour', async (t) => {
  const dir = scratch(t);
  const state = path.join(dir, 'state');
  mkdirSync(state);
  const own = path.join(dir, 'own-cache');
  const withOwn = runEnable({ CLAWBOX_STATE_DIR: state, NODE_COMPILE_CACHE: own }, dir, path.join(dir, 'some-module.mjs'));
  t.equal(withOwn.status, 0, withOwn.stderr);
  t.equal(withOwn.dir, null, 'left to Node');
  t.ok(existsSync(own), 'Node used $NODE_COMPILE_CACHE');
  t.notOk(existsSync(path.join(state, 'cache')), 'not the state dir');
  const disabled = runEnable({ CLAWBOX_STATE_DIR: state, NODE_DISABLE_COMPILE_CACHE: '1' }, dir, path.join(dir, 'some-module.mjs'));
  t.equal(disabled.status, 0, disabled.stderr);
  t.equal(disabled.dir, null, 'turned off');
  t.notOk(existsSync(path.join(state, 'cache')), 'nothing written');
});

t.test('the state dir as the runtime would pick it, from the environment and --mode', async (t) => {
  t.equal(stateDirFromEnvironment({ CLAWBOX_STATE_DIR: 'rel' }, [], '/work'), '/work/rel');
  t.equal(stateDirFromEnvironment({ STATE_DIRECTORY: '/var/lib/clawbox:/other' }, [], '/work'), '/var/lib/clawbox');
  t.equal(stateDirFromEnvironment({}, ['start', '--mode', 'appliance'], '/work'), '/var/lib/clawbox');
  t.equal(stateDirFromEnvironment({}, ['start', '--mode=appliance'], '/work'), '/var/lib/clawbox');
  t.equal(stateDirFromEnvironment({ CLAWBOX_MODE: 'appliance' }, ['start'], '/work'), '/var/lib/clawbox');
  t.equal(stateDirFromEnvironment({}, ['start'], '/work'), '/work/.clawbox');
});

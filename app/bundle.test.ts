/**
 * bin/bundle.js, as the OS image uses it (image/lib/app.sh): a copy of the built runtime (dist/) bundled
 * into dist/bundle/ starts through bin/clawbox.js from the bundle, not from dist/'s modules, and serves as
 * the unbundled runtime does: /healthz, the web app (found next to its module), the precompiled validators
 * (found next to theirs), a device command round trip over MQTT. A tsc build newer than the bundle makes
 * bin/clawbox.js take dist/ again. Real runtime, real broker, real MQTT client; the runtime runs without
 * tap's hooks (test/unhook-children.ts), so what it loads is what the installed command loads.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import t from 'tap';
import { installedCommandLine } from '../bench/runtime-process.js';
import { ROOT, cleanEnv } from '../test/cli-helpers.js';

const BUILT = existsSync(path.join(ROOT, 'dist', 'app', 'main.js'));
const TRIM_ADDON = path.join('native', 'malloc-trim', 'build', 'Release', 'malloc_trim.node');

/** Logs every module file the process loads (ESM and CommonJS), one `LOADED <url>` line each on stderr. */
const LOAD_TRACE = `data:text/javascript,${encodeURIComponent(`
import module from 'node:module';
import { writeSync } from 'node:fs';
module.registerHooks({ load(url, context, next) { if (url.startsWith('file:')) writeSync(2, 'LOADED ' + url + '\\n'); return next(url, context); } });
`)}`;

interface Started {
  child: ChildProcess;
  httpPort: number;
  mqttPort: number;
  loaded: Set<string>;
  /** Kills it and waits for the exit. */
  stop(): Promise<void>;
}

/** `clawbox start` of the app in `dir` as installed (the #! line's flags), resolved once it says it is serving. */
function startInstalled(dir: string, stateDir: string): Promise<Started> {
  const { env, flags } = installedCommandLine(path.join(dir, 'bin', 'clawbox.js'));
  const child = spawn(process.execPath, [...flags, '--import', LOAD_TRACE, path.join(dir, 'bin', 'clawbox.js'), 'start'], {
    cwd: dir,
    env: cleanEnv({ ...env, CLAWBOX_STATE_DIR: stateDir, CLAWBOX_BROKER_PORT: '0', CLAWBOX_HTTP_PORT: '0' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const loaded = new Set<string>();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    child.kill('SIGKILL');
    await exited;
  };
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
    const lines = stderr.split('\n');
    stderr = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('LOADED ')) loaded.add(line.slice('LOADED '.length));
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`no 'serving' line within 120 s:\n${output.slice(-2000)}${stderr.slice(-2000)}`));
    }, 120_000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      output += chunk;
      for (const line of output.split('\n')) {
        if (!line.includes(' serving: ')) continue;
        const { httpPort, mqttPort } = JSON.parse(line) as { httpPort: number; mqttPort: number };
        clearTimeout(timer);
        resolve({ child, httpPort, mqttPort, loaded, stop });
        return;
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the runtime exited (${code ?? signal}) before serving:\n${output.slice(-2000)}${stderr.slice(-2000)}`));
    });
  });
}

/** A copy of the built app (bin, dist without any bundle, package.json) with this checkout's node_modules. */
function copyApp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bundle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const item of ['bin', 'dist', 'package.json']) cpSync(path.join(ROOT, item), path.join(dir, item), { recursive: true });
  // The runtime's own addon as the image ships it: its binary only (image/lib/app.sh).
  if (existsSync(path.join(ROOT, TRIM_ADDON))) {
    mkdirSync(path.dirname(path.join(dir, TRIM_ADDON)), { recursive: true });
    cpSync(path.join(ROOT, TRIM_ADDON), path.join(dir, TRIM_ADDON));
  }
  rmSync(path.join(dir, 'dist', 'bundle'), { recursive: true, force: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/** The device's next state message after a `set` (the state it publishes on `clawbox/<id>`). */
async function commandRoundTrip(mqttPort: number, device: string, state: 'ON' | 'OFF'): Promise<unknown> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0, connectTimeout: 30_000 });
  try {
    const reported = new Promise<unknown>((resolve) => {
      client.on('message', (_topic, payload) => {
        const message = JSON.parse(payload.toString()) as { state?: string };
        if (message.state === state) resolve(message.state);
      });
    });
    await client.subscribeAsync(`clawbox/${device}`, { qos: 1 });
    await client.publishAsync(`clawbox/${device}/set`, JSON.stringify({ state }), { qos: 1 });
    return await reported;
  } finally {
    await client.endAsync();
  }
}

t.test('the bundled runtime starts from the bundle and serves as dist/ does', { skip: BUILT ? false : 'dist/ is not built' }, async (t) => {
  const dir = copyApp(t);
  // As in the image: no tsc build info beside the bundle.
  rmSync(path.join(dir, 'dist', '.tsbuildinfo'), { force: true });
  execFileSync(process.execPath, [path.join(dir, 'bin', 'bundle.js'), dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  t.ok(existsSync(path.join(dir, 'dist', 'bundle', 'main.js')), 'dist/bundle/main.js written');

  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bundle-state-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const runtime = await startInstalled(dir, stateDir);
  t.teardown(runtime.stop);

  const own = [...runtime.loaded].filter((url) => url.startsWith(`file://${dir}/dist/`)).map((url) => url.slice(`file://${dir}/`.length));
  t.ok(own.includes('dist/bundle/main.js'), 'main.js of the bundle loaded');
  const unbundled = own.filter((file) => !file.startsWith('dist/bundle/') && !file.startsWith('dist/runtime/operations/precompiled/'));
  t.same(unbundled, [], 'no module of dist/ loaded beside the bundle (but the precompiled validators)');
  t.ok(
    own.some((file) => file.startsWith('dist/runtime/operations/precompiled/')),
    'the precompiled validators found next to their module (import.meta.url is the module own URL)',
  );

  // Packages: those in bin/bundle.js's BUNDLED_PACKAGES come from the bundle, the rest from node_modules.
  const fromPackage = (name: string) => [...runtime.loaded].some((url) => url.includes(`/node_modules/${name}/`));
  for (const name of ['pino', 'lowdb']) t.notOk(fromPackage(name), `${name} (used by every start) is not loaded from node_modules`);
  t.ok(fromPackage('aedes'), 'aedes (patched through its own files) is loaded from node_modules');

  const health = await fetch(`http://127.0.0.1:${runtime.httpPort}/healthz`);
  t.equal(health.status, 200, '/healthz 200');
  const web = await fetch(`http://127.0.0.1:${runtime.httpPort}/`);
  t.equal(web.status, 200, 'the web app served');
  t.match(web.headers.get('content-type') ?? '', /text\/html/, 'as HTML');
  await web.arrayBuffer();
  t.equal(await commandRoundTrip(runtime.mqttPort, 'lamp', 'ON'), 'ON', 'a device command round trip over MQTT');

  // The malloc_trim addon is found from the bundle too (next to dist/, by the module's own URL): the first
  // collection after start trims, which loads it into the process.
  if (process.platform === 'linux' && existsSync(path.join(dir, TRIM_ADDON))) {
    const maps = `/proc/${runtime.child.pid}/maps`;
    let found = false;
    for (let waited = 0; waited < 30_000 && !found; waited += 100) {
      found = readFileSync(maps, 'utf8').includes(path.join(dir, TRIM_ADDON));
      if (!found) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    t.ok(found, 'the bundled runtime loaded native/malloc-trim');
  }
});

t.test('a tsc build newer than the bundle makes bin/clawbox.js run dist/ again', { skip: BUILT ? false : 'dist/ is not built' }, async (t) => {
  const dir = copyApp(t);
  execFileSync(process.execPath, [path.join(dir, 'bin', 'bundle.js'), dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const later = Date.now() / 1000 + 60;
  utimesSync(path.join(dir, 'dist', '.tsbuildinfo'), later, later);

  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bundle-state-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const runtime = await startInstalled(dir, stateDir);
  t.teardown(runtime.stop);
  const own = [...runtime.loaded].map((url) => url.slice(`file://${dir}/`.length));
  t.ok(own.includes('dist/app/main.js'), 'dist/app/main.js loaded');
  t.notOk(
    own.some((file) => file.startsWith('dist/bundle/')),
    'nothing of the stale bundle loaded',
  );
});

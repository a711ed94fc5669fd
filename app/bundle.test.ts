/**
 * bin/bundle.js, as the OS image uses it (image/lib/app.sh): a copy of the built runtime (dist/) bundled
 * into dist/bundle/ starts through bin/clawbox.js from the bundle, not from dist/'s modules, and serves as
 * the unbundled runtime does: /healthz, the web app (found next to its module), the precompiled validators
 * (found next to theirs), a device command round trip over MQTT. A tsc build newer than the bundle makes
 * bin/clawbox.js take dist/ again. Real runtime, real broker, real MQTT client; the runtime runs without
 * tap's hooks (test/unhook-children.ts), so what it loads is what the installed command loads.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ROOT } from '../test/cli-helpers.js';
import { commandRoundTrip, startInstalled } from './testing/installed-runtime.js';

const BUILT = existsSync(path.join(ROOT, 'dist', 'app', 'main.js'));
const TRIM_ADDON = path.join('native', 'malloc-trim', 'build', 'Release', 'malloc_trim.node');

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

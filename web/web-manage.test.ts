/**
 * The web app's management pages in Debian's Chromium against the whole runtime (local mode, real broker,
 * real node-llama-cpp on the CPU with generated tiny GGUF models, nothing downloaded from outside: a
 * loopback HTTP server serves the model that is pulled):
 * - Models: check a file (ok, and a missing file's coded error), a refused URI, a pull with progress that
 *   is cancelled and then pulled again to completion (resuming by range is pull.test.ts's), and making
 *   the pulled model the main one (recorded in the state directory, the config file left alone); a model
 *   whose file is missing cannot be made main and the old one keeps serving.
 * - Plugins: the restart buttons restart a plugin (its restart count goes up) and a platform chat channel
 *   (the channel-echo test plugin, which logs in again); bad names get coded errors.
 * - Sensor history: a device page opened late shows the readings the box recorded before it opened.
 * At 390×844 and 1280×900 nothing scrolls sideways and axe-core finds nothing serious or critical.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import t from 'tap';
import { generateModel } from '../models/gguf/generate.js';
import { tempDir } from '../models/testing/fixtures.js';
import { type ModelServer, startModelServer } from '../models/testing/model-server.js';
import { principalWithFilters } from '../runtime/operations/principal.js';
import { type StartedApp, axeProblems, bridgeClient, buildForTest, horizontalOverflow, launchChromium, openAppPage, screenshot, startWebApp } from './testing/web-app.js';

// Run in the browser by page.evaluate (the tests compile without the DOM library).
declare const location: { hash: string };

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// A real browser, a model load or two and a download on a loaded CI box.
t.setTimeout(300_000);

let browser: Browser;
let started: StartedApp;
let server: ModelServer;
let cleanupBuild: () => void;
let pulledSize = 0;
let pulledSha256 = '';
const problems: string[] = [];

t.before(async () => {
  const dir = await tempDir(t, 'clawbox-web-models-');
  const first = await generateModel({ path: path.join(dir, 'first.gguf'), shape: 'tiny', quant: 'Q8_0', seed: 11 });
  const second = await generateModel({ path: path.join(dir, 'served.gguf'), shape: 'tiny', quant: 'Q8_0', seed: 12 });
  pulledSize = (await readFile(second.path)).length;
  pulledSha256 = second.sha256;
  server = await startModelServer({ file: second.path });
  const build = await buildForTest();
  cleanupBuild = build.cleanup;
  const small = { context_size: 256, sequences: 1, threads: 1, batch_threads: 1, gpu: 'cpu' };
  [browser, started] = await Promise.all([
    launchChromium(),
    startWebApp({
      webRoot: build.dir,
      config: {
        models: [
          { name: 'first', path: first.path, sha256: first.sha256, role: 'main', ...small },
          { name: 'broken', path: path.join(dir, 'not-there.gguf'), role: 'standby', ...small },
        ],
        // A platform chat channel on the channel-echo test plugin: its card gets a restart button.
        plugins: { dirs: [path.join(ROOT, 'plugins', 'testing')] },
        channels: { platforms: { echo: { plugin: 'channel-echo', credentials: { secret: 's' } } } },
        devices: [
          {
            id: 'probe',
            name: 'Probe',
            driver: 'simulated',
            capabilities: [{ type: 'sensor', readings: [{ property: 'temperature', unit: '°C' }] }],
            simulated: { report_interval_ms: 150 },
          },
        ],
      },
    }),
  ]);
  await started.app.models.whenSettled();
});

t.teardown(async () => {
  await browser?.close();
  await started?.stop();
  await server?.close();
  cleanupBuild?.();
});

function openPage(viewport: { width: number; height: number }, hash: string, colorScheme: 'light' | 'dark' = 'light'): Promise<{ context: BrowserContext; page: Page }> {
  return openAppPage({ browser, origin: started.origin, problems }, viewport, hash, colorScheme);
}

async function api(method: 'GET' | 'POST', route: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${started.origin}${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

const errorCode = (json: Record<string, unknown>) => (json.error as { code?: string } | undefined)?.code;
const mainModel = async () => (((await api('GET', '/api/models')).json.data as { loaded: { name: string; state: string } }).loaded);

t.test('models page: check a file, refuse bad input, pull with progress, cancel, resume, make it main', async (t) => {
  const { context, page } = await openPage({ width: 390, height: 844 }, '#/models');
  t.teardown(() => context.close());
  const card = (name: string) => page.locator(`[data-model="${name}"]`);

  await card('first').locator('[data-action="verify"]').click();
  t.match(await card('first').locator('[data-verify="ok"]').textContent(), /llama .*Q8_0.*sha256 matches the config/, 'a good file checks out against its sha256');
  await card('broken').locator('[data-action="verify"]').click();
  t.match(await card('broken').locator('[data-verify="failed"]').textContent(), /^MODEL_FILE_MISSING: /, 'a missing file shows its coded error');

  await card('broken').locator('[data-action="activate"]').click();
  t.match(await card('broken').locator('[data-error="activate"]').textContent(), /^MODEL_FILE_MISSING: /, 'a missing file cannot become the main model');
  t.match(await mainModel(), { name: 'first', state: 'ready' }, 'and the main model is unchanged');

  await page.locator('input[name="uri"]').fill('file:///etc/passwd');
  await page.locator('form[aria-label="Pull a model"] button[type="submit"]').click();
  t.match(await page.locator('[data-pull-message]').textContent(), /^USAGE: unsupported model URI scheme/, 'a file: URI is refused with its code');

  // The server stops sending half-way: the page shows the progress, then the download is cancelled.
  server.set({ stallAtOffset: Math.floor(pulledSize / 2) });
  await page.locator('input[name="uri"]').fill(`${server.url}/files/second.gguf`);
  await page.locator('form[aria-label="Pull a model"] button[type="submit"]').click();
  const job = page.locator('[data-pull-job="second"]');
  await job.locator('progress').waitFor();
  await page.waitForFunction(() => {
    const bar = (globalThis as unknown as { document: { querySelector(s: string): { value: number } | null } }).document.querySelector('[data-pull-job="second"] progress');
    return bar !== null && bar.value > 0;
  });
  t.pass('the download shows its progress');
  t.equal(errorCode((await api('POST', '/api/models/pull', { uri: `${server.url}/files/other.gguf` })).json), 'BUSY', 'one pull at a time');
  await job.locator('[data-action="cancel-pull"]').click();
  await page.locator('[data-pull-job="second"][data-phase="cancelled"]').waitFor();
  t.match(await job.textContent(), /MODEL_DOWNLOAD_FAILED: the download was cancelled; the partial file is kept/, 'cancelled, and it says the partial file is kept');

  server.set({ stallAtOffset: undefined });
  await page.locator('form[aria-label="Pull a model"] button[type="submit"]').click();
  await page.locator('[data-pull-job="second"][data-phase="done"]').waitFor({ timeout: 60_000 });
  await card('second').waitFor();
  t.equal(await card('second').locator('.badge').textContent(), 'standby', 'a pulled model waits on standby while another is main');
  await screenshot(page, 'phone-models');

  await card('second').locator('[data-action="activate"]').click();
  t.match(await card('second').locator('[data-activate="ok"]').textContent(), /second is now the main model \(was first\)/);
  t.match(await mainModel(), { name: 'second', state: 'ready' }, 'the pulled model serves as main');
  const models = ((await api('GET', '/api/models')).json.data as { configured: Array<{ name: string; role: string; sha256: string | null }> }).configured;
  t.same(
    models.map((m) => [m.name, m.role]),
    [
      ['first', 'standby'],
      ['broken', 'standby'],
      ['second', 'main'],
    ],
    'the switch is recorded (in the state directory, so the next start loads the same model)',
  );
  t.equal(models[2]!.sha256, pulledSha256, 'with the sha256 of the file served, pulled whole after the cancel');
  t.notMatch(await readFile(started.app.ctx.configSource!, 'utf8'), /second/, 'the config file is left alone');
  await card('second').locator('.badge.ok').waitFor();
});

t.test('model operations are admin-only and check their input', async (t) => {
  const viewer = principalWithFilters('http', 'viewer', ['bridge/request/models', 'bridge/request/devices']);
  const call = (name: string, input: unknown) =>
    started.app.frontDoor.invoke(name, input, { principal: viewer, source: 'http' }).then(
      () => 'ok',
      (e: { code?: string }) => e.code,
    );
  t.equal(await call('models.list', {}), 'ok', 'a viewer may list');
  for (const [name, input] of [
    ['models.verify', { name: 'first' }],
    ['models.activate', { name: 'first' }],
    ['models.pull', { uri: `${server.url}/files/x.gguf` }],
    ['models.pull.cancel', {}],
    ['plugins.restart', { name: 'compute' }],
  ] as const) {
    t.equal(await call(name, input), 'FORBIDDEN', `${name} needs its own permission`);
  }
  // The same operations over MQTT, as bridge requests.
  const { request: bridge, close } = await bridgeClient(started.app.broker.port);
  t.teardown(close);
  t.match(await bridge('models/verify', { name: 'second', transaction: 7 }), { status: 'ok', data: { name: 'second', ok: true }, transaction: 7 }, 'models/verify over MQTT');
  t.match(await bridge('plugins/restart', { name: 'no-such' }), { status: 'error', error: { code: 'NOT_FOUND' } }, 'plugins/restart over MQTT');

  t.equal(errorCode((await api('POST', '/api/models/nope/verify')).json), 'NOT_FOUND');
  t.equal(errorCode((await api('POST', '/api/models/..%2Fx/activate')).json), 'PAYLOAD_INVALID');
  t.equal(errorCode((await api('POST', '/api/models/pull', { uri: 'https://h/x.gguf', extra: 1 })).json), 'PAYLOAD_INVALID');
  t.equal(errorCode((await api('POST', '/api/models/pull/cancel')).json), 'NOT_FOUND', 'nothing to cancel');
});

t.test('plugins page: the restart button restarts a plugin; bad names get coded errors', async (t) => {
  const { context, page } = await openPage({ width: 390, height: 844 }, '#/plugins');
  t.teardown(() => context.close());
  const card = page.locator('[data-plugin]').first();
  await card.waitFor();
  const name = (await card.getAttribute('data-plugin')) ?? '';
  t.match(await card.textContent(), /0 restarts/);
  await card.locator('[data-action="restart"]').click();
  t.match(await card.locator('[data-restart-message]').textContent(), /^Restarted \(\w+, 1 restarts\)\.$/, `${name} restarted`);
  await page.locator(`[data-plugin="${name}"]`, { hasText: '1 restarts' }).waitFor();
  t.pass('the live status shows the new restart count');
  const call = await api('POST', `/api/plugins/${name}/restart`);
  t.match(call.json, { status: 'ok', data: { kind: 'plugin', name, restarts: 2 } }, 'the API answers with the figures');
  const channel = page.locator('[data-channel="echo"]');
  await channel.locator('.badge', { hasText: /^connected$/ }).waitFor();
  await channel.locator('[data-action="restart"]').click();
  t.match(await channel.locator('[data-restart-message]').textContent(), /^Restarted \(\w+, 1 restarts\)\.$/, 'the echo channel restarted');
  // The same live snapshot shows the restart counted and the channel logged in again.
  await page.locator('[data-channel="echo"]', { hasText: '1 restarts' }).locator('.badge', { hasText: /^connected$/ }).waitFor();
  t.pass('and it is connected again');
  t.equal(errorCode((await api('POST', '/api/plugins/Not_A_Name/restart')).json), 'PAYLOAD_INVALID');
  t.equal(errorCode((await api('POST', '/api/plugins/no-such/restart')).json), 'NOT_FOUND');
  t.equal(errorCode((await api('POST', '/api/channels/no-such/restart')).json), 'NOT_FOUND', 'no platform channel of that name');
});

t.test('sensor history: a page opened late shows what the box recorded before', async (t) => {
  let recorded = 0;
  while (recorded < 12) {
    const history = (await api('GET', '/api/devices/probe/history')).json.data as { series: { temperature: unknown[] } };
    recorded = history.series.temperature.length;
    if (recorded < 12) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const { context, page } = await openPage({ width: 390, height: 844 }, '#/devices/probe');
  t.teardown(() => context.close());
  const caption = page.locator('[data-device-page="probe"] [data-history="temperature"]');
  const text = (await caption.textContent()) ?? '';
  const shown = Number(/^(\d+) readings since/.exec(text)?.[1] ?? 0);
  t.ok(shown >= recorded, `the chart opens with the recorded readings (${shown} shown, ${recorded} recorded before the page opened)`);
  t.match((await api('GET', '/api/devices/probe/history?property=humidity')).json, { error: { code: 'PROPERTY_UNKNOWN' } });
  t.match((await api('GET', '/api/devices/probe/history?limit=lots')).json, { error: { code: 'PAYLOAD_INVALID' } });
  t.match((await api('GET', '/api/devices/nobody/history')).json, { error: { code: 'DEVICE_NOT_FOUND' } });
  const limited = (await api('GET', '/api/devices/probe/history?property=temperature&limit=3')).json.data as { series: { temperature: Array<{ t: number; v: number }> } };
  t.equal(limited.series.temperature.length, 3, 'limit keeps the newest points');
});

t.test('no horizontal overflow and no serious axe findings at 390x844 and 1280x900', async (t) => {
  for (const [width, height, label] of [
    [390, 844, 'phone'],
    [1280, 900, 'desktop'],
  ] as const) {
    const { context, page } = await openPage({ width, height }, '#/models', label === 'phone' ? 'dark' : 'light');
    for (const hash of ['#/models', '#/plugins', '#/devices/probe']) {
      await page.evaluate((h) => {
        location.hash = h;
      }, hash);
      await page.locator(hash === '#/models' ? '[data-model="first"]' : hash === '#/plugins' ? '[data-plugin]' : '[data-history="temperature"]').first().waitFor();
      t.equal(await horizontalOverflow(page), 0, `${label} ${hash}: nothing scrolls sideways`);
      t.same(await axeProblems(page), [], `${label} ${hash}: axe-core`);
      if (label === 'desktop' && hash !== '#/devices/probe') await screenshot(page, `desktop-${hash.replace(/[#/]+/g, '')}`);
    }
    await context.close();
  }
  t.same(problems, [], 'no page errors or console errors');
});

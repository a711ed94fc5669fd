/**
 * The web app in Debian's Chromium against the whole runtime (local mode, the five demo devices, a real
 * broker on loopback, mqtt.js watching the device topics): no sideways scrolling on a phone or a desktop,
 * every control type changes its device (seen on MQTT), a change made over MQTT shows without a reload,
 * a device added (after a validation error), renamed and removed through the generated form, the log
 * tail showing a new line, and axe-core finding nothing serious or critical (light and dark).
 */
import { type MqttClient, connectAsync } from 'mqtt';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import t from 'tap';
import { type StartedApp, axeProblems, buildForTest, horizontalOverflow, launchChromium, screenshot, startWebApp } from './testing/web-app.js';

// Run in the browser by page.evaluate (the tests compile without the DOM library).
declare const location: { hash: string };
declare const window: { notReloaded?: boolean };
declare const document: { querySelector(selector: string): unknown; querySelectorAll(selector: string): ArrayLike<{ textContent: string | null }> };

// A real browser against the whole runtime; a loaded CI box stretches it well past tap's default.
t.setTimeout(300_000);

let browser: Browser;
let started: StartedApp;
let mqtt: MqttClient;
let cleanupBuild: () => void;
const problems: string[] = [];
/** Every state each device published, parsed, newest last. */
const published = new Map<string, Array<Record<string, unknown>>>();
const waiters = new Set<() => void>();

t.before(async () => {
  const build = await buildForTest();
  cleanupBuild = build.cleanup;
  [browser, started] = await Promise.all([launchChromium(), startWebApp({ webRoot: build.dir })]);
  mqtt = await connectAsync(`mqtt://127.0.0.1:${started.app.broker.port}`, { reconnectPeriod: 0 });
  mqtt.on('message', (topic, payload) => {
    const id = topic.split('/')[1];
    if (!id || topic.split('/').length !== 2) return;
    try {
      const list = published.get(id) ?? [];
      list.push(JSON.parse(payload.toString()) as Record<string, unknown>);
      published.set(id, list);
    } catch {
      return;
    }
    for (const wake of waiters) wake();
  });
  await mqtt.subscribeAsync('clawbox/+');
});

t.teardown(async () => {
  await mqtt?.endAsync(true);
  await browser?.close();
  await started?.stop();
  cleanupBuild?.();
});

/** Resolves once the device has published a state that satisfies `test` (a positive marker, never a sleep). */
function stateOnMqtt(id: string, test: (state: Record<string, unknown>) => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if ((published.get(id) ?? []).some(test)) {
        waiters.delete(check);
        clearTimeout(timer);
        resolve();
      }
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`${id} never published ${what}; saw ${JSON.stringify(published.get(id) ?? [])}`));
    }, 20_000);
    waiters.add(check);
    check();
  });
}

async function openPage(viewport: { width: number; height: number }, options: { colorScheme?: 'light' | 'dark' } = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport, colorScheme: options.colorScheme ?? 'light' });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (msg) => {
    // A 4xx a test provokes (the validation error) is logged by Chromium as a failed resource; nothing else may be.
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  await page.goto(`${started.origin}/#/`);
  await page.locator('[data-device="lamp"]').waitFor();
  return { context, page };
}

const PAGES = ['#/', '#/devices/thermostat', '#/devices/new', '#/logs', '#/models', '#/plugins', '#/audit', '#/system'];
const SCREENSHOTS = ['#/', '#/devices/thermostat', '#/system'];

/** Client-side navigation (the app's hash routes): no reload, so the live feed stays open. */
async function go(page: Page, hash: string): Promise<void> {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
  const heading = { '#/': '#devices-title', '#/logs': '#logs-title', '#/models': '#models-title', '#/plugins': '#plugins-title', '#/audit': '#audit-title', '#/system': '#system-title', '#/devices/new': '#field-id' }[hash];
  await page.locator(heading ?? 'main h1').first().waitFor();
}

t.test('no horizontal overflow at 390x844 and 1280x900 on any page', async (t) => {
  for (const [width, height, name] of [
    [390, 844, 'phone'],
    [1280, 900, 'desktop'],
  ] as const) {
    const { context, page } = await openPage({ width, height });
    for (const hash of PAGES) {
      await go(page, hash);
      t.equal(await horizontalOverflow(page), 0, `${name} ${hash}: nothing scrolls sideways`);
      if (SCREENSHOTS.includes(hash)) await screenshot(page, `${name}-${hash.replace(/[#/]+/g, '-').replace(/^-|-$/g, '') || 'devices'}`);
    }
    await context.close();
  }
});

t.test('every control type changes its device, and an MQTT change shows without a reload', async (t) => {
  const { context, page } = await openPage({ width: 390, height: 844 });
  t.teardown(() => context.close());
  await page.evaluate(() => {
    window.notReloaded = true;
  });
  const lamp = page.locator('[data-device="lamp"] [data-control="switch"]');
  await lamp.click();
  await stateOnMqtt('lamp', (s) => s.state === 'ON', 'state ON');
  await page.locator('[data-device="lamp"] [data-control="switch"][aria-checked="true"]').waitFor();
  t.pass('switch: ON on MQTT and on the page');

  await page.locator('[data-device="light"] [data-control="brightness"]').fill('40');
  await stateOnMqtt('light', (s) => s.brightness === 40, 'brightness 40');
  t.pass('dimmer slider: brightness 40 on MQTT');

  await page.locator('[data-device="thermostat"] [data-control="setpoint-up"]').click();
  await stateOnMqtt('thermostat', (s) => s.target_temperature === 20.5, 'target 20.5');
  await page.locator('[data-device="thermostat"] [data-control="mode"]').selectOption('heat');
  await stateOnMqtt('thermostat', (s) => s.mode === 'heat', 'mode heat');
  t.pass('thermostat: setpoint + and mode on MQTT');

  await page.locator('[data-device="cover"] [data-control="cover-open"]').click();
  await stateOnMqtt('cover', (s) => s.state === 'OPEN' || s.state === 'OPENING', 'opening');
  await page.locator('[data-device="cover"] [data-control="cover-stop"]').click();
  await stateOnMqtt('cover', (s) => s.state === 'STOPPED', 'stopped');
  await page.locator('[data-device="cover"] [data-control="position"]').fill('50');
  await stateOnMqtt('cover', (s) => s.position === 50, 'position 50');
  await page.locator('[data-device="cover"] [data-control="cover-close"]').click();
  await stateOnMqtt('cover', (s) => s.state === 'CLOSED' || s.state === 'CLOSING', 'closing');
  t.pass('cover: open, stop, position, close on MQTT');

  const reading = page.locator('[data-device="temperature"] [data-value="temperature"]');
  t.match(await reading.textContent(), /°C/, 'sensor value with its unit');

  // Someone else switches the lamp off over MQTT: the page follows on its own.
  await mqtt.publishAsync('clawbox/lamp/set', JSON.stringify({ state: 'OFF' }));
  await page.locator('[data-device="lamp"] [data-control="switch"][aria-checked="false"]').waitFor();
  await mqtt.publishAsync('clawbox/light/set', JSON.stringify({ brightness: 70 }));
  await page.locator('[data-device="light"] output', { hasText: '70 %' }).waitFor();
  t.ok(await page.evaluate(() => window.notReloaded), 'no reload happened');

  await go(page, '#/devices/temperature');
  await page.locator('[data-device-page="temperature"] .reading').first().waitFor();
  await screenshot(page, 'phone-device-sensor');
});

t.test('add a device through the generated form (after a validation error), edit, rename and remove it', async (t) => {
  const { context, page } = await openPage({ width: 390, height: 844 });
  t.teardown(() => context.close());
  page.on('dialog', (dialog) => void dialog.accept());
  await go(page, '#/devices/new');
  await page.locator('#field-id').fill('Not An Id!');
  await page.locator('#field-name').fill('Porch');
  await page.locator('button[type="submit"]').click();
  const error = page.locator('[data-form-error]');
  await error.waitFor();
  t.match(await error.textContent(), /id/i, 'the server says what is wrong with the id');
  await screenshot(page, 'phone-device-form-error');
  t.notOk(published.has('Not An Id!'), 'nothing was added');

  await page.locator('#field-id').fill('porch');
  await page.locator('button[type="submit"]').click();
  await page.locator('[data-device-page="porch"] h1', { hasText: 'Porch' }).waitFor();
  await stateOnMqtt('porch', () => true, 'its first state');
  t.pass('added: its page shows and it publishes on MQTT');

  await page.getByRole('link', { name: 'Edit' }).click();
  await page.locator('#field-area').fill('garden');
  await page.getByRole('button', { name: 'Save device' }).click();
  await page.locator('[data-device-page="porch"] dd', { hasText: 'garden' }).waitFor();
  t.pass('edited through the same form: the area shows on its page');

  await page.getByRole('button', { name: 'Rename' }).click();
  await page.locator('input[name="name"]').fill('Porch light');
  await page.getByRole('button', { name: 'Save name' }).click();
  await page.locator('[data-device-page="porch"] h1', { hasText: 'Porch light' }).waitFor();
  t.pass('renamed');
  t.equal(await page.getByRole('link', { name: 'Edit' }).count(), 1, 'a device added here can be edited here');
  await go(page, '#/devices/lamp');
  await page.locator('[data-device-page="lamp"]').waitFor();
  t.equal(await page.getByRole('link', { name: 'Edit' }).count(), 0, 'a demo/config device is edited in its config, not here');
  await go(page, '#/devices/porch');
  await page.locator('[data-device-page="porch"]').waitFor();

  await page.getByRole('button', { name: 'Remove' }).click();
  await page.locator('[data-device="lamp"]').waitFor();
  await page.waitForFunction(() => !document.querySelector('[data-device="porch"]'));
  const list = (await (await fetch(`${started.origin}/api/devices`)).json()) as { data: Array<{ id: string }> };
  t.notOk(list.data.some((d) => d.id === 'porch'), 'removed from the runtime');
});

t.test('the log tail shows a new line without a reload', async (t) => {
  const { context, page } = await openPage({ width: 1280, height: 900 });
  t.teardown(() => context.close());
  await go(page, '#/logs');
  const marker = `web-test-marker-${Date.now()}`;
  started.app.ctx.logger('webtest').warn(marker);
  await page.locator('.log-line', { hasText: marker }).waitFor();
  await page.locator('select[name="component"]').selectOption('webtest');
  // The page empties the list and asks again with the filter; the old list also holds the marker, so wait
  // for a list of the marker's lines only (an unfiltered one always has the start's lines too).
  await page.waitForFunction((m) => {
    const lines = Array.from(document.querySelectorAll('.log-line'));
    return lines.length > 0 && lines.every((line) => line.textContent?.includes(m));
  }, marker);
  t.equal(await page.locator('.log-line').count(), 1, 'the component filter leaves only that line');
});

t.test('a page asked for while the app first draws itself is the page shown', async (t) => {
  // The hash changes in the moment between the app's first render and its listener: a MutationObserver sees the
  // devices page appear and moves to #/plugins at once, before the app's effects run (after the next paint).
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  t.teardown(() => context.close());
  const page = await context.newPage();
  // A string: the browser's DOM types are not this file's (see the declarations at the top).
  await page.addInitScript(`(() => {
    const observer = new MutationObserver(() => {
      if (!document.querySelector('#devices-title')) return;
      observer.disconnect();
      location.hash = '#/plugins';
      document.documentElement.dataset.moved = 'yes';
    });
    observer.observe(document, { childList: true, subtree: true });
  })();`);
  await page.goto(`${started.origin}/#/`);
  await page.locator('html[data-moved="yes"]').waitFor({ state: 'attached', timeout: 20_000 });
  const shown = await page
    .locator('#plugins-title')
    .waitFor({ timeout: 5_000 })
    .then(() => true, () => false);
  t.equal(new URL(page.url()).hash, '#/plugins', 'the address says #/plugins');
  t.ok(shown, 'and the plugins page is shown, not the devices page');
});

t.test('what other parts report: a WhatsApp pairing QR, a model download, an idle scheduler said plainly', async (t) => {
  // WhatsApp's servers cannot exist here: the page gets a status document shaped like the gateway's and the
  // model service's (one served event stream) and must render it.
  const { context, page } = await openPage({ width: 390, height: 844 });
  t.teardown(() => context.close());
  const real = (await (await fetch(`${started.origin}/api/status`)).json()) as { sections: Record<string, unknown> };
  const doc = {
    ...real,
    sections: {
      ...real.sections,
      channels: {
        channels: ['http', 'whatsapp'],
        platforms: [{ name: 'whatsapp', plugin: 'whatsapp', state: 'pairing', detail: 'scan the QR code', qr: { text: '2@test-pairing-code', svg: null }, process: { restarts: 1 } }],
        sessions: 0,
        pending_messages: 0,
        pairing_requests: 0,
        paired_senders: 0,
      },
      model: { name: null, state: 'no-model', downloads: [{ uri: 'hf:owner/repo/tiny.gguf', phase: 'downloading', file: 'tiny.gguf', downloaded_bytes: 1048576, total_bytes: 4194304, speed_bps: 524288, eta_s: 6 }] },
      scheduler: { queued: 0, running: 0, concurrency: 1, default_deadline_ms: 200, lanes: {}, stats: { shed: { busy: 4 }, degraded: {}, completed: 0, deadline_misses: 0, recent: { window: 0, shed_rate: 0.4, miss_rate: null, latency_ms: {} } } },
      // Shaped like the brain link's and the cluster's sections (brain/, cluster/): no brain or Redis runs here.
      brain: { role: 'edge', link: { kind: 'grpc', target: 'brain.lan:7443', state: 'up', protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', mutual_tls: true, fips: false, certificate: { expires_at: '2027-12-05T00:00:00.000Z' } } },
      cluster: {
        replica_id: 'clawbox-0',
        redis: { url: 'redis://redis:6379/0', connected: true },
        replicas: [
          { id: 'clawbox-0', self: true, load: { agent_running: 1, agent_queued: 0, mqtt_clients: 3, devices_owned: 2 } },
          { id: 'clawbox-1', load: { agent_running: 0, agent_queued: 0, mqtt_clients: 5, devices_owned: 1 } },
        ],
        devices: { lamp: 'clawbox-0', blind: 'clawbox-1' },
      },
    },
  };
  await page.route('**/api/events', (route) =>
    route.fulfill({ status: 200, contentType: 'text/event-stream', body: `retry: 60000\n\nevent: status\ndata: ${JSON.stringify(doc)}\n\n` }),
  );
  await page.reload();
  await go(page, '#/plugins');
  const qr = page.locator('[data-channel="whatsapp"] img.qr');
  await qr.waitFor();
  t.match(await qr.getAttribute('src'), /^data:image\/svg\+xml/, 'the QR code is drawn on the page (its chunk loaded under the CSP)');
  t.match(await page.locator('[data-channel="whatsapp"]').textContent(), /pairing[\s\S]*1 restarts/);
  await screenshot(page, 'phone-plugins-whatsapp-qr');
  await go(page, '#/models');
  await page.locator('[data-download="hf:owner/repo/tiny.gguf"] progress').waitFor();
  t.match(await page.locator('[data-download="hf:owner/repo/tiny.gguf"]').textContent(), /1\.0 MiB of 4\.0 MiB · 512 KiB\/s · 6s left/);
  await go(page, '#/system');
  const shed = page.locator('#scheduler-shed');
  t.equal(await shed.textContent(), 'none (idle)', 'an idle box shows no shed rate');
  t.notOk(/\bbad\b/.test((await shed.getAttribute('class')) ?? ''), 'and nothing red');
  t.match(await page.locator('[data-section="brain"]').textContent(), /brain\.lan:7443[\s\S]*up[\s\S]*TLSv1\.3 · TLS_AES_256_GCM_SHA384 · mutual TLS[\s\S]*2027-12-05/, 'the brain link, its cipher and certificate expiry');
  t.match(await page.locator('#cluster-replicas').textContent(), /clawbox-0 \(this box\)[\s\S]*clawbox-1/, 'the replicas with their load');
  t.match(await page.locator('[data-section="cluster"]').textContent(), /blind\s*clawbox-1/, 'who drives which device');
  t.match(await page.locator('[data-section="data"]').textContent(), /Data region/, 'people\'s data: region and retention');
  await screenshot(page, 'phone-system-brain-cluster');
});

t.test('axe-core: no serious or critical violations, light and dark', async (t) => {
  for (const colorScheme of ['light', 'dark'] as const) {
    const { context, page } = await openPage({ width: 390, height: 844 }, { colorScheme });
    // The device list (every control) and the generated form; the system page in light only.
    for (const hash of colorScheme === 'light' ? ['#/', '#/devices/new', '#/system'] : ['#/', '#/devices/new']) {
      await go(page, hash);
      t.same(await axeProblems(page), [], `${colorScheme} ${hash}`);
    }
    await context.close();
  }
});

t.test('no script errors or CSP violations on the way', async (t) => {
  t.same(problems, []);
});

/**
 * The status page in a real headless Chromium against the real broker and HTTP server: values change
 * live without a reload when real MQTT clients connect (TCP, and WebSocket through the HTTP server's
 * /mqtt upgrade), when a warning is logged and when a devices section appears; the CSP lets the page's
 * own script and style run and nothing else. Appliance mode: ?token= gets a browser in, and the live
 * feed works with the session cookie.
 */
import { Writable } from 'node:stream';
import { type MqttClient, connectAsync } from 'mqtt';
import { type Browser, type Page, chromium } from 'playwright-core';
import t from 'tap';
import { createApp } from '../../app/app.js';
import { Broker } from '../broker/broker.js';
import { makeTestContext } from '../../app/testing/test-context.js';
import { createLogging } from '../logging.js';
import { HttpServer } from './http-server.js';

// The callbacks given to page.evaluate/waitForFunction run in the browser; this project compiles without
// the DOM lib, so the little they touch is declared here (module scope only).
declare const document: {
  getElementById(id: string): { textContent: string | null } | null;
  querySelector(selector: string): unknown;
  addEventListener(type: 'securitypolicyviolation', listener: (e: { violatedDirective: string; blockedURI: string }) => void): void;
};
declare const window: { notReloaded?: boolean };

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

let browser: Browser;
t.before(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});
t.teardown(() => browser?.close());

/** Records CSP violations and script errors from the first moment of the page. */
async function watchedPage(
  t: { teardown(fn: () => unknown): void },
  options: { httpCredentials?: { username: string; password: string } } = {},
): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, ...options });
  t.teardown(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/401|Failed to load resource/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  return { page, problems };
}

const clientCount = (page: Page) => page.locator('#broker-clients').textContent().then(Number);

t.test('the page follows the broker, warnings and devices live, without reloading', async (t) => {
  const test = makeTestContext({ logLevel: 'warn' });
  const broker = new Broker();
  const http = new HttpServer({ upgrades: { [test.ctx.config.broker.websocket.path]: broker }, systemSampleMs: 1000, liveIntervalMs: 250 });
  await broker.start(test.ctx);
  await http.start(test.ctx);
  test.setLifecycle('serving');
  const clients: MqttClient[] = [];
  t.teardown(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await http.stop();
    await broker.stop();
    test.cleanup();
  });

  const { page, problems } = await watchedPage(t);
  const base = `http://127.0.0.1:${http.port}/`;
  await page.goto(base);
  await page.locator('#state.serving').waitFor();
  t.equal(await page.locator('#version').textContent(), test.ctx.version);
  t.equal(await page.locator('#mode').textContent(), 'local');
  t.equal(await page.locator('#devices').textContent(), 'no devices yet');
  await page.evaluate(() => {
    window.notReloaded = true;
  });
  const before = await clientCount(page);
  t.ok(Number.isInteger(before), `client count shown (${before})`);

  clients.push(await connectAsync(`mqtt://127.0.0.1:${broker.port}`, { reconnectPeriod: 0 }));
  await page.waitForFunction((n) => Number(document.getElementById('broker-clients')?.textContent) === n, before + 1);
  t.pass('an MQTT client over TCP shows up live');

  clients.push(await connectAsync(`ws://127.0.0.1:${http.port}/mqtt`, { reconnectPeriod: 0 }));
  await page.waitForFunction((n) => Number(document.getElementById('broker-clients')?.textContent) === n, before + 2);
  t.pass('an MQTT client over WebSocket (upgraded by the HTTP server) shows up live');

  // Some traffic for the rates, then one client leaves.
  for (let i = 0; i < 20; i++) await clients[0]!.publishAsync('clawbox/test/load', `m${i}`, { qos: 1 });
  await clients.pop()!.endAsync();
  await page.waitForFunction((n) => Number(document.getElementById('broker-clients')?.textContent) === n, before + 1);
  t.pass('and leaves live');

  test.ctx.logger('devices').warn({ code: 'DEVICE_TIMEOUT' }, 'kitchen lamp did not answer <b>in time</b>');
  await page.locator('#warnings', { hasText: 'kitchen lamp did not answer <b>in time</b>' }).waitFor();
  t.equal(await page.locator('#warnings b').count(), 0, 'log text is shown as text, never as markup');
  t.match(await page.locator('#warnings').textContent(), /devices.*DEVICE_TIMEOUT/);

  const devices = [
    { id: 'kitchen-lamp', driver: 'serial', online: true, state: { power: 'ON', brightness: 180 } },
    { id: 'boiler', driver: 'modbus', online: false, state: { temperature: 61.5 } },
  ];
  test.ctx.status.register('devices', () => ({ count: devices.length, devices }));
  test.ctx.status.register('scheduler', () => ({ queue: 0, admitted: 12, rejected_busy: 1, p99_ms: 8.4 }));
  await page.locator('#devices tbody tr').nth(1).waitFor();
  t.match(await page.locator('#devices tbody tr').first().textContent(), /kitchen-lampserialyespower ON · brightness 180/);
  await page.locator('section[data-section="scheduler"]').waitFor();
  t.match(await page.locator('section[data-section="scheduler"]').textContent(), /p99 ms8\.4 ms/, 'other sections render generically');
  await page.waitForFunction(() => document.querySelector('section[data-section="system"] .meter') !== null);

  t.equal(await page.evaluate(() => window.notReloaded), true, 'never reloaded');
  t.same(problems, [], 'no CSP violations or script errors');
  await page.screenshot({ path: '/tmp/status-page.png', fullPage: true });
});

t.test('appliance mode: ?token= lets a browser in, and the live feed works with the cookie', async (t) => {
  const token = 'browser-token-0123456789';
  const test = makeTestContext({ mode: 'appliance', logLevel: 'warn', config: { http: { token } } });
  const http = new HttpServer({ upgrades: {}, systemSampleMs: false, liveIntervalMs: 250 });
  await http.start(test.ctx);
  t.teardown(async () => {
    await http.stop();
    test.cleanup();
  });
  test.setLifecycle('serving');
  const base = `http://127.0.0.1:${http.port}/`;

  const { page: stranger } = await watchedPage(t);
  t.equal((await stranger.request.get(base)).status(), 401, 'no token, no page');

  const { page, problems } = await watchedPage(t);
  await page.goto(`${base}?token=${token}`);
  t.equal(page.url(), base, 'the token is dropped from the address');
  await page.locator('#state.serving').waitFor();
  t.equal(await page.locator('#mode').textContent(), 'appliance');
  test.ctx.logger('broker').warn('appliance warning arrives live');
  await page.locator('#warnings', { hasText: 'appliance warning arrives live' }).waitFor();
  t.same(problems, []);

  // The browser's own login (Basic admin:<token> when no password is set) carries the page and its feed.
  const { page: admin, problems: adminProblems } = await watchedPage(t, { httpCredentials: { username: 'admin', password: token } });
  await admin.goto(base);
  await admin.locator('#state.serving').waitFor();
  test.ctx.logger('broker').warn('seen through Basic auth');
  await admin.locator('#warnings', { hasText: 'seen through Basic auth' }).waitFor();
  t.same(adminProblems, []);
});

t.test('the whole app: a switch toggles from the page, the new state arrives live and is retained', async (t) => {
  const test = makeTestContext();
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const logging = createLogging({ level: 'silent', components: {}, pretty: false, destination: sink });
  const app = createApp({ config: test.ctx.config, logging, env: {} });
  t.teardown(async () => {
    await app.stop();
    test.cleanup();
  });
  await app.start();
  const { page, problems } = await watchedPage(t);
  await page.goto(`http://127.0.0.1:${app.http.port}/`);
  await page.locator('#state.serving').waitFor();
  await page.evaluate(() => {
    window.notReloaded = true;
  });

  const lamp = page.locator('#devices tr[data-id="lamp"]');
  await lamp.waitFor();
  t.notMatch(await lamp.textContent(), /state ON/, 'the demo lamp starts off');
  t.equal(await page.locator('#devices tr[data-id="thermostat"] button.toggle').count(), 0, 'no toggle for a non-switch');
  await lamp.locator('button.toggle').click();
  await page.locator('#devices tr[data-id="lamp"]', { hasText: 'state ON' }).waitFor();
  t.pass('the lamp row shows ON, live');
  t.equal(await lamp.locator('.err').count(), 0, 'no error shown');

  const mqtt = await connectAsync(`mqtt://127.0.0.1:${app.broker.port}`, { reconnectPeriod: 0 });
  t.teardown(() => mqtt.endAsync(true));
  const retained = new Promise<{ payload: string; retain: boolean }>((resolve) =>
    mqtt.on('message', (_topic, payload, packet) => resolve({ payload: payload.toString(), retain: packet.retain })),
  );
  await mqtt.subscribeAsync('clawbox/lamp');
  const message = await retained;
  t.ok(message.retain, 'clawbox/lamp is retained');
  t.match(JSON.parse(message.payload), { state: 'ON' }, 'and says ON');

  // Toggling back: the row follows again.
  await lamp.locator('button.toggle').click();
  await page.locator('#devices tr[data-id="lamp"]', { hasText: 'state OFF' }).waitFor();
  t.pass('and back to OFF');

  // Some agent traffic through the scheduler: the chart draws it (answered or shed, both are plotted).
  const answers: string[] = [];
  mqtt.on('message', (topic, payload) => {
    if (topic === 'clawbox/agent/response') answers.push(payload.toString());
  });
  await mqtt.subscribeAsync('clawbox/agent/response');
  for (const text of ['turn on the light', 'what is the temperature', 'tell me a story']) {
    await mqtt.publishAsync('clawbox/agent/request', JSON.stringify({ text }), { qos: 1 });
  }
  // A flat line has no height, so Playwright calls it hidden: wait for it in the DOM.
  await page.locator('section[data-section="scheduler"] svg.chart path.p50[d*="L"]').waitFor({ state: 'attached' });
  t.pass(`the scheduler chart plots the agent's requests (${answers.length} answered so far)`);
  await page.locator('section[data-section="model"] .model').first().waitFor();
  // The lamp toggles above were audited: the audit card counts them and shows the chain's check at start.
  await page.locator('section[data-section="audit"] #audit-chain', { hasText: /passed|incomplete|running|not run/ }).waitFor();
  t.match(await page.locator('section[data-section="audit"]').innerText(), /audit log[\s\S]*records \/ min[\s\S]*#\d+/i, 'the audit card shows the rate and the last record');
  t.equal(await page.evaluate(() => window.notReloaded), true, 'never reloaded');
  t.same(problems, [], 'no CSP violations or script errors');
  await page.screenshot({ path: '/tmp/status-page2.png', fullPage: true });
});

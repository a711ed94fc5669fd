/**
 * System → Update in Debian's Chromium against the whole runtime (local mode, real broker): bundles made
 * and signed here are served from loopback, downloaded by the runtime, and checked and installed by the
 * real update helper (update/helper.ts) on a unix socket against a fake system root — slot partitions are
 * plain files, the ESP a folder. Not real here, because only the appliance has them: root rights,
 * systemd's socket activation, and the reboot (the helper counts reboot requests instead).
 * The page: slots and versions, a refused bundle's coded error, a download with progress that is
 * cancelled, check then apply with progress, the staged slot and the restart button; the same status and
 * progress events over MQTT; the page off the OS image; 390×844 and 1280×900 without sideways scrolling, axe-core clean.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import t from 'tap';
import { type FakeSystem, fakeSystem, keyPair, makeBundle, rootfsBytes } from '../update/testing/fixture.js';
import { type BundleServer, type StartedHelper, startBundleServer, startHelper } from '../update/testing/runtime-fixture.js';
import { type StartedApp, axeProblems, bridgeClient, buildForTest, horizontalOverflow, launchChromium, openAppPage, screenshot, startWebApp } from './testing/web-app.js';

// Run in the browser by page.evaluate (the tests compile without the DOM library).
declare const location: { hash: string };

t.setTimeout(240_000);

let browser: Browser;
let started: StartedApp;
let server: BundleServer;
let helper: StartedHelper;
let system: FakeSystem;
let cleanupBuild: () => void;
let scratch: string;
const problems: string[] = [];

t.before(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), 'clawbox-web-update-'));
  const stateDir = path.join(scratch, 'state');
  system = fakeSystem({ slotBytes: 8 * 1024 * 1024 });
  helper = await startHelper(system.layout, path.join(stateDir, 'update', 'bundle.tar'));
  server = await startBundleServer();
  server.serve('clawbox-0.2.0-amd64.bundle', makeBundle(system.root, { signer: system.privateKey, version: '0.2.0', rootfs: rootfsBytes(6 * 1024 * 1024) }).file);
  server.serve('stranger.bundle', makeBundle(system.root, { signer: keyPair().privateKey, version: '0.3.0' }).file);
  const build = await buildForTest();
  cleanupBuild = build.cleanup;
  [browser, started] = await Promise.all([launchChromium(), startWebApp({ webRoot: build.dir, stateDir, updateSocket: helper.socketPath })]);
});

t.teardown(async () => {
  await browser?.close();
  await started?.stop();
  await server?.close();
  await helper?.close().catch(() => {});
  cleanupBuild?.();
  rmSync(scratch, { recursive: true, force: true });
  rmSync(system.root, { recursive: true, force: true });
});

function openPage(viewport: { width: number; height: number }, hash: string, colorScheme: 'light' | 'dark' = 'light'): Promise<{ context: BrowserContext; page: Page }> {
  return openAppPage({ browser, origin: started.origin, problems }, viewport, hash, colorScheme);
}

const entries = () => readdirSync(path.join(system.layout.espDir, 'loader', 'entries')).sort();

t.test('update page: slots, a refused bundle, a cancelled download, check, apply with progress, restart', async (t) => {
  const { context, page } = await openPage({ width: 390, height: 844 }, '#/system');
  t.teardown(() => context.close());
  await page.locator('[data-link="update"]').click();
  await page.locator('h1', { hasText: 'Update' }).waitFor();
  const slot = (name: string) => page.locator(`[data-slot="${name}"]`);
  t.match(await slot('a').textContent(), /Slot a\s*good\s*0\.1\.0 · running/, 'slot a runs 0.1.0');
  t.match(await slot('b').textContent(), /Slot b\s*empty\s*no system/, 'slot b is empty');
  t.equal(await page.locator('[data-last-result]').getAttribute('data-last-result'), 'none');
  const url = page.locator('input[name="url"]');
  const job = page.locator('[data-update-job]');

  // A bundle signed by a key the box does not trust: refused with its code, nothing changed.
  await url.fill(`${server.base}/stranger.bundle`);
  await page.locator('[data-action="apply"]').click();
  t.match(await page.locator('[data-job-error]').textContent(), /^UPDATE_SIGNATURE_INVALID: .*does not verify/, 'the refusal shows its code');
  t.same(entries(), ['clawbox-1-a.conf'], 'no boot entry was written');

  // A download held mid-way: progress shows, Cancel stops it.
  server.holdAfter(256 * 1024);
  await url.fill(`${server.base}/clawbox-0.2.0-amd64.bundle`);
  await page.locator('[data-action="apply"]').click();
  await page.locator('[data-update-job][data-phase="downloading"] progress').waitFor();
  await page.locator('[data-progress]', { hasText: /Downloaded [\d.]+ [KM]i?B of [\d.]+ MiB/ }).waitFor();
  t.pass('the download shows its progress');
  await screenshot(page, 'phone-update-downloading');
  await page.locator('[data-action="cancel-update"]').click();
  await page.locator('[data-update-job][data-phase="cancelled"]').waitFor();
  t.same(entries(), ['clawbox-1-a.conf'], 'cancelled: slot b has no boot entry');
  server.release();
  server.holdAfter(undefined);

  // Check, then Apply: the bundle is verified, then written, and slot b boots next.
  await page.locator('[data-action="check"]').click();
  t.match(await job.locator('[data-bundle-version="0.2.0"]').textContent(), /clawbox 0\.2\.0 for amd64, signed by a trusted key; it goes into slot b/);
  t.equal(await job.getAttribute('data-phase'), 'checked');
  t.same(entries(), ['clawbox-1-a.conf'], 'a check installs nothing');
  await page.locator('[data-action="apply"]').click();
  await page.locator('[data-update-job][data-phase="installed"]').waitFor();
  t.match(await job.locator('[data-progress]').textContent(), /Written 6\.0 MiB of 6\.0 MiB/, 'the bytes written reached the whole root file system');
  t.same(entries(), ['clawbox-1-a.conf', 'clawbox-2-b+3.conf'], 'slot b has its entry with 3 tries');
  await page.locator('[data-slot="b"][data-state="trying"]').waitFor();
  t.match(await slot('b').textContent(), /0\.2\.0 · boots next · 3 tries left/);
  t.equal(await page.locator('[data-last-result]').getAttribute('data-last-result'), 'installed');
  await screenshot(page, 'phone-update-staged');
  await page.locator('[data-staged="0.2.0"] [data-action="reboot"]').click();
  await page.locator('[data-action="keep-running"]').click();
  await page.locator('[data-staged="0.2.0"] [data-action="reboot"]').waitFor();
  t.equal(helper.reboots(), 0, 'Keep running restarts nothing');
  await page.locator('[data-staged="0.2.0"] [data-action="reboot"]').click();
  await page.locator('[data-action="confirm-reboot"]').click();
  t.match(await page.locator('[data-update-message]').textContent(), /Restarting/);
  t.equal(helper.reboots(), 1, 'the helper was asked to restart the box');
});

t.test('over MQTT: the update status and a refused input, as bridge requests', async (t) => {
  const { mqtt, request: bridge, close } = await bridgeClient(started.app.broker.port);
  t.teardown(close);
  t.match(
    await bridge('system/update', { transaction: 3 }),
    { status: 'ok', transaction: 3, data: { available: true, booted: 'a', slots: [{ slot: 'a' }, { slot: 'b', version: '0.2.0', state: 'trying' }], job: { phase: 'installed' } } },
    'system/update over MQTT',
  );
  // Progress events for MQTT clients while a check runs.
  const events: Array<Record<string, unknown>> = [];
  let checked: () => void = () => {};
  const whenChecked = new Promise<void>((resolve) => {
    checked = resolve;
  });
  mqtt.on('message', (topic, payload) => {
    if (topic !== 'clawbox/bridge/event/update') return;
    const event = JSON.parse(payload.toString()) as Record<string, unknown>;
    events.push(event);
    if (event.phase === 'checked') checked();
  });
  await mqtt.subscribeAsync('clawbox/bridge/event/update');
  t.match(await bridge('system/update/check', { url: `${server.base}/clawbox-0.2.0-amd64.bundle` }), { status: 'ok', data: { action: 'check', phase: 'downloading' } });
  await whenChecked;
  t.ok(
    events.some((e) => e.phase === 'downloading' && Number(e.downloaded_bytes) > 0),
    `progress events on clawbox/bridge/event/update (${events.length}, ${events.map((e) => e.phase).filter((p, i, a) => a.indexOf(p) === i).join(' → ')})`,
  );
  t.match(events.at(-1), { phase: 'checked', bundle: { version: '0.2.0' } });
  t.match(await bridge('system/update/apply', { url: 'file:///etc/passwd' }), { status: 'error', error: { code: 'PAYLOAD_INVALID' } });
  t.match(await bridge('system/update/cancel', {}), { status: 'error', error: { code: 'NOT_FOUND' } });
});

t.test('no horizontal overflow and no serious axe findings at 390x844 and 1280x900', async (t) => {
  for (const [width, height, label] of [
    [390, 844, 'phone'],
    [1280, 900, 'desktop'],
  ] as const) {
    const { context, page } = await openPage({ width, height }, '#/system/update', label === 'phone' ? 'dark' : 'light');
    await page.locator('[data-staged="0.2.0"]').waitFor();
    t.equal(await horizontalOverflow(page), 0, `${label}: nothing scrolls sideways`);
    t.same(await axeProblems(page), [], `${label}: axe-core`);
    if (label === 'desktop') await screenshot(page, 'desktop-system-update');
    await page.evaluate(() => {
      location.hash = '#/system';
    });
    await page.locator('[data-link="update"]').waitFor();
    t.equal(await horizontalOverflow(page), 0, `${label} #/system with the update link: nothing scrolls sideways`);
    await context.close();
  }
});

t.test('off the OS image (no helper): the page says why, with the code', async (t) => {
  await helper.close();
  const { context, page } = await openPage({ width: 390, height: 844 }, '#/system/update');
  t.teardown(() => context.close());
  t.match(await page.locator('[data-update-unavailable]').textContent(), /not available on this box — UPDATE_UNAVAILABLE: the update helper does not answer/);
  t.equal(await horizontalOverflow(page), 0);
  t.same(await axeProblems(page), []);
  t.same(problems, [], 'no page errors or console errors');
});

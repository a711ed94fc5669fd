/**
 * Test helpers for the web app: the bundle built once per test file into a temp folder, the whole app
 * started on loopback ports with that bundle and a log the test can read, Debian's Chromium through
 * playwright-core, an overflow check, axe-core, and screenshots under test-artifacts/web/ (git-ignored).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { type MqttClient, connectAsync } from 'mqtt';
import YAML from 'yaml';
import { type App, createApp } from '../../app/app.js';
import { loadConfig } from '../../app/config.js';
import { createLogging } from '../../runtime/logging.js';
import { buildWebApp } from '../build.js';

// Callbacks given to page.evaluate run in the browser; the tests compile without the DOM library, so the
// little they touch is declared here (module scope only).
declare const document: { documentElement: { scrollWidth: number; clientWidth: number } };
declare const window: unknown;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'web');

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** Builds the web app into a temp folder (what `npm run build` puts in dist/web). */
export async function buildForTest(): Promise<{ dir: string; cleanup(): void }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-web-'));
  await buildWebApp(dir, { quiet: true });
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface StartedApp {
  app: App;
  /** http(s)://127.0.0.1:<port> */
  origin: string;
  stateDir: string;
  /** Every log line so far (JSON lines). */
  log(): string;
  /** Stops the app; removes its temp files unless `keepState` (a restart follows on the same state). */
  stop(options?: { keepState?: boolean }): Promise<void>;
}

/** The whole app on ephemeral loopback ports; `config` is merged into the YAML config file. */
export async function startWebApp(options: {
  webRoot: string;
  config?: Record<string, unknown>;
  mode?: 'local' | 'appliance';
  /** Reuse a state directory (a restart); it is left in place at stop. */
  stateDir?: string;
  /** The update helper's socket (update/testing/runtime-fixture.ts starts one). */
  updateSocket?: string;
}): Promise<StartedApp> {
  const scratch = mkdtempSync(path.join(tmpdir(), 'clawbox-webapp-'));
  const stateDir = options.stateDir ?? path.join(scratch, 'state');
  const file = path.join(scratch, 'config.yaml');
  writeFileSync(file, YAML.stringify({ ...options.config, state_dir: stateDir }));
  const env = { CLAWBOX_HTTP_PORT: '0', CLAWBOX_BROKER_PORT: '0' };
  const { config, source } = loadConfig({ file, env, ...(options.mode ? { mode: options.mode } : {}) });
  const lines: string[] = [];
  const logging = createLogging({
    level: 'info',
    components: {},
    pretty: false,
    destination: new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  });
  const app = createApp({ config, configSource: source, logging, webRoot: options.webRoot, env: {}, ...(options.updateSocket ? { updateSocket: options.updateSocket } : {}) });
  await app.start();
  const scheme = app.http.tls ? 'https' : 'http';
  return {
    app,
    origin: `${scheme}://127.0.0.1:${app.http.port}`,
    stateDir,
    log: () => lines.join(''),
    async stop(stopOptions = {}) {
      await app.stop();
      if (!stopOptions.keepState && !options.stateDir) rmSync(scratch, { recursive: true, force: true });
    },
  };
}

/**
 * Opens the app at `hash` in a new browser context and waits for its heading. Page errors and console
 * errors go to `problems` (a test checks it is empty at the end); the coded errors a test provokes reach
 * Chromium's console as failed resources and are not problems.
 */
export async function openAppPage(
  on: { browser: Browser; origin: string; problems: string[] },
  viewport: { width: number; height: number },
  hash: string,
  colorScheme: 'light' | 'dark' = 'light',
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await on.browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (error) => on.problems.push(`page error: ${error.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) on.problems.push(`console: ${msg.text()}`);
  });
  await page.goto(`${on.origin}/${hash}`);
  await page.locator('main h1').first().waitFor();
  return { context, page };
}

/**
 * An mqtt.js client on the app's broker that sends bridge requests (`clawbox/bridge/request/<name>`) and
 * waits up to 20 s for their response; undefined when none came. `mqtt` stays usable for other topics.
 */
export async function bridgeClient(port: number): Promise<{
  mqtt: MqttClient;
  request(name: string, body: unknown): Promise<Record<string, unknown> | undefined>;
  close(): Promise<void>;
}> {
  const mqtt = await connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
  await mqtt.subscribeAsync('clawbox/bridge/response/#');
  const replies = new Map<string, Record<string, unknown>>();
  mqtt.on('message', (topic, payload) => {
    if (topic.startsWith('clawbox/bridge/response/')) replies.set(topic, JSON.parse(payload.toString()) as Record<string, unknown>);
  });
  const request = async (name: string, body: unknown) => {
    const topic = `clawbox/bridge/response/${name}`;
    replies.delete(topic);
    await mqtt.publishAsync(`clawbox/bridge/request/${name}`, JSON.stringify(body));
    const until = Date.now() + 20_000;
    while (!replies.has(topic) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    return replies.get(topic);
  };
  return { mqtt, request, close: () => mqtt.endAsync(true) };
}

/** The page is no wider than the viewport: nothing scrolls sideways. */
export function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

const require = createRequire(import.meta.url);

/** axe-core's serious and critical violations on the current page, as "rule: target" lines. */
export async function axeProblems(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol, so the page's CSP (script-src 'self') does not apply.
  await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  const results = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: unknown, options: unknown): Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> }> } }).axe;
    return axe.run(document, { resultTypes: ['violations'] });
  });
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/**
 * The appliance's front door in Debian's Chromium: HTTPS with the certificate made at first boot (checked
 * by Node against that certificate, names and file modes included; the browser is told to accept it, as
 * a user does once), plain HTTP redirected, MQTT over secure WebSocket on the same port, the login form
 * with a wrong and a right token (no Basic challenge, an HttpOnly Secure SameSite=Strict cookie), and the
 * first-run setup: refused with a wrong code, done once with the code from the log, gone afterwards —
 * also after a restart.
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { connectAsync } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import { hashPassword } from '../runtime/auth/password.js';
import { buildForTest, launchChromium, screenshot, startWebApp } from './testing/web-app.js';

// Run in the browser by page.evaluate (the tests compile without the DOM library).
declare const document: { cookie: string };

const TOKEN = 'web-auth-test-token-0123456789';
// A real browser against the whole runtime; a loaded CI box stretches it well past tap's default.
t.setTimeout(300_000);

let browser: Browser;
let webRoot: string;
let cleanupBuild: () => void;

t.before(async () => {
  const build = await buildForTest();
  webRoot = build.dir;
  cleanupBuild = build.cleanup;
  browser = await launchChromium();
});
t.teardown(async () => {
  await browser?.close();
  cleanupBuild?.();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTPS request that trusts exactly the box's certificate and checks it names `localhost`. */
function trusted(port: number, ca: string, pathname: string, options: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path: pathname,
        method: options.method ?? 'GET',
        ca,
        servername: 'localhost',
        headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...options.headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function plain(port: number, pathname: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: pathname, headers: { host: `127.0.0.1:${port}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' }));
    }).on('error', reject);
  });
}

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  return page;
}

t.test('appliance over HTTPS: generated certificate, redirect, secure WebSocket, token login form', async (t) => {
  const started = await startWebApp({
    webRoot,
    mode: 'appliance',
    config: {
      http: { host: '127.0.0.1', token: TOKEN, tls: { enabled: true } },
      broker: { users: [{ username: 'panel', password_hash: await hashPassword('panel-password'), publish: ['#'], subscribe: ['#'] }] },
    },
  });
  t.teardown(() => started.stop());
  const port = started.app.http.port;
  t.match(started.origin, /^https:/);

  const certFile = path.join(started.stateDir, 'tls', 'http-cert.pem');
  const keyFile = path.join(started.stateDir, 'tls', 'http-key.pem');
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'the key is 0600');
  t.equal(statSync(certFile).mode & 0o777, 0o600, 'the certificate is 0600');
  const ca = readFileSync(certFile, 'utf8');
  const names = new X509Certificate(ca).subjectAltName ?? '';
  t.match(names, `DNS:${hostname().toLowerCase()}.local`, 'made for <host>.local');
  t.match(names, 'DNS:localhost');

  const health = await trusted(port, ca, '/healthz');
  t.equal(health.status, 200, 'TLS verifies against the generated certificate');

  const redirect = await plain(port, '/api/status?x=1');
  t.equal(redirect.status, 308, 'plain HTTP on the same port is redirected');
  t.equal(redirect.headers.location, `https://127.0.0.1:${port}/api/status?x=1`);

  const refused = await trusted(port, ca, '/api/status');
  t.equal(refused.status, 401);
  t.equal(refused.headers['www-authenticate'], 'Bearer realm="clawbox"', 'no Basic challenge, so no browser dialog');

  const wrong = await trusted(port, ca, '/api/login', { method: 'POST', body: { secret: 'not-the-token' } });
  t.equal(wrong.status, 401, 'a wrong token is refused');
  const right = await trusted(port, ca, '/api/login', { method: 'POST', body: { secret: TOKEN } });
  t.equal(right.status, 200);
  const cookie = String(right.headers['set-cookie'] ?? '');
  t.match(cookie, /HttpOnly/);
  t.match(cookie, /SameSite=Strict/);
  t.match(cookie, /Secure/);

  const mqtt = await connectAsync(`wss://127.0.0.1:${port}/mqtt`, {
    username: 'panel',
    password: 'panel-password',
    reconnectPeriod: 0,
    ca,
    servername: 'localhost',
  } as Parameters<typeof connectAsync>[1]);
  t.ok(mqtt.connected, 'MQTT over secure WebSocket on the same port');
  await mqtt.endAsync(true);

  const page = await newPage();
  t.teardown(() => page.context().close());
  await page.goto(`http://127.0.0.1:${port}/`);
  t.match(page.url(), /^https:/, 'the browser followed the redirect to HTTPS');
  await page.locator('#secret').fill('wrong-token-123');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#login-error').waitFor();
  await screenshot(page, 'phone-login-error');
  await page.locator('#secret').fill(TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#devices-title').waitFor();
  await page.locator('#live-indicator.on').waitFor();
  t.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is invisible to scripts');
  t.pass('signed in with the right token; the live feed runs');
});

t.test('first run: a setup code from the log, once, and never again', async (t) => {
  const first = await startWebApp({ webRoot, mode: 'appliance', config: { http: { host: '127.0.0.1', tls: { enabled: true } } } });
  let stopped = false;
  t.teardown(() => (stopped ? undefined : first.stop()));
  const code = /setup code ([A-Z0-9]{4}-[A-Z0-9]{4})/.exec(first.log())?.[1];
  t.ok(code, 'the setup code is in the log (console and journal)');
  const page = await newPage();
  t.teardown(() => page.context().close());
  await page.goto(`${first.origin}/`);
  await page.locator('#code').fill('AAAA-AAAA');
  await page.locator('#name').fill('porch-box');
  await page.locator('#password').fill('a long admin password');
  await page.locator('#again').fill('a long admin password');
  await page.getByRole('button', { name: /Set password/ }).click();
  await page.locator('#setup-error').waitFor();
  t.match(await page.locator('#setup-error').textContent(), /setup code/, 'a wrong code is refused');
  await page.locator('#code').fill(code!.toLowerCase());
  await page.getByRole('button', { name: /Set password/ }).click();
  await page.locator('#devices-title').waitFor();
  t.equal(await page.locator('.brand').textContent(), 'porch-box', 'the box has its new name');
  await screenshot(page, 'phone-after-setup');

  const gone = await fetch(`${first.origin}/api/setup`).catch(() => null);
  t.equal(gone, null, 'plain fetch refuses the self-signed certificate (as it should)');
  const ca = readFileSync(path.join(first.stateDir, 'tls', 'http-cert.pem'), 'utf8');
  const port = first.app.http.port;
  t.equal((await trusted(port, ca, '/api/setup')).status, 410, 'the setup page is gone');
  const again = await trusted(port, ca, '/api/setup', { method: 'POST', body: { code, password: 'another long password', name: 'evil' } });
  t.equal(again.status, 410, 'the same code cannot set a second password');
  t.equal(statSync(path.join(first.stateDir, 'admin.json')).mode & 0o777, 0o600, 'admin.json is 0600');
  t.match(readFileSync(path.join(first.stateDir, 'admin.json'), 'utf8'), /"password_hash": "scrypt\$/, 'a scrypt hash, not the password');

  // A restart keeps it done: the page asks for the password, not for setup.
  await first.stop({ keepState: true });
  stopped = true;
  const second = await startWebApp({ webRoot, mode: 'appliance', config: { http: { host: '127.0.0.1', tls: { enabled: true } } }, stateDir: first.stateDir });
  t.teardown(async () => {
    await second.stop();
    rmSync(path.dirname(first.stateDir), { recursive: true, force: true });
  });
  t.notMatch(second.log(), /setup code/, 'no new setup code after a restart');
  const fresh = await newPage();
  t.teardown(() => fresh.context().close());
  await fresh.goto(`${second.origin}/`);
  await fresh.locator('#secret').fill('a long admin password');
  await fresh.getByRole('button', { name: 'Sign in' }).click();
  await fresh.locator('#devices-title').waitFor();
  t.pass('the admin password set during setup signs in after a restart');
});

/**
 * The WebSocket chat in a real composed runtime (createApp, demo devices, the agent's fast path): a real
 * headless Chromium types into the web app's chat box and sees the reply and the lamp turn ON; raw
 * `ws` clients get error frames for bad input and keep a usable socket; in appliance mode the socket
 * needs the page's auth, and a cross-origin browser is refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import t from 'tap';
import WebSocket from 'ws';
import { createContentSafety } from '../plugins/builtin/content-safety/safety.js';
import { buildWebApp } from '../web/build.js';
import { realAgent, startAppWithGateway } from './test-helpers.js';

declare const document: {
  addEventListener(type: 'securitypolicyviolation', listener: (e: { violatedDirective: string; blockedURI: string }) => void): void;
};

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

interface Frame {
  type: string;
  text?: string;
  actions?: { device?: string }[];
  path?: string | null;
  error?: { code: string; message: string };
}

/** A raw client: frames in order, and the next one awaited. */
async function rawClient(url: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(url, { headers });
  const frames: Frame[] = [];
  const waiting: ((f: Frame) => void)[] = [];
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as Frame;
    const waiter = waiting.shift();
    if (waiter) waiter(frame);
    else frames.push(frame);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    ws,
    next: (): Promise<Frame> => {
      const ready = frames.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no frame in time')), 10_000);
        waiting.push((f) => {
          clearTimeout(timer);
          resolve(f);
        });
      });
    },
  };
}

/** The HTTP status an upgrade attempt is refused with (0 if it was accepted). */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? -1);
      ws.terminate();
    });
    ws.once('open', () => {
      resolve(0);
      ws.close();
    });
    ws.once('error', () => resolve(-1));
  });
}

let browser: Browser;
t.before(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});
t.teardown(() => browser?.close());

t.test('the web app chat box turns on the lamp', async (t) => {
  const web = mkdtempSync(path.join(tmpdir(), 'clawbox-web-'));
  t.teardown(() => rmSync(web, { recursive: true, force: true }));
  await buildWebApp(web, { quiet: true });
  const env = await startAppWithGateway({ channels: {}, webRoot: web });
  t.teardown(() => env.stop());
  const { app, gateway } = env;
  t.ok(gateway.channel('ws-chat'), 'the ws chat channel is on by default');
  t.equal(gateway.channel('ws-chat')?.local, true, 'local on loopback');

  const context = await browser.newContext();
  t.teardown(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(`http://127.0.0.1:${app.http.port}/`);
  await page.locator('#chat').waitFor({ state: 'visible' });
  await page.locator('[data-device="lamp"] [data-control="switch"][aria-checked="false"]').waitFor();
  t.pass('the lamp starts off');

  await page.locator('#chat-input').fill('turn on the lamp');
  await page.locator('#chat-send').click();
  await page.locator('#chat-log li.chat-me', { hasText: 'turn on the lamp' }).waitFor();
  const reply = page.locator('#chat-log li.chat-reply');
  await reply.waitFor();
  const replyText = (await reply.locator('.chat-text').textContent()) ?? '';
  t.ok(replyText.trim().length > 0, `a reply is shown: "${replyText}"`);
  await page.locator('[data-device="lamp"] [data-control="switch"][aria-checked="true"]').waitFor();
  t.pass('the lamp card shows ON, live');
  t.equal((app.devices.get('lamp')?.state as { state?: string } | undefined)?.state, 'ON', 'the lamp device is ON');
  t.equal(await page.locator('#chat-log li.chat-error').count(), 0, 'no error shown');
  t.equal(gateway.figures().pending_messages, 0, 'the answered message left the inbox');
  t.same(problems, [], 'no CSP violations or script errors');
});

t.test('raw clients: bad input gets an error frame and the socket stays usable', async (t) => {
  const env = await startAppWithGateway({ channels: {} });
  t.teardown(() => env.stop());
  const url = `ws://127.0.0.1:${env.app.http.port}/api/chat/ws`;
  const client = await rawClient(url);
  t.teardown(() => client.ws.terminate());

  for (const bad of ['{not json', '[]', '{"text": ""}', '{"text": "hi", "extra": 1}', '{"text": "x", "session": "a b"}']) {
    client.ws.send(bad);
    const frame = await client.next();
    t.equal(frame.type, 'error', bad);
    t.equal(frame.error?.code, 'PAYLOAD_INVALID', bad);
  }
  client.ws.send(JSON.stringify({ text: 'x'.repeat(1001) }));
  t.equal((await client.next()).error?.code, 'PAYLOAD_TOO_LARGE', 'over max_text_chars');
  t.equal(env.gateway.figures().sessions, 0, 'bad input stored nothing');

  client.ws.send(JSON.stringify({ text: 'turn on the lamp' }));
  const reply = await client.next();
  t.equal(reply.type, 'reply');
  t.equal(reply.path, 'fast');
  t.equal(reply.actions?.[0]?.device, 'lamp');
  t.equal((env.app.devices.get('lamp')?.state as { state?: string } | undefined)?.state, 'ON');
  t.equal(env.gateway.figures().sessions, 1, 'one session for the socket');
  t.equal(await upgradeStatus(url, { Origin: 'http://evil.example' }), 403, 'a cross-origin page is refused');
});

t.test('appliance mode: the chat socket needs the page auth', async (t) => {
  const token = 'chat-token-0123456789abcdef';
  const env = await startAppWithGateway({ channels: {}, mode: 'appliance', config: { http: { token } } });
  t.teardown(() => env.stop());
  const url = `ws://127.0.0.1:${env.app.http.port}/api/chat/ws`;
  t.equal(await upgradeStatus(url), 401, 'no credentials, no socket');
  t.equal(await upgradeStatus(url, { Authorization: 'Bearer wrong' }), 401, 'wrong token, no socket');
  const client = await rawClient(url, { Authorization: `Bearer ${token}` });
  t.teardown(() => client.ws.terminate());
  client.ws.send(JSON.stringify({ text: 'turn on the lamp' }));
  t.equal(env.gateway.channel('ws-chat')?.local, true, 'behind the required auth: no pairing');
  // Appliance mode has no demo devices and no model here: the agent's answer is an error, but an answer
  // to this very message (in_reply_to), delivered on the socket.
  const frame = (await client.next()) as Frame & { in_reply_to?: string };
  t.type(frame.in_reply_to, 'string', `the agent answered: ${JSON.stringify(frame)}`);
  t.equal(frame.error?.code, 'MODEL_NOT_LOADED');
  t.equal(env.gateway.figures().sessions, 1);
});

t.test('content safety on the chat socket: blocked input never reaches the agent, a blocked reply is withheld', async (t) => {
  const safety = createContentSafety({ config: { rules: [{ id: 'no-secrets', category: 'secret', words: ['topsecret'] }], categories: { secret: 'block' } } });
  // What reached the agent: the stand-in counts, then passes the request on to the real agent.request.
  const agentSaw: string[] = [];
  const env = await startAppWithGateway({
    channels: {},
    safety,
    agent: (app) => async (input, ctx) => {
      agentSaw.push(input.text);
      if (input.text === 'what is the plan') return { text: 'the topsecret plan is ready', actions: [], path: 'fast', timings: {} };
      return realAgent(app, input, ctx);
    },
  });
  t.teardown(() => env.stop());
  const client = await rawClient(`ws://127.0.0.1:${env.app.http.port}/api/chat/ws`);
  t.teardown(() => client.ws.terminate());

  client.ws.send(JSON.stringify({ text: 'the topsecret code is 1234' }));
  const refused = await client.next();
  t.equal(refused.type, 'error');
  t.equal(refused.error?.code, 'CONTENT_BLOCKED');
  client.ws.send(JSON.stringify({ text: 'turn on the lamp' }));
  t.equal((await client.next()).type, 'reply', 'the next allowed message gets through');
  client.ws.send(JSON.stringify({ text: 'what is the plan' }));
  const withheld = await client.next();
  t.equal(withheld.type, 'reply');
  t.equal(withheld.text, '[answer withheld by content safety]');
  t.same(agentSaw, ['turn on the lamp', 'what is the plan'], 'the blocked message never reached the agent');
  t.equal((env.app.devices.get('lamp')?.state as { state?: string } | undefined)?.state, 'ON');
});

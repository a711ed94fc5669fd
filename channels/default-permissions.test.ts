/**
 * A chat sender with the default channels.permissions gets everyday answers that need a tool: arithmetic
 * (compute's offline evaluate) on the fast path; a narrower list refuses it, so the default is what allows it.
 */
import { Writable } from 'node:stream';
import t from 'tap';
import { createApp } from '../app/app.js';
import { makeTestContext } from '../app/testing/test-context.js';
import { createLogging } from '../runtime/logging.js';

async function chatWith(t: { teardown(fn: () => unknown): void }, config: Record<string, unknown> = {}) {
  const test = makeTestContext({ config });
  t.teardown(() => test.cleanup());
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const app = createApp({ config: test.ctx.config, logging: createLogging({ level: 'silent', components: {}, pretty: false, destination: sink }), env: {} });
  await app.start();
  t.teardown(() => app.stop());
  return async (text: string) => {
    const response = await fetch(`http://127.0.0.1:${app.http.port}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text }),
    });
    return (await response.json()) as { status: string; data?: { text: string; path: string }; error?: { code: string } };
  };
}

t.test('the default lets a sender do arithmetic', async (t) => {
  const chat = await chatWith(t);
  t.match(await chat('what is 15 % of 240'), { status: 'ok', data: { text: '15 % of 240 = 36', path: 'fast' } }, 'on the fast path');
  t.match(await chat('sqrt(2)'), { status: 'ok', data: { text: /1\.414/ } });
});

t.test('a narrower list refuses it', async (t) => {
  const chat = await chatWith(t, { channels: { permissions: { default: ['agent/request', '+/set', '+/get'] } } });
  t.match(await chat('what is 15 % of 240'), { status: 'error', error: { code: 'FORBIDDEN' } });
});

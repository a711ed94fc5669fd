/**
 * A chat platform in the composed runtime, end to end: createApp with `channels.platforms.telegram` in its
 * config starts the Telegram channel plugin (its own process) against a local Bot API server; the status
 * document shows the platform; a message from an open-policy sender is run by the real agent as that
 * sender (the demo lamp switches) and the answer goes back through Telegram's sendMessage. A platform that
 * cannot be opened (no token) is a problem on the status document, and the rest of the box runs.
 */
import { Writable } from 'node:stream';
import t from 'tap';
import { createApp } from '../app/app.js';
import { makeTestContext } from '../app/testing/test-context.js';
import { FakeBotApi } from '../plugins/builtin/telegram/testing/bot-api-server.js';
import { createLogging } from '../runtime/logging.js';
import { eventually } from './testing/conformance.js';

t.test('a Telegram channel in the composed runtime', async (t) => {
  const api = await FakeBotApi.start();
  t.teardown(() => api.close());
  const test = makeTestContext({
    config: {
      channels: {
        platforms: {
          telegram: { dm_policy: 'open', config: { api_root: api.apiRoot, poll_timeout_s: 1 }, credentials: { bot_token: api.token } },
          // No bot_token: this one stays off, with the reason on the status document.
          'telegram-two': { plugin: 'telegram', config: { api_root: api.apiRoot } },
        },
      },
    },
  });
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const app = createApp({ config: test.ctx.config, logging: createLogging({ level: 'silent', components: {}, pretty: false, destination: sink }), env: {} });
  await app.start();
  t.teardown(async () => {
    await app.stop();
    test.cleanup();
  });
  const status = async () => {
    const response = await fetch(`http://127.0.0.1:${app.http.port}/api/status`);
    return ((await response.json()) as { sections: { channels: { platforms: { name: string; state: string }[]; platform_problems: { channel: string; code: string }[] } } })
      .sections.channels;
  };
  // Logging in happens in the background: the status document says when it is done.
  const until = Date.now() + 30_000;
  let channels = await status();
  while (channels.platforms[0]?.state !== 'connected' && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    channels = await status();
  }
  t.equal(channels.platforms[0]?.state, 'connected', 'the status document shows telegram connected');
  t.equal(channels.platforms[0]?.name, 'telegram');
  t.match(channels.platform_problems, [{ channel: 'telegram-two', code: 'CONFIG_INVALID' }], 'the one without a token is a problem, not a failed start');

  api.userSends(5001, 'turn on the lamp');
  t.ok(await eventually(() => api.deliveredTo(5001).length > 0, 30_000), 'answered on Telegram');
  t.equal((app.devices.get('lamp')?.state as { state?: string } | undefined)?.state, 'ON', 'the real agent switched the demo lamp');
});

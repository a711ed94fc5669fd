/**
 * The Telegram channel passes the channel conformance suite, run as the plugin it is (its own process,
 * under the plugin host) against a local server speaking the Bot API (testing/bot-api-server.ts) through
 * grammY's apiRoot: Telegram's servers cannot be reached here. Then what only Telegram has: group
 * messages are skipped, an update is confirmed only once stored, a crashed plugin process is restarted
 * and polls again.
 */
import t, { type Test } from 'tap';
import { makeTestContext } from '../../../app/testing/test-context.js';
import { eventually, runChannelConformance } from '../../../channels/testing/conformance.js';
import { PluginHost } from '../../host.js';
import { FakeBotApi } from './testing/bot-api-server.js';

async function startHost(t: Test) {
  const test = makeTestContext();
  const host = new PluginHost({ config: { restart: { initial_ms: 100, max_ms: 2000 } }, env: {} });
  await host.start(test.ctx);
  t.teardown(async () => {
    await host.stop();
    test.cleanup();
  });
  return host;
}

runChannelConformance(t, 'telegram', async (t) => {
  const api = await FakeBotApi.start();
  const host = await startHost(t);
  let nextId = 1000;
  return {
    channel: 'telegram',
    plugin: 'telegram',
    config: { api_root: api.apiRoot, poll_timeout_s: 1 },
    credentials: { bot_token: api.token },
    maxMessageChars: 4096,
    openPlatform: (name, options) => host.openChannel(name, options),
    sender: () => String(nextId++),
    userSends: async (sender, text, options) => api.userSends(Number(sender), text, options),
    delivered: (sender) => api.deliveredTo(sender),
    rateLimitNext: (count, seconds) => api.rateLimitNext(count, seconds),
    rateLimited: () => api.rateLimitedCount,
    dropConnection: () => api.dropConnections(),
    close: () => api.close(),
  };
});

t.test('telegram specifics', async (t) => {
  const api = await FakeBotApi.start();
  t.teardown(() => api.close());
  const host = await startHost(t);

  await t.test('a missing token is refused before anything runs', async (t) => {
    t.throws(() => host.openChannel('telegram', { plugin: 'telegram', config: {}, credentials: {} }), { code: 'CONFIG_INVALID' });
    t.throws(
      () => host.openChannel('telegram', { plugin: 'telegram', config: { api_root: 'ftp://x' }, credentials: { bot_token: 'x' } }),
      { code: 'CONFIG_INVALID' },
      'a bad config is refused too',
    );
  });

  const channel = host.openChannel('telegram', { plugin: 'telegram', config: { api_root: api.apiRoot, poll_timeout_s: 1 }, credentials: { bot_token: api.token } });
  const seen: string[] = [];
  let refuse = false;
  channel.onMessage(async (message) => {
    if (refuse) throw Object.assign(new Error('the gateway is busy'), { code: 'BUSY' });
    seen.push(message.text);
    return { status: 'accepted', id: String(seen.length), session: `telegram:${message.sender.sender_id}` };
  });
  await channel.connect();
  t.teardown(() => channel.disconnect());
  t.ok(await channel.waitForState(['connected'], 30_000), 'connected');

  await t.test('group messages are skipped; private ones come through', async (t) => {
    api.groupMessage(7, 'in the group');
    api.userSends(7, 'in private');
    t.ok(await eventually(() => seen.includes('in private'), 30_000));
    t.notOk(seen.includes('in the group'));
  });

  await t.test('an update the gateway did not take is fetched again', async (t) => {
    refuse = true;
    api.userSends(8, 'try again');
    const polls = () => api.calls.filter((c) => c === 'getUpdates').length;
    const before = polls();
    // The refused update stays unconfirmed while the channel keeps asking.
    t.ok(await eventually(() => polls() >= before + 2, 30_000), 'polling goes on');
    refuse = false;
    t.ok(await eventually(() => seen.includes('try again'), 30_000), 'delivered once taken');
  });

  await t.test('a killed plugin process is restarted with backoff and polls again', async (t) => {
    const pid = channel.status().process.pid;
    t.ok(pid, 'runs as a process');
    process.kill(pid!, 'SIGKILL');
    t.ok(await eventually(() => channel.status().process.restarts >= 1 && channel.status().state === 'connected', 30_000), 'restarted');
    t.not(channel.status().process.pid, pid);
    api.userSends(9, 'after the crash');
    t.ok(await eventually(() => seen.includes('after the crash'), 30_000));
  });

  await t.test('the token never reaches the status document', async (t) => {
    t.notMatch(JSON.stringify(channel.status()), api.token);
  });
});

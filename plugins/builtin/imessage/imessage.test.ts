/**
 * The iMessage channel passes the channel conformance suite, run as the plugin it is (its own process,
 * under the plugin host) against a local HTTP + socket.io server speaking BlueBubbles' documented API
 * (testing/bluebubbles-server.ts): no Mac or BlueBubbles server is reachable here. Then what only this
 * channel has: a wrong password is refused at connect, group chats, own messages and repeats are skipped.
 */
import t, { type Test } from 'tap';
import { makeTestContext } from '../../../app/testing/test-context.js';
import { eventually, runChannelConformance } from '../../../channels/testing/conformance.js';
import { PluginHost } from '../../host.js';
import { FakeBlueBubbles } from './testing/bluebubbles-server.js';

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

runChannelConformance(t, 'imessage', async (t) => {
  const server = await FakeBlueBubbles.start();
  const host = await startHost(t);
  let next = 1;
  return {
    channel: 'imessage',
    plugin: 'imessage',
    config: { server_url: server.url },
    credentials: { password: server.password },
    maxMessageChars: 4000,
    openPlatform: (name, options) => host.openChannel(name, options),
    sender: (label) => `${label}-${next++}@example.com`,
    userSends: async (sender, text, options) => server.userSends(sender, text, options),
    delivered: (sender) => server.deliveredTo(sender),
    rateLimitNext: (count, seconds) => server.rateLimitNext(count, seconds),
    rateLimited: () => server.rateLimitedCount,
    dropConnection: () => server.dropConnections(),
    close: () => server.close(),
  };
});

t.test('imessage specifics', async (t) => {
  const server = await FakeBlueBubbles.start();
  t.teardown(() => server.close());
  const host = await startHost(t);

  await t.test('a wrong password fails the connect, and the status says why', async (t) => {
    const channel = host.openChannel('imessage-bad', { plugin: 'imessage', config: { server_url: server.url }, credentials: { password: 'wrong' } });
    await channel.connect();
    t.teardown(() => channel.disconnect());
    t.ok(await channel.waitForState(['failed'], 30_000), 'failed');
    t.match(channel.status().detail, /refused the password/);
    t.notMatch(JSON.stringify(channel.status()), 'wrong', 'the password is not on the status document');
  });

  await t.test('group chats, own messages and repeated guids are skipped', async (t) => {
    const channel = host.openChannel('imessage', { plugin: 'imessage', config: { server_url: server.url }, credentials: { password: server.password } });
    const seen: string[] = [];
    channel.onMessage(async (message) => {
      seen.push(message.text);
      return { status: 'accepted', id: String(seen.length), session: `imessage:${message.sender.sender_id}` };
    });
    await channel.connect();
    t.teardown(() => channel.disconnect());
    t.ok(await channel.waitForState(['connected'], 30_000), 'connected');
    server.userSends('a@example.com', 'in a group', { group: true });
    server.userSends('a@example.com', 'first', { guid: 'same-guid' });
    server.userSends('a@example.com', 'first again', { guid: 'same-guid' });
    server.userSends('a@example.com', 'second');
    t.ok(await eventually(() => seen.includes('second'), 30_000));
    t.same(seen, ['first', 'second']);
  });
});

/**
 * plugins.restart against real plugins (a Node worker and a python3 child): the plugin comes back as a
 * new instance at once (no backoff), a call in flight fails with PLUGIN_FAILED naming the restart, the
 * restart is counted, a waiting backoff is cut short, a lazy plugin stays lazy, a platform channel (the
 * channel-echo fixture) logs in again on a new process, and the operation is admin-only with coded errors.
 */
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { makeTestContext } from '../app/testing/test-context.js';
import { eventually } from '../channels/testing/conformance.js';
import { isClawboxError } from '../runtime/errors.js';
import { FrontDoor } from '../runtime/operations/front-door.js';
import { SYSTEM_PRINCIPAL, principalWithFilters } from '../runtime/operations/principal.js';
import { PluginHost } from './host.js';
import { pluginOperations } from './operations.js';
import { startHost } from './test/support.js';

const whoami = async (host: PluginHost, plugin: string) => ((await host.call(plugin, 'whoami', {})) as { instance: string }).instance;
const figures = (host: PluginHost, plugin: string) => host.list().find((p) => p.name === plugin)!.figures;
/** A minute of backoff after a failure (so an answer right after a restart shows it did not wait), and time to start on a loaded box. */
const SLOW_BACKOFF = { restart: { initial_ms: 60_000, max_ms: 60_000, stable_ms: 60_000 }, start_timeout_ms: 30_000, call_timeout_ms: 30_000 };

t.test('a restart gives a new instance at once and fails the call in flight with the reason', async (t) => {
  const { host } = await startHost(t, { plugins: { allow: ['node-basic', 'py-basic'], ...SLOW_BACKOFF } });
  for (const plugin of ['node-basic', 'py-basic']) {
    const before = await whoami(host, plugin);
    // Only the Node fixture has a tool that takes its time without blocking.
    const slow =
      plugin === 'node-basic'
        ? host.call(plugin, 'slow', { ms: 20_000 }).then(
            () => null,
            (error: unknown) => error,
          )
        : null;
    const restarted = await host.restart('plugin', plugin, 'asked by test');
    t.match(restarted, { kind: 'plugin', name: plugin, state: 'running', restarts: 1 }, `${plugin}: running again, counted`);
    if (slow) {
      const error = await slow;
      t.ok(isClawboxError(error, 'PLUGIN_FAILED'), `${plugin}: the call in flight failed with PLUGIN_FAILED`);
      t.match((error as Error).message, /restarted: asked by test/);
    }
    // The backoff is a minute here: an answer now means the restart did not wait for it.
    t.not(await whoami(host, plugin), before, `${plugin}: a new instance answers`);
  }
});

t.test('a plugin waiting in backoff restarts now; a lazy one stays lazy', async (t) => {
  const { host } = await startHost(t, { plugins: { allow: ['node-basic'], ...SLOW_BACKOFF } });
  await host.call('node-basic', 'exit', {}).catch(() => {});
  while (figures(host, 'node-basic').state !== 'backoff') await new Promise((resolve) => setTimeout(resolve, 20));
  t.match(await host.restart('plugin', 'node-basic', 'test'), { state: 'running' }, 'out of a minute of backoff at once');
  t.same(await host.call('node-basic', 'add', { a: 1, b: 1 }), { sum: 2 });

  const lazy = await startHost(t, { plugins: { allow: ['node-basic'], lazy: true } });
  t.match(await lazy.host.restart('plugin', 'node-basic', 'test'), { state: 'idle', restarts: 1 }, 'not started by a restart');
  t.same(await lazy.host.call('node-basic', 'add', { a: 2, b: 2 }), { sum: 4 }, 'and starts at its first call as before');
});

t.test('plugins.restart through the front door: admin only, coded errors', async (t) => {
  const { host, tc } = await startHost(t, { plugins: { allow: ['node-basic'] } });
  const frontDoor = new FrontDoor({ logger: tc.ctx.logger('front-door') });
  for (const operation of pluginOperations(host)) frontDoor.register(operation);
  const run = (input: unknown, principal = SYSTEM_PRINCIPAL) => frontDoor.invoke('plugins.restart', input, { principal, source: 'http' });
  const viewer = principalWithFilters('http', 'viewer', ['bridge/request/plugin/#', 'bridge/request/devices']);
  await t.rejects(run({ name: 'node-basic' }, viewer), { code: 'FORBIDDEN' }, 'tool callers may not restart');
  await t.rejects(run({ name: 'Not A Name' }), { code: 'PAYLOAD_INVALID' });
  await t.rejects(run({ name: 'node-basic', kind: 'daemon' }), { code: 'PAYLOAD_INVALID' });
  await t.rejects(run({ name: 'nope' }), { code: 'NOT_FOUND', message: /no plugin "nope"/ });
  await t.rejects(run({ name: 'telegram', kind: 'channel' }), { code: 'NOT_FOUND', message: /no platform channel "telegram"/ });
  t.match(await run({ name: 'node-basic' }), { kind: 'plugin', name: 'node-basic', restarts: 1 });
  t.equal(figures(host, 'node-basic').restarts, 1);
});

t.test('a platform channel restarts: it logs out, its process starts again and it logs in again', async (t) => {
  const test = makeTestContext();
  const host = new PluginHost({ env: { PLUGIN_DIR: fileURLToPath(new URL('./testing/channel-echo', import.meta.url)) } });
  await host.start(test.ctx);
  t.teardown(async () => {
    await host.stop();
    test.cleanup();
  });
  const channel = host.openChannel('echo', { plugin: 'channel-echo', config: {}, credentials: { secret: 's' } });
  channel.onMessage(async () => ({ status: 'ignored', reason: 'test' }));
  await channel.connect();
  t.ok(await channel.waitForState(['connected'], 30_000), 'connected');
  const before = channel.status().process.pid;
  const restarted = await host.restart('channel', 'echo', 'test');
  t.match(restarted, { kind: 'channel', name: 'echo', restarts: 1 });
  t.ok(await eventually(() => channel.status().state === 'connected' && channel.status().process.pid !== before, 30_000), 'a new process, logged in again');
  await channel.disconnect();
  await t.rejects(host.restart('channel', 'echo', 'test'), { code: 'PLUGIN_FAILED', message: /not running/ }, 'a disconnected channel is not restarted');
});

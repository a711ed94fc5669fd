/**
 * Channel plugins from $PLUGIN_DIR, through the plugin host: a third-party plugin (plain JavaScript,
 * testing/channel-echo) is found, its manifest rules hold, its credentials come from the config or
 * $CREDENTIALS_DIRECTORY, its messages reach the listener and its acceptance goes back, and a pairing QR
 * it reports is drawn on the terminal and put on the status as text and SVG.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { makeTestContext } from '../app/testing/test-context.js';
import { eventually } from '../channels/testing/conformance.js';
import { PluginHost } from './host.js';
import { parseManifest } from './manifest.js';

const FIXTURES = fileURLToPath(new URL('./testing/', import.meta.url));

t.test('manifest rules for channel plugins', async (t) => {
  const base = { name: 'c', version: '1.0.0', runtime: 'node', entry: 'index.mjs' };
  t.equal(parseManifest(JSON.stringify({ ...base, kind: 'channel', channel: { max_message_chars: 100 } }), 'm').manifest.kind, 'channel');
  t.equal(parseManifest(JSON.stringify({ ...base, tools: [] }), 'm').manifest.kind, 'tool', 'tool is the default kind');
  t.throws(() => parseManifest(JSON.stringify({ ...base, kind: 'channel' }), 'm'), { code: 'PLUGIN_INVALID' }, 'a channel needs its channel section');
  t.throws(
    () => parseManifest(JSON.stringify({ ...base, kind: 'channel', runtime: 'python', channel: { max_message_chars: 100 } }), 'm'),
    { code: 'PLUGIN_INVALID' },
    'channels run on node',
  );
  t.throws(() => parseManifest(JSON.stringify({ ...base, channel: { max_message_chars: 100 } }), 'm'), { code: 'PLUGIN_INVALID' }, 'a tool plugin has no channel section');
  t.throws(
    () =>
      parseManifest(
        JSON.stringify({ ...base, kind: 'channel', channel: { max_message_chars: 100 }, tools: [{ name: 'x', description: 'x', arguments: {} }] }),
        'm',
      ),
    { code: 'PLUGIN_INVALID' },
    'a channel offers no tools',
  );
});

t.test('a channel plugin from $PLUGIN_DIR', async (t) => {
  const test = makeTestContext();
  const host = new PluginHost({ env: { PLUGIN_DIR: path.join(FIXTURES, 'channel-echo') } });
  await host.start(test.ctx);
  t.teardown(async () => {
    await host.stop();
    test.cleanup();
  });
  t.ok(host.channelPlugins().some((p) => p.name === 'channel-echo' && p.origin === 'env'), 'found, as a channel plugin');
  t.notOk(host.list().some((p) => p.name === 'channel-echo'), 'not among the tool plugins');

  await t.test('a missing credential or an unknown one is refused', async (t) => {
    t.throws(() => host.openChannel('echo', { plugin: 'channel-echo', config: {}, credentials: {} }), { code: 'CONFIG_INVALID', message: /secret/ });
    t.throws(() => host.openChannel('echo', { plugin: 'channel-echo', config: {}, credentials: { secret: 'x', other: 'y' } }), { code: 'CONFIG_INVALID' });
    t.throws(() => host.openChannel('echo', { plugin: 'nope', config: {}, credentials: {} }), { code: 'NOT_FOUND' });
  });

  await t.test('credentials from $CREDENTIALS_DIRECTORY; messages in, acceptance back, replies out', async (t) => {
    const credentials = mkdtempSync(path.join(tmpdir(), 'clawbox-cred-'));
    t.teardown(() => rmSync(credentials, { recursive: true, force: true }));
    writeFileSync(path.join(credentials, 'echo.secret'), 'from-a-file\n');
    const channel = host.openChannel('echo', { plugin: 'channel-echo', config: {}, credentials: {}, credentialsDir: credentials });
    const received: unknown[] = [];
    channel.onMessage(async (message) => {
      received.push(message);
      return { status: 'accepted', id: 'm1', session: 'echo:someone' };
    });
    await channel.connect();
    t.teardown(() => channel.disconnect());
    t.ok(await channel.waitForState(['connected'], 30_000), 'connected');
    t.equal(channel.status().detail, 'secret has 11 characters', 'the file (without its newline) was the credential');
    t.ok(await eventually(() => received.length === 1, 30_000));
    t.same(received[0], { sender: { channel: 'echo', sender_id: 'someone' }, text: 'hello from the platform' });
    const dataDir = path.join(test.stateDir, 'channels', 'echo');
    t.ok(await eventually(() => readSafe(path.join(dataDir, 'acceptances.jsonl')).includes('"accepted"'), 30_000), 'the plugin got the acceptance');
    await channel.send('echo:someone', { text: 'a reply' });
    t.same(JSON.parse(readSafe(path.join(dataDir, 'sent.jsonl'))), { to: 'someone', text: 'a reply' });
  });

  await t.test('a pairing QR is drawn on the terminal and put on the status as text and SVG', async (t) => {
    const channel = host.openChannel('echo-qr', { plugin: 'channel-echo', config: { qr: '2@pair-me,xyz' }, credentials: { secret: 's' } });
    channel.onMessage(async () => ({ status: 'ignored', reason: 'test' }));
    await channel.connect();
    t.teardown(() => channel.disconnect());
    t.ok(await channel.waitForState(['pairing'], 30_000), 'pairing');
    t.ok(await eventually(() => channel.status().qr?.svg !== null && channel.status().qr?.svg !== undefined, 10_000), 'the SVG is drawn');
    t.equal(channel.status().qr?.text, '2@pair-me,xyz');
    t.match(channel.status().qr?.svg, /^<svg/);
  });
});

t.test('the terminal gets the QR drawing', async (t) => {
  // The handle's terminal option, used directly: a sink instead of stderr.
  const { PluginChannelHandle } = await import('./channel-handle.js');
  const { loadPluginFolder } = await import('./discovery.js');
  const test = makeTestContext();
  t.teardown(() => test.cleanup());
  const plugin = loadPluginFolder(path.join(FIXTURES, 'channel-echo'), { dir: path.join(FIXTURES, 'channel-echo'), origin: 'env' });
  let drawn = '';
  const terminal = new Writable({
    write(chunk, _enc, done) {
      drawn += String(chunk);
      done();
    },
  });
  const channel = new PluginChannelHandle({
    name: 'echo-term',
    plugin,
    config: { qr: '2@terminal' },
    credentials: { secret: 's' },
    dataDir: test.stateDir,
    limits: { memoryLimitMb: 128, maxMessageBytes: 1 << 20, startTimeoutMs: 30_000, restart: { initial_ms: 100, max_ms: 1000, stable_ms: 30_000 }, python: 'python3' },
    logger: test.ctx.logger('test'),
    terminal,
  });
  channel.onMessage(async () => ({ status: 'ignored', reason: 'test' }));
  await channel.connect();
  t.teardown(() => channel.disconnect());
  t.ok(await eventually(() => drawn.includes('scan this QR code'), 30_000), 'the prompt and the drawing were written');
  t.match(drawn, /[█▀▄]/, 'block characters of a terminal QR code');
});

function readSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

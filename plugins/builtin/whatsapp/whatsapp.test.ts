/**
 * The WhatsApp channel passes the channel conformance suite with Baileys' socket replaced at its lowest
 * seam: the channel is given a socket factory instead of makeWASocket, and a fake socket emits Baileys'
 * events (testing/fake-socket.ts). WhatsApp's servers cannot be reached here, and a factory cannot be
 * handed to a plugin process, so this channel runs in the test process (channels/testing/in-process-channel.ts).
 * Then what only WhatsApp has: QR pairing, the login kept 0600, reconnect per disconnect code, logout.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DisconnectReason } from '@whiskeysockets/baileys';
import t from 'tap';
import { eventually, runChannelConformance } from '../../../channels/testing/conformance.js';
import { InProcessChannel } from '../../../channels/testing/in-process-channel.js';
import { Backoff } from '../../channel-kit.js';
import { FakeWhatsApp } from './testing/fake-socket.js';
import { RECONNECT_CODES, WhatsAppChannel } from './whatsapp.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-wa-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

runChannelConformance(t, 'whatsapp', async (t) => {
  const phone = new FakeWhatsApp();
  const dataDir = tempDir(t);
  let next = 1;
  return {
    channel: 'whatsapp',
    plugin: 'whatsapp',
    config: {},
    credentials: {},
    maxMessageChars: 4096,
    openPlatform: (name, options) =>
      new InProcessChannel(name, new WhatsAppChannel({ makeSocket: phone.factory, backoff: new Backoff(20, 200) }), {
        config: { mark_read: true, ...options.config },
        credentials: options.credentials,
        dataDir,
      }),
    sender: () => `4915${String(1_000_000 + next++)}@s.whatsapp.net`,
    userSends: async (sender, text, options) => phone.userSends(sender, text, options),
    delivered: (sender) => phone.deliveredTo(sender),
    rateLimitNext: (count, seconds) => Object.assign(phone.limit, { count, seconds }),
    rateLimited: () => phone.rateLimitedCount,
    dropConnection: async () => phone.close(DisconnectReason.connectionLost),
    close: async () => {},
  };
});

t.test('whatsapp specifics', async (t) => {
  const setup = (t: { teardown(fn: () => void): void }, paired: boolean) => {
    const phone = new FakeWhatsApp({ paired });
    const dataDir = tempDir(t);
    const definition = new WhatsAppChannel({ makeSocket: phone.factory, backoff: new Backoff(20, 200) });
    const channel = new InProcessChannel('whatsapp', definition, { config: { mark_read: true }, credentials: {}, dataDir });
    const seen: string[] = [];
    channel.onMessage(async (message) => {
      seen.push(message.text);
      return { status: 'accepted', id: String(seen.length), session: `whatsapp:${message.sender.sender_id}` };
    });
    t.teardown(() => channel.disconnect());
    return { phone, channel, definition, dataDir, seen };
  };

  await t.test('QR pairing: the QR is reported, a scan saves the login 0600 and reconnects at once (515)', async (t) => {
    const { phone, channel, definition } = setup(t, false);
    await channel.connect();
    t.ok(await eventually(() => channel.status().state === 'pairing', 5000), 'pairing');
    t.match(channel.status().qr, /^2@fake-qr-1,/, 'the QR text is on the status');
    phone.scan();
    t.ok(await eventually(() => phone.sockets.length === 2 && channel.status().state === 'connected', 5000), 'a new socket, connected');
    const authDir = definition.authDir;
    t.ok(await eventually(() => readdirSync(authDir).includes('creds.json'), 5000), 'creds.json written');
    t.equal(statSync(authDir).mode & 0o777, 0o700, 'the auth folder is 0700');
    for (const file of readdirSync(authDir)) t.equal(statSync(path.join(authDir, file)).mode & 0o777, 0o600, `${file} is 0600`);
  });

  for (const code of [408, 428, 440, 499, 515]) {
    await t.test(`disconnect code ${code}: reconnects`, async (t) => {
      t.ok(RECONNECT_CODES.includes(code));
      const { phone, channel } = setup(t, true);
      await channel.connect();
      t.ok(await eventually(() => channel.status().state === 'connected', 5000));
      phone.close(code);
      t.ok(await eventually(() => phone.sockets.length === 2 && channel.status().state === 'connected', 5000), 'a new socket, connected');
      t.ok(channel.states.includes('reconnecting'), 'said it reconnects');
    });
  }

  await t.test('401 logged out: stops, deletes the worthless login, asks to pair again', async (t) => {
    const { phone, channel, definition } = setup(t, false);
    await channel.connect();
    t.ok(await eventually(() => channel.status().state === 'pairing', 5000));
    phone.scan();
    t.ok(await eventually(() => channel.status().state === 'connected', 5000));
    t.ok(await eventually(() => readdirSync(definition.authDir).includes('creds.json'), 5000));
    phone.close(DisconnectReason.loggedOut);
    t.ok(await eventually(() => channel.status().state === 'logged_out', 5000), 'logged_out');
    t.match(channel.status().detail, /pair again/);
    t.ok(await eventually(() => readdirSync(definition.authDir).length === 0, 5000), 'the login is gone');
    // The channel decides at the close event whether to reconnect, and says "reconnecting" then.
    t.notOk(channel.states.slice(channel.states.lastIndexOf('connected')).includes('reconnecting'), 'no reconnect after a logout');
  });

  await t.test('403 forbidden: stops without reconnecting', async (t) => {
    const { phone, channel } = setup(t, true);
    await channel.connect();
    t.ok(await eventually(() => channel.status().state === 'connected', 5000));
    phone.close(DisconnectReason.forbidden);
    t.ok(await eventually(() => channel.status().state === 'failed', 5000));
    t.notOk(channel.states.slice(channel.states.lastIndexOf('connected')).includes('reconnecting'), 'no reconnect');
  });

  await t.test('own messages and group messages are skipped; a stored message is marked read', async (t) => {
    const { phone, channel, seen } = setup(t, true);
    await channel.connect();
    t.ok(await eventually(() => channel.status().state === 'connected', 5000));
    phone.userSends('4915100000001@s.whatsapp.net', 'mine', { fromMe: true });
    phone.userSends('123456789-123@g.us', 'group chatter');
    phone.userSends('4915100000001@s.whatsapp.net', 'for the box');
    t.ok(await eventually(() => seen.includes('for the box'), 5000));
    t.same(seen, ['for the box']);
    t.ok(await eventually(() => phone.read.length === 1, 5000), 'marked read once stored');
  });
});

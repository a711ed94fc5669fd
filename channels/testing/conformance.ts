/**
 * The channel conformance suite (the pattern of devices/drivers/testing/conformance.ts): every chat
 * platform channel passes these same tests, run by a real ChannelGateway (state store, pairing, DM
 * policy, chat.message through a front door) with a stand-in agent that echoes. A rig puts the platform's
 * far end in place — a local server speaking its documented API, or a fake socket at the library's seam —
 * and says what that far end saw.
 */
import type { Test } from 'tap';
import { makeTestContext } from '../../app/testing/test-context.js';
import { createLogging } from '../../runtime/logging.js';
import { FrontDoor } from '../../runtime/operations/front-door.js';
import { defineOperation } from '../../runtime/operations/operation.js';
import type { Acceptance } from '../channel.js';
import type { DmPolicy } from '../config-schema.js';
import { MEDIA_REFUSED } from '../dm-policy.js';
import { ChannelGateway } from '../gateway.js';
import type { OpenPlatform, PlatformChannel } from '../platforms.js';

export interface PlatformRig {
  /** The channel's name (session ids start with it). */
  channel: string;
  plugin: string;
  config: Record<string, unknown>;
  credentials: Record<string, string>;
  maxMessageChars: number;
  /** How the gateway gets the channel: the plugin host's openChannel (a process), or an in-process wrapper. */
  openPlatform: OpenPlatform;
  /** A sender id as the platform writes it (a Telegram user id, a WhatsApp jid, an address), from a label. */
  sender(label: string): string;
  /** A person sends a text (or, with media, a photo with that caption) to the box. */
  userSends(senderId: string, text: string, options?: { media?: boolean }): Promise<void>;
  /** The texts the platform delivered to that person, in order. */
  delivered(senderId: string): string[];
  /** The platform answers the next `count` sends "too many requests, retry after `seconds`". */
  rateLimitNext(count: number, seconds: number): void;
  /** How many sends the platform answered with a rate limit so far. */
  rateLimited(): number;
  /** The platform drops the connection (its server side); the channel must come back by itself. */
  dropConnection(): Promise<void>;
  close(): Promise<void>;
}

type Tap = Test;

export async function eventually(check: () => boolean, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

const WAIT_MS = 30_000;

/** A reply of several platform-sized parts, made of words so a splitter has places to cut. */
export function longReply(maxChars: number): string {
  const words: string[] = [];
  for (let i = 0; words.join(' ').length < maxChars * 2 + 500; i++) words.push(`word${i}`);
  return words.join(' ');
}

export function runChannelConformance(tap: Tap, name: string, makeRig: (t: Tap) => Promise<PlatformRig>): Promise<unknown> {
  return tap.test(`${name} channel conformance`, async (t) => {
    const rig = await makeRig(t);
    t.teardown(() => rig.close());
    const test = makeTestContext();
    t.teardown(() => test.cleanup());
    const agentSaw: { sender: string; text: string }[] = [];
    const acceptances: (Acceptance & { sender: string })[] = [];
    const long = longReply(rig.maxMessageChars);
    const logging = createLogging({ level: 'silent', components: {}, pretty: false });
    const frontDoor = new FrontDoor({ logger: logging.forComponent('front-door') });
    frontDoor.register(
      defineOperation<{ text: string; session?: string }, unknown>({
        name: 'agent.request',
        summary: 'echo stand-in for the agent',
        input: { type: 'object', required: ['text'], properties: { text: { type: 'string' }, session: { type: 'string' } } },
        permission: () => 'agent/request',
        changesWorld: false,
        deadlineMs: 30_000,
        handler: async (input, ctx) => {
          agentSaw.push({ sender: ctx.principal.id, text: input.text });
          return { text: input.text === 'long' ? long : `echo: ${input.text}`, actions: [], path: 'fast' };
        },
      }),
    );
    // Every acceptance the gateway gives the channel: the positive marker that an ignored message was seen.
    let opened: PlatformChannel | null = null;
    const openPlatform: OpenPlatform = (channel, options) => {
      const platform = rig.openPlatform(channel, options);
      opened = platform;
      const original = platform.onMessage.bind(platform);
      platform.onMessage = (listener) =>
        original(async (message) => {
          const acceptance = await listener(message);
          acceptances.push({ ...acceptance, sender: message.sender.sender_id });
          return acceptance;
        });
      return platform;
    };

    let gateway: ChannelGateway | null = null;
    const start = async (dm_policy: DmPolicy, allowlist: string[] = []) => {
      await gateway?.stop();
      gateway = new ChannelGateway({
        frontDoor,
        openPlatform,
        config: {
          http: false,
          ws_chat: { enabled: false },
          platforms: { [rig.channel]: { plugin: rig.plugin, dm_policy, allowlist, config: rig.config, credentials: rig.credentials } },
        },
      });
      await gateway.start(test.ctx);
      t.ok(await eventually(() => platformState() === 'connected', WAIT_MS), `connected (${dm_policy}); state ${platformState()}`);
    };
    const platform = () => (gateway?.figures().platforms as { state: string; name: string }[] | undefined)?.[0];
    const platformState = () => platform()?.state;
    t.teardown(async () => {
      await gateway?.stop();
    });
    const lastTo = (sender: string) => rig.delivered(sender).at(-1) ?? '';
    const arrives = (sender: string, check: (text: string) => boolean) => eventually(() => rig.delivered(sender).some(check), WAIT_MS);

    await t.test('connect: the channel logs in and says so on the status document', async (t) => {
      await start('pairing');
      t.equal(platform()?.name, rig.channel);
      t.same((gateway!.figures().platform_problems as unknown[]).length, 0, 'no platform problems');
    });

    const friend = rig.sender('friend');
    await t.test('pairing (default): a stranger gets a code, is approved, then talks to the agent', async (t) => {
      await rig.userSends(friend, 'hello there');
      t.ok(await arrives(friend, (text) => /Pairing code: [A-Z0-9]{6}/.test(text)), 'the pairing code was delivered');
      t.notOk(agentSaw.some((m) => m.text === 'hello there'), 'the stranger did not reach the agent');
      const code = /Pairing code: ([A-Z0-9]{6})/.exec(lastTo(friend))![1]!;
      await gateway!.approve(code);
      await rig.userSends(friend, 'ping');
      t.ok(await arrives(friend, (text) => text === 'echo: ping'), 'inbound text reached a session and the reply went out');
      t.same(
        agentSaw.find((m) => m.text === 'ping'),
        { sender: `${rig.channel}:${friend}`, text: 'ping' },
        'the agent was asked as the sender',
      );
    });

    await t.test('long replies are split at the platform limit and nothing is lost', async (t) => {
      const before = rig.delivered(friend).length;
      await rig.userSends(friend, 'long');
      const squash = (s: string) => s.replace(/\s+/g, '');
      t.ok(await eventually(() => squash(rig.delivered(friend).slice(before).join('')) === squash(long), WAIT_MS), 'every part arrived');
      const parts = rig.delivered(friend).slice(before);
      t.ok(parts.length >= 3, `${parts.length} parts`);
      t.ok(
        parts.every((p) => p.length <= rig.maxMessageChars),
        `each part at most ${rig.maxMessageChars} characters`,
      );
    });

    await t.test('a rate-limited send is retried after the time the platform asks for', async (t) => {
      const before = rig.rateLimited();
      rig.rateLimitNext(1, 1);
      await rig.userSends(friend, 'ping after a limit');
      t.ok(await arrives(friend, (text) => text === 'echo: ping after a limit'), 'delivered after the wait');
      t.equal(rig.rateLimited(), before + 1, 'the platform did refuse once');
    });

    await t.test('media is refused clearly when the channel does not pass it on', async (t) => {
      await rig.userSends(friend, 'look at this', { media: true });
      t.ok(await arrives(friend, (text) => text.includes(MEDIA_REFUSED)), 'the sender is told');
      t.notOk(agentSaw.some((m) => m.text === 'look at this'), 'nothing reached the agent');
    });

    await t.test('reconnects after a dropped connection', async (t) => {
      await rig.dropConnection();
      await rig.userSends(friend, 'are you back');
      t.ok(await arrives(friend, (text) => text === 'echo: are you back'), 'answered after the drop');
      t.equal(platformState(), 'connected');
    });

    await t.test('DM policy allowlist: only listed senders talk; others are ignored without an answer', async (t) => {
      const listed = rig.sender('listed');
      const stranger = rig.sender('stranger-a');
      await start('allowlist', [listed]);
      await rig.userSends(stranger, 'let me in');
      t.ok(await eventually(() => acceptances.some((a) => a.sender === stranger && a.status === 'ignored'), WAIT_MS), 'ignored');
      await rig.userSends(listed, 'hi from the list');
      t.ok(await arrives(listed, (text) => text === 'echo: hi from the list'), 'the listed sender is answered');
      t.same(rig.delivered(stranger), [], 'the stranger got nothing, not even a pairing code');
    });

    await t.test('DM policy open: anyone talks', async (t) => {
      const anyone = rig.sender('anyone');
      await start('open');
      await rig.userSends(anyone, 'hi');
      t.ok(await arrives(anyone, (text) => text === 'echo: hi'), 'answered without pairing');
    });

    await t.test('DM policy disabled: nobody, not even a paired sender', async (t) => {
      await start('disabled');
      const seen = agentSaw.length;
      await rig.userSends(friend, 'still there?');
      t.ok(await eventually(() => acceptances.some((a) => a.sender === friend && a.status === 'ignored'), WAIT_MS), 'ignored');
      t.equal(agentSaw.length, seen, 'nothing reached the agent');
    });

    await t.test('disconnect: the channel stops and says so', async (t) => {
      const g = gateway!;
      t.equal(platformState(), 'connected', 'was connected');
      await g.stop();
      gateway = null;
      t.equal((opened?.status?.() as { state?: string } | undefined)?.state, 'stopped', 'stopped');
    });
  });
}

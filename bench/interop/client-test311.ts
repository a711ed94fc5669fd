/**
 * The MQTT 3.1.1 interoperability tests of Eclipse Paho (paho.mqtt.testing, interoperability/client_test.py
 * at commit be3ecc1bade1e06d13fd3e59c058f724a3f598d7, EPL-1.0/EDL-1.0), re-expressed test by test in
 * TypeScript over paho-client.ts (protocol level 4): the ten tests unittest runs there, with their names,
 * steps, waits and assertions, in unittest's (alphabetical) order after the class setup (cleanup(): both
 * client ids' sessions cleared, retained messages removed). The file also has `will_message_test`, which
 * unittest does not collect (its name does not start with "test"), so it is not run here either.
 *
 * Each Python test wraps its steps in try/except and asserts `succeeded` at the end; here an exception
 * fails the test the same way, with its message as the reason.
 */
import { Callbacks, Client, type ConnectOptions } from './paho-client.js';
import { type TestCase, type TestContext, assertEqual, assertTrue } from './unittest.js';

const topics = ['TopicA', 'TopicA/B', 'Topic/C', 'TopicA/C', '/TopicA'] as const;
const wildtopics = ['TopicA/+', '+/C', '#', '/#', '/+', '+/+', 'TopicA/#'] as const;
const nosubscribe_topics = ['test/nosubscribe'] as const;

interface Suite {
  callback: Callbacks;
  callback2: Callbacks;
  aclient: Client;
  bclient: Client;
}

let suite: Suite | undefined;
const at = (ctx: TestContext, more: Partial<ConnectOptions> = {}): ConnectOptions => ({ host: ctx.host, port: ctx.port, ...more });

function s(): Suite {
  if (!suite) throw new Error('setUpClass did not run');
  return suite;
}

/** setUpClass: cleanup() and the two clients with their callbacks. */
export async function setUpClass(ctx: TestContext): Promise<void> {
  for (const clientid of ['myclientid', 'myclientid2']) {
    const curclient = new Client(clientid, 4);
    await curclient.connect(at(ctx, { clean: true }));
    await ctx.sleep(0.1);
    await curclient.disconnect();
    await ctx.sleep(0.1);
  }
  // clean retained messages
  const callback = new Callbacks();
  const curclient = new Client('clean retained', 4);
  curclient.registerCallback(callback);
  await curclient.connect(at(ctx, { clean: true }));
  curclient.subscribe(['#'], [0]);
  await ctx.sleep(2); // wait for all retained messages to arrive
  for (const message of callback.messages) {
    if (message.retained) curclient.publish(message.topicName, Buffer.alloc(0), 0, true);
  }
  await curclient.disconnect();
  await ctx.sleep(0.1);

  const aclient = new Client('myclientid', 4);
  const cb = new Callbacks();
  aclient.registerCallback(cb);
  const cb2 = new Callbacks();
  const bclient = new Client('myclientid2', 4);
  bclient.registerCallback(cb2);
  suite = { callback: cb, callback2: cb2, aclient, bclient };
}

export const tests: TestCase[] = [
  {
    name: 'testBasic',
    async run(ctx) {
      const { aclient, callback } = s();
      await aclient.connect(at(ctx));
      await aclient.disconnect();

      const connack = await aclient.connect(at(ctx));
      assertEqual(connack.sessionPresent, false, 'CONNACK flags should be 0x00');
      aclient.subscribe([topics[0]], [2]);
      aclient.publish(topics[0], 'qos 0');
      aclient.publish(topics[0], 'qos 1', 1);
      aclient.publish(topics[0], 'qos 2', 2);
      await ctx.sleep(2);
      await aclient.disconnect();
      assertEqual(callback.messages.length, 3);

      let raised = false;
      try {
        await aclient.connect(at(ctx));
        await aclient.connect(at(ctx, { newsocket: false })); // should fail - second connect on socket
      } catch {
        raised = true;
      }
      assertTrue(raised, 'a second CONNECT on the socket was accepted');
      raised = false;
      try {
        await aclient.connect(at(ctx, { protocolName: 'hj' })); // should fail - wrong protocol name
      } catch {
        raised = true;
      }
      assertTrue(raised, 'a CONNECT with protocol name "hj" was accepted');
    },
  },
  {
    name: 'test_retained_messages',
    async run(ctx) {
      const { aclient, callback } = s();
      callback.clear();
      let connack = await aclient.connect(at(ctx, { clean: true }));
      assertEqual(connack.sessionPresent, false, 'CONNACK flags should be 0x00');
      aclient.publish(topics[1], 'qos 0', 0, true);
      aclient.publish(topics[2], 'qos 1', 1, true);
      aclient.publish(topics[3], 'qos 2', 2, true);
      await ctx.sleep(1);
      aclient.subscribe([wildtopics[5]], [2]);
      await ctx.sleep(1);
      await aclient.disconnect();

      assertEqual(callback.messages.length, 3, callback.messages.map((m) => m.topicName));

      // clear retained messages
      callback.clear();
      connack = await aclient.connect(at(ctx, { clean: true }));
      assertEqual(connack.sessionPresent, false, 'CONNACK flags should be 0x00');
      aclient.publish(topics[1], '', 0, true);
      aclient.publish(topics[2], '', 1, true);
      aclient.publish(topics[3], '', 2, true);
      await ctx.sleep(1); // wait for QoS 2 exchange to be completed
      aclient.subscribe([wildtopics[5]], [2]);
      await ctx.sleep(1);
      await aclient.disconnect();

      assertEqual(callback.messages.length, 0, `callback messages is ${callback.messages.map((m) => m.topicName)}`);
    },
  },
  {
    name: 'test_zero_length_clientid',
    async run(ctx) {
      const client0 = new Client('', 4);
      let fails = false;
      try {
        await client0.connect(at(ctx, { clean: false })); // should be rejected
      } catch {
        fails = true;
      }
      assertEqual(fails, true, 'an empty client id with cleansession=0 was accepted');
      fails = false;
      try {
        await client0.connect(at(ctx, { clean: true })); // should work
      } catch {
        fails = true;
      }
      assertEqual(fails, false, 'an empty client id with cleansession=1 was refused');
      await client0.disconnect();
    },
  },
  {
    name: 'test_offline_message_queueing',
    async run(ctx) {
      const { aclient, bclient, callback } = s();
      callback.clear();

      await aclient.connect(at(ctx, { clean: false }));
      aclient.subscribe([wildtopics[5]], [2]);
      await aclient.disconnect();

      let connack = await bclient.connect(at(ctx, { clean: true }));
      assertEqual(connack.sessionPresent, false, 'CONNACK flags should be 0x00');
      bclient.publish(topics[1], 'qos 0', 0);
      bclient.publish(topics[2], 'qos 1', 1);
      bclient.publish(topics[3], 'qos 2', 2);
      await ctx.sleep(2);
      await bclient.disconnect();

      connack = await aclient.connect(at(ctx, { clean: false }));
      assertEqual(connack.sessionPresent, true, 'CONNACK flags should be 0x01 (session present)');
      await ctx.sleep(2);
      await aclient.disconnect();

      assertTrue([2, 3].includes(callback.messages.length), callback.messages.length);
      ctx.note(`This server ${callback.messages.length === 3 ? 'is' : 'is not'} queueing QoS 0 messages for offline clients`);
    },
  },
  {
    name: 'test_overlapping_subscriptions',
    async run(ctx) {
      const { aclient, callback, callback2 } = s();
      callback.clear();
      callback2.clear();
      await aclient.connect(at(ctx));
      aclient.subscribe([wildtopics[6], wildtopics[0]], [2, 1]);
      aclient.publish(topics[3], 'overlapping topic filters', 2);
      await ctx.sleep(1);
      assertTrue([1, 2].includes(callback.messages.length), callback.messages.length);
      if (callback.messages.length === 1) {
        ctx.note('one message for all matching overlapping subscriptions');
        assertEqual(callback.messages[0]!.qos, 2);
      } else {
        ctx.note('one message per matching overlapping subscription');
        const [m0, m1] = callback.messages;
        assertTrue((m0!.qos === 2 && m1!.qos === 1) || (m0!.qos === 1 && m1!.qos === 2), callback.messages);
      }
      await aclient.disconnect();
    },
  },
  {
    name: 'test_keepalive',
    async run(ctx) {
      const { aclient, bclient, callback2 } = s();
      callback2.clear();
      await aclient.connect(at(ctx, { clean: true, keepalive: 5, willFlag: true, willTopic: topics[4], willMessage: Buffer.from('keepalive expiry') }));
      await bclient.connect(at(ctx, { clean: true, keepalive: 0 }));
      bclient.subscribe([topics[4]], [2]);
      await ctx.sleep(15);
      await bclient.disconnect();
      assertEqual(callback2.messages.length, 1, `length should be 1: ${callback2.messages.length}`); // the will message
    },
  },
  {
    name: 'test_redelivery_on_reconnect',
    async run(ctx) {
      const { bclient, callback, callback2 } = s();
      callback.clear();
      callback2.clear();
      await bclient.connect(at(ctx, { clean: false }));
      bclient.subscribe([wildtopics[6]], [2]);
      bclient.pause(); // stops responding to incoming publishes
      bclient.publish(topics[1], '', 1, false);
      bclient.publish(topics[3], '', 2, false);
      await ctx.sleep(1);
      await bclient.disconnect();
      assertEqual(callback2.messages.length, 0, `length should be 0: ${callback2.messages.length}`);
      bclient.resume();
      await bclient.connect(at(ctx, { clean: false }));
      await ctx.sleep(3);
      assertEqual(callback2.messages.length, 2, `length should be 2: ${callback2.messages.length}`);
      await bclient.disconnect();
    },
  },
  {
    name: 'test_subscribe_failure',
    async run(ctx) {
      const { aclient, callback } = s();
      callback.clear();
      await aclient.connect(at(ctx));
      aclient.subscribe([nosubscribe_topics[0]], [2]);
      await ctx.sleep(0.2);
      assertEqual(callback.subscribeds[0]?.[1][0], 0x80, `return code should be 0x80 ${JSON.stringify(callback.subscribeds)}`);
    },
  },
  {
    name: 'test_dollar_topics',
    async run(ctx) {
      const { bclient, callback2 } = s();
      callback2.clear();
      await bclient.connect(at(ctx, { clean: true, keepalive: 0 }));
      bclient.subscribe([wildtopics[5]], [2]);
      await ctx.sleep(1); // wait for all retained messages, hopefully
      callback2.clear();
      bclient.publish(`$${topics[1]}`, '', 1, false);
      await ctx.sleep(0.2);
      assertEqual(callback2.messages.length, 0, callback2.messages);
      await bclient.disconnect();
    },
  },
  {
    name: 'test_unsubscribe',
    async run(ctx) {
      const { aclient, bclient, callback2 } = s();
      callback2.clear();
      await bclient.connect(at(ctx, { clean: true }));
      bclient.subscribe([topics[0]], [2]);
      bclient.subscribe([topics[1]], [2]);
      bclient.subscribe([topics[2]], [2]);
      await ctx.sleep(1); // wait for all retained messages, hopefully
      bclient.unsubscribe([topics[0]]);

      await aclient.connect(at(ctx, { clean: true }));
      aclient.publish(topics[0], '', 1, false);
      aclient.publish(topics[1], '', 1, false);
      aclient.publish(topics[2], '', 1, false);
      await ctx.sleep(2);

      await bclient.disconnect();
      await aclient.disconnect();
      assertEqual(callback2.messages.length, 2, callback2.messages.length);
    },
  },
];

/**
 * What Eclipse Paho's MQTT interoperability suites (bench/interop/, `npm run bench:mqtt-interop` for the
 * whole figure against mosquitto) found in the embedded broker, each fix with a regression test here, and
 * a fast subset of both suites against a broker started in-process, so `npm test` notices a regression.
 * The client is the suites' own raw-packet client (bench/interop/paho-client.ts): it does exactly what a
 * test says and nothing a library client would add.
 */
import t from 'tap';
import { startTestBroker } from '../../app/testing/broker.js';
import { runSuite } from '../../bench/interop/run.js';
import { Callbacks, Client } from '../../bench/interop/paho-client.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `condition` holds or `ms` pass: a positive wait a loaded machine passes. */
async function until(condition: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

t.test('an MQTT 5 session resumed with Clean Start 0 and no Session Expiry gets its queued messages, then ends with that connection', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  t.teardown(() => Client.closeAll());
  const at = { host: '127.0.0.1', port: tb.broker.port };

  const inbox = new Callbacks();
  const resumer = new Client('resumer', 5);
  resumer.registerCallback(inbox);
  await resumer.connect({ ...at, clean: true, properties: { sessionExpiryInterval: 300 } });
  resumer.subscribe(['resume/+'], [{ qos: 1 }]);
  t.ok(await until(() => inbox.subscribeds.length === 1), 'subscribed');
  await resumer.disconnect();

  const sender = new Client('sender', 5);
  const sent = new Callbacks();
  sender.registerCallback(sent);
  await sender.connect({ ...at, clean: true });
  sender.publish('resume/a', 'queued while away', 1);
  t.ok(await until(() => sent.publisheds.length === 1), 'the broker acknowledged the message');
  await sender.disconnect();

  // No Session Expiry property: the resumed session will end with this connection.
  const resumed = await resumer.connect({ ...at, clean: false });
  t.equal(resumed.sessionPresent, true, 'the session is resumed');
  t.ok(await until(() => inbox.messages.length === 1), 'the queued message is delivered');
  t.equal(inbox.messages[0]?.payload.toString(), 'queued while away');
  await resumer.disconnect();

  const after = await resumer.connect({ ...at, clean: false });
  t.equal(after.sessionPresent, false, 'the session ended with the connection that did not extend it');
  await resumer.disconnect();
});

t.test('a Clean Start 1 reconnect still discards what was queued for the old session', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  t.teardown(() => Client.closeAll());
  const at = { host: '127.0.0.1', port: tb.broker.port };

  const inbox = new Callbacks();
  const client = new Client('restarter', 5);
  client.registerCallback(inbox);
  await client.connect({ ...at, clean: true, properties: { sessionExpiryInterval: 300 } });
  client.subscribe(['restart/+'], [{ qos: 1 }]);
  t.ok(await until(() => inbox.subscribeds.length === 1), 'subscribed');
  await client.disconnect();

  const sender = new Client('restart-sender', 5);
  const sent = new Callbacks();
  sender.registerCallback(sent);
  await sender.connect({ ...at, clean: true });
  sender.publish('restart/a', 'for the old session', 1);
  t.ok(await until(() => sent.publisheds.length === 1), 'the broker acknowledged the message');
  // A marker on a topic the new session subscribes to: once it arrives, an old message would have too.
  inbox.clear();
  const fresh = await client.connect({ ...at, clean: true });
  t.equal(fresh.sessionPresent, false);
  client.subscribe(['marker'], [{ qos: 1 }]);
  t.ok(await until(() => inbox.subscribeds.length === 1), 'subscribed to the marker');
  sender.publish('marker', 'after', 1);
  t.ok(await until(() => inbox.messages.length > 0), 'the marker arrived');
  t.same(
    inbox.messages.map((m) => m.payload.toString()),
    ['after'],
    'nothing of the discarded session came',
  );
  await client.disconnect();
  await sender.disconnect();
});

t.test('a fast subset of the Paho interoperability suites passes', async (t) => {
  const tb = await startTestBroker({
    config: { broker: { anonymous_acl: [{ allow: false, access: 'subscribe', topic: 'test/nosubscribe' }] } },
  });
  t.teardown(() => tb.close());
  const target = { host: '127.0.0.1', port: tb.broker.port };
  const subsets = {
    mqtt311: ['testBasic', 'test_subscribe_failure'],
    // test_offline_message_queueing's bug has its own, stricter test above.
    mqtt5: ['test_assigned_clientid', 'test_basic', 'test_flow_control2', 'test_payload_format', 'test_user_properties'],
  } as const;
  for (const [suite, only] of Object.entries(subsets) as [keyof typeof subsets, readonly string[]][]) {
    const run = await runSuite(suite, target, { only, limitSeconds: 60 });
    t.equal(run.setupError, null, `${suite}: the class setup ran`);
    t.same(
      run.results.map((r) => r.name),
      [...only].sort(),
      `${suite}: every chosen test ran`,
    );
    for (const result of run.results) t.ok(result.passed, `${suite} ${result.name}${result.passed ? '' : `: ${result.reason}`}`);
  }
});

t.test('broker.max_keepalive bounds the keepalive of MQTT 5 clients (Server Keep Alive), as test_server_keep_alive expects of a broker set to 60', async (t) => {
  const tb = await startTestBroker({ config: { broker: { max_keepalive: 60 } } });
  t.teardown(() => tb.close());
  t.teardown(() => Client.closeAll());
  const at = { host: '127.0.0.1', port: tb.broker.port };
  const client = new Client('keepalive-bound', 5);
  const asked = async (keepalive: number) => {
    const connack = await client.connect({ ...at, keepalive });
    await client.disconnect();
    return connack.properties.serverKeepAlive;
  };
  t.equal(await asked(120), 60, 'more than the bound: told the bound');
  t.equal(await asked(0), 60, 'no keepalive: told the bound');
  t.equal(await asked(30), undefined, 'within the bound: no Server Keep Alive, the client keeps its own');
  const v311 = new Client('keepalive-311', 4);
  const old = await v311.connect({ ...at, keepalive: 120 });
  t.same(old.properties, {}, 'MQTT 3.1.1 has no way to say it');
  await v311.disconnect();
});

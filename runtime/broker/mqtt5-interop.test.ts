/**
 * Other MQTT 5 clients against the embedded broker: mosquitto_pub/mosquitto_sub `-V 5` with `-D`
 * properties (Debian mosquitto-clients) and Python paho-mqtt with MQTTv5 (Debian python3-paho-mqtt, run
 * with /usr/bin/python3). mqtt.js is in mqtt5.test.ts.
 */
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { hashPassword } from '../auth/password.js';
import { startTestBroker } from '../../app/testing/broker.js';

const run = promisify(execFile);

t.test('mosquitto_pub / mosquitto_sub -V 5: properties, subscription identifier, reason codes', async (t) => {
  const hash = await hashPassword('pw');
  const tb = await startTestBroker({
    config: { broker: { users: [{ username: 'limited', password_hash: hash, publish: ['mosq/allowed'], subscribe: [] }] } },
  });
  t.teardown(() => tb.close());
  const port = String(tb.broker.port);
  const sub = spawn('mosquitto_sub', [
    '-h', '127.0.0.1', '-p', port, '-V', '5', '-t', 'mosq/#', '-C', '1', '-W', '20', '-q', '1',
    '-F', 'topic=%t payload=%p ct=%C rt=%R cd=%D pfi=%F exp=%E up=%P si=%S',
    '-D', 'subscribe', 'subscription-identifier', '42',
  ]);
  let out = '';
  sub.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => sub.on('exit', resolve));
  // mosquitto_sub prints nothing before its SUBACK: publish until it has subscribed (each retry is a new message).
  for (let i = 0; i < 50 && out === ''; i++) {
    await run('mosquitto_pub', [
      '-h', '127.0.0.1', '-p', port, '-V', '5', '-t', 'mosq/t', '-m', 'hello', '-q', '1',
      '-D', 'publish', 'user-property', 'room', 'kitchen',
      '-D', 'publish', 'content-type', 'text/plain',
      '-D', 'publish', 'response-topic', 'mosq/reply',
      '-D', 'publish', 'correlation-data', 'abc',
      '-D', 'publish', 'payload-format-indicator', '1',
      '-D', 'publish', 'message-expiry-interval', '30',
    ]);
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 200))]);
  }
  t.equal(await exited, 0, 'mosquitto_sub got its message');
  const line = out.trim();
  t.match(line, /topic=mosq\/t payload=hello/);
  t.match(line, /ct=text\/plain/, 'content type');
  t.match(line, /rt=mosq\/reply/, 'response topic');
  t.match(line, /cd=abc/, 'correlation data');
  t.match(line, /pfi=1/, 'payload format indicator');
  t.match(line, /exp=\d+/, 'message expiry interval');
  t.match(line, /up=room:kitchen/, 'user property');
  t.match(line, /si=42/, 'subscription identifier');

  const denied = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-V', '5', '-u', 'limited', '-P', 'pw', '-t', 'mosq/forbidden', '-m', 'x', '-q', '1', '-d']).then(
    (r) => r.stdout + r.stderr,
    (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`,
  );
  t.match(denied, /PUBACK \(Mid: \d+, RC:135\)/, 'a denied QoS 1 publish: PUBACK reason 135 (0x87)');
  const badLogin = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-V', '5', '-u', 'limited', '-P', 'wrong', '-t', 'x', '-m', 'x']).then(
    (r) => r.stderr,
    (e: { stderr?: string }) => e.stderr ?? '',
  );
  t.match(badLogin, /bad user name or password/i, 'v5 bad password refused as such');
  const old = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-V', 'mqttv311', '-t', 'mosq/old', '-m', 'x', '-q', '1']);
  t.equal(old.stderr, '', 'an MQTT 3.1.1 mosquitto_pub on the same port');
});

t.test('paho-mqtt MQTTv5 (python3-paho-mqtt): connect, no local, properties, refused login, 3.1.1 beside it', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const script = path.join(import.meta.dirname, 'testing', 'paho_v5_check.py');
  const { stdout } = await run('/usr/bin/python3', [script, String(tb.broker.port)], { timeout: 60_000 });
  const seen = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  t.equal(seen.connect_rc, 0, 'CONNACK success');
  t.equal(seen.receive_maximum, 1000, 'CONNACK properties readable by paho');
  t.equal(seen.first_topic, 'paho/t', 'no local: the own message did not come back, the other one did');
  t.same(seen.user_properties, [['room', 'hall'], ['room', 'attic']], 'repeated user properties, in order');
  t.equal(seen.content_type, 'text/plain');
  t.equal(seen.response_topic, 'paho/reply');
  t.equal(seen.correlation_data, 'id-1');
  t.equal(seen.payload_format, 1);
  t.equal(seen.bad_login_rc, 134, 'unknown user: 0x86 bad user name or password');
  t.equal(seen.v311_rc, 0, 'MQTT 3.1.1 paho client on the same listener');
});

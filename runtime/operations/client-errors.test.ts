/**
 * An unexpected error's own text (a temp file's path, a library's internals) never reaches a client: over
 * MQTT (real broker, real mqtt.js client) and HTTP (real loopback server) the answer is INTERNAL with a fixed
 * message that names the trace id, and the box's log has the original, under that trace id.
 */
import { Writable } from 'node:stream';
import type { IPublishPacket } from 'mqtt-packet';
import t from 'tap';
import { closeClient, connect, startTestBroker } from '../../app/testing/broker.js';
import { makeTestContext } from '../../app/testing/test-context.js';
import { ClawboxError, toClawboxError, toClientError } from '../errors.js';
import { HttpServer } from '../http/http-server.js';
import { json, request } from '../http/test-helpers.js';
import { createLogging } from '../logging.js';
import { errorEnvelope } from './envelope.js';
import { FrontDoor } from './front-door.js';
import { MqttAdapter } from './mqtt-adapter.js';
import { defineOperation } from './operation.js';
import { principalWithFilters } from './principal.js';

const SECRET_PATH = '/var/lib/clawbox/state/.tmp-4f2a/devices.json';
const owner = principalWithFilters('mqtt', 'owner', ['#']);

async function rejection(promise: Promise<unknown>): Promise<ClawboxError> {
  try {
    await promise;
  } catch (error) {
    return error as ClawboxError;
  }
  throw new Error('expected a rejection');
}

function setup() {
  const lines: string[] = [];
  const destination = new Writable({
    write: (chunk, _enc, done) => {
      lines.push(String(chunk));
      done();
    },
  });
  const logger = createLogging({ level: 'info', components: {}, pretty: false, destination }).forComponent('front-door');
  const frontDoor = new FrontDoor({ logger });
  frontDoor.register(
    defineOperation<{ how: 'bug' | 'typed' }, never>({
      name: 'test.fail',
      summary: 'fails as asked',
      input: { type: 'object', required: ['how'], additionalProperties: false, properties: { how: { enum: ['bug', 'typed'] } } },
      permission: () => 'fail',
      changesWorld: false,
      deadlineMs: 1000,
      handler: async (input) => {
        if (input.how === 'typed') throw new ClawboxError('DEVICE_NOT_FOUND', 'no device "lamp2"', { device: 'lamp2' });
        throw new Error(`ENOENT: no such file or directory, rename '${SECRET_PATH}'`);
      },
    }),
  );
  return { frontDoor, logger, lines };
}

t.test('toClientError: typed errors pass, anything else gets a fixed message and keeps its cause', async (t) => {
  const typed = new ClawboxError('BUSY', 'the queue is full', { retry_after_ms: 100 });
  t.equal(toClientError(typed), typed);
  const raw = new Error(`EACCES ${SECRET_PATH}`);
  const masked = toClientError(raw, 'tr-1');
  t.equal(masked.code, 'INTERNAL');
  t.equal(masked.message, "an unexpected internal error (trace tr-1); the box's log has the details");
  t.same(masked.details, { trace: 'tr-1' });
  t.equal(masked.cause, raw, 'the original stays on the error for the log');
  t.equal(toClientError(masked), masked, 'a second pass keeps the trace');
  const internal = new ClawboxError('INTERNAL', `publish failed: ${SECRET_PATH}`);
  t.notMatch(toClientError(internal).message, /var\/lib/, 'a typed INTERNAL is unexpected too');
  t.match(toClawboxError(raw).message, /var\/lib/, 'the CLI still gets the raw message (toClawboxError)');
  t.notMatch(JSON.stringify(errorEnvelope(raw)), /var\/lib/, 'the envelope never carries it');
});

t.test('the front door logs the original under its trace and rejects with the fixed message', async (t) => {
  const { frontDoor, lines } = setup();
  const error = await rejection(frontDoor.invoke('test.fail', { how: 'bug' }, { principal: owner, source: 'mqtt', trace: 'tr-77' }));
  t.equal(error.code, 'INTERNAL');
  t.notMatch(error.message, /var\/lib|ENOENT/);
  t.match(error.message, /trace tr-77/);
  const logged = lines.map((line) => JSON.parse(line) as { msg: string; trace?: string; err?: { message: string } }).find((line) => line.trace === 'tr-77');
  t.ok(logged, 'an error line with the trace');
  t.match(logged?.err?.message, SECRET_PATH, 'the log has the original');
  t.match(logged?.msg, /test\.fail failed unexpectedly/);

  const typed = await rejection(frontDoor.invoke('test.fail', { how: 'typed' }, { principal: owner, source: 'mqtt' }));
  t.same(typed.toJSON(), { device: 'lamp2', code: 'DEVICE_NOT_FOUND', message: 'no device "lamp2"' }, 'a typed error is answered as it is');
});

t.test('over MQTT: the error envelope has no path, and names the trace', async (t) => {
  const { frontDoor, logger } = setup();
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const adapter = new MqttAdapter({ frontDoor, messaging: tb.broker, requests: tb.broker, logger, maxPayloadBytes: 4096 });
  t.teardown(adapter.bridge('fail', 'test.fail'));
  const client = await connect(tb.url, { protocolVersion: 5 });
  t.teardown(() => closeClient(client));
  await client.subscribeAsync('me/replies', { qos: 1 });
  const answered = new Promise<IPublishPacket>((resolve) => client.once('message', (_topic, _payload, packet) => resolve(packet)));
  await client.publishAsync('clawbox/bridge/request/fail', '{"how":"bug"}', {
    qos: 1,
    properties: { responseTopic: 'me/replies', userProperties: { 'trace-id': 'trace-mqtt-1' } },
  });
  const text = (await answered).payload.toString();
  t.notMatch(text, /var\/lib|ENOENT/);
  t.match(JSON.parse(text), { status: 'error', error: { code: 'INTERNAL', trace: 'trace-mqtt-1', message: /trace trace-mqtt-1/ } });
});

t.test('over HTTP: a route that throws unexpectedly answers 500 INTERNAL without its text; the server log has it', async (t) => {
  const test = makeTestContext({ logLevel: 'warn' });
  const http = new HttpServer({ upgrades: {}, systemSampleMs: false });
  await http.start(test.ctx);
  t.teardown(async () => {
    await http.stop();
    test.cleanup();
  });
  test.setLifecycle('serving');
  http.addRoute('GET', '/api/broken', () => {
    throw new Error(`EISDIR: illegal operation on a directory, read '${SECRET_PATH}'`);
  });
  const broken = await request(http.port, '/api/broken');
  t.equal(broken.status, 500);
  t.notMatch(broken.body, /var\/lib|EISDIR/);
  t.match(json(broken), { status: 'error', error: { code: 'INTERNAL', message: /an unexpected internal error/ } });
  t.ok(
    test.ctx.logRing.entries().some((entry) => entry.level === 'error' && entry.msg === 'http request failed'),
    'the server logged it as an error (with the original: http-server.ts)',
  );
});

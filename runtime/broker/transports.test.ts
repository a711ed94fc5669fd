/**
 * The broker's other doors: MQTT over WebSocket (through a plain node:http server, as the runtime's HTTP
 * server does it), TLS with a certificate made for the test, and the mosquitto command-line clients.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { hashPassword } from '../auth/password.js';
import { isClawboxError } from '../errors.js';
import { Broker } from './broker.js';
import { makeTestContext } from '../../app/testing/test-context.js';
import { closeClient, collect, connect, sleep, startTestBroker } from '../../app/testing/broker.js';

const run = promisify(execFile);

async function httpServerFor(broker: Broker): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => {
    if (req.url === '/mqtt') broker.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

function closeHttp(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

t.test('MQTT over WebSocket reaches TCP clients and back', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const { server, port } = await httpServerFor(tb.broker);
  t.teardown(() => closeHttp(server));

  const ws = await connect(`ws://127.0.0.1:${port}/mqtt`);
  const tcp = await connect(tb.url);
  t.teardown(() => Promise.all([closeClient(ws), closeClient(tcp)]));
  const wsInbox = collect(ws);
  const tcpInbox = collect(tcp);
  await ws.subscribeAsync('web/to-ws', { qos: 1 });
  await tcp.subscribeAsync('web/to-tcp', { qos: 1 });
  await tcp.publishAsync('web/to-ws', 'hello ws', { qos: 1 });
  await ws.publishAsync('web/to-tcp', 'hello tcp', { qos: 2 });
  t.equal((await wsInbox.next(1))[0]?.payload, 'hello ws');
  t.equal((await tcpInbox.next(1))[0]?.payload, 'hello tcp');
  const status = (await tb.test.ctx.status.snapshot()).broker as { clients: number };
  t.equal(status.clients, 2);
});

t.test('WebSocket upgrades are refused while the broker is stopped', async (t) => {
  const broker = new Broker();
  const { server, port } = await httpServerFor(broker);
  t.teardown(() => closeHttp(server));
  const error = await connect(`ws://127.0.0.1:${port}/mqtt`, { connectTimeout: 2000 }).then(
    (client) => {
      client.end(true);
      return null;
    },
    (e: unknown) => e,
  );
  t.ok(error, 'connection refused');
});

t.test('TLS listener with a self-signed certificate', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ]);
  const tb = await startTestBroker({ config: { broker: { tls: { enabled: true, host: '127.0.0.1', cert, key } } } });
  t.teardown(() => tb.close());
  const tlsPort = tb.broker.tlsPort;
  t.type(tlsPort, 'number');
  t.not(tlsPort, tb.broker.port);

  const secure = await connect(`mqtts://127.0.0.1:${tlsPort}`, { ca: readFileSync(cert), rejectUnauthorized: true });
  const plain = await connect(tb.url);
  t.teardown(() => Promise.all([closeClient(secure), closeClient(plain)]));
  const inbox = collect(secure);
  await secure.subscribeAsync('tls/#', { qos: 1 });
  await plain.publishAsync('tls/x', 'over tls', { qos: 1 });
  t.equal((await inbox.next(1))[0]?.payload, 'over tls');

  // An untrusting client fails the handshake; the broker stays up.
  const untrusted = await connect(`mqtts://127.0.0.1:${tlsPort}`, { rejectUnauthorized: true, connectTimeout: 2000 }).then(
    (client) => {
      client.end(true);
      return null;
    },
    (e: unknown) => e,
  );
  t.ok(untrusted, 'self-signed certificate not trusted without the CA');

  await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tlsPort), '--cafile', cert, '-t', 'tls/cli', '-m', 'via mosquitto_pub', '-q', '1']);
  t.equal((await inbox.next(2))[1]?.payload, 'via mosquitto_pub', 'mosquitto_pub over TLS');
});

t.test('TLS files that cannot be loaded give TLS_INVALID naming the file', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-tls-bad-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const garbage = path.join(dir, 'garbage.pem');
  writeFileSync(garbage, 'not a certificate');
  const missing = path.join(dir, 'missing.pem');
  for (const [files, pattern] of [
    [{ cert: missing, key: garbage }, new RegExp(`cannot read TLS certificate ${missing}: file not found`)],
    [{ cert: garbage, key: garbage }, /garbage\.pem/],
  ] as const) {
    const test = makeTestContext({ config: { broker: { tls: { enabled: true, host: '127.0.0.1', ...files } } } });
    t.teardown(() => test.cleanup());
    const broker = new Broker();
    const error = await broker.start(test.ctx).then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(isClawboxError(error, 'TLS_INVALID'), 'TLS_INVALID');
    t.match((error as Error).message, pattern);
  }
});

t.test('mosquitto_pub and mosquitto_sub against the broker, with and without a user', async (t) => {
  const hash = await hashPassword('cli-pw');
  const tb = await startTestBroker({
    config: { broker: { users: [{ username: 'cli', password_hash: hash, publish: ['cli/#'], subscribe: ['cli/#'] }] } },
  });
  t.teardown(() => tb.close());
  const port = String(tb.broker.port);
  const base = ['-h', '127.0.0.1', '-p', port];

  await run('mosquitto_pub', [...base, '-t', 'cli/retained', '-m', 'from mosquitto_pub', '-r', '-q', '1']);
  const retained = await run('mosquitto_sub', [...base, '-t', 'cli/#', '-C', '1', '-W', '10', '-v'], { timeout: 15000 });
  t.equal(retained.stdout.trim(), 'cli/retained from mosquitto_pub', 'anonymous loopback pub then sub (retained)');

  // A live message to a waiting mosquitto_sub, as user "cli" with QoS 2. First let the broker see the
  // earlier clients leave, so that the subscription counted below is the new one.
  const figures = async () => (await tb.test.ctx.status.snapshot()).broker as { clients: number; subscriptions: number };
  for (let i = 0; i < 100 && (await figures()).clients > 0; i++) await sleep(50);
  const sub = spawn('mosquitto_sub', [...base, '-u', 'cli', '-P', 'cli-pw', '-t', 'cli/live', '-q', '2', '-C', '1', '-W', '10']);
  t.teardown(() => sub.kill());
  let out = '';
  sub.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => sub.once('exit', resolve));
  for (let i = 0; i < 200 && (await figures()).subscriptions === 0; i++) await sleep(50);
  await run('mosquitto_pub', [...base, '-u', 'cli', '-P', 'cli-pw', '-t', 'cli/live', '-m', 'live message', '-q', '2']);
  t.equal(await exited, 0);
  t.equal(out.trim(), 'live message');

  const refused = await run('mosquitto_pub', [...base, '-u', 'cli', '-P', 'wrong', '-t', 'cli/x', '-m', 'x']).then(
    () => null,
    (e: { stderr?: string }) => e.stderr ?? 'failed',
  );
  t.match(refused, /not authori[sz]ed|bad user name or password/i, 'wrong password refused');
});

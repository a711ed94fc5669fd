/**
 * MQTT 5 on the broker's other listeners: TLS (a certificate made for the test with openssl) and
 * WebSocket (through a plain node:http server, as the runtime's HTTP server hands upgrades over). On
 * each, an MQTT 5 request/response with properties between two mqtt.js v5 clients, and an MQTT 3.1.1
 * client on the same listener beside them.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { IClientOptions } from 'mqtt';
import type { IPublishPacket } from 'mqtt-packet';
import t, { type Test } from 'tap';
import { closeClient, collect, connect, startTestBroker } from '../../app/testing/broker.js';

const run = promisify(execFile);

/** A responder answers on the request's Response Topic with its Correlation Data; the requester checks the answer. */
async function requestResponse(t: Test, url: string, options: IClientOptions): Promise<void> {
  const responder = await connect(url, { ...options, protocolVersion: 5 });
  const requester = await connect(url, { ...options, protocolVersion: 5 });
  t.teardown(() => Promise.all([closeClient(responder), closeClient(requester)]));
  responder.on('message', (_topic, payload, packet) => {
    const { responseTopic, correlationData, userProperties } = packet.properties ?? {};
    if (!responseTopic) return;
    responder.publish(responseTopic, `echo ${payload}`, {
      qos: 1,
      properties: { correlationData, userProperties: { ...userProperties, answered: 'yes' }, contentType: 'text/plain' },
    });
  });
  await responder.subscribeAsync('svc/echo', { qos: 1 });
  const reply = new Promise<IPublishPacket>((resolve) => requester.on('message', (_topic, _payload, packet) => resolve(packet)));
  await requester.subscribeAsync('svc/replies/me', { qos: 1 });
  await requester.publishAsync('svc/echo', 'ping', {
    qos: 1,
    properties: { responseTopic: 'svc/replies/me', correlationData: Buffer.from('req-17'), userProperties: { trace: 't-1' } },
  });
  const answer = await reply;
  t.equal(answer.topic, 'svc/replies/me', 'the reply went to the response topic');
  t.equal(answer.payload.toString(), 'echo ping');
  t.equal(answer.properties?.correlationData?.toString(), 'req-17', 'with the correlation data');
  t.same(answer.properties?.userProperties, { trace: 't-1', answered: 'yes' }, 'user properties through both ways');
  t.equal(answer.properties?.contentType, 'text/plain');
}

/** An MQTT 3.1.1 client on the same listener still subscribes and publishes. */
async function oldClientWorks(t: Test, url: string, options: IClientOptions): Promise<void> {
  const old = await connect(url, { ...options, protocolVersion: 4 });
  const v5 = await connect(url, { ...options, protocolVersion: 5 });
  t.teardown(() => Promise.all([closeClient(old), closeClient(v5)]));
  const inbox = collect(old);
  await old.subscribeAsync('mixed/#', { qos: 1 });
  await v5.publishAsync('mixed/a', 'from v5', { qos: 1, properties: { userProperties: { k: 'v' } } });
  t.equal((await inbox.next(1))[0]?.payload, 'from v5', 'MQTT 3.1.1 beside MQTT 5 on the same listener');
}

t.test('MQTT 5 over TLS: request/response with properties; MQTT 3.1.1 on the same listener', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-tls5-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ]);
  const tb = await startTestBroker({ config: { broker: { tls: { enabled: true, host: '127.0.0.1', cert, key } } } });
  t.teardown(() => tb.close());
  const url = `mqtts://127.0.0.1:${tb.broker.tlsPort}`;
  const options = { ca: readFileSync(cert), rejectUnauthorized: true };
  await requestResponse(t, url, options);
  await oldClientWorks(t, url, options);
  // mosquitto_pub -V 5 over TLS reaches an MQTT 5 subscriber with its properties.
  const sub = await connect(url, { ...options, protocolVersion: 5 });
  t.teardown(() => closeClient(sub));
  const got = new Promise<IPublishPacket>((resolve) => sub.on('message', (_topic, _payload, packet) => resolve(packet)));
  await sub.subscribeAsync('tls5/#', { qos: 1 });
  await run('mosquitto_pub', [
    '-h', '127.0.0.1', '-p', String(tb.broker.tlsPort), '--cafile', cert, '-V', '5', '-t', 'tls5/cli', '-m', 'cli', '-q', '1',
    '-D', 'publish', 'user-property', 'via', 'mosquitto',
  ]);
  t.same((await got).properties?.userProperties, { via: 'mosquitto' }, 'mosquitto_pub -V 5 over TLS');
});

t.test('MQTT 5 over WebSocket: request/response with properties; MQTT 3.1.1 on the same listener', async (t) => {
  const tb = await startTestBroker();
  t.teardown(() => tb.close());
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => {
    if (req.url === '/mqtt') tb.broker.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/mqtt`;
  await requestResponse(t, url, {});
  await oldClientWorks(t, url, {});
});

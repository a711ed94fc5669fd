/**
 * A clean stop leaves every device `offline` (retained) before the broker closes: the real runtime with
 * its demo devices, SIGTERM, then what a subscriber saw and what the broker's store retained.
 */
import path from 'node:path';
import levelPersistence from 'aedes-persistence-level';
import { Level } from 'level';
import mqtt from 'mqtt';
import t from 'tap';
import { startRuntime } from '../../test/runtime-process.js';

interface RetainedReader {
  createRetainedStream(pattern: string): AsyncIterable<{ topic: string; payload: Buffer }>;
  destroy(): Promise<void>;
}

t.test('SIGTERM: every device is offline, retained, before the broker closes', async (t) => {
  const runtime = await startRuntime({ startTimeoutMs: 60_000 });
  t.teardown(() => runtime.child.kill('SIGKILL'));
  const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${runtime.mqttPort}`, { reconnectPeriod: 0 });
  const last = new Map<string, string>();
  watcher.on('message', (topic, payload) => last.set(topic, payload.toString()));
  await watcher.subscribeAsync('clawbox/+/availability', { qos: 1 });
  // The demo devices come online as they start; wait for the bridge to serve and them to report.
  const online = await runtime.waitForLog((l) => /driving \d+ device/.test(l.msg));
  const devices = (online.devices as string[] | undefined) ?? [];
  t.ok(devices.length > 0, `demo devices: ${devices.join(', ')}`);
  const topics = devices.map((id) => `clawbox/${id}/availability`);
  const allOnline = new Promise<void>((resolve) => {
    const check = (): void => {
      if (topics.every((topic) => last.get(topic) === 'online')) resolve();
      else watcher.once('message', check);
    };
    check();
  });
  await allOnline;

  const closed = new Promise<void>((resolve) => watcher.once('close', () => resolve()));
  runtime.child.kill('SIGTERM');
  t.same(await runtime.exited, { code: 0, signal: null }, 'clean exit');
  await closed; // everything the broker sent before closing has been read
  for (const topic of topics) t.equal(last.get(topic), 'offline', `${topic}: offline reached subscribers`);

  const store = levelPersistence(new Level(path.join(runtime.stateDir, 'broker'))) as unknown as RetainedReader;
  const retained = new Map<string, string>();
  for await (const packet of store.createRetainedStream('clawbox/+/availability')) retained.set(packet.topic, packet.payload.toString());
  await store.destroy();
  for (const topic of topics) t.equal(retained.get(topic), 'offline', `${topic}: offline retained`);
  watcher.end(true);
});

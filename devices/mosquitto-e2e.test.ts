/**
 * End to end with the Mosquitto command-line clients (another MQTT implementation than mqtt.js):
 * mosquitto_pub drives set, cmnd and bridge topics; mosquitto_sub reads the answers.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { demoDevices } from './demo.js';
import { connectClient, startStack } from './fixtures/stack.js';

const run = promisify(execFile);

/** Subscribes with mosquitto_sub (-R: skip retained), publishes until one answer arrives, returns it. */
async function exchange(port: number, answerTopic: string, topic: string, payload: string): Promise<string> {
  const sub: ChildProcess = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-t', answerTopic, '-C', '1', '-R', '-W', '8']);
  let out = '';
  sub.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const done = new Promise<number | null>((resolve) => sub.once('exit', resolve));
  // mosquitto_sub gives no sign that it has subscribed: publish again until it has its answer.
  for (let i = 0; i < 16 && sub.exitCode === null; i++) {
    await new Promise((r) => setTimeout(r, 300));
    if (sub.exitCode !== null) break;
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-t', topic, '-m', payload]);
  }
  await done;
  return out.trim();
}

t.test('mosquitto_pub / mosquitto_sub drive every topic form', async (t) => {
  const stack = await startStack(t, { config: { devices: demoDevices() } });
  const port = stack.broker.port;
  // Drivers report their first state after start returns: wait for it, or it could be taken for an answer.
  const watcher = await connectClient(t, stack.url);
  await watcher.subscribe('clawbox/+');
  for (const device of demoDevices()) await watcher.waitFor(`clawbox/${device.id}`, () => true, undefined, true);

  const state = await exchange(port, 'clawbox/light', 'clawbox/light/set', '{"state":"ON","brightness":30}');
  t.same(JSON.parse(state), { state: 'ON', brightness: 30 });

  const error = await exchange(port, 'clawbox/light/error', 'clawbox/light/set', '{"brightness":300}');
  t.match(JSON.parse(error), { code: 'VALUE_OUT_OF_RANGE' });

  const result = await exchange(port, 'stat/lamp/RESULT', 'cmnd/lamp/POWER', 'ON');
  t.same(JSON.parse(result), { POWER: 'ON' });

  const response = await exchange(port, 'clawbox/bridge/response/devices', 'clawbox/bridge/request/devices', '{"transaction":"m1"}');
  const body = JSON.parse(response) as { status: string; transaction: string; data: Array<{ id: string }> };
  t.equal(body.status, 'ok');
  t.equal(body.transaction, 'm1');
  t.same(body.data.map((d) => d.id), ['lamp', 'light', 'thermostat', 'temperature', 'cover']);

  const retained = await run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-t', 'clawbox/lamp/availability', '-C', '1', '-W', '5']);
  t.equal(retained.stdout.trim(), 'online', 'availability is retained');
});

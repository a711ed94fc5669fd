/**
 * A device state that a client has seen survives kill -9, also while commands stream in: the device
 * takes its next command before the last state is on disk, and the state's write is group-committed, so
 * this checks that no state is published before the write that holds it is synced. The runtime's device
 * half runs as its own process (fixtures/state-runtime.ts) on a state dir that outlives it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import t, { type Test } from 'tap';

const RUNTIME = fileURLToPath(new URL('./fixtures/state-runtime.ts', import.meta.url));
const DEVICES = 4;

async function startRuntime(t: Test, stateDir: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', RUNTIME, stateDir, String(DEVICES)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const ready = /ready (\d+)/.exec(out);
      if (ready) resolve(Number(ready[1]));
    });
    child.once('exit', (code, signal) => reject(new Error(`runtime exited (${code ?? signal}) before it was ready`)));
  });
  return { child, port };
}

for (let round = 1; round <= 2; round++) {
  t.test(`every acknowledged device state survives kill -9 during a burst (round ${round})`, async (t) => {
    const stateDir = mkdtempSync(path.join(tmpdir(), 'clawbox-state-crash-'));
    t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
    const first = await startRuntime(t, stateDir);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${first.port}`, { reconnectPeriod: 0 });
    t.teardown(() => client.end(true));
    await client.subscribeAsync('clawbox/+');

    // Per device, brightness 1, 2, ... 99 in order: the highest one seen is the newest acknowledged (a
    // simulated dimmer starts at 100, so that value is never sent and the retained start states are skipped).
    const acknowledged = new Map<string, number>();
    let seen = 0;
    const killAfter = round * 50;
    const killed = new Promise<void>((resolve) => {
      client.on('message', (topic, payload) => {
        const id = topic.split('/')[1]!;
        const brightness = (JSON.parse(payload.toString()) as { brightness?: number }).brightness;
        if (typeof brightness !== 'number' || brightness < 1 || brightness > 99) return;
        acknowledged.set(id, Math.max(acknowledged.get(id) ?? 0, brightness));
        seen++;
        // In the middle of the burst, with commands still queued and writes in flight.
        if (seen === killAfter) {
          first.child.kill('SIGKILL');
          resolve();
        }
      });
    });
    // Paced (one command per device every 2 ms), so that acknowledgements follow the writes closely
    // instead of trailing a backlog that is long on disk by the time of the kill.
    let value = 0;
    const sender = setInterval(() => {
      if (++value > 99) return clearInterval(sender);
      for (let d = 0; d < DEVICES; d++) client.publish(`clawbox/lamp${d}/set`, JSON.stringify({ brightness: value }));
    }, 2);
    t.teardown(() => clearInterval(sender));
    await killed;
    clearInterval(sender);
    const lastSeen = new Map(acknowledged);
    await new Promise((resolve) => first.child.once('exit', resolve));
    client.end(true);
    t.ok(lastSeen.size > 0, `${seen} states acknowledged before the kill`);

    const second = await startRuntime(t, stateDir);
    const reader = await mqtt.connectAsync(`mqtt://127.0.0.1:${second.port}`, { reconnectPeriod: 0 });
    t.teardown(() => reader.end(true));
    const restored = new Map<string, number>();
    const allRetained = new Promise<void>((resolve) => {
      reader.on('message', (topic, payload) => {
        const state = JSON.parse(payload.toString()) as { brightness?: number };
        if (typeof state.brightness === 'number') restored.set(topic.split('/')[1]!, state.brightness);
        if (restored.size === DEVICES) resolve();
      });
    });
    await reader.subscribeAsync('clawbox/+');
    await allRetained;
    for (const [id, value] of lastSeen) {
      t.ok((restored.get(id) ?? 0) >= value, `${id}: restored brightness ${restored.get(id)} >= last acknowledged ${value}`);
    }
    second.child.kill('SIGKILL');
  });
}

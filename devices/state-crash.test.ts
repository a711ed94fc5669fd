/**
 * A device state that a client has seen survives kill -9, also while commands stream in: the device
 * takes its next command before the last state is on disk, and the state's write is group-committed, so
 * this checks that no state is published before the write that holds it is synced. The broker's retained
 * copy of a state is written behind the journal (it may lag it after a crash): the last test checks that
 * what a subscriber finds after a restart is the journal's state. The runtime's device half runs as
 * its own process (fixtures/state-runtime.ts) on a state dir that outlives it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import t, { type Test } from 'tap';

const RUNTIME = fileURLToPath(new URL('./fixtures/state-runtime.ts', import.meta.url));
const DEVICES = 4;

async function startRuntime(t: Test, stateDir: string, devices = DEVICES): Promise<{ child: ChildProcess; port: number; overlapped: Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', RUNTIME, stateDir, String(devices)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let sawOverlap: () => void = () => {};
  // The runtime says when a journal append first started while another was in flight.
  const overlapped = new Promise<void>((resolve) => {
    sawOverlap = resolve;
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (/^overlap$/m.test(out)) sawOverlap();
      const ready = /ready (\d+)/.exec(out);
      if (ready) resolve(Number(ready[1]));
    });
    child.once('exit', (code, signal) => reject(new Error(`runtime exited (${code ?? signal}) before it was ready`)));
  });
  return { child, port, overlapped };
}

/** Bursts tried per round: one where the journal's appends never overlapped did not test what it is for. */
const BURSTS = 5;

/**
 * One runtime on a fresh state dir, a paced burst of commands, and kill -9 in the middle of it once journal
 * appends have overlapped (two in flight at once). Returns the newest acknowledged state per device, or null
 * (after killing the runtime) when the whole burst passed without an overlap.
 */
async function burstAndKill(t: Test, killAfter: number): Promise<{ stateDir: string; lastSeen: Map<string, number>; seen: number } | null> {
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
  let overlapped = false;
  void first.overlapped.then(() => {
    overlapped = true;
  });
  const ended = new Promise<boolean>((resolve) => {
    client.on('message', (topic, payload) => {
      const id = topic.split('/')[1]!;
      const brightness = (JSON.parse(payload.toString()) as { brightness?: number }).brightness;
      if (typeof brightness !== 'number' || brightness < 1 || brightness > 99) return;
      acknowledged.set(id, Math.max(acknowledged.get(id) ?? 0, brightness));
      seen++;
      // In the middle of the burst, with commands still queued and writes in flight.
      const last = seen === 99 * DEVICES;
      if (((seen >= killAfter && overlapped) || last) && first.child.signalCode === null) {
        first.child.kill('SIGKILL');
        resolve(overlapped);
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
  const killedWhileOverlapped = await ended;
  clearInterval(sender);
  const lastSeen = new Map(acknowledged);
  await new Promise((resolve) => first.child.once('exit', resolve));
  client.end(true);
  return killedWhileOverlapped ? { stateDir, lastSeen, seen } : null;
}

for (let round = 1; round <= 2; round++) {
  t.test(`every acknowledged device state survives kill -9 during a burst (round ${round})`, async (t) => {
    let burst: Awaited<ReturnType<typeof burstAndKill>> = null;
    for (let attempt = 1; attempt <= BURSTS && !burst; attempt++) burst = await burstAndKill(t, round * 50);
    t.ok(burst, `the kill came while journal appends overlapped (two in flight at once), within ${BURSTS} bursts`);
    if (!burst) return;
    const { stateDir, lastSeen, seen } = burst;
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

/** The retained state of each of `ids` as a fresh subscriber finds it (resolves once all have one). */
async function retainedStates(t: Test, port: number, ids: string[]): Promise<Map<string, Record<string, unknown>>> {
  const reader = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
  t.teardown(() => reader.end(true));
  const states = new Map<string, Record<string, unknown>>();
  const all = new Promise<void>((resolve) => {
    reader.on('message', (topic, payload) => {
      const id = topic.split('/')[1]!;
      if (ids.includes(id) && payload.length > 0) states.set(id, JSON.parse(payload.toString()) as Record<string, unknown>);
      if (states.size === ids.length) resolve();
    });
  });
  await reader.subscribeAsync(ids.map((id) => `clawbox/${id}`));
  await all;
  reader.end(true);
  return states;
}

/** The newest state (highest number) the device journal holds for `id` (undefined if it holds none). */
function journaledState(stateDir: string, id: string): Record<string, unknown> | undefined {
  let last: { seq: number; state: Record<string, unknown> } | undefined;
  // Both journals (they take turns); lines end at a newline, zeros are the room kept ahead of the appends.
  const text = ['devices.journal', 'devices.journal.2']
    .map((name) => path.join(stateDir, name))
    .filter((file) => existsSync(file))
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n');
  for (const line of text.split(/[\n\0]+/)) {
    if (!line) continue;
    const record = JSON.parse(line) as { seq: number; id: string; state: Record<string, unknown> };
    if (record.id === id && (!last || record.seq > last.seq)) last = record;
  }
  return last?.state;
}

t.test("kill -9 right after the last state was seen: a subscriber finds the journal's state after the restart, also where the broker's copy is older", async (t) => {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'clawbox-state-crash-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const first = await startRuntime(t, stateDir, 1);
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${first.port}`, { reconnectPeriod: 0 });
  t.teardown(() => client.end(true));
  await client.subscribeAsync('clawbox/lamp0');
  const LAST = 40;
  const sawLast = new Promise<void>((resolve) => {
    client.on('message', (_topic, payload) => {
      if ((JSON.parse(payload.toString()) as { brightness?: number }).brightness !== LAST) return;
      // Killed at once: the broker's write-behind copy of the last states is most likely not written yet.
      first.child.kill('SIGKILL');
      resolve();
    });
  });
  for (let value = 1; value <= LAST; value++) client.publish('clawbox/lamp0/set', JSON.stringify({ brightness: value }));
  await sawLast;
  await new Promise((resolve) => first.child.once('exit', resolve));
  client.end(true);
  t.equal(journaledState(stateDir, 'lamp0')?.brightness, LAST, 'the journal holds the last state a client saw');

  const second = await startRuntime(t, stateDir, 1);
  const restored = await retainedStates(t, second.port, ['lamp0']);
  t.equal(restored.get('lamp0')?.brightness, LAST, 'a subscriber after the restart finds it retained');
  // A clean stop: the broker's store now holds that state retained.
  const stopped = new Promise((resolve) => second.child.once('exit', resolve));
  second.child.kill('SIGTERM');
  await stopped;

  // What a crash can leave: the journal has a newer state than the broker's store (written behind it).
  appendFileSync(
    path.join(stateDir, 'devices.journal'),
    `${JSON.stringify({ id: 'lamp0', state: { state: 'ON', brightness: 42 }, updated_at: Date.now() })}\n`,
  );
  const third = await startRuntime(t, stateDir, 1);
  const replaced = await retainedStates(t, third.port, ['lamp0']);
  t.equal(replaced.get('lamp0')?.brightness, 42, "the journal's state, not the broker's older copy");
  third.child.kill('SIGKILL');
});

/**
 * kill -9 rounds against the real runtime: bursts of acknowledged QoS 1 messages, a kill at a random
 * point, a restart on the same state directory, and a check that every acknowledged message is still
 * there. Shared by the suite's short run (crash.test.ts) and the long one (`npm run bench:broker-crash`).
 *
 * One round:
 * 1. a publisher sends `burst` QoS 1 messages, retained, on `crash/<round>/<i mod 8>` (at most `window`
 *    in flight); a persistent session (`crash-sub`, subscribed to `crash/#` at QoS 1) is offline, so each
 *    message is also queued for it;
 * 2. after the k-th PUBACK the runtime gets SIGKILL: k random in odd rounds, the last message of the burst
 *    in even rounds (kill right after the burst); PUBACKs already on their way count as acknowledged too;
 * 3. the runtime starts again on the same state; `crash-sub` reconnects (session present expected) and
 *    must receive every acknowledged message of the round; a fresh client subscribing to
 *    `crash/<round>/+` must find, per topic, the last acknowledged value or a later one retained.
 *
 * The state grows from round to round (retained topics of every round, the demo devices' states), so the
 * restarts load a realistic store. Waits are for what must arrive, with a generous deadline as failure.
 */
import type { ChildProcess } from 'node:child_process';
import mqtt, { type MqttClient } from 'mqtt';
import { seededRandom } from '../../seeded-random.js';

export interface Runtime {
  child: ChildProcess;
  mqttPort: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface CrashOptions {
  /** Starts the runtime on `stateDir` and resolves once it serves. */
  start(stateDir: string): Promise<Runtime>;
  stateDir: string;
  rounds: number;
  burst: number;
  window?: number;
  seed: number;
  /** Runs once on the first runtime before the rounds (e.g. to build up a larger stored state). */
  prepare?(mqttPort: number): Promise<void>;
  /** How long to wait for what must arrive after a restart before calling it lost. */
  deliveryTimeoutMs?: number;
  progress?(line: string): void;
}

export interface RoundResult {
  round: number;
  /** PUBACKs after which the kill was sent (the burst size: right after the burst). */
  killAfter: number;
  published: number;
  acknowledged: number;
  /** Acknowledged messages that did not reach the persistent session after the restart. */
  lost: string[];
  /** Topics whose retained value after the restart is older than the last acknowledged one (or gone). */
  staleRetained: string[];
  sessionPresent: boolean;
  /** From spawning the restarted runtime until it serves. */
  restartMs: number;
}

const TOPICS = 8;

/**
 * Connects; `sessionPresent` is the CONNACK's flag. `onMessage` is attached before the CONNACK: a queued
 * message can arrive with it and mqtt.js acknowledges it before a listener added afterwards would run.
 */
function connect(
  port: number,
  options: mqtt.IClientOptions = {},
  onMessage?: (topic: string, payload: Buffer, packet: { retain: boolean }) => void,
): Promise<MqttClient & { sessionPresent: boolean }> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
  if (onMessage) client.on('message', onMessage);
  return new Promise((resolve, reject) => {
    client.once('connect', (connack) => {
      client.removeListener('error', reject);
      resolve(Object.assign(client, { sessionPresent: connack.sessionPresent === true }));
    });
    client.once('error', reject);
  });
}

function end(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.end(true, {}, () => resolve()));
}

/** Resolves when `done()` holds after a message, or with false after `ms`. */
function waitFor(client: MqttClient, done: () => boolean, ms: number): Promise<boolean> {
  if (done()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.removeListener('message', check);
      resolve(false);
    }, ms);
    const check = (): void => {
      if (!done()) return;
      clearTimeout(timer);
      client.removeListener('message', check);
      resolve(true);
    };
    client.on('message', check);
  });
}

const indexOf = (payload: string): number => Number(payload.slice(payload.indexOf(':') + 1));

export async function runCrashRounds(options: CrashOptions): Promise<RoundResult[]> {
  const { stateDir, rounds, burst, seed } = options;
  const window = options.window ?? 100;
  const deliveryTimeoutMs = options.deliveryTimeoutMs ?? 30_000;
  const random = seededRandom(seed);
  const results: RoundResult[] = [];
  let runtime = await options.start(stateDir);
  try {
    await options.prepare?.(runtime.mqttPort);
    const setup = await connect(runtime.mqttPort, { clientId: 'crash-sub', clean: false });
    await setup.subscribeAsync('crash/#', { qos: 1 });
    await end(setup);

    for (let round = 1; round <= rounds; round++) {
      const killAfter = round % 2 === 0 ? burst : 1 + Math.floor(random() * burst);
      const acked = new Set<number>();
      let published = 0;
      const pub = await connect(runtime.mqttPort);
      const victim = runtime;
      let killed = false;
      await new Promise<void>((resolve) => {
        const finish = (): void => {
          if (!killed) {
            killed = true;
            victim.child.kill('SIGKILL');
          }
          resolve();
        };
        pub.once('close', finish);
        const pump = (): void => {
          while (!killed && published < burst && published - acked.size < window) {
            const i = published++;
            pub.publish(`crash/${round}/${i % TOPICS}`, `${round}:${i}`, { qos: 1, retain: true }, (error) => {
              if (error) return;
              acked.add(i);
              if (acked.size >= killAfter) finish();
              else if (published - acked.size < window / 2) pump();
            });
          }
        };
        pump();
      });
      await victim.exited;
      // Acknowledgements already in the socket are read until the connection closes; they count too.
      await new Promise<void>((resolve) => (pub.connected ? pub.once('close', () => resolve()) : resolve()));
      await end(pub);

      const began = performance.now();
      runtime = await options.start(stateDir);
      const restartMs = performance.now() - began;

      const expected = [...acked].map((i) => `${round}:${i}`);
      const received = new Set<string>();
      const sub = await connect(runtime.mqttPort, { clientId: 'crash-sub', clean: false }, (_topic, payload) =>
        received.add(payload.toString()),
      );
      const { sessionPresent } = sub;
      await waitFor(sub, () => expected.every((p) => received.has(p)), deliveryTimeoutMs);
      await end(sub);
      const lost = expected.filter((p) => !received.has(p));

      // The last acknowledged index per topic; the retained value must be that one or a later one.
      const lastAcked = new Map<string, number>();
      for (const i of acked) {
        const topic = `crash/${round}/${i % TOPICS}`;
        if ((lastAcked.get(topic) ?? -1) < i) lastAcked.set(topic, i);
      }
      const retained = new Map<string, number>();
      const reader = await connect(runtime.mqttPort, {}, (topic, payload, packet) => {
        if (packet.retain) retained.set(topic, indexOf(payload.toString()));
      });
      const seen = waitFor(reader, () => [...lastAcked.keys()].every((topic) => retained.has(topic)), deliveryTimeoutMs);
      await reader.subscribeAsync(`crash/${round}/+`, { qos: 1 });
      await seen;
      await end(reader);
      const staleRetained = [...lastAcked].filter(([topic, i]) => (retained.get(topic) ?? -1) < i).map(([topic]) => topic);

      const result: RoundResult = {
        round,
        killAfter,
        published,
        acknowledged: acked.size,
        lost,
        staleRetained,
        sessionPresent,
        restartMs: Math.round(restartMs),
      };
      results.push(result);
      options.progress?.(
        `round ${round}/${rounds}: killed after ${acked.size}/${published} acked (k=${killAfter}), lost ${lost.length}, ` +
          `stale retained ${staleRetained.length}, session present ${sessionPresent}, restart ${result.restartMs} ms`,
      );
    }
  } finally {
    runtime.child.kill('SIGTERM');
    await runtime.exited;
  }
  return results;
}

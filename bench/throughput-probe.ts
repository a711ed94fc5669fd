/**
 * What node/V8 flags cost in throughput, for bench:footprint: two running runtimes (the same checkout, one
 * started with the flags) take turns at the same short loads, round by round, so a busy machine weighs on
 * both alike. Per round and runtime:
 * - broker: one mqtt.js publisher sends QoS 0 messages as fast as the socket takes them to one subscriber
 *   through the runtime's broker; messages delivered per second.
 * - commands: closed-loop device commands (`clawbox/lamp/set`, one at a time, the next when the lamp's state
 *   message arrives); latency median and p99.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { RuntimeProcess } from './runtime-process.js';
import { median, percentile } from './stats.js';

const BROKER_MESSAGES = 20_000;
const COMMANDS = 300;
const ROUND_TIMEOUT_MS = 60_000;

export interface ThroughputFigures {
  broker_msgs_per_s: number;
  broker_rounds: number[];
  command_p50_ms: number;
  command_p99_ms: number;
  command_rounds_p99: number[];
}

function connect(port: number, clientId: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({ host: '127.0.0.1', port, clientId, reconnectPeriod: 0, connectTimeout: 30_000 });
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}

/** Messages per second from one publisher to one subscriber, QoS 0. */
async function brokerRound(port: number, tag: string): Promise<number> {
  const sub = await connect(port, `tp-sub-${tag}`);
  const pub = await connect(port, `tp-pub-${tag}`);
  try {
    await sub.subscribeAsync(`bench/tp/${tag}`, { qos: 0 });
    const payload = Buffer.alloc(64, 'x');
    let received = 0;
    const t0 = performance.now();
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`broker round: ${received} of ${BROKER_MESSAGES} in ${ROUND_TIMEOUT_MS} ms`)), ROUND_TIMEOUT_MS);
      sub.on('message', () => {
        if (++received === BROKER_MESSAGES) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    for (let i = 0; i < BROKER_MESSAGES; i++) {
      // Waits for the socket to drain now and then, so the publisher's own buffer does not grow unbounded.
      if (i % 500 === 499) await pub.publishAsync(`bench/tp/${tag}`, payload, { qos: 0 });
      else pub.publish(`bench/tp/${tag}`, payload, { qos: 0 });
    }
    await done;
    return BROKER_MESSAGES / ((performance.now() - t0) / 1000);
  } finally {
    await Promise.all([sub.endAsync(true), pub.endAsync(true)]);
  }
}

/** Latencies (ms) of closed-loop lamp commands: each waits for the lamp's next state message. */
async function commandRound(port: number, tag: string): Promise<number[]> {
  const client = await connect(port, `tp-cmd-${tag}`);
  try {
    let answer: (() => void) | null = null;
    client.on('message', () => answer?.());
    await client.subscribeAsync(['clawbox/lamp', 'clawbox/lamp/error']);
    const latencies: number[] = [];
    for (let i = 0; i < COMMANDS; i++) {
      const t0 = performance.now();
      const answered = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('a lamp command had no answer in 10 s')), 10_000);
        answer = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      client.publish('clawbox/lamp/set', JSON.stringify({ state: i % 2 ? 'ON' : 'OFF' }));
      await answered;
      answer = null;
      latencies.push(performance.now() - t0);
    }
    return latencies;
  } finally {
    await client.endAsync(true);
  }
}

/** Runs `rounds` alternating rounds on each runtime (a, b, b, a, ...); figures per runtime, in the order given. */
export async function compareThroughput(runtimes: readonly RuntimeProcess[], rounds: number, log: (line: string) => void): Promise<ThroughputFigures[]> {
  const broker: number[][] = runtimes.map(() => []);
  const commands: number[][] = runtimes.map(() => []);
  const roundP99: number[][] = runtimes.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...runtimes.keys()].reverse() : [...runtimes.keys()];
    for (const i of order) {
      const rt = runtimes[i]!;
      broker[i]!.push(Math.round(await brokerRound(rt.mqttPort, `${i}-${r}`)));
      const latencies = (await commandRound(rt.mqttPort, `${i}-${r}`)).sort((x, y) => x - y);
      commands[i]!.push(...latencies);
      roundP99[i]!.push(Math.round(percentile(latencies, 99) * 100) / 100);
    }
    log(`throughput round ${r + 1}/${rounds}: broker msgs/s ${broker.map((b) => b.at(-1)).join(' vs ')}`);
  }
  return runtimes.map((_, i) => {
    const sorted = [...commands[i]!].sort((x, y) => x - y);
    return {
      broker_msgs_per_s: Math.round(median(broker[i]!)),
      broker_rounds: broker[i]!,
      command_p50_ms: Math.round(percentile(sorted, 50) * 100) / 100,
      command_p99_ms: Math.round(percentile(sorted, 99) * 100) / 100,
      command_rounds_p99: roundP99[i]!,
    };
  });
}

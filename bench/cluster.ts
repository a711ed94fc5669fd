/**
 * `npm run bench:cluster`: what the Redis hop of cluster mode costs, against a single replica without
 * Redis, in one invocation on one machine.
 *
 * - single: one clawbox, cluster mode off (its LevelDB store, in-process fan-out): the baseline;
 * - redis-1: one clawbox in cluster mode on a local redis-server (appendonly, appendfsync always);
 * - redis-3: three clawbox replicas on that Redis; publisher and subscriber on different replicas.
 *
 * Every runtime, Redis and the clients run on this one machine, so three replicas share its cores: the
 * figures show the cost per message of going through Redis, not the scale-out of three real nodes.
 *
 * Measures per scenario and round: QoS 0 and QoS 1 throughput (BENCH_MESSAGES x 64-byte messages, one
 * publisher, one clean-session subscriber, QoS 1 with 10 in flight), the one-way latency of sequential
 * QoS 1 messages (publish to arrival, same clock; p50 and p99), and for redis-3 the aggregate QoS 1
 * throughput of three pairs at once (publisher on replica i, subscriber on replica i+1). Prints medians,
 * the per-message cost of the Redis hop (1/throughput difference) and writes bench/results/cluster-<time>.json.
 *
 * Environment: BENCH_MESSAGES (default 5000), BENCH_ROUNDS (2), BENCH_LATENCY (500).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { startRedisServer } from '../cluster/testing/redis-server.js';
import { type RuntimeProcess, startRuntime } from '../test/runtime-process.js';
import { machineFacts, median, percentile } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 5000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const LATENCY = Number(process.env.BENCH_LATENCY ?? 500);
const WINDOW = 10;
const PAYLOAD = Buffer.alloc(64, 'x');

type Scenario = 'single' | 'redis-1' | 'redis-3';

interface Round {
  scenario: Scenario;
  round: number;
  qos0_per_s: number;
  qos1_per_s: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  aggregate_qos1_per_s?: number;
}

const connect = (r: RuntimeProcess) => mqtt.connectAsync(`mqtt://127.0.0.1:${r.mqttPort}`, { reconnectPeriod: 0 });

/** Subscribes and waits until a probe published through `pub` arrives (cross-replica subscriptions propagate). */
async function pair(pubAt: RuntimeProcess, subAt: RuntimeProcess, topic: string): Promise<{ pub: MqttClient; sub: MqttClient }> {
  const sub = await connect(subAt);
  await sub.subscribeAsync(`${topic}/#`, { qos: 1 });
  const pub = await connect(pubAt);
  const seen = new Promise<void>((resolve) => sub.on('message', (t) => t === `${topic}/probe` && resolve()));
  const timer = setInterval(() => void pub.publishAsync(`${topic}/probe`, 'p', { qos: 0 }), 100);
  await seen;
  clearInterval(timer);
  sub.removeAllListeners('message');
  return { pub, sub };
}

/** Messages per second from the first publish until the subscriber has all of them. */
async function throughput(pub: MqttClient, sub: MqttClient, topic: string, qos: 0 | 1): Promise<number> {
  let received = 0;
  const done = new Promise<void>((resolve) => {
    sub.on('message', (t) => {
      if (t === `${topic}/m` && ++received === MESSAGES) resolve();
    });
  });
  const began = performance.now();
  if (qos === 0) {
    for (let i = 0; i < MESSAGES; i++) pub.publish(`${topic}/m`, PAYLOAD, { qos: 0 });
  } else {
    let sent = 0;
    const lane = async () => {
      while (sent < MESSAGES) {
        sent++;
        await pub.publishAsync(`${topic}/m`, PAYLOAD, { qos: 1 });
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, lane));
  }
  await done;
  const seconds = (performance.now() - began) / 1000;
  sub.removeAllListeners('message');
  return MESSAGES / seconds;
}

async function latency(pub: MqttClient, sub: MqttClient, topic: string): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < LATENCY; i++) {
    const arrived = new Promise<void>((resolve) => sub.once('message', () => resolve()));
    const began = performance.now();
    await pub.publishAsync(`${topic}/l`, PAYLOAD, { qos: 1 });
    await arrived;
    samples.push(performance.now() - began);
  }
  return samples.sort((a, b) => a - b);
}

async function measure(scenario: Scenario, replicas: RuntimeProcess[], round: number): Promise<Round> {
  const from = replicas[0]!;
  const to = replicas[replicas.length > 1 ? 1 : 0]!;
  const topic = `bench/${scenario}/${round}`;
  const { pub, sub } = await pair(from, to, topic);
  const qos0 = await throughput(pub, sub, `${topic}/q0`, 0);
  const qos1 = await throughput(pub, sub, `${topic}/q1`, 1);
  const lat = await latency(pub, sub, `${topic}/lat`);
  await Promise.all([pub.endAsync(), sub.endAsync()]);
  const result: Round = {
    scenario,
    round,
    qos0_per_s: Math.round(qos0),
    qos1_per_s: Math.round(qos1),
    latency_p50_ms: Number(percentile(lat, 50).toFixed(2)),
    latency_p99_ms: Number(percentile(lat, 99).toFixed(2)),
  };
  if (replicas.length === 3) {
    const pairs = await Promise.all(replicas.map((r, i) => pair(r, replicas[(i + 1) % 3]!, `${topic}/agg${i}`)));
    const began = performance.now();
    await Promise.all(pairs.map((p, i) => throughput(p.pub, p.sub, `${topic}/agg${i}`, 1)));
    result.aggregate_qos1_per_s = Math.round((3 * MESSAGES) / ((performance.now() - began) / 1000));
    await Promise.all(pairs.flatMap((p) => [p.pub.endAsync(), p.sub.endAsync()]));
  }
  return result;
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg();
  const redis = await startRedisServer();
  const cluster = (id: string): Record<string, string> => ({
    CLAWBOX_CLUSTER_ENABLED: 'true',
    CLAWBOX_CLUSTER_REPLICA_ID: id,
    CLAWBOX_CLUSTER_REDIS_URL: redis.url,
  });
  const start = (env: Record<string, string>) => startRuntime({ env: { CLAWBOX_LOG_LEVEL: 'info', ...env }, startTimeoutMs: 120_000 });
  const results: Round[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const scenario of ['single', 'redis-1', 'redis-3'] as const) {
        const count = scenario === 'redis-3' ? 3 : 1;
        const replicas = await Promise.all(
          Array.from({ length: count }, (_, i) => start(scenario === 'single' ? {} : cluster(`r${i}`))),
        );
        try {
          const r = await measure(scenario, replicas, round);
          results.push(r);
          process.stderr.write(`round ${round} ${scenario}: ${JSON.stringify(r)}\n`);
        } finally {
          for (const r of replicas) r.child.kill('SIGKILL');
          await Promise.all(replicas.map((r) => r.exited));
        }
      }
    }
  } finally {
    await redis.destroy();
  }

  const of = (s: Scenario, pick: (r: Round) => number | undefined) =>
    Number(median(results.filter((r) => r.scenario === s && pick(r) !== undefined).map((r) => pick(r)!)).toFixed(2));
  const table = (['single', 'redis-1', 'redis-3'] as const).map((s) => ({
    scenario: s,
    qos0_per_s: of(s, (r) => r.qos0_per_s),
    qos1_per_s: of(s, (r) => r.qos1_per_s),
    latency_p50_ms: of(s, (r) => r.latency_p50_ms),
    latency_p99_ms: of(s, (r) => r.latency_p99_ms),
    aggregate_qos1_per_s: s === 'redis-3' ? of(s, (r) => r.aggregate_qos1_per_s) : null,
  }));
  const base = table[0]!;
  const hop = table.slice(1).map((row) => ({
    scenario: row.scenario,
    // Extra time per message on the publish-to-delivery path, from the throughput difference.
    qos0_us_per_message: Math.round(1e6 / row.qos0_per_s - 1e6 / base.qos0_per_s),
    qos1_us_per_message: Math.round(1e6 / row.qos1_per_s - 1e6 / base.qos1_per_s),
    latency_p50_added_ms: Number((row.latency_p50_ms - base.latency_p50_ms).toFixed(2)),
  }));
  const machine = machineFacts(loadBefore);
  console.log(`\nbench:cluster — ${MESSAGES} messages x ${ROUNDS} rounds, medians; everything on this one machine (${machine.cpu_model}, ${machine.cpus} CPUs, load ${machine.load_average_before.join('/')} before, ${machine.load_average_after.join('/')} after)`);
  console.log('scenario   QoS0 msg/s  QoS1 msg/s  p50 ms  p99 ms  3-pair QoS1 msg/s');
  for (const row of table) {
    console.log(
      `${row.scenario.padEnd(10)} ${String(row.qos0_per_s).padStart(10)}  ${String(row.qos1_per_s).padStart(10)}  ${row.latency_p50_ms.toFixed(2).padStart(6)}  ${row.latency_p99_ms.toFixed(2).padStart(6)}  ${row.aggregate_qos1_per_s === null ? '-' : String(row.aggregate_qos1_per_s).padStart(10)}`,
    );
  }
  console.log('\nRedis hop against single (per message):');
  for (const h of hop) console.log(`${h.scenario.padEnd(10)} QoS0 +${h.qos0_us_per_message} µs  QoS1 +${h.qos1_us_per_message} µs  p50 +${h.latency_p50_added_ms} ms`);
  const outDir = path.join(ROOT, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `cluster-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ when: new Date().toISOString(), machine, settings: { MESSAGES, ROUNDS, LATENCY, WINDOW, payload_bytes: PAYLOAD.length, redis: 'appendonly yes, appendfsync always' }, results, table, hop }, null, 2)}\n`);
  console.log(`\n${JSON.stringify({ table, hop })}\nwritten to ${path.relative(ROOT, file)}`);
}

await main();

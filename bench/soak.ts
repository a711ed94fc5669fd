/**
 * `npm run bench:soak`: mixed load on one runtime for a long time, to see memory grow or latency drift.
 *
 * The runtime is `node bin/clawbox.js start` with embedded defaults (demo devices, no model), temp state
 * dir, free loopback ports. This process drives, at the same time:
 * - device commands over MQTT: `clawbox/lamp/set` and `clawbox/light/set` toggling state, 20/s in all;
 *   latency is the publish to the device's next state message;
 * - agent requests on the fast path: `POST /api/chat` "turn on the lamp" and the like, 4/s;
 * - chat over the OpenAI-compatible API: `POST /v1/chat/completions` with one user message, 2/s;
 * - MQTT churn: 10 clients a second connect, subscribe to `clawbox/lamp` and leave 5 s later.
 * Per interval (5 min, or a sixth of a shorter run) it prints the runtime's VmRSS (and how much of it is
 * anonymous memory and pages of the node binary), V8 heap total and used, active handles (from its /metrics) and the p99 of each kind, and writes everything to
 * bench/results/soak-<time>.json. RSS growth is measured from the end of the first interval (warm-up).
 *
 * Usage: npm run bench:soak [-- --minutes N]   (default 30)
 * BENCH_NODE_FLAGS="NAME=value ... --flag ...": the runtime started with exactly these environment words
 * (glibc's malloc settings and such) and node flags instead of bin/clawbox.js's `#!` line's, to compare a
 * variant against the installed line by running two soaks at once (they share the machine alike).
 * BENCH_SOAK_LOADS=commands,agent,chat,churn (default: all four): only those kinds of load, to find which
 * one a growth comes with (a diagnosis; the goal's figure is the run with all four).
 */
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { ROOT, fileBackedRssBytes, installedCommandLine, mappedRssBytes, mb, round, rssBytes, sleep, splitEnvAndFlags, startRuntime } from './runtime-process.js';
import { machineFacts, percentile } from './stats.js';

const minutesArg = process.argv.indexOf('--minutes');
const MINUTES = minutesArg > 0 ? Number(process.argv[minutesArg + 1]) : 30;
if (!(MINUTES > 0)) throw new Error('--minutes takes a positive number');
const INTERVAL_MS = MINUTES >= 30 ? 5 * 60_000 : (MINUTES * 60_000) / 6;
const COMMANDS_PER_S = 20;
const AGENT_PER_S = 4;
const CHAT_PER_S = 2;
const CHURN_PER_S = 10;
const TIMEOUT_MS = 5000;
const VARIANT_WORDS = (process.env.BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
const variant = VARIANT_WORDS.length > 0 ? splitEnvAndFlags(VARIANT_WORDS) : undefined;
const LOADS = new Set((process.env.BENCH_SOAK_LOADS ?? 'commands,agent,chat,churn').split(',').map((s) => s.trim()));
const nodeLine = variant ?? installedCommandLine();
const nodeLineText = [...Object.entries(nodeLine.env).map(([k, v]) => `${k}=${v}`), ...nodeLine.flags].join(' ');

const log = (line: string): void => void process.stderr.write(`${line}\n`);

type Kind = 'command' | 'agent' | 'chat';
interface Window {
  latencies: Record<Kind, number[]>;
  errors: Record<Kind, number>;
  churned: number;
}
const newWindow = (): Window => ({ latencies: { command: [], agent: [], chat: [] }, errors: { command: 0, agent: 0, chat: 0 }, churned: 0 });
let window = newWindow();

function post(port: number, urlPath: string, body: unknown): Promise<number> {
  return new Promise((resolve) => {
    const data = JSON.stringify(body);
    const req = http.request(
      { host: '127.0.0.1', port, path: urlPath, method: 'POST', agent: false, timeout: TIMEOUT_MS, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end(data);
  });
}

function metrics(port: number): Promise<string> {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent: false, timeout: TIMEOUT_MS }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      })
      .on('error', () => resolve(''));
  });
}

const metric = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);

/** Calls `fn` `perSecond` times a second until `stop()` is true (open loop: a slow answer does not slow the rate). */
async function every(perSecond: number, stop: () => boolean, fn: (n: number) => void): Promise<void> {
  const start = performance.now();
  let n = 0;
  while (!stop()) {
    const due = Math.floor(((performance.now() - start) / 1000) * perSecond) + 1;
    while (n < due) fn(n++);
    await sleep(20);
  }
}

/** `every` for one kind of load, unless BENCH_SOAK_LOADS leaves it out. */
function load(kind: string, perSecond: number, stop: () => boolean, fn: (n: number) => void): Promise<void> {
  return LOADS.has(kind) ? every(perSecond, stop, fn) : Promise.resolve();
}

async function timed(kind: Kind, call: () => Promise<number>): Promise<void> {
  const t0 = performance.now();
  const status = await call();
  if (status >= 200 && status < 300) window.latencies[kind].push(performance.now() - t0);
  else window.errors[kind]++;
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg();
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bench-soak-'));
  const rt = await startRuntime({
    stateDir: path.join(scratch, 'state'),
    ...(variant ? { command: [process.execPath, ...variant.flags, path.join(ROOT, 'bin/clawbox.js'), 'start'], env: variant.env } : {}),
  });
  log(`runtime ready in ${round(rt.readyMs)} ms (${variant ? 'BENCH_NODE_FLAGS' : "the `#!` line's"}: ${nodeLineText}); soaking for ${MINUTES} min, interval ${round(INTERVAL_MS / 1000)} s`);
  const connect = (clientId: string): Promise<MqttClient> =>
    new Promise((resolve, reject) => {
      const c = mqtt.connect({ host: '127.0.0.1', port: rt.mqttPort, clientId, reconnectPeriod: 0, connectTimeout: TIMEOUT_MS });
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    });
  const driver = await connect('soak-driver');
  const devices = ['lamp', 'light'];
  const waiting = new Map<string, number[]>(devices.map((d) => [d, []]));
  driver.on('message', (topic) => {
    const [, id, sub] = topic.split('/');
    const queue = id ? waiting.get(id) : undefined;
    if (!queue || (sub !== undefined && sub !== 'error')) return;
    const sentAt = queue.shift();
    if (sentAt === undefined) return;
    if (sub === 'error') window.errors.command++;
    else window.latencies.command.push(performance.now() - sentAt);
  });
  await driver.subscribeAsync(devices.flatMap((d) => [`clawbox/${d}`, `clawbox/${d}/error`]));

  const endAt = Date.now() + MINUTES * 60_000;
  const stop = () => Date.now() >= endAt;
  const intervals: Record<string, unknown>[] = [];
  const loops = [
    load('commands', COMMANDS_PER_S, stop, (n) => {
      const id = devices[n % devices.length]!;
      const queue = waiting.get(id)!;
      // A command with no answer in time is counted lost and dropped from the queue.
      while (queue.length && performance.now() - queue[0]! > TIMEOUT_MS) {
        queue.shift();
        window.errors.command++;
      }
      queue.push(performance.now());
      driver.publish(`clawbox/${id}/set`, JSON.stringify({ state: Math.floor(n / devices.length) % 2 ? 'ON' : 'OFF' }));
    }),
    load('agent', AGENT_PER_S, stop, (n) => {
      const text = ['turn on the lamp', 'turn off the lamp', 'turn on the light', 'turn off the light'][n % 4]!;
      void timed('agent', () => post(rt.httpPort, '/api/chat', { text, session: `soak-${n % 8}` }));
    }),
    load('chat', CHAT_PER_S, stop, (n) => {
      const content = n % 2 ? 'turn on the light' : 'turn off the light';
      void timed('chat', () => post(rt.httpPort, '/v1/chat/completions', { model: 'clawbox', messages: [{ role: 'user', content }] }));
    }),
    load('churn', CHURN_PER_S, stop, (n) => {
      void connect(`soak-churn-${n}`)
        .then(async (c) => {
          await c.subscribeAsync('clawbox/lamp');
          window.churned++;
          setTimeout(() => void c.endAsync(true), 5000);
        })
        .catch(() => undefined);
    }),
  ];

  const started = Date.now();
  const sampler = (async () => {
    while (!stop()) {
      await sleep(Math.min(INTERVAL_MS, Math.max(0, endAt - Date.now())));
      const w = window;
      window = newWindow();
      const text = await metrics(rt.httpPort);
      const p99 = (k: Kind) => {
        const sorted = [...w.latencies[k]].sort((a, b) => a - b);
        return round(percentile(sorted, 99), 1);
      };
      const rss = rssBytes(rt.pid);
      const mapped = mappedRssBytes(rt.pid);
      const row = {
        minute: round((Date.now() - started) / 60_000, 1),
        rss_mb: mb(rss),
        // Where RSS grows: memory the process allocated (V8's heap is part of it) or pages of the node binary.
        anonymous_mb: mb(rss - fileBackedRssBytes(rt.pid)),
        node_binary_mb: mb(mapped.executable),
        // Of the anonymous part: glibc's main arena (brk) and what V8 counts as external (ArrayBuffers, strings outside its heap).
        malloc_heap_mb: mb(mapped.mallocHeap),
        external_mb: mb(metric(text, 'clawbox_nodejs_external_memory_bytes')),
        heap_total_mb: mb(metric(text, 'clawbox_nodejs_heap_size_total_bytes')),
        heap_used_mb: mb(metric(text, 'clawbox_nodejs_heap_size_used_bytes')),
        handles: metric(text, 'clawbox_nodejs_active_handles_total'),
        command: { count: w.latencies.command.length, errors: w.errors.command, p99_ms: p99('command') },
        agent: { count: w.latencies.agent.length, errors: w.errors.agent, p99_ms: p99('agent') },
        chat: { count: w.latencies.chat.length, errors: w.errors.chat, p99_ms: p99('chat') },
        mqtt_clients_churned: w.churned,
        load_avg_1m: round(os.loadavg()[0]!, 2),
      };
      intervals.push(row);
      log(JSON.stringify(row));
    }
  })();
  await Promise.all([...loops, sampler]);
  await sleep(5500); // the last churned clients leave
  await driver.endAsync(true);
  await rt.kill();
  rmSync(scratch, { recursive: true, force: true });

  const rss = intervals.map((r) => r.rss_mb as number);
  const growth = rss.length > 1 ? round(((rss.at(-1)! - rss[0]!) / rss[0]!) * 100, 1) : Number.NaN;
  const result = {
    benchmark: 'soak',
    at: new Date().toISOString(),
    machine: machineFacts(loadBefore.map((n) => round(n, 2))),
    minutes: MINUTES,
    node_line: { from: variant ? 'BENCH_NODE_FLAGS' : 'bin/clawbox.js', words: nodeLineText },
    load: { commands_per_s: COMMANDS_PER_S, agent_per_s: AGENT_PER_S, chat_per_s: CHAT_PER_S, mqtt_connects_per_s: CHURN_PER_S, only: [...LOADS] },
    intervals,
    rss_growth_after_warmup_pct: growth,
  };
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  const file = path.join(ROOT, 'bench/results', `soak-${result.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  const m = result.machine;
  const lines = [
    `Machine: ${m.cpus} vCPU ${m.cpu_model}, ${m.memory_gb} GB, Node ${m.node}; load average ${m.load_average_before[0]} before, ${m.load_average_after[0]} after`,
    `Runtime started with (${result.node_line.from}): ${nodeLineText}`,
    `Load${LOADS.size < 4 ? ` (only ${[...LOADS].join(', ')})` : ''}: ${COMMANDS_PER_S} device commands/s (MQTT), ${AGENT_PER_S} fast-path agent requests/s (POST /api/chat), ${CHAT_PER_S} chat completions/s (POST /v1/chat/completions), ${CHURN_PER_S} MQTT connects/s (each stays 5 s)`,
    '',
    '| minute | RSS, MB | anonymous / node binary, MB | malloc [heap] / V8 external, MB | heap total / used, MB | handles | commands (errors), p99 ms | agent (errors), p99 ms | chat (errors), p99 ms | load 1m |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...intervals.map((r) => {
      const k = (x: unknown) => {
        const v = x as { count: number; errors: number; p99_ms: number };
        return `${v.count} (${v.errors}), ${v.p99_ms}`;
      };
      return `| ${r.minute} | ${r.rss_mb} | ${r.anonymous_mb} / ${r.node_binary_mb} | ${r.malloc_heap_mb} / ${r.external_mb} | ${r.heap_total_mb} / ${r.heap_used_mb} | ${r.handles} | ${k(r.command)} | ${k(r.agent)} | ${k(r.chat)} | ${r.load_avg_1m} |`;
    }),
    '',
    `RSS growth from the first interval (warm-up) to the last: ${growth} %`,
    `JSON: ${path.relative(ROOT, file)}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();

/**
 * `npm run bench:broker`: the embedded broker inside a running clawbox against mosquitto, with the same
 * mqtt.js client code for both, in alternating rounds within one invocation.
 *
 * - clawbox: the real runtime as `npm start` runs it (`node dist/app/main.js start`, built first with
 *   `npm run build`), in its own process, on free loopback ports, with a temp state dir.
 * - mosquitto: the Debian package, started here on a free loopback port with a generated config that
 *   matches the embedded broker's settings (anonymous loopback, no persistence, TCP_NODELAY, no inflight
 *   or queue limits), killed by its PID at the end.
 *
 * - baseline (optional, BENCH_BASELINE_REF=<git ref>): clawbox as it was at that commit (`git archive`
 *   into a temp folder, this checkout's node_modules linked, built there), run the same way: the before
 *   of a before/after in one run. BENCH_REF=<git ref> does the same for the "clawbox" side (default: this
 *   working tree), so that a shared checkout's uncommitted edits stay out of an A/B of two commits.
 *
 * Measures, per round and broker: QoS 0 and QoS 1 throughput (N x 64-byte messages, one publisher, one
 * subscriber), QoS 1 throughput where the broker has to store every message (the subscriber is a
 * persistent session; and the messages are retained, on 100 topics), and the round-trip time of
 * sequential QoS 1 request/response pairs; the QoS 0/1 throughput and the round trip again with MQTT 5 clients
 * (mqtt.js `protocolVersion: 5`; a baseline whose broker refuses MQTT 5 shows `–` there). Then the RSS of each broker process idle and with 1,000 idle
 * MQTT clients. Prints medians and ratios and writes everything to bench/results/broker-<time>.json.
 *
 * Environment: BENCH_MESSAGES (default 100000), BENCH_ROUNDS (3), BENCH_PAIRS (2000), BENCH_IDLE_CLIENTS
 * (1000), BENCH_BASELINE_REF (none), BENCH_REF (none: the working tree).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { median } from './stats.js';
import { freePort } from '../test/free-port.js';
import { waitForPort } from './runtime-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PAIRS = Number(process.env.BENCH_PAIRS ?? 2000);
const IDLE_CLIENTS = Number(process.env.BENCH_IDLE_CLIENTS ?? 1000);
const BASELINE_REF = process.env.BENCH_BASELINE_REF;
const REF = process.env.BENCH_REF;
/** Retained messages go to this many topics in turn. */
const RETAINED_TOPICS = 100;
const PAYLOAD = Buffer.alloc(64, 0x61);
const WINDOW = 1000; // publishes in flight at most (bounds client memory; QoS 1 waits for PUBACKs)

type BrokerName = 'clawbox' | 'mosquitto' | 'baseline';

interface BrokerProcess {
  name: BrokerName;
  port: number;
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}


async function connect(port: number, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(
    `mqtt://127.0.0.1:${port}`,
    { reconnectPeriod: 0, keepalive: 60, protocolVersion: 4, ...options },
    false,
  );
  // mqtt.js leaves Nagle on; with it a request/response waits ~40 ms for delayed ACKs whatever the broker.
  (client.stream as net.Socket).setNoDelay?.(true);
  return client;
}

function end(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.end(true, {}, () => resolve()));
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    process.kill(child.pid!, 'SIGTERM');
  });
}

/** Builds the runtime in `root` as `npm start` does; returns how it will be run. */
function buildRuntime(root = ROOT): { command: string[]; how: string } {
  const main = path.join(root, 'dist/app/main.js');
  log(`building the runtime in ${root} (npm run build) ...`);
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
      cwd: root,
      stdio: 'ignore',
    });
  } catch {
    // tsc still emits when other files have type errors; what matters is that main.js is there.
  }
  if (existsSync(main)) return { command: [process.execPath, main, 'start'], how: 'node dist/app/main.js start (compiled, as npm start)' };
  return {
    command: [process.execPath, '--import', 'tsx', path.join(root, 'app/main.ts'), 'start'],
    how: 'node --import tsx app/main.ts start (build failed; sources through tsx)',
  };
}

/** The tree of `ref` in `<scratch>/<name>`, with this checkout's node_modules, built. */
function buildAt(ref: string, scratch: string, name: BrokerName): { command: string[]; how: string; commit: string; dir: string } {
  const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = path.join(scratch, name);
  mkdirSync(dir);
  execFileSync('bash', ['-c', `git archive ${commit} | tar -x -C '${dir}'`], { cwd: ROOT });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return { ...buildRuntime(dir), commit, dir };
}

async function startClawbox(command: string[], scratch: string, name: BrokerName = 'clawbox', cwd = ROOT): Promise<BrokerProcess> {
  const port = await freePort();
  const httpPort = await freePort();
  const stateDir = path.join(scratch, `${name}-state`);
  const child = spawn(command[0]!, command.slice(1), {
    cwd,
    env: {
      ...process.env,
      CLAWBOX_CONFIG: '',
      CLAWBOX_STATE_DIR: stateDir,
      CLAWBOX_BROKER_PORT: String(port),
      CLAWBOX_HTTP_PORT: String(httpPort),
      CLAWBOX_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort(port, child, 60_000);
  // Serving means bridge/state is online.
  const probe = await connect(port);
  await new Promise<void>((resolve) => {
    probe.on('message', (_topic, payload) => payload.toString() === 'online' && resolve());
    void probe.subscribeAsync('clawbox/bridge/state');
  });
  await end(probe);
  return { name, port, pid: child.pid!, child, stop: () => stopChild(child) };
}

function mosquittoVersion(): string {
  try {
    return execFileSync('mosquitto', ['-h'], { encoding: 'utf8' }).split('\n')[0] ?? 'unknown';
  } catch (error) {
    // mosquitto -h exits non-zero but still prints the version.
    const out = (error as { stdout?: string }).stdout ?? '';
    return out.split('\n')[0] || 'unknown';
  }
}

async function startMosquitto(scratch: string): Promise<BrokerProcess> {
  const port = await freePort();
  const conf = path.join(scratch, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'set_tcp_nodelay true',
      'max_inflight_messages 0',
      'max_queued_messages 0',
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  );
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port, child, 10_000);
  return { name: 'mosquitto', port, pid: child.pid!, child, stop: () => stopChild(child) };
}

/** What the broker must store: nothing, every message for a persistent session, every message retained. */
type Stored = 'none' | 'session' | 'retained';

interface Throughput {
  qos: 0 | 1;
  stored: Stored;
  messages: number;
  received: number;
  seconds: number;
  msgs_per_s: number;
  /** CPU time (user + system) the broker process spent per 1,000 messages: robust to a busy machine. */
  broker_cpu_ms_per_1k: number;
}

/** utime + stime of a process in ms, from /proc/<pid>/stat (fields 14 and 15, in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** One publisher and one subscriber; time from the first publish until the subscriber has them all. */
async function throughput(broker: BrokerProcess, qos: 0 | 1, topic: string, stored: Stored = 'none', protocolVersion: 4 | 5 = 4): Promise<Throughput> {
  const { port } = broker;
  const clientId = `bench-sub-${topic.replaceAll('/', '-')}`;
  const sub = await connect(port, { protocolVersion, ...(stored === 'session' ? { clientId, clean: false } : {}) });
  const pub = await connect(port, { protocolVersion });
  await sub.subscribeAsync(stored === 'retained' ? `${topic}/+` : topic, { qos });
  let received = 0;
  let lastAt = 0;
  const allIn = new Promise<void>((resolve) => {
    sub.on('message', () => {
      received++;
      lastAt = performance.now();
      if (received === MESSAGES) resolve();
    });
  });
  const cpuBefore = cpuMs(broker.pid);
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    let sent = 0;
    let done = 0;
    let scheduled = false;
    const pump = (): void => {
      scheduled = false;
      while (sent < MESSAGES && sent - done < WINDOW) {
        sent++;
        const to = stored === 'retained' ? `${topic}/${sent % RETAINED_TOPICS}` : topic;
        pub.publish(to, PAYLOAD, { qos, retain: stored === 'retained' }, (error) => {
          if (error) {
            reject(error);
            return;
          }
          done++;
          if (done === MESSAGES) resolve();
          else if (!scheduled && sent - done < WINDOW / 2) {
            scheduled = true;
            setImmediate(pump);
          }
        });
      }
    };
    pump();
  });
  // QoS 0 may lose messages under load (both brokers may drop); stop waiting once nothing arrives for 3 s.
  for (;;) {
    const before = received;
    const finished = await Promise.race([allIn.then(() => true), sleep(3000).then(() => false)]);
    if (finished || received === before) break;
  }
  const seconds = ((received === MESSAGES ? lastAt : lastAt || performance.now()) - started) / 1000;
  const cpu = cpuMs(broker.pid) - cpuBefore;
  await Promise.all([end(sub), end(pub)]);
  if (stored === 'session') await end(await connect(port, { clientId, clean: true })); // drops the session
  return {
    qos,
    stored,
    messages: MESSAGES,
    received,
    seconds: round(seconds, 3),
    msgs_per_s: Math.round(received / seconds),
    broker_cpu_ms_per_1k: round((cpu / received) * 1000, 1),
  };
}

interface RoundTrip {
  pairs: number;
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
}

/** Sequential QoS 1 request/response pairs through the broker (requester -> responder -> requester). */
async function roundTrip(port: number, protocolVersion: 4 | 5 = 4): Promise<RoundTrip> {
  const requester = await connect(port, { protocolVersion });
  const responder = await connect(port, { protocolVersion });
  await responder.subscribeAsync('bench/rtt/req', { qos: 1 });
  responder.on('message', (_topic, payload) => responder.publish('bench/rtt/resp', payload, { qos: 1 }));
  await requester.subscribeAsync('bench/rtt/resp', { qos: 1 });
  let waiting: (() => void) | undefined;
  requester.on('message', () => waiting?.());
  const once = (): Promise<number> =>
    new Promise((resolve) => {
      const began = performance.now();
      waiting = () => resolve(performance.now() - began);
      requester.publish('bench/rtt/req', PAYLOAD, { qos: 1 });
    });
  for (let i = 0; i < 100; i++) await once(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < PAIRS; i++) samples.push(await once());
  await Promise.all([end(requester), end(responder)]);
  samples.sort((a, b) => a - b);
  const pick = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!;
  return {
    pairs: PAIRS,
    p50_ms: round(pick(0.5), 3),
    p99_ms: round(pick(0.99), 3),
    mean_ms: round(samples.reduce((a, b) => a + b, 0) / samples.length, 3),
  };
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  return kb * 1024;
}

async function rssWithClients(broker: BrokerProcess): Promise<{ idle_mb: number; with_clients_mb: number; clients: number }> {
  await sleep(2000);
  const idle = rssBytes(broker.pid);
  const clients: MqttClient[] = [];
  for (let i = 0; i < IDLE_CLIENTS; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, IDLE_CLIENTS - i) }, () => connect(broker.port)));
    clients.push(...batch);
  }
  await sleep(2000);
  const loaded = rssBytes(broker.pid);
  await Promise.all(clients.map(end));
  return { idle_mb: mb(idle), with_clients_mb: mb(loaded), clients: clients.length };
}

const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits;
const mb = (bytes: number): number => round(bytes / 1024 / 1024, 1);

interface RoundResult {
  round: number;
  broker: BrokerName;
  qos0: Throughput;
  qos1: Throughput;
  qos1_session: Throughput;
  qos1_retained: Throughput;
  rtt: RoundTrip;
  /** MQTT 5 clients; null where the broker refuses MQTT 5 (a baseline before aedes 2). */
  v5: { qos0: Throughput; qos1: Throughput; rtt: RoundTrip } | null;
}

/** The MQTT 5 measurements, or null when the broker does not speak MQTT 5. */
async function measureV5(broker: BrokerProcess, r: number): Promise<RoundResult['v5']> {
  try {
    await end(await connect(broker.port, { protocolVersion: 5 }));
  } catch {
    return null;
  }
  const qos0 = await throughput(broker, 0, `bench/v5/${r}/0`, 'none', 5);
  const qos1 = await throughput(broker, 1, `bench/v5/${r}/1`, 'none', 5);
  const rtt = await roundTrip(broker.port, 5);
  return { qos0, qos1, rtt };
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg().map((n) => round(n, 2));
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bench-'));
  const refBuild = REF ? buildAt(REF, scratch, 'clawbox') : undefined;
  const { command, how: builtAs } = refBuild ?? buildRuntime();
  const how = refBuild ? `${builtAs}, at ${refBuild.commit}` : builtAs;
  log(`clawbox runs as: ${how}`);
  const baselineBuild = BASELINE_REF ? buildAt(BASELINE_REF, scratch, 'baseline') : undefined;
  const brokers: BrokerProcess[] = [];
  try {
    const clawbox = await startClawbox(command, scratch, 'clawbox', refBuild?.dir);
    brokers.push(clawbox);
    const mosquitto = await startMosquitto(scratch);
    brokers.push(mosquitto);
    if (baselineBuild) {
      log(`baseline: clawbox at ${baselineBuild.commit}`);
      brokers.push(await startClawbox(baselineBuild.command, scratch, 'baseline', baselineBuild.dir));
    }
    const names = brokers.map((b) => b.name);

    // Memory first, while the processes are fresh.
    log(`RSS idle and with ${IDLE_CLIENTS} idle clients ...`);
    const memory: Partial<Record<BrokerName, Awaited<ReturnType<typeof rssWithClients>>>> = {};
    for (const broker of brokers) memory[broker.name] = await rssWithClients(broker);

    const results: RoundResult[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      // Rotate which broker goes first so that drift (thermal, other load) hits all alike.
      const order = brokers.map((_, i) => brokers[(i + r - 1) % brokers.length]!);
      for (const broker of order) {
        log(`round ${r}/${ROUNDS}: ${broker.name} ...`);
        const qos0 = await throughput(broker, 0, `bench/tp/${r}/0`);
        const qos1 = await throughput(broker, 1, `bench/tp/${r}/1`);
        const qos1_session = await throughput(broker, 1, `bench/tp/${r}/session`, 'session');
        const qos1_retained = await throughput(broker, 1, `bench/tp/${r}/retained`, 'retained');
        const rtt = await roundTrip(broker.port);
        const v5 = await measureV5(broker, r);
        results.push({ round: r, broker: broker.name, qos0, qos1, qos1_session, qos1_retained, rtt, v5 });
        log(
          `  qos0 ${qos0.msgs_per_s}/s (${qos0.received}/${qos0.messages}, ${qos0.broker_cpu_ms_per_1k} ms CPU/1k)` +
            `  qos1 ${qos1.msgs_per_s}/s (${qos1.broker_cpu_ms_per_1k} ms CPU/1k)` +
            `  qos1 session ${qos1_session.msgs_per_s}/s (${qos1_session.broker_cpu_ms_per_1k} ms CPU/1k)` +
            `  qos1 retained ${qos1_retained.msgs_per_s}/s (${qos1_retained.broker_cpu_ms_per_1k} ms CPU/1k)` +
            `  rtt p50 ${rtt.p50_ms} ms p99 ${rtt.p99_ms} ms` +
            (v5 ? `  | MQTT 5: qos0 ${v5.qos0.msgs_per_s}/s qos1 ${v5.qos1.msgs_per_s}/s rtt p50 ${v5.rtt.p50_ms} ms p99 ${v5.rtt.p99_ms} ms` : '  | no MQTT 5'),
        );
      }
    }

    const of = (name: BrokerName, pick: (r: RoundResult) => number): number => {
      const values = results.filter((r) => r.broker === name).map(pick).filter((v) => !Number.isNaN(v));
      return values.length > 0 ? median(values) : Number.NaN;
    };
    const n = `${MESSAGES / 1000}k x 64 B`;
    const rows: [string, (r: RoundResult) => number][] = [
      [`QoS 0 throughput, msg/s (${n})`, (r) => r.qos0.msgs_per_s],
      [`QoS 1 throughput, msg/s (${n})`, (r) => r.qos1.msgs_per_s],
      [`QoS 1 to a persistent session, msg/s (${n})`, (r) => r.qos1_session.msgs_per_s],
      [`QoS 1 retained (${RETAINED_TOPICS} topics), msg/s (${n})`, (r) => r.qos1_retained.msgs_per_s],
      ['broker CPU per 1,000 QoS 0 messages, ms', (r) => r.qos0.broker_cpu_ms_per_1k],
      ['broker CPU per 1,000 QoS 1 messages, ms', (r) => r.qos1.broker_cpu_ms_per_1k],
      ['broker CPU per 1,000 QoS 1 to a persistent session, ms', (r) => r.qos1_session.broker_cpu_ms_per_1k],
      ['broker CPU per 1,000 QoS 1 retained, ms', (r) => r.qos1_retained.broker_cpu_ms_per_1k],
      [`QoS 1 round trip p50, ms (${PAIRS} pairs)`, (r) => r.rtt.p50_ms],
      [`QoS 1 round trip p99, ms (${PAIRS} pairs)`, (r) => r.rtt.p99_ms],
      [`MQTT 5: QoS 0 throughput, msg/s (${n})`, (r) => r.v5?.qos0.msgs_per_s ?? Number.NaN],
      [`MQTT 5: QoS 1 throughput, msg/s (${n})`, (r) => r.v5?.qos1.msgs_per_s ?? Number.NaN],
      ['MQTT 5: broker CPU per 1,000 QoS 0 messages, ms', (r) => r.v5?.qos0.broker_cpu_ms_per_1k ?? Number.NaN],
      ['MQTT 5: broker CPU per 1,000 QoS 1 messages, ms', (r) => r.v5?.qos1.broker_cpu_ms_per_1k ?? Number.NaN],
      [`MQTT 5: QoS 1 round trip p50, ms (${PAIRS} pairs)`, (r) => r.v5?.rtt.p50_ms ?? Number.NaN],
      [`MQTT 5: QoS 1 round trip p99, ms (${PAIRS} pairs)`, (r) => r.v5?.rtt.p99_ms ?? Number.NaN],
    ];
    const withBaseline = names.includes('baseline');
    const ratio = (a: number, b: number, digits = 2): string => (Number.isNaN(a) || Number.isNaN(b) ? '–' : (a / b).toFixed(digits));
    const table = [
      `| metric (median of rounds) | ${names.join(' | ')} | clawbox/mosquitto |${withBaseline ? ' clawbox/baseline |' : ''}`,
      `|---|${names.map(() => '---:|').join('')}---:|${withBaseline ? '---:|' : ''}`,
      ...rows.map(([label, pick]) => {
        const values = names.map((name) => of(name, pick));
        const c = of('clawbox', pick);
        return `| ${label} | ${values.map(fmt).join(' | ')} | ${ratio(c, of('mosquitto', pick))} |${withBaseline ? ` ${ratio(c, of('baseline', pick))} |` : ''}`;
      }),
      ...(
        [
          ['RSS idle, MB', 'idle_mb'],
          [`RSS with ${IDLE_CLIENTS} idle clients, MB`, 'with_clients_mb'],
        ] as const
      ).map(([label, key]) => {
        const c = memory.clawbox![key];
        return `| ${label} | ${names.map((name) => memory[name]![key]).join(' | ')} | ${ratio(c, memory.mosquitto![key], 1)} |${withBaseline ? ` ${ratio(c, memory.baseline![key], 1)} |` : ''}`;
      }),
    ].join('\n');

    const machine = {
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model ?? 'unknown',
      memory_gb: round(os.totalmem() / 1024 ** 3, 1),
      node: process.version,
      mosquitto: mosquittoVersion(),
      kernel: os.release(),
      // Other work on the machine shows up in throughput and latency; the CPU-per-message rows resist it.
      load_average_before: loadBefore,
      load_average_after: os.loadavg().map((n) => round(n, 2)),
    };
    const lossy = results.filter((r) =>
      [r.qos0, r.qos1, r.qos1_session, r.qos1_retained, ...(r.v5 ? [r.v5.qos0, r.v5.qos1] : [])].some((x) => x.received < x.messages),
    );
    process.stdout.write(
      `\nBroker benchmark: ${ROUNDS} rounds in rotating order, clawbox as ${how}` +
        `${baselineBuild ? `; baseline: clawbox at ${baselineBuild.commit}, same way` : ''}\n`,
    );
    process.stdout.write(
      `Machine: ${machine.cpus} vCPU ${machine.cpu_model}, ${machine.memory_gb} GB, Node ${machine.node}, ${machine.mosquitto}; ` +
        `load average ${machine.load_average_before[0]} before, ${machine.load_average_after[0]} after\n\n`,
    );
    process.stdout.write(`${table}\n`);
    if (lossy.length > 0) {
      process.stdout.write(`\nRuns that lost messages: ${lossy.map((r) => `${r.broker} round ${r.round}`).join(', ')} (see JSON)\n`);
    }

    const outDir = path.join(ROOT, 'bench/results');
    mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, `broker-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      `${JSON.stringify({ when: new Date().toISOString(), machine, clawbox_runs_as: how, baseline: baselineBuild?.commit ?? null, settings: { MESSAGES, ROUNDS, PAIRS, IDLE_CLIENTS, WINDOW, RETAINED_TOPICS, payload_bytes: PAYLOAD.length }, memory, results, table }, null, 2)}\n`,
    );
    process.stdout.write(`\nResults: ${path.relative(ROOT, file)}\n`);
  } finally {
    for (const broker of brokers) await broker.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

function fmt(n: number): string {
  if (Number.isNaN(n)) return '–';
  return n >= 100 ? String(Math.round(n)) : String(round(n, 3));
}

await main();

/**
 * `npm run bench:commands`: open-loop MQTT `set` commands to serial-line devices over socat pty pairs
 * (a line-protocol simulator process on the far end of each), at 100, 500 and 1,000 commands/s for 10 s
 * each. Latency is command published -> state published on `clawbox/<device>` (or the error), as seen
 * by the MQTT client. Baseline in the same run: the same load on simulated devices (no serial I/O), so
 * the serial path's own cost is visible.
 *
 * Processes: this one is the load generator and MQTT client; the runtime part (embedded broker +
 * DeviceService, the real components) runs in a child process (`--serve`), as it would in `clawbox start`;
 * socat and the simulators are their own processes. Prints a table, writes bench/results/commands-<time>.json.
 *
 * Environment: BENCH_RATES (default "100,500,1000"), BENCH_SECONDS (10), BENCH_DEVICES (4).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { LINE_SIM, SerialRig } from '../devices/fixtures/socat.js';
import { percentile } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RATES = (process.env.BENCH_RATES ?? '100,500,1000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const DEVICES = Number(process.env.BENCH_DEVICES ?? 4);

const log = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function serialEntry(id: string, devicePath: string) {
  return {
    id,
    driver: 'serial-line',
    capabilities: ['switch', 'dimmer'],
    timeout_ms: 1000,
    serial: {
      path: devicePath,
      baud_rate: 115200,
      commands: {
        state: { template: 'POWER {state}', response: '^OK POWER (?<state>ON|OFF)$' },
        brightness: { template: 'DIM {brightness}', response: '^OK DIM (?<brightness>\\d+)$' },
      },
      query: { template: 'STATUS', response: '^STATUS (?<state>ON|OFF) (?<brightness>\\d+) \\S+$' },
      error: '^ERR (?<message>.*)$',
    },
  };
}

// ---- the runtime side (child process) -----------------------------------------------------------------

async function serve(configFile: string): Promise<void> {
  const { makeTestContext } = await import('../app/testing/test-context.js');
  const { Broker } = await import('../runtime/broker/broker.js');
  const { DeviceService } = await import('../devices/device-service.js');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  const tc = makeTestContext({ config, logLevel: 'warn' });
  const { FrontDoor } = await import('../runtime/operations/front-door.js');
  const { MqttAdapter } = await import('../runtime/operations/mqtt-adapter.js');
  const broker = new Broker();
  await broker.start(tc.ctx);
  tc.setLifecycle('serving');
  // `<base>/<device>/set` is answered through the front door, as app.ts wires it.
  const logger = tc.ctx.logger('front-door');
  const frontDoor = new FrontDoor({ logger });
  const mqtt = new MqttAdapter({ frontDoor, messaging: broker, requests: broker, logger, maxPayloadBytes: tc.ctx.config.broker.max_payload_bytes });
  const devices = new DeviceService({ messaging: broker, api: { frontDoor, mqtt } });
  await devices.start(tc.ctx);
  // Event-loop delay of the runtime process, per run: tells a stall of the runtime from a slow device.
  const { monitorEventLoopDelay } = await import('node:perf_hooks');
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  process.on('message', (message: { cmd?: string }) => {
    if (message.cmd === 'reset') loop.reset();
    if (message.cmd === 'report') {
      const ms = (ns: number) => Math.round(ns / 1e4) / 100;
      process.send?.({ loop_p50_ms: ms(loop.percentile(50)), loop_p99_ms: ms(loop.percentile(99)), loop_max_ms: ms(loop.max), cpu: process.cpuUsage() });
    }
  });
  process.stdout.write(`ready ${broker.port}\n`);
  process.on('SIGTERM', async () => {
    await devices.stop();
    await broker.stop();
    tc.cleanup();
    process.exit(0);
  });
}

// ---- the load generator -------------------------------------------------------------------------------

interface RunResult {
  driver: string;
  rate: number;
  seconds: number;
  sent: number;
  answered: number;
  errors: number;
  lost: number;
  achieved_rate: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** The runtime process's event-loop delay during the run, and the machine's load (other jobs included). */
  runtime_loop_p99_ms?: number;
  runtime_loop_max_ms?: number;
  load_avg_1m?: number;
}

/** Sends `rate` commands/s for `seconds`, round-robin over `ids`, on a fixed schedule (open loop). */
async function run(client: MqttClient, driver: string, ids: string[], rate: number, seconds: number): Promise<RunResult> {
  const waiting = new Map<string, number[]>(ids.map((id) => [id, []]));
  const latencies: number[] = [];
  let errors = 0;
  const onMessage = (topic: string) => {
    const [, id, kind] = topic.split('/');
    const queue = id ? waiting.get(id) : undefined;
    if (!queue || (kind !== undefined && kind !== 'error')) return;
    const sentAt = queue.shift();
    if (sentAt === undefined) return;
    if (kind === 'error') errors++;
    else latencies.push(performance.now() - sentAt);
  };
  client.on('message', onMessage);
  const total = Math.round(rate * seconds);
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    while (sent < due) {
      const id = ids[sent % ids.length]!;
      waiting.get(id)!.push(performance.now());
      client.publish(`clawbox/${id}/set`, `{"brightness":${sent % 101}}`, { qos: 0 });
      sent++;
    }
    await sleep(1);
  }
  const elapsed = (performance.now() - start) / 1000;
  // Let the last answers arrive; what is still missing after 3 s is lost.
  const until = Date.now() + 3000;
  while ([...waiting.values()].some((q) => q.length > 0) && Date.now() < until) await sleep(10);
  client.off('message', onMessage);
  const lost = [...waiting.values()].reduce((n, q) => n + q.length, 0);
  latencies.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    driver,
    rate,
    seconds,
    sent,
    answered: latencies.length,
    errors,
    lost,
    achieved_rate: Math.round(sent / elapsed),
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    max_ms: round(latencies.at(-1) ?? Number.NaN),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bench-commands-'));
  const rigs = Array.from({ length: DEVICES }, (_, i) => new SerialRig(dir, `dev${i}`, LINE_SIM));
  let server: ChildProcess | null = null;
  try {
    log(`starting ${DEVICES} socat pty pairs with line-protocol simulators...`);
    await Promise.all(rigs.map((rig) => rig.plug()));
    const serialIds = rigs.map((_, i) => `serial-${i}`);
    const simIds = rigs.map((_, i) => `sim-${i}`);
    const config = {
      devices: [
        ...rigs.map((rig, i) => serialEntry(serialIds[i]!, rig.devicePath)),
        ...simIds.map((id) => ({ id, driver: 'simulated', capabilities: ['switch', 'dimmer'] })),
      ],
    };
    const configFile = path.join(dir, 'bench-config.json');
    writeFileSync(configFile, JSON.stringify(config));
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', configFile], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    server = child;
    const loopReport = () =>
      new Promise<Record<string, unknown>>((resolve) => {
        child.once('message', (m) => resolve(m as Record<string, unknown>));
        child.send({ cmd: 'report' });
      });
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        const match = /ready (\d+)/.exec(chunk.toString());
        if (match) resolve(Number(match[1]));
      });
      child.once('exit', (code) => reject(new Error(`runtime exited with ${code}`)));
    });
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
    (client.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    await client.subscribeAsync(['clawbox/+', 'clawbox/+/error']);
    await sleep(500); // retained states arrive on subscribe; they are not answers
    log('warm-up...');
    await run(client, 'serial-line', serialIds, 100, 1);
    await run(client, 'simulated', simIds, 100, 1);

    const results: RunResult[] = [];
    for (const rate of RATES) {
      for (const [driver, ids] of [
        ['simulated', simIds],
        ['serial-line', serialIds],
      ] as const) {
        log(`${driver}: ${rate} cmd/s for ${SECONDS} s...`);
        child.send({ cmd: 'reset' });
        const before = os.loadavg()[0]!;
        const result = await run(client, driver, [...ids], rate, SECONDS);
        const { loop_p99_ms, loop_max_ms } = await loopReport();
        results.push({ ...result, runtime_loop_p99_ms: Number(loop_p99_ms), runtime_loop_max_ms: Number(loop_max_ms), load_avg_1m: Math.round(((before + os.loadavg()[0]!) / 2) * 10) / 10 });
      }
    }
    await client.endAsync();

    const header = ['driver', 'rate/s', 'achieved', 'sent', 'answered', 'errors', 'lost', 'p50 ms', 'p99 ms', 'max ms', 'loop p99', 'loop max', 'load'];
    const rows = results.map((r) =>
      [r.driver, r.rate, r.achieved_rate, r.sent, r.answered, r.errors, r.lost, r.p50_ms, r.p99_ms, r.max_ms, r.runtime_loop_p99_ms, r.runtime_loop_max_ms, r.load_avg_1m].map(String),
    );
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
    console.log(`\ncommand -> state published latency, ${DEVICES} devices per driver, open loop, ${SECONDS} s per rate`);
    console.log('(loop p99/max: event-loop delay of the runtime process in ms; load: 1-minute load average, all jobs)');
    console.log(line(header));
    for (const row of rows) console.log(line(row));
    const at500 = results.find((r) => r.driver === 'serial-line' && r.rate === 500);
    if (at500) console.log(`\nserial-line p99 at 500 cmd/s: ${at500.p99_ms} ms (target <= 5 ms)`);

    const out = path.join(ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const file = path.join(out, `commands-${new Date().toISOString().replaceAll(':', '-').replace('.', '-')}.json`);
    const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memory_gb: Math.round(os.totalmem() / 2 ** 30), node: process.version };
    writeFileSync(file, `${JSON.stringify({ benchmark: 'commands', machine, devices: DEVICES, seconds: SECONDS, results }, null, 2)}\n`);
    console.log(`results: ${path.relative(ROOT, file)}`);
  } finally {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
    }
    await Promise.all(rigs.map((rig) => rig.unplug()));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--serve') {
  await serve(process.argv[3]!);
} else {
  await main();
}

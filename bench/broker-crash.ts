/**
 * `npm run bench:broker-crash`: the long kill -9 run of runtime/broker/crash-harness.ts against the
 * runtime as `npm start` runs it (built first; `node dist/app/main.js start`), and the time from
 * spawning the killed runtime again until it serves.
 *
 * Before the rounds, the store is filled to something a busy box might hold: BENCH_CRASH_RETAINED
 * retained topics (default 5,000 x 200 B) and BENCH_CRASH_SESSIONS persistent sessions (default 100,
 * 5 subscriptions each, 20 queued messages each). Every round then adds 8 retained topics and kills the
 * runtime mid-burst (odd rounds, at a random PUBACK) or right after the burst (even rounds).
 *
 * Prints the losses (must be 0), restart-to-ready (median, p90, max, with how much of it is the process
 * starting up before the first log line), and writes everything to bench/results/broker-crash-<time>.json.
 *
 * Environment: BENCH_CRASH_ROUNDS (100), BENCH_CRASH_BURST (1000), BENCH_CRASH_SEED (time),
 * BENCH_CRASH_RETAINED (5000), BENCH_CRASH_SESSIONS (100).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { type Runtime, runCrashRounds } from '../runtime/broker/testing/crash-harness.js';
import { machineFacts, median, percentile } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.env.BENCH_CRASH_ROUNDS ?? 100);
const BURST = Number(process.env.BENCH_CRASH_BURST ?? 1000);
const SEED = Number(process.env.BENCH_CRASH_SEED ?? Date.now() % 1_000_000);
const RETAINED = Number(process.env.BENCH_CRASH_RETAINED ?? 5000);
const SESSIONS = Number(process.env.BENCH_CRASH_SESSIONS ?? 100);

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const round = (n: number, digits = 0): number => Math.round(n * 10 ** digits) / 10 ** digits;

function buildRuntime(): { command: string[]; how: string } {
  const main = path.join(ROOT, 'dist/app/main.js');
  log('building the runtime (npm run build) ...');
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'ignore' });
  } catch {
    // tsc still emits when other files have type errors; what matters is that main.js is there.
  }
  if (existsSync(main)) return { command: [process.execPath, main, 'start'], how: 'node dist/app/main.js start (compiled, as npm start)' };
  return {
    command: [process.execPath, '--import', 'tsx', path.join(ROOT, 'app/main.ts'), 'start'],
    how: 'node --import tsx app/main.ts start (build failed; sources through tsx)',
  };
}

interface Start {
  /** Spawn until the first log line (the process and its modules loading). */
  boot_ms: number;
  /** Spawn until the broker listens. */
  broker_ms: number;
  /** The broker's own start: opening its store, setting up aedes, listening. */
  broker_start_ms: number;
  /** Spawn until the runtime serves. */
  ready_ms: number;
}

/** Spawns the runtime on `stateDir` and resolves when it logs that it serves. */
function startRuntime(command: string[], stateDir: string, starts: Start[]): Promise<Runtime> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CLAWBOX_') && k !== 'NOTIFY_SOCKET') env[k] = v;
  const began = Date.now();
  const child: ChildProcess = spawn(command[0]!, command.slice(1), {
    cwd: ROOT,
    env: { ...env, CLAWBOX_STATE_DIR: stateDir, CLAWBOX_BROKER_PORT: '0', CLAWBOX_HTTP_PORT: '0', CLAWBOX_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    let buffer = '';
    let first = 0;
    let broker = 0;
    let brokerStart = 0;
    child.stdout!.on('data', (data: Buffer) => {
      buffer += data.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let line: { time?: number; msg?: string; component?: string; mqttPort?: number; startMs?: number };
        try {
          line = JSON.parse(text);
        } catch {
          continue;
        }
        const at = line.time ?? Date.now();
        first ||= at;
        if (line.component === 'broker' && line.msg?.startsWith('MQTT broker listening')) {
          broker = at;
          brokerStart = line.startMs ?? Number.NaN;
        }
        if (typeof line.mqttPort === 'number') {
          starts.push({ boot_ms: first - began, broker_ms: broker - began, broker_start_ms: brokerStart, ready_ms: at - began });
          resolve({ child, mqttPort: line.mqttPort, exited });
        }
      }
    });
    void exited.then(({ code, signal }) => reject(new Error(`runtime exited (${code ?? signal}) before serving: ${stderr}`)));
  });
}

/** Fills the store: retained topics and persistent sessions with subscriptions and queued messages. */
async function prepare(port: number): Promise<void> {
  log(`filling the store: ${RETAINED} retained topics, ${SESSIONS} persistent sessions ...`);
  const url = `mqtt://127.0.0.1:${port}`;
  const pub = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  const payload = Buffer.alloc(200, 0x62);
  for (let i = 0; i < RETAINED; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, RETAINED - i) }, (_, j) => pub.publishAsync(`fill/${(i + j) % 50}/${i + j}`, payload, { qos: 1, retain: true })),
    );
  }
  for (let s = 0; s < SESSIONS; s++) {
    const session = await mqtt.connectAsync(url, { reconnectPeriod: 0, clientId: `fill-session-${s}`, clean: false });
    await session.subscribeAsync(Array.from({ length: 5 }, (_, k) => `queue/${s}/${k}`), { qos: 1 });
    await new Promise<void>((resolve) => session.end(true, {}, () => resolve()));
  }
  await Promise.all(
    Array.from({ length: SESSIONS * 20 }, (_, i) => pub.publishAsync(`queue/${i % SESSIONS}/${i % 5}`, payload, { qos: 1 })),
  );
  await new Promise<void>((resolve) => pub.end(true, {}, () => resolve()));
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg().map((n) => round(n, 2));
  const { command, how } = buildRuntime();
  log(`clawbox runs as: ${how}; ${ROUNDS} rounds of ${BURST} messages, seed ${SEED}`);
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'clawbox-crash-'));
  const starts: Start[] = [];
  const began = Date.now();
  try {
    const results = await runCrashRounds({
      start: (stateDir) => startRuntime(command, stateDir, starts),
      stateDir: path.join(scratch, 'state'),
      rounds: ROUNDS,
      burst: BURST,
      seed: SEED,
      prepare,
      progress: log,
    });
    const restarts = starts.slice(1); // the first start is on an empty state
    const pick = (key: keyof Start): { median: number; p90: number; max: number } => {
      const sorted = restarts.map((s) => s[key]).sort((a, b) => a - b);
      return { median: median(sorted), p90: percentile(sorted, 90), max: sorted.at(-1) ?? Number.NaN };
    };
    const ready = pick('ready_ms');
    const boot = pick('boot_ms');
    const broker = pick('broker_ms');
    const brokerStart = pick('broker_start_ms');
    const lost = results.reduce((n, r) => n + r.lost.length, 0);
    const stale = results.reduce((n, r) => n + r.staleRetained.length, 0);
    const acknowledged = results.reduce((n, r) => n + r.acknowledged, 0);
    const noSession = results.filter((r) => !r.sessionPresent).length;
    const machine = machineFacts(loadBefore);
    const table = [
      '| kills | acknowledged | lost | stale retained | session not present |',
      '|---:|---:|---:|---:|---:|',
      `| ${results.length} | ${acknowledged} | ${lost} | ${stale} | ${noSession} |`,
      '',
      '| restart after kill -9, ms | median | p90 | max |',
      '|---|---:|---:|---:|',
      `| spawn -> first log line (process start, modules) | ${boot.median} | ${boot.p90} | ${boot.max} |`,
      `| spawn -> broker listening | ${broker.median} | ${broker.p90} | ${broker.max} |`,
      `| the broker's own start (store open, aedes, listen) | ${brokerStart.median} | ${brokerStart.p90} | ${brokerStart.max} |`,
      `| spawn -> serving (ready) | ${ready.median} | ${ready.p90} | ${ready.max} |`,
    ].join('\n');
    process.stdout.write(`\nkill -9 run: ${results.length} kills, ${BURST} messages per burst, seed ${SEED}, clawbox as ${how}\n`);
    process.stdout.write(
      `Machine: ${machine.cpus} vCPU ${machine.cpu_model}, ${machine.memory_gb} GB, Node ${machine.node}; ` +
        `load average ${machine.load_average_before[0]} before, ${machine.load_average_after[0]} after; ` +
        `${round((Date.now() - began) / 60_000, 1)} min\n\n${table}\n`,
    );
    const outDir = path.join(ROOT, 'bench/results');
    mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, `broker-crash-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      `${JSON.stringify({ when: new Date().toISOString(), machine, clawbox_runs_as: how, settings: { ROUNDS, BURST, SEED, RETAINED, SESSIONS }, starts, results, table }, null, 2)}\n`,
    );
    process.stdout.write(`\nResults: ${path.relative(ROOT, file)}\n`);
    if (lost > 0 || stale > 0) process.exitCode = 1;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();

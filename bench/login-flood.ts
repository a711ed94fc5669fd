/**
 * `npm run bench:login-flood`: device commands over MQTT (QoS 1 `clawbox/lamp/set` -> the real DeviceService
 * with a simulated device, which journals the state with fdatasync on the thread pool -> state on
 * `clawbox/lamp`) while 20 loops of wrong-password MQTT logins hammer the broker, each loop from its own
 * loopback address.
 * Baseline in the same run: the same flood with the login guard disabled (every login runs scrypt, no
 * backoff, no queue bound), as before the guard existed.
 *
 * Processes: the runtime part (real Broker with scrypt users + DeviceService) runs in a child process (`--serve`), the
 * flood in another (`--flood`), so this process only measures the round trips. For each mode: round trips
 * on a quiet broker, then during the flood. Prints a table, writes bench/results/login-flood-<time>.json.
 *
 * Environment: BENCH_SECONDS (flood duration per mode, default 10), BENCH_LOOPS (20), BENCH_QUIET (300
 * round trips before the flood).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { percentile } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const LOOPS = Number(process.env.BENCH_LOOPS ?? 20);
const QUIET = Number(process.env.BENCH_QUIET ?? 300);

const log = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number) => Math.round(n * 100) / 100;

// ---- child: the broker ----------------------------------------------------------------------------------

async function serve(configFile: string, guard: string): Promise<void> {
  const { configureLoginGuards, loginTotals, sharedHashLimiter } = await import('../runtime/auth/login-guard.js');
  configureLoginGuards({ enabled: guard === 'on' });
  const { startFrontDoorStack } = await import('../app/testing/front-door-stack.js');
  const { DeviceService } = await import('../devices/device-service.js');
  // Wired as app/app.ts wires it, so `clawbox/<id>/set` reaches the device.
  const stack = await startFrontDoorStack({ config: JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>, logLevel: 'error' });
  await stack.add(new DeviceService({ messaging: stack.broker, api: stack.api }));
  process.on('message', () => process.send?.({ totals: { ...loginTotals }, limiter: { ...sharedHashLimiter.stats } }));
  process.once('SIGTERM', () => {
    void stack.close().then(() => process.exit(0));
  });
  process.stdout.write(`ready ${stack.broker.port}\n`);
}

// ---- child: the flood -----------------------------------------------------------------------------------

async function flood(port: number, seconds: number, loops: number): Promise<void> {
  const { floodLoop } = await import('../runtime/auth/test-flood.js');
  const tally = { attempts: 0, connected: 0, refusals: {} as Record<string, number> };
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: loops }, (_, i) => floodLoop(port, `127.0.0.${10 + i}`, ['app', 'lamp', `nobody-${i}`], { stop: () => Date.now() >= end }, tally)),
  );
  process.send?.(tally, () => process.exit(0));
}

// ---- parent ---------------------------------------------------------------------------------------------

/** Sequential commands until `stop()` returns true; each waits for the state that carries its brightness. */
async function commandLoop(client: MqttClient, id: string, stop: () => boolean): Promise<number[]> {
  let want = -1;
  let answered: (() => void) | undefined;
  client.on('message', (topic, payload) => {
    if (topic !== `clawbox/${id}`) return;
    const state = JSON.parse(payload.toString()) as { brightness?: number };
    if (state.brightness === want) answered?.();
  });
  await client.subscribeAsync(`clawbox/${id}`, { qos: 1 });
  const rtts: number[] = [];
  for (let i = 0; !stop(); i++) {
    want = (i % 100) + 1;
    const began = performance.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`command ${i} not answered within 120 s`)), 120_000);
      answered = () => {
        clearTimeout(timer);
        answered = undefined;
        resolve();
      };
      client.publish(`clawbox/${id}/set`, JSON.stringify({ brightness: want }), { qos: 1 });
    });
    rtts.push(performance.now() - began);
  }
  return rtts;
}

function child(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
}

function summary(rtts: number[]) {
  const sorted = [...rtts].sort((a, b) => a - b);
  return {
    requests: sorted.length,
    p50_ms: round(percentile(sorted, 50)),
    p99_ms: round(percentile(sorted, 99)),
    max_ms: round(sorted.at(-1) ?? Number.NaN),
  };
}

async function runMode(guard: 'on' | 'off', configFile: string) {
  const server = child(['--serve', configFile, guard]);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.stdout!.on('data', (chunk: Buffer) => {
        const match = /ready (\d+)/.exec(chunk.toString());
        if (match) resolve(Number(match[1]));
      });
      server.once('exit', (code) => reject(new Error(`broker exited with ${code}`)));
    });
    const report = () =>
      new Promise<{ totals: Record<string, number>; limiter: Record<string, number> }>((resolve) => {
        server.once('message', (m) => resolve(m as { totals: Record<string, number>; limiter: Record<string, number> }));
        server.send({ cmd: 'report' });
      });
    const url = `mqtt://127.0.0.1:${port}`;
    const app = await mqtt.connectAsync(url, { reconnectPeriod: 0, username: 'app', password: 'app-secret' });
    (app.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);

    log(`guard ${guard}: ${QUIET} round trips on a quiet broker...`);
    let count = 0;
    const quiet = await commandLoop(app, 'lamp', () => ++count > QUIET);

    log(`guard ${guard}: ${LOOPS} flood loops for ${SECONDS} s...`);
    const before = await report();
    const flooder = child(['--flood', String(port), String(SECONDS), String(LOOPS)]);
    let flooding = true;
    const tally = new Promise<{ attempts: number; connected: number; refusals: Record<string, number> }>((resolve, reject) => {
      flooder.once('message', (m) => resolve(m as { attempts: number; connected: number; refusals: Record<string, number> }));
      flooder.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`flood exited with ${code}`))));
    }).finally(() => {
      flooding = false;
    });
    const loaded = await commandLoop(app, 'lamp', () => !flooding);
    const floodResult = await tally;
    const after = await report();
    await app.endAsync();
    const delta = (key: string) => (after.totals[key] ?? 0) - (before.totals[key] ?? 0);
    return {
      guard,
      quiet: summary(quiet),
      flood: {
        ...summary(loaded),
        attempts: floodResult.attempts,
        attempts_per_s: round(floodResult.attempts / SECONDS),
        connected: floodResult.connected,
        refusals: floodResult.refusals,
        scrypt_runs: delta('checks'),
        refused_backoff: delta('refusedBackoff'),
        refused_busy: delta('refusedBusy'),
        peak_hashing: after.limiter.peakRunning,
      },
    };
  } finally {
    if (server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
    }
  }
}

async function main(): Promise<void> {
  const { hashPassword } = await import('../runtime/auth/password.js');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bench-login-'));
  try {
    const configFile = path.join(dir, 'config.json');
    const config = {
      broker: {
        anonymous: 'never',
        users: [
          { username: 'lamp', password_hash: await hashPassword('lamp-secret'), publish: ['clawbox/lamp/#'], subscribe: ['clawbox/lamp/#'] },
          { username: 'app', password_hash: await hashPassword('app-secret'), publish: ['clawbox/+/set'], subscribe: ['clawbox/#'] },
        ],
      },
      devices: [{ id: 'lamp', driver: 'simulated', capabilities: ['switch', 'dimmer'] }],
    };
    writeFileSync(configFile, JSON.stringify(config));
    const loadBefore = os.loadavg()[0]!;
    const results = [await runMode('off', configFile), await runMode('on', configFile)];

    const header = ['guard', 'phase', 'requests', 'p50 ms', 'p99 ms', 'max ms', 'flood logins', 'logins/s', 'scrypt runs', 'refused 4/5/3'];
    const rows: string[][] = [];
    for (const r of results) {
      rows.push([r.guard, 'quiet', r.quiet.requests, r.quiet.p50_ms, r.quiet.p99_ms, r.quiet.max_ms, '-', '-', '-', '-'].map(String));
      const f = r.flood;
      const refused = ['4', '5', '3'].map((code) => f.refusals[code] ?? 0).join('/');
      rows.push([r.guard, 'flood', f.requests, f.p50_ms, f.p99_ms, f.max_ms, f.attempts, f.attempts_per_s, f.scrypt_runs, refused].map(String));
    }
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
    console.log(`\nQoS 1 device commands (set -> state) during a wrong-password flood: ${LOOPS} loops from ${LOOPS} addresses, ${SECONDS} s`);
    console.log('(refused: CONNACK 4 bad password / 5 backed off / 3 hash queue full)');
    console.log(line(header));
    for (const row of rows) console.log(line(row));

    const out = path.join(ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const file = path.join(out, `login-flood-${new Date().toISOString().replaceAll(':', '-').replace('.', '-')}.json`);
    const machine = {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      memory_gb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      load_avg_1m_before: round(loadBefore),
    };
    const json = { benchmark: 'login-flood', machine, loops: LOOPS, seconds: SECONDS, results };
    writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
    console.log(JSON.stringify(json));
    console.log(`results: ${path.relative(ROOT, file)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--serve') {
  await serve(process.argv[3]!, process.argv[4]!);
} else if (process.argv[2] === '--flood') {
  await flood(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]));
} else {
  await main();
}

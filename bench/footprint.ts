/**
 * `npm run bench:footprint`: what the runtime costs in memory, start time and disk, in one run, beside
 * mosquitto where that applies. Prints a table and writes bench/results/footprint-<time>.json.
 *
 * - idle RSS: `bin/clawbox.js start` as its `#!` line runs it (`env -S NAME=value ... node <flags>`: the installed
 *   command) with embedded defaults (no model), temp state dir, free loopback ports; VmRSS sampled 5 times a
 *   second apart after it has been ready for 5 s (median).
 * - 1,000 idle MQTT clients (mqtt.js, MQTT 3.1.1, clean sessions) connected to the runtime, and the same
 *   clients to mosquitto (Debian package, started here) in the same run: VmRSS of each broker, 5-10 s after
 *   the last client connected and again BENCH_CLIENTS_SETTLE_MS (25 s) after (the runtime gives a burst's
 *   garbage back once quiet, checking every 10 s: runtime/system/settle-memory.ts).
 * - `npm start` to `/healthz` 200 when built (the build-if-stale step finds nothing to do), median of runs.
 * - ready after `kill -9` with persisted state: retained messages, offline persistent sessions with queued
 *   QoS 1 messages and audited device commands are written first, then the runtime is killed and restarted.
 * - production node_modules: a real `npm ci --omit=dev --ignore-scripts` of this package.json and lockfile
 *   into a temp folder (from npm's cache where it can), plus the compiled binaries of the native addons that
 *   have no prebuild for this platform (their build/Release/*.node in this checkout; install scripts would
 *   build or download them); the packages `npm ls --omit=dev --all --parseable` lists in this checkout
 *   (each package's own files, nested node_modules counted once), and what is left of those after the
 *   image's prune rules (image/lib/app.sh: app_prune and the native addons' build leftovers) on linux-x64.
 * - import cost of each heavy dependency alone: a fresh `node` imports it; wall time and RSS delta
 *   (median of runs).
 * - baseline (optional, BENCH_BASELINE_REF=<git ref>): that commit's runtime (`git archive`, this checkout's
 *   node_modules linked, tsc-built), started as its own `#!` line says, measured for idle RSS, RSS with clients
 *   and start in the same run: a before/after.
 *
 * - with BENCH_NODE_FLAGS (sets separated by commas, each of node flags and NAME=value environment words,
 *   e.g. "--max-semi-space-size=16,MALLOC_ARENA_MAX=2 --max-semi-space-size=4"; V8's own default semi-space
 *   is 16 MB): this checkout again per set, started with exactly that set instead of the `#!` line's, for idle
 *   RSS, RSS with clients and start: what V8's and glibc's settings change; and what they cost: the installed
 *   runtime and one per set take turns at broker throughput and device command latency
 *   (bench/throughput-probe.ts, BENCH_TP_ROUNDS rounds, default 6).
 *
 * - with BENCH_IDLE_ONLY=1: only the idle box, this checkout and the baseline (BENCH_BASELINE_REF) taking turns
 *   for BENCH_RUNS rounds: idle RSS as above, the V8 heap then (its /metrics, read after the RSS), and the
 *   first agent request after the start (`POST /api/chat` "turn on the lamp", a fast-path request; wall time
 *   and the runtime's own total_ms), which pays for loading the agent where it is loaded on first use
 *   (app/lazy-feature.ts); then a second one, and the RSS 5 s after both (what first use brings in).
 *   BENCH_CONFIG_FILE=<path>: both started with that config file instead of embedded defaults (what a box
 *   with a config file holds: the file is parsed at start).
 *   Medians, a table and JSON: what loading on first use saves and what it costs the first request.
 *
 * Environment: BENCH_RUNS (default 5), BENCH_IDLE_ONLY=1, BENCH_CONFIG_FILE, BENCH_CLIENTS (1000), BENCH_CLIENTS_SETTLE_MS (25000), BENCH_BASELINE_REF,
 * BENCH_NODE_FLAGS, BENCH_TP_ROUNDS, BENCH_FLAGS_ONLY=1 (only the node-flags comparison), BENCH_NO_BUILD=1.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort } from '../test/free-port.js';
import { ROOT, type RuntimeProcess, executableRssBytes, fileBackedRssBytes, installedCommandLine, mb, rssBytes, round, sleep, splitEnvAndFlags, startRuntime } from './runtime-process.js';
import { machineFacts, median } from './stats.js';
import { type ThroughputFigures, compareThroughput } from './throughput-probe.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 1000);
const BASELINE_REF = process.env.BENCH_BASELINE_REF;
const NO_BUILD = process.env.BENCH_NO_BUILD === '1';
/** A flag set: node flags, and NAME=value words for the environment (glibc's MALLOC_ARENA_MAX and such). */
interface FlagSet {
  label: string;
  flags: string[];
  env: Record<string, string>;
}
const FLAG_SETS: FlagSet[] = (process.env.BENCH_NODE_FLAGS ?? '')
  .split(',')
  .map((set) => set.split(/\s+/).filter(Boolean))
  .filter((words) => words.length > 0)
  .map((words) => ({ label: words.join(' '), ...splitEnvAndFlags(words) }));
/** How long after the last client connected the RSS with clients is read: the runtime gives a burst's garbage back once quiet (runtime/system/settle-memory.ts, checks every 10 s). */
const CLIENTS_SETTLE_MS = Number(process.env.BENCH_CLIENTS_SETTLE_MS ?? 25_000);
const TP_ROUNDS = Number(process.env.BENCH_TP_ROUNDS ?? 6);
/** Only the node-flags comparison (RSS, start, throughput), for trying flag sets quickly. */
const FLAGS_ONLY = process.env.BENCH_FLAGS_ONLY === '1';
/** Only the idle box, checkout against baseline, in alternating rounds (see the file comment). */
const IDLE_ONLY = process.env.BENCH_IDLE_ONLY === '1';
/** A config file both idle-only variants start with (default: none, embedded defaults). */
const CONFIG_FILE = process.env.BENCH_CONFIG_FILE ? path.resolve(process.env.BENCH_CONFIG_FILE) : undefined;
const HEAVY = [
  'node-llama-cpp',
  'mathjs',
  'better-sqlite3',
  'pg',
  'mysql2',
  '@whiskeysockets/baileys',
  'grammy',
  '@grpc/grpc-js',
  'ioredis',
  'systeminformation',
  'aedes',
  'ajv',
];

const log = (line: string): void => void process.stderr.write(`${line}\n`);

// ---- memory ------------------------------------------------------------------------------------------

async function settledRss(pid: number, waitMs = 5000): Promise<number> {
  await sleep(waitMs);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(rssBytes(pid));
    await sleep(1000);
  }
  return median(samples);
}

async function connectClients(port: number, count: number, prefix: string): Promise<MqttClient[]> {
  const clients: MqttClient[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = Array.from({ length: Math.min(50, count - i) }, (_, j) => {
      const client = mqtt.connect({ host: '127.0.0.1', port, protocolVersion: 4, clientId: `${prefix}-${i + j}`, reconnectPeriod: 0, keepalive: 300, connectTimeout: 60_000 });
      return new Promise<MqttClient>((resolve, reject) => {
        client.once('connect', () => resolve(client));
        client.once('error', reject);
      });
    });
    clients.push(...(await Promise.all(batch)));
  }
  return clients;
}

async function endClients(clients: MqttClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.endAsync(true)));
}

/** RSS with the clients connected: 5 s after the last one connected, and once the runtime had time to settle. */
/** A bare `node` with the installed flags and environment, idle: what any Node process costs here. */
async function bareNodeRss(): Promise<{ rss_mb: number; node_binary_mb: number }> {
  const line = installedCommandLine();
  const child = spawn(process.execPath, [...line.flags, '-e', 'setInterval(() => {}, 1000)'], { env: { ...process.env, ...line.env }, stdio: 'ignore' });
  try {
    const rss = await settledRss(child.pid!);
    return { rss_mb: mb(rss), node_binary_mb: mb(executableRssBytes(child.pid!)) };
  } finally {
    child.kill('SIGKILL');
  }
}

async function withClientsRss(pid: number, port: number, prefix: string): Promise<{ early: number; settled: number }> {
  const clients = await connectClients(port, CLIENTS, prefix);
  const early = await settledRss(pid);
  const settled = await settledRss(pid, Math.max(0, CLIENTS_SETTLE_MS - 10_000));
  await endClients(clients);
  return { early, settled };
}

async function startMosquitto(scratch: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const conf = path.join(scratch, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest stderr', 'log_type error', ''].join('\n'));
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 500; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (open) return { child, port };
    await sleep(20);
  }
  child.kill('SIGKILL');
  throw new Error('mosquitto did not listen');
}

// ---- persisted state ---------------------------------------------------------------------------------

const RETAINED = 1000;
const SESSIONS = 200;
const QUEUED_PER_SESSION = 20;
const COMMANDS = 500;

/** Writes realistic state into a running runtime: retained messages, offline sessions with queues, audited commands. */
async function persistState(rt: RuntimeProcess): Promise<void> {
  const publisher = (await connectClients(rt.mqttPort, 1, 'fp-state-pub'))[0]!;
  const payload = JSON.stringify({ value: 'x'.repeat(200) });
  for (let i = 0; i < RETAINED; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => publisher.publishAsync(`bench/retained/${i + j}`, payload, { qos: 1, retain: true })));
  }
  for (let i = 0; i < SESSIONS; i += 50) {
    const batch = Array.from({ length: Math.min(50, SESSIONS - i) }, async (_, j) => {
      const c = mqtt.connect({ host: '127.0.0.1', port: rt.mqttPort, clientId: `fp-session-${i + j}`, clean: false, reconnectPeriod: 0 });
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => resolve());
        c.once('error', reject);
      });
      await c.subscribeAsync('bench/queue/#', { qos: 1 });
      await c.endAsync();
    });
    await Promise.all(batch);
  }
  for (let i = 0; i < QUEUED_PER_SESSION; i++) await publisher.publishAsync(`bench/queue/${i}`, payload, { qos: 1 });
  // Device commands: each one is audited.
  for (let i = 0; i < COMMANDS; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, (_, j) => publisher.publishAsync('clawbox/lamp/set', JSON.stringify({ state: (i + j) % 2 ? 'ON' : 'OFF' }), { qos: 1 })),
    );
  }
  await sleep(1000); // let the store and the audit log write what they were given
  await publisher.endAsync();
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += dirBytes(full);
    else if (entry.isFile()) total += lstatSync(full).size;
  }
  return total;
}

// ---- node_modules ------------------------------------------------------------------------------------

const NPM_CPU = process.arch === 'arm64' ? 'arm64' : 'x64';

/** Whether the image's prune (image/lib/app.sh) removes this file (path relative to node_modules). */
function prunedByImage(rel: string, nativeAddons: readonly string[]): boolean {
  const llama = /^@node-llama-cpp\/([^/]+)\//.exec(rel);
  if (llama && llama[1] !== `linux-${NPM_CPU}`) return true;
  if (/^(typescript|@types)\//.test(rel)) return true;
  const base = path.basename(rel);
  if (!/^LICENSE/i.test(base) && (/\.md$/i.test(base) || /\.d\.[cm]?ts$/.test(base) || base.endsWith('.map'))) return true;
  if (rel.startsWith('mathjs/lib/browser/') || rel === 'node-llama-cpp/llama/gitRelease.bundle') return true;
  const prebuild = /\/prebuilds\/([^/]+)\//.exec(rel);
  if (prebuild) {
    const p = prebuild[1]!;
    if (/^(darwin|win32|android|freebsd)-/.test(p) || ['linux-arm', 'linux-ia32', 'linux-armv7'].includes(p)) return true;
    if (p.startsWith('linux-') && p !== `linux-${NPM_CPU}`) return true;
    if (p.includes('musl') || base.includes('musl')) return true;
  }
  for (const addon of nativeAddons) {
    if (!rel.startsWith(`${addon}/`)) continue;
    const inner = rel.slice(addon.length + 1);
    if (inner.startsWith('deps/') || inner.startsWith('src/')) return true;
    if (inner.startsWith('build/') && !(inner.startsWith('build/Release/') && inner.endsWith('.node'))) return true;
  }
  return false;
}

/** `npm ci --omit=dev` of this package.json and lockfile in a temp folder: MB on disk and packages installed. */
function productionInstall(scratch: string): { mb: number; packages: number; native_binaries_mb: number; largest: { package: string; mb: number }[] } | { error: string } {
  const dir = path.join(scratch, 'production-install');
  mkdirSync(dir);
  for (const file of ['package.json', 'package-lock.json']) writeFileSync(path.join(dir, file), readFileSync(path.join(ROOT, file)));
  const installed = spawnSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: dir,
    encoding: 'utf8',
  });
  if (installed.status !== 0) return { error: `npm ci --omit=dev failed: ${installed.stderr.slice(-500)}` };
  const modules = path.join(dir, 'node_modules');
  const tops = readdirSync(modules).flatMap((name) => (name.startsWith('@') ? readdirSync(path.join(modules, name)).map((n) => `${name}/${n}`) : name.startsWith('.') ? [] : [name]));
  const perPackage = tops.map((name) => ({ package: name, bytes: dirBytes(path.join(modules, name)) }));
  // Addons without a prebuild for this platform are compiled (or fetched) by their install script.
  let nativeBytes = 0;
  for (const { package: name } of perPackage) {
    if (!existsSync(path.join(modules, name, 'binding.gyp')) || existsSync(path.join(modules, name, 'prebuilds', `linux-${NPM_CPU}`))) continue;
    const release = path.join(ROOT, 'node_modules', name, 'build', 'Release');
    if (!existsSync(release)) continue;
    for (const file of readdirSync(release)) if (file.endsWith('.node')) nativeBytes += lstatSync(path.join(release, file)).size;
  }
  const counted = JSON.parse(readFileSync(path.join(modules, '.package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
  return {
    mb: mb(dirBytes(modules) + nativeBytes),
    packages: Object.keys(counted.packages).length,
    native_binaries_mb: mb(nativeBytes),
    largest: perPackage
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, 8)
      .map((p) => ({ package: p.package, mb: mb(p.bytes) })),
  };
}

interface ModulesSize {
  packages: number;
  production_mb: number;
  after_image_prune_mb: number;
  whole_node_modules_mb: number;
  largest_production: { package: string; mb: number; after_prune_mb: number }[];
}

function modulesSize(): ModulesSize {
  const modules = path.join(ROOT, 'node_modules');
  const listed = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const dirs = [...new Set(listed.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith(`${modules}/`)))];
  const nativeAddons = dirs.filter((d) => existsSync(path.join(d, 'binding.gyp'))).map((d) => path.relative(modules, d));
  const perPackage = new Map<string, { bytes: number; kept: number }>();
  let bytes = 0;
  let kept = 0;
  const walk = (dir: string, top: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(full, top); // nested packages are entries of their own
      } else if (entry.isFile()) {
        const size = lstatSync(full).size;
        const rel = path.relative(modules, full);
        const keep = !prunedByImage(rel, nativeAddons);
        bytes += size;
        if (keep) kept += size;
        const sum = perPackage.get(top) ?? { bytes: 0, kept: 0 };
        sum.bytes += size;
        if (keep) sum.kept += size;
        perPackage.set(top, sum);
      }
    }
  };
  for (const dir of dirs) {
    const rel = path.relative(modules, dir);
    const top = rel.startsWith('@') ? rel.split('/').slice(0, 2).join('/') : rel.split('/')[0]!;
    walk(dir, top);
  }
  const largest = [...perPackage.entries()]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, 10)
    .map(([name, s]) => ({ package: name, mb: mb(s.bytes), after_prune_mb: mb(s.kept) }));
  return { packages: dirs.length, production_mb: mb(bytes), after_image_prune_mb: mb(kept), whole_node_modules_mb: mb(dirBytes(modules)), largest_production: largest };
}

// ---- import cost -------------------------------------------------------------------------------------

const IMPORT_SCRIPT = `const r0 = process.memoryUsage().rss; const t0 = performance.now();
await import(process.argv[1]);
const ms = performance.now() - t0; const rss = process.memoryUsage().rss - r0;
process.stdout.write(JSON.stringify({ ms, rss }));`;

function importCost(name: string): { module: string; ms: number; rss_mb: number } {
  const ms: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < 3; i++) {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', IMPORT_SCRIPT, name], { cwd: ROOT, encoding: 'utf8' });
    const r = JSON.parse(out) as { ms: number; rss: number };
    ms.push(r.ms);
    rss.push(r.rss);
  }
  return { module: name, ms: round(median(ms)), rss_mb: mb(median(rss)) };
}

// ---- main --------------------------------------------------------------------------------------------

interface RuntimeFigures {
  variant: string;
  how: string;
  idle_rss_mb: number;
  /** Of the idle RSS, pages of mapped files (the node binary, shared libraries, addons). */
  idle_file_backed_rss_mb: number;
  /** Of the mapped files, the `node` binary's own pages. */
  idle_node_binary_rss_mb: number;
  /** With the clients, once settled (CLIENTS_SETTLE_MS after the last one connected). */
  clients_rss_mb: number | null;
  /** With the clients, 5-10 s after the last one connected. */
  clients_rss_early_mb: number | null;
  ready_ms_median: number;
  ready_ms_runs: number[];
}

function buildBaseline(ref: string, scratch: string): { dir: string; commit: string; line: ReturnType<typeof installedCommandLine>; installed: string } {
  const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = path.join(scratch, 'baseline');
  mkdirSync(dir);
  execFileSync('bash', ['-c', `git archive ${commit} | tar -x -C '${dir}'`], { cwd: ROOT });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  log(`building baseline ${commit} (tsc) ...`);
  spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'ignore' });
  if (!existsSync(path.join(dir, 'dist/app/main.js'))) throw new Error('the baseline build produced no dist/app/main.js');
  // The build's later steps where that commit has them (precompiled validators, ASCII-only dist/), so the
  // baseline's dist/ is what its `npm run build` makes (the web app's files do not change the runtime's memory).
  for (const step of ['bin/precompile-validators.js', 'bin/ascii-dist.js']) {
    if (existsSync(path.join(dir, step))) spawnSync(process.execPath, [step], { cwd: dir, stdio: 'ignore' });
  }
  const line = installedCommandLine(path.join(dir, 'bin/clawbox.js'));
  return { dir, commit, line, installed: [...Object.entries(line.env).map(([k, v]) => `${k}=${v}`), 'node', ...line.flags].join(' ') };
}

async function runtimeFigures(
  variant: string,
  how: string,
  command: string[] | undefined,
  cwd: string,
  scratch: string,
  withClients: boolean,
  env: Record<string, string> = {},
): Promise<RuntimeFigures> {
  const stateDir = path.join(scratch, `${variant}-idle-state`);
  const rt = await startRuntime({ stateDir, command, cwd, env });
  let idle: number;
  let idleFileBacked: number;
  let idleNodeBinary: number;
  let clients: { early: number; settled: number } | null = null;
  try {
    idle = await settledRss(rt.pid);
    idleFileBacked = fileBackedRssBytes(rt.pid);
    idleNodeBinary = executableRssBytes(rt.pid);
    log(`${variant}: idle RSS ${mb(idle)} MB (${mb(idleFileBacked)} MB of it mapped files: node, libraries, addons)`);
    if (withClients) {
      clients = await withClientsRss(rt.pid, rt.mqttPort, `fp-${variant}`);
      log(`${variant}: RSS with ${CLIENTS} clients ${mb(clients.early)} MB, ${mb(clients.settled)} MB ${CLIENTS_SETTLE_MS / 1000} s after they connected`);
    }
  } finally {
    await rt.kill();
  }
  const ready: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const again = await startRuntime({ stateDir, command, cwd, env });
    ready.push(round(again.readyMs));
    await again.kill();
  }
  log(`${variant}: ready ${ready.join(', ')} ms`);
  return {
    variant,
    how,
    idle_rss_mb: mb(idle),
    idle_file_backed_rss_mb: mb(idleFileBacked),
    idle_node_binary_rss_mb: mb(idleNodeBinary),
    clients_rss_mb: clients === null ? null : mb(clients.settled),
    clients_rss_early_mb: clients === null ? null : mb(clients.early),
    ready_ms_median: median(ready),
    ready_ms_runs: ready,
  };
}

// ---- idle box only: checkout against baseline, alternating ----------------------------------------------

/** POST /api/chat as the web app's chat sends it; wall time and the runtime's own total. */
async function chatRequest(port: number, text: string): Promise<{ wall_ms: number; total_ms: number | null; path: string | null }> {
  const began = performance.now();
  const body = JSON.stringify({ text });
  const answer = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/chat', headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        data += chunk;
      });
      res.on('end', () => (res.statusCode === 200 ? resolve(data) : reject(new Error(`POST /api/chat: ${res.statusCode} ${data.slice(0, 300)}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
  const wall = performance.now() - began;
  const data = (JSON.parse(answer) as { data?: { path?: string; timings?: { total_ms?: number } } }).data;
  return { wall_ms: round(wall, 1), total_ms: data?.timings?.total_ms === undefined ? null : round(data.timings.total_ms, 1), path: data?.path ?? null };
}

/** The runtime's V8 heap in use, MB, from its /metrics (the process figures are registered by that first read). */
async function heapUsedMb(port: number): Promise<number | null> {
  const text = await new Promise<string>((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          data += chunk;
        });
        res.on('end', () => resolve(data));
      })
      .on('error', () => resolve(''));
  });
  const found = /^\w*nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
  return found ? mb(Number(found[1])) : null;
}

interface IdleRound {
  idle_rss_mb: number;
  /** Of the idle RSS, the pages of the `node` binary (built-in modules' code, V8 and ICU paged in by use). */
  node_binary_mb: number;
  heap_used_mb: number | null;
  first_request: { wall_ms: number; total_ms: number | null; path: string | null };
  second_request: { wall_ms: number; total_ms: number | null; path: string | null };
  /** VmRSS once the two requests were answered (5 s later, median of 5): what the first use brought in. */
  after_requests_rss_mb: number;
}

async function idleRound(variant: string, command: string[] | undefined, cwd: string, scratch: string, env: Record<string, string>, index: number): Promise<IdleRound> {
  const rt = await startRuntime({ stateDir: path.join(scratch, `${variant}-idle-${index}`), command, cwd, env, configFile: CONFIG_FILE });
  try {
    const idle = await settledRss(rt.pid);
    const binary = executableRssBytes(rt.pid);
    const heap = await heapUsedMb(rt.httpPort);
    const first = await chatRequest(rt.httpPort, 'turn on the lamp');
    const second = await chatRequest(rt.httpPort, 'turn off the lamp');
    const after = await settledRss(rt.pid);
    log(`${variant} round ${index + 1}: idle RSS ${mb(idle)} MB (node binary ${mb(binary)}), heap ${heap} MB, first request ${first.wall_ms} ms (${first.path}), second ${second.wall_ms} ms, RSS after them ${mb(after)} MB`);
    return { idle_rss_mb: mb(idle), node_binary_mb: mb(binary), heap_used_mb: heap, first_request: first, second_request: second, after_requests_rss_mb: mb(after) };
  } finally {
    await rt.kill();
  }
}

async function idleOnly(scratch: string, loadBefore: number[]): Promise<void> {
  if (!BASELINE_REF) throw new Error('BENCH_IDLE_ONLY compares against a baseline: set BENCH_BASELINE_REF');
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  const baseline = buildBaseline(BASELINE_REF, scratch);
  const line = installedCommandLine();
  const variants = [
    { variant: 'clawbox', how: `${head}${dirty ? ' + working tree' : ''}`, command: undefined, cwd: ROOT, env: line.env },
    {
      variant: 'baseline',
      how: baseline.commit,
      command: [process.execPath, ...baseline.line.flags, path.join(baseline.dir, 'bin/clawbox.js'), 'start'],
      cwd: baseline.dir,
      env: baseline.line.env,
    },
  ];
  const rounds: Record<string, IdleRound[]> = { clawbox: [], baseline: [] };
  for (let i = 0; i < RUNS; i++) {
    // Alternating, and which goes first alternates too: a machine whose load drifts favours neither.
    for (const v of i % 2 ? [...variants].reverse() : variants) rounds[v.variant]!.push(await idleRound(v.variant, v.command, v.cwd, scratch, v.env, i));
  }
  const figures = (variant: string) => {
    const r = rounds[variant]!;
    const heaps = r.map((x) => x.heap_used_mb).filter((h): h is number => h !== null);
    return {
      idle_rss_mb: round(median(r.map((x) => x.idle_rss_mb)), 1),
      node_binary_mb: round(median(r.map((x) => x.node_binary_mb)), 1),
      heap_used_mb: heaps.length ? round(median(heaps), 1) : null,
      first_request_ms: round(median(r.map((x) => x.first_request.wall_ms)), 1),
      first_request_total_ms: round(median(r.map((x) => x.first_request.total_ms ?? Number.NaN)), 1),
      second_request_ms: round(median(r.map((x) => x.second_request.wall_ms)), 1),
      after_requests_rss_mb: round(median(r.map((x) => x.after_requests_rss_mb)), 1),
      fast_path: r.every((x) => x.first_request.path === 'fast' && x.second_request.path === 'fast'),
      rounds: r,
    };
  };
  const result = {
    benchmark: 'footprint-idle',
    at: new Date().toISOString(),
    machine: { ...machineFacts(loadBefore.map((n) => round(n, 2))), load_after: os.loadavg().map((n) => round(n, 2)) },
    runs: RUNS,
    config_file: CONFIG_FILE ?? null,
    clawbox: { how: variants[0]!.how, ...figures('clawbox') },
    baseline: { how: variants[1]!.how, ...figures('baseline') },
  };
  const c = result.clawbox;
  const b = result.baseline;
  const table = [
    `| idle box, median of ${RUNS} alternating rounds | clawbox ${c.how} | baseline ${b.how} |`,
    '|---|---:|---:|',
    `| idle RSS, MB (no model${CONFIG_FILE ? `, config file ${path.basename(CONFIG_FILE)}` : ''}) | ${c.idle_rss_mb} | ${b.idle_rss_mb} |`,
    `| of which pages of the node binary, MB | ${c.node_binary_mb} | ${b.node_binary_mb} |`,
    `| V8 heap used then, MB (/metrics) | ${c.heap_used_mb ?? 'n/a'} | ${b.heap_used_mb ?? 'n/a'} |`,
    `| first agent request after start (POST /api/chat, fast path), ms wall / runtime's total_ms | ${c.first_request_ms} / ${c.first_request_total_ms} | ${b.first_request_ms} / ${b.first_request_total_ms} |`,
    `| the second request, ms wall | ${c.second_request_ms} | ${b.second_request_ms} |`,
    `| RSS 5 s after those two requests, MB | ${c.after_requests_rss_mb} | ${b.after_requests_rss_mb} |`,
  ];
  if (!c.fast_path || !b.fast_path) table.push('', 'note: a request was not answered on the fast path (see the JSON)');
  process.stdout.write(`${table.join('\n')}\n\nload average before ${loadBefore.map((n) => n.toFixed(2)).join(' ')}, after ${result.machine.load_after.join(' ')}\n`);
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  const file = path.join(ROOT, 'bench/results', `footprint-idle-${result.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${path.relative(ROOT, file)}`);
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg();
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bench-footprint-'));
  try {
    if (!NO_BUILD) {
      log('build-if-stale (builds only when sources changed) ...');
      if (!buildIfStale()) log('the build failed (type errors?); measuring the dist/ there is');
    }
    if (IDLE_ONLY) {
      await idleOnly(scratch, loadBefore);
      return;
    }
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    const runtimes: RuntimeFigures[] = [];
    const installedLine = installedCommandLine();
    const installed = [...Object.entries(installedLine.env).map(([k, v]) => `${k}=${v}`), 'node', ...installedLine.flags].join(' ');
    runtimes.push(await runtimeFigures('clawbox', `${installed} bin/clawbox.js start at ${head}${dirty ? ' + working tree' : ''}`, undefined, ROOT, scratch, true));
    const flagCommand = (set: FlagSet) => [process.execPath, ...set.flags, path.join(ROOT, 'bin/clawbox.js'), 'start'];
    for (const [i, set] of FLAG_SETS.entries()) {
      runtimes.push(await runtimeFigures(`flags-${i + 1}`, `${set.label} bin/clawbox.js start`, flagCommand(set), ROOT, scratch, true, set.env));
    }
    let throughput: ({ flags: string } & ThroughputFigures)[] | null = null;
    if (FLAG_SETS.length) {
      log(`throughput, without flags and with each set, ${TP_ROUNDS} alternating rounds ...`);
      const contenders: RuntimeProcess[] = [];
      try {
        contenders.push(await startRuntime({ stateDir: path.join(scratch, 'tp-default') }));
        for (const [i, set] of FLAG_SETS.entries()) {
          contenders.push(await startRuntime({ stateDir: path.join(scratch, `tp-flags-${i + 1}`), command: flagCommand(set), env: set.env }));
        }
        const figures = await compareThroughput(contenders, TP_ROUNDS, log);
        throughput = figures.map((f, i) => ({ flags: i === 0 ? `as installed (${installed})` : FLAG_SETS[i - 1]!.label, ...f }));
      } finally {
        await Promise.all(contenders.map((c) => c.kill()));
      }
    }
    if (BASELINE_REF) {
      const baseline = buildBaseline(BASELINE_REF, scratch);
      runtimes.push(
        await runtimeFigures(
          'baseline',
          `${baseline.installed} bin/clawbox.js start at ${baseline.commit}, as installed there`,
          [process.execPath, ...baseline.line.flags, path.join(baseline.dir, 'bin/clawbox.js'), 'start'],
          baseline.dir,
          scratch,
          true,
          baseline.line.env,
        ),
      );
    }

    if (FLAGS_ONLY && throughput) {
      printFlagsOnly(runtimes, throughput, loadBefore);
      return;
    }

    log('a bare node process, idle ...');
    const bare = await bareNodeRss();

    log(`mosquitto with ${CLIENTS} clients ...`);
    const mosq = await startMosquitto(scratch);
    const mosqIdle = await settledRss(mosq.child.pid!);
    const mosqClients = await withClientsRss(mosq.child.pid!, mosq.port, 'fp-mosq');
    mosq.child.kill('SIGKILL');

    log('npm start when built ...');
    // Built right before each run (untimed); a run during which a source changed (a shared tree) rebuilds,
    // and is reported apart, not in the median.
    const npmReady: number[] = [];
    const npmRebuilt: number[] = [];
    const npmState = path.join(scratch, 'npm-start-state');
    const stamp = path.join(ROOT, 'dist/.build-stamp');
    for (let i = 0; i < RUNS; i++) {
      buildIfStale();
      const stampBefore = existsSync(stamp) ? lstatSync(stamp).mtimeMs : 0;
      const rt = await startRuntime({ stateDir: npmState, command: ['npm', 'start', '--silent'], cwd: ROOT }).catch((error: unknown) => {
        log(`npm start failed: ${error instanceof Error ? error.message.slice(0, 300) : String(error)}`);
        return null;
      });
      if (!rt) continue;
      const rebuilt = (existsSync(stamp) ? lstatSync(stamp).mtimeMs : 0) !== stampBefore;
      (rebuilt ? npmRebuilt : npmReady).push(round(rt.readyMs));
      await rt.kill();
    }

    log('ready after kill -9 with persisted state ...');
    const stateDir = path.join(scratch, 'persisted-state');
    const first = await startRuntime({ stateDir });
    await persistState(first);
    await first.kill();
    const stateMb = mb(dirBytes(stateDir));
    const killReady: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const rt = await startRuntime({ stateDir });
      killReady.push(round(rt.readyMs));
      await rt.kill();
    }

    log('node_modules (npm ci --omit=dev into a temp folder) ...');
    const production = productionInstall(scratch);
    const modules = modulesSize();
    log('import cost per module ...');
    const imports = HEAVY.map(importCost);

    const clawbox = runtimes[0]!;
    const baselineFigures = runtimes.find((r) => r.variant === 'baseline');
    const result = {
      benchmark: 'footprint',
      at: new Date().toISOString(),
      machine: { ...machineFacts(loadBefore.map((n) => round(n, 2))), mosquitto: mosquittoVersion() },
      runs: RUNS,
      clients: CLIENTS,
      runtimes,
      mosquitto: { idle_rss_mb: mb(mosqIdle), clients_rss_mb: mb(mosqClients.settled), clients_rss_early_mb: mb(mosqClients.early) },
      bare_node: bare,
      npm_start_ready_ms: { median: npmReady.length ? median(npmReady) : null, runs: npmReady, runs_that_rebuilt: npmRebuilt },
      kill9_ready_ms: {
        median: median(killReady),
        runs: killReady,
        state: { retained: RETAINED, persistent_sessions: SESSIONS, queued_per_session: QUEUED_PER_SESSION, audited_commands: COMMANDS, state_dir_mb: stateMb },
      },
      node_modules: modules,
      production_install: production,
      import_cost: imports,
      node_flags_throughput: throughput && { rounds: TP_ROUNDS, runtimes: throughput },
    };
    mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
    const file = path.join(ROOT, 'bench/results', `footprint-${result.at.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

    const m = result.machine;
    const lines = [
      `Machine: ${m.cpus} vCPU ${m.cpu_model}, ${m.memory_gb} GB, Node ${m.node}, ${m.mosquitto}; load average ${m.load_average_before[0]} before, ${m.load_average_after[0]} after`,
      '',
      `| metric | clawbox | mosquitto | goal |${BASELINE_REF ? ' baseline |' : ''}`,
      `|---|---:|---:|---:|${BASELINE_REF ? '---:|' : ''}`,
      `| idle RSS, MB (no model) | ${clawbox.idle_rss_mb} | ${mb(mosqIdle)} | 60 |${BASELINE_REF ? ` ${baselineFigures!.idle_rss_mb} |` : ''}`,
      `| of the idle RSS: mapped files (node binary, libraries, addons), MB | ${clawbox.idle_file_backed_rss_mb} | | |${BASELINE_REF ? ` ${baselineFigures!.idle_file_backed_rss_mb} |` : ''}`,
      `| of those, the \`node\` binary's own pages, MB | ${clawbox.idle_node_binary_rss_mb} | | |${BASELINE_REF ? ` ${baselineFigures!.idle_node_binary_rss_mb} |` : ''}`,
      `| a bare \`node\` (same flags, an idle timer) for comparison: RSS / of it the binary's pages, MB | ${bare.rss_mb} / ${bare.node_binary_mb} | | |${BASELINE_REF ? ' |' : ''}`,
      `| RSS with ${CLIENTS} idle MQTT clients, ${CLIENTS_SETTLE_MS / 1000} s after they connected, MB | ${clawbox.clients_rss_mb} | ${mb(mosqClients.settled)} | 100 |${BASELINE_REF ? ` ${baselineFigures!.clients_rss_mb} |` : ''}`,
      `| the same 5 s after they connected, MB | ${clawbox.clients_rss_early_mb} | ${mb(mosqClients.early)} | |${BASELINE_REF ? ` ${baselineFigures!.clients_rss_early_mb} |` : ''}`,
      `| spawn to /healthz 200, ms (median of ${RUNS}) | ${clawbox.ready_ms_median} | | 2000 |${BASELINE_REF ? ` ${baselineFigures!.ready_ms_median} |` : ''}`,
      `| \`npm start\` to /healthz 200 when built, ms (${npmReady.length} runs; ${npmRebuilt.length} rebuilt, left out) | ${result.npm_start_ready_ms.median ?? 'n/a'} | | 2000 |${BASELINE_REF ? ' |' : ''}`,
      `| ready after kill -9 with state (${stateMb} MB), ms | ${result.kill9_ready_ms.median} | | 2000 |${BASELINE_REF ? ' |' : ''}`,
      'error' in production
        ? `| \`npm ci --omit=dev\` node_modules, MB | ${production.error.replace(/\s+/g, ' ').slice(0, 200)} | | 300 |${BASELINE_REF ? ' |' : ''}`
        : `| \`npm ci --omit=dev\` node_modules, MB (${production.packages} packages; ${production.native_binaries_mb} MB of it native addon binaries) | ${production.mb} | | 300 |${BASELINE_REF ? ' |' : ''}`,
      `| production packages in this checkout, MB (\`npm ls --omit=dev\`: ${modules.packages}) | ${modules.production_mb} | | |${BASELINE_REF ? ' |' : ''}`,
      `| the same after the image's prune (linux-${NPM_CPU}), MB | ${modules.after_image_prune_mb} | | 300 |${BASELINE_REF ? ' |' : ''}`,
      `| whole node_modules (with dev), MB | ${modules.whole_node_modules_mb} | | |${BASELINE_REF ? ' |' : ''}`,
      '',
      '| module imported alone | ms (median of 3) | RSS delta, MB |',
      '|---|---:|---:|',
      ...imports.map((i) => `| ${i.module} | ${i.ms} | ${i.rss_mb} |`),
      '',
      ...('error' in production ? [] : ['| largest packages of `npm ci --omit=dev` | MB |', '|---|---:|', ...production.largest.map((p) => `| ${p.package} | ${p.mb} |`), '']),
      '| largest production packages | MB | after prune, MB |',
      '|---|---:|---:|',
      ...modules.largest_production.map((p) => `| ${p.package} | ${p.mb} | ${p.after_prune_mb} |`),
      '',
      ...runtimes.slice(1).map((r) => `${r.variant} (${r.how}): idle RSS ${r.idle_rss_mb} MB, with clients ${r.clients_rss_mb ?? 'n/a'} MB (${r.clients_rss_early_mb ?? 'n/a'} MB at 5 s), ready ${r.ready_ms_median} ms`),
      ...(throughput
        ? [
            '',
            `| node flags (throughput: ${TP_ROUNDS} alternating rounds) | broker QoS 0, msgs/s (median of rounds) | device command round trip p50, ms | p99, ms |`,
            '|---|---:|---:|---:|',
            ...throughput.map((t) => `| ${t.flags} | ${t.broker_msgs_per_s} | ${t.command_p50_ms} | ${t.command_p99_ms} |`),
          ]
        : []),
      `JSON: ${path.relative(ROOT, file)}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function printFlagsOnly(runtimes: RuntimeFigures[], throughput: ({ flags: string } & ThroughputFigures)[], loadBefore: number[]): void {
  const result = { benchmark: 'footprint-flags', at: new Date().toISOString(), machine: machineFacts(loadBefore.map((n) => round(n, 2))), clients: CLIENTS, runtimes, throughput };
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  const file = path.join(ROOT, 'bench/results', `footprint-flags-${result.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  const m = result.machine;
  const lines = [
    `Machine: ${m.cpus} vCPU ${m.cpu_model}, ${m.memory_gb} GB, Node ${m.node}; load average ${m.load_average_before[0]} before, ${m.load_average_after[0]} after`,
    '',
    `| node flags | idle RSS, MB | with ${CLIENTS} clients (5 s / ${CLIENTS_SETTLE_MS / 1000} s after), MB | ready, ms | broker QoS 0, msgs/s | command p50, ms | command p99, ms |`,
    '|---|---:|---:|---:|---:|---:|---:|',
    ...throughput.map((t, i) => {
      const r = runtimes[i]!;
      return `| ${t.flags} | ${r.idle_rss_mb} | ${r.clients_rss_early_mb ?? ''} / ${r.clients_rss_mb ?? ''} | ${r.ready_ms_median} | ${t.broker_msgs_per_s} | ${t.command_p50_ms} | ${t.command_p99_ms} |`;
    }),
    `JSON: ${path.relative(ROOT, file)}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** `npm start`'s build step; false when the build failed (e.g. someone's type errors in a shared tree). */
function buildIfStale(): boolean {
  return spawnSync(process.execPath, [path.join(ROOT, 'bin/build-if-stale.js')], { cwd: ROOT, stdio: 'ignore' }).status === 0;
}

function mosquittoVersion(): string {
  const out = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' });
  return (out.stdout || out.stderr).split('\n')[0]?.trim() ?? 'unknown';
}

await main();

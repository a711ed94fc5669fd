/**
 * The runtime as the installed command runs it (`node bin/clawbox.js start`), in its own process, for the
 * footprint and soak benchmarks: embedded defaults unless a config file is given, a caller's state dir,
 * broker and HTTP on free loopback ports. Ready means `/healthz` answers 200; the MQTT port is read from
 * the runtime's "serving" log line.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/free-port.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A list of words like "MALLOC_ARENA_MAX=2 --max-semi-space-size=4": NAME=value words (the environment) apart from node flags. */
export function splitEnvAndFlags(words: readonly string[]): { env: Record<string, string>; flags: string[] } {
  const env: Record<string, string> = {};
  const flags: string[] = [];
  for (const word of words) {
    const assignment = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(word);
    if (assignment) env[assignment[1]!] = assignment[2]!;
    else flags.push(word);
  }
  return { env, flags };
}

/**
 * bin/clawbox.js's `#!/usr/bin/env -S [NAME=value ...] node [flags]` line: the environment variables (glibc
 * malloc settings) and node flags the installed command runs with (none for a plain `#!/usr/bin/env node`).
 */
export function installedCommandLine(bin = path.join(ROOT, 'bin/clawbox.js')): { env: Record<string, string>; flags: string[] } {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
  const found = /^#!\/usr\/bin\/env -S (.*)$/.exec(first);
  const words = found ? found[1]!.trim().split(/\s+/) : [];
  const node = words.indexOf('node');
  return splitEnvAndFlags(node < 0 ? [] : [...words.slice(0, node), ...words.slice(node + 1)]);
}

/** The node flags on bin/clawbox.js's `#!` line. */
export function installedNodeFlags(bin = path.join(ROOT, 'bin/clawbox.js')): string[] {
  return installedCommandLine(bin).flags;
}
const READY_TIMEOUT_MS = 120_000;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
export const round = (n: number, digits = 0): number => Math.round(n * 10 ** digits) / 10 ** digits;
export const mb = (bytes: number): number => round(bytes / 1024 / 1024, 1);

export interface RuntimeProcess {
  child: ChildProcess;
  pid: number;
  httpPort: number;
  mqttPort: number;
  /** Spawn to the first `/healthz` 200, ms. */
  readyMs: number;
  /** SIGKILL (the whole process group when `detached`), resolved once it exited. */
  kill(): Promise<void>;
}

export interface StartOptions {
  stateDir: string;
  /** Default: `node <bin/clawbox.js's flags> bin/clawbox.js start` in ROOT with its `#!` line's environment, as the installed command runs. */
  command?: string[];
  cwd?: string;
  configFile?: string;
  env?: NodeJS.ProcessEnv;
}

/** Resolves once something accepts TCP connections on the loopback port; fails if `child` exits first. */
export async function waitForPort(port: number, child: ChildProcess, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listening on ${port} after ${ms} ms`);
}

export function healthz(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? null);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

/** VmRSS of a process, bytes (Linux). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
}

/**
 * The part of a process's RSS that maps files (the `node` binary, shared libraries, native addons) rather
 * than memory it allocated, bytes: Rss minus Anonymous of /proc/<pid>/smaps_rollup (Linux 4.14+).
 */
export function fileBackedRssBytes(pid: number): number {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0);
  return (kb('Rss') - kb('Anonymous')) * 1024;
}

/**
 * Two parts of a process's RSS from one read of /proc/<pid>/smaps, bytes: the pages of its own executable
 * (the `node` binary), and glibc's main malloc arena, the `[heap]` mapping (brk): what the main thread
 * mallocs (Node's and V8's own C++ objects, ArrayBuffer backing stores, socket reads).
 */
export function mappedRssBytes(pid: number): { executable: number; mallocHeap: number } {
  const exe = ` ${readlinkSync(`/proc/${pid}/exe`)}`;
  const kb = { executable: 0, mallocHeap: 0 };
  let part: keyof typeof kb | null = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    // A mapping's header line starts with its address range; its path, if any, is the last field.
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) part = line.endsWith(exe) ? 'executable' : line.endsWith(' [heap]') ? 'mallocHeap' : null;
    else if (part && line.startsWith('Rss:')) kb[part] += Number(/(\d+) kB/.exec(line)?.[1] ?? 0);
  }
  return { executable: kb.executable * 1024, mallocHeap: kb.mallocHeap * 1024 };
}

/** Of a process's RSS, the pages of its own executable (the `node` binary), bytes. */
export function executableRssBytes(pid: number): number {
  return mappedRssBytes(pid).executable;
}

/** Starts the runtime and waits until `/healthz` says 200 and the MQTT port is known. */
export async function startRuntime(options: StartOptions): Promise<RuntimeProcess> {
  const httpPort = await freePort();
  const installed = installedCommandLine();
  const command = options.command ?? [process.execPath, ...installed.flags, path.join(ROOT, 'bin/clawbox.js'), 'start'];
  const t0 = performance.now();
  // Its own process group, so `npm start` (npm -> sh -> node) is killed as a whole.
  const child = spawn(command[0]!, command.slice(1), {
    cwd: options.cwd ?? ROOT,
    detached: true,
    env: {
      ...process.env,
      ...(options.command ? {} : installed.env),
      ...options.env,
      CLAWBOX_CONFIG: options.configFile ?? '',
      CLAWBOX_STATE_DIR: options.stateDir,
      CLAWBOX_BROKER_PORT: '0',
      CLAWBOX_HTTP_PORT: String(httpPort),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let mqttPort = 0;
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    if (mqttPort) return;
    stdout += chunk.toString();
    const found = /"mqttPort":(\d+)/.exec(stdout);
    if (found) mqttPort = Number(found[1]);
    if (stdout.length > 1_000_000) stdout = stdout.slice(-10_000);
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    if (stderr.length < 4000) stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
    await exited;
  };
  let readyMs = 0;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`the runtime exited (${child.exitCode ?? child.signalCode}) before it was ready: ${stderr.trim()}`);
      }
      if (performance.now() - t0 > READY_TIMEOUT_MS) throw new Error(`the runtime was not ready after ${READY_TIMEOUT_MS} ms`);
      if (!readyMs && (await healthz(httpPort)) === 200) readyMs = performance.now() - t0;
      if (readyMs && mqttPort) break;
      await sleep(10);
    }
  } catch (error) {
    await kill();
    throw error;
  }
  // With `npm start` the runtime is a grandchild: its pid is the one listening, found by the log line's pid.
  const pid = Number(/"pid":(\d+)/.exec(stdout)?.[1] ?? child.pid);
  return { child, pid, httpPort, mqttPort, readyMs, kill };
}

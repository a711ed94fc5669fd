/**
 * The three ways a plugin runs, behind one small interface the supervisor uses: send a JSON text, get JSON
 * texts back, learn once that it is gone (and why), kill it.
 *   worker  — a Node worker thread with a V8 heap limit (resourceLimits); light, killable while in JS.
 *   process — a Node child process (IPC) with --max-old-space-size; killable even inside native code.
 *   python  — `python3` speaking JSON-RPC 2.0 as one JSON text per line on stdin/stdout; stderr is its log.
 * A plugin gets a minimal environment, never the runtime's (which may hold tokens).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from '../../runtime/logging.js';
import { OutputLog } from './output-log.js';
import { preview } from './rpc.js';
import { startModuleWorker } from './ts-worker.js';

export type ExitKind = 'exited' | 'crashed' | 'memory' | 'protocol' | 'spawn';

export interface ChannelExit {
  kind: ExitKind;
  message: string;
}

export interface PluginChannel {
  /** Sends one JSON text; throws when the plugin is gone. */
  send(text: string): void;
  /** Kills the plugin now; resolves once it is gone (or after a grace period if it cannot be stopped). */
  kill(): Promise<void>;
  /** OS process id, when the plugin is a process. */
  readonly pid: number | undefined;
}

export interface ChannelEvents {
  message(text: string): void;
  /** Called exactly once, whatever ended the plugin (also after kill()). */
  exit(exit: ChannelExit): void;
}

export interface ChannelOptions {
  name: string;
  entryPath: string;
  pluginDir: string;
  memoryLimitMb: number;
  maxMessageBytes: number;
  logger: Logger;
  python: string;
}

const FROM_SOURCES = import.meta.url.endsWith('.ts');
const NODE_MAIN = fileURLToPath(new URL(`./node-plugin-main${FROM_SOURCES ? '.ts' : '.js'}`, import.meta.url));
/**
 * Where clawbox_plugin.py lives: plugins/python/ beside this module's folder — in the sources, and in dist/
 * when the build copies it there; else the source copy in the installed package (dist/../plugins/python).
 */
export const PYTHON_HELPER_DIR = [new URL('../python/', import.meta.url), new URL('../../../plugins/python/', import.meta.url)]
  .map((url) => fileURLToPath(url))
  .find((dir) => existsSync(path.join(dir, 'clawbox_plugin.py'))) ?? fileURLToPath(new URL('../python/', import.meta.url));
const KILL_GRACE_MS = 2000;

export function minimalEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ['PATH', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR', 'HOME']) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return { ...env, ...extra };
}

export function openChannel(
  runtime: 'node' | 'python',
  isolation: 'worker' | 'process',
  options: ChannelOptions,
  events: ChannelEvents,
): PluginChannel {
  if (runtime === 'python') return openPython(options, events);
  return isolation === 'process' ? openNodeProcess(options, events) : openWorker(options, events);
}

/** Guards the exit callback so it fires once, and messages stop after it. */
function once(events: ChannelEvents): ChannelEvents & { gone: () => boolean } {
  let done = false;
  return {
    message: (text) => {
      if (!done) events.message(text);
    },
    exit: (exit) => {
      if (done) return;
      done = true;
      events.exit(exit);
    },
    gone: () => done,
  };
}

function checkMessage(value: unknown, max: number): string | ChannelExit {
  if (typeof value !== 'string') return { kind: 'protocol', message: 'sent a message that is not JSON text' };
  if (value.length > max) return { kind: 'protocol', message: `sent a message of ${value.length} bytes (limit ${max})` };
  return value;
}

function openWorker(o: ChannelOptions, raw: ChannelEvents): PluginChannel {
  const events = once(raw);
  const workerData = { entry: o.entryPath, name: o.name, maxMessageBytes: o.maxMessageBytes };
  const common = {
    workerData,
    env: minimalEnv(),
    stdout: true,
    stderr: true,
    resourceLimits: { maxOldGenerationSizeMb: o.memoryLimitMb, maxYoungGenerationSizeMb: Math.min(32, Math.max(4, o.memoryLimitMb / 8)) },
  };
  const worker = startModuleWorker(pathToFileURL(NODE_MAIN), common);
  const out = new OutputLog(o.logger, 'stdout');
  const err = new OutputLog(o.logger, 'stderr');
  worker.stdout.on('data', (chunk: Buffer) => out.write(chunk));
  worker.stderr.on('data', (chunk: Buffer) => err.write(chunk));
  let failure: ChannelExit | undefined;
  worker.on('message', (value: unknown) => {
    const checked = checkMessage(value, o.maxMessageBytes);
    if (typeof checked === 'string') events.message(checked);
    else {
      failure ??= checked;
      void worker.terminate();
    }
  });
  worker.on('error', (error: Error & { code?: string }) => {
    failure ??=
      error.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? { kind: 'memory', message: `ran out of its ${o.memoryLimitMb} MB heap` }
        : { kind: 'crashed', message: `uncaught ${error.name}: ${error.message}` };
  });
  worker.on('exit', (code) => events.exit(failure ?? { kind: 'exited', message: `exited with code ${code}` }));
  return {
    pid: undefined,
    send(text) {
      if (events.gone()) throw new Error('plugin worker is gone');
      worker.postMessage(text);
    },
    async kill() {
      if (events.gone()) return;
      // terminate() cannot interrupt native code; do not wait for ever.
      await Promise.race([worker.terminate(), delay(KILL_GRACE_MS)]);
      events.exit(failure ?? { kind: 'exited', message: 'stopped by the host' });
    },
  };
}

function openNodeProcess(o: ChannelOptions, raw: ChannelEvents): PluginChannel {
  const execArgv = [`--max-old-space-size=${o.memoryLimitMb}`];
  if (FROM_SOURCES) execArgv.push('--import', tsxLoaderUrl());
  const child = fork(NODE_MAIN, [], {
    cwd: o.pluginDir,
    execArgv,
    env: minimalEnv({
      CLAWBOX_PLUGIN_DATA: JSON.stringify({ entry: o.entryPath, name: o.name, maxMessageBytes: o.maxMessageBytes }),
    }),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  });
  return wireChild(child, o, raw, (onText, fail) => {
    child.on('message', (value: unknown) => {
      const checked = checkMessage(value, o.maxMessageBytes);
      if (typeof checked === 'string') onText(checked);
      else fail(checked);
    });
    const out = new OutputLog(o.logger, 'stdout');
    child.stdout?.on('data', (chunk: Buffer) => out.write(chunk));
    return (text) => {
      if (!child.connected) throw new Error('plugin process is gone');
      child.send(text);
    };
  });
}

/** The python side: sets its address-space limit, puts the helper and the plugin folder on sys.path, runs the entry. */
const PYTHON_BOOT = [
  'import resource, runpy, sys',
  'entry, helper, plugin_dir, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])',
  'if limit > 0: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))',
  'sys.path[:0] = [plugin_dir, helper]',
  'sys.argv = [entry]',
  "runpy.run_path(entry, run_name='__main__')",
].join('\n');

function openPython(o: ChannelOptions, raw: ChannelEvents): PluginChannel {
  // Python's own footprint is address space too (libraries, thread stacks): the heap limit plus 512 MB.
  const limitBytes = (o.memoryLimitMb + 512) * 1024 * 1024;
  const child = spawn(o.python, ['-I', '-u', '-c', PYTHON_BOOT, o.entryPath, PYTHON_HELPER_DIR, o.pluginDir, String(limitBytes)], {
    cwd: o.pluginDir,
    env: minimalEnv({ PYTHONDONTWRITEBYTECODE: '1', PYTHONIOENCODING: 'utf-8', CLAWBOX_PLUGIN_NAME: o.name }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return wireChild(child, o, raw, (onText, fail) => {
    let buffered = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      buffered += chunk;
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline).replace(/\r$/, '');
        buffered = buffered.slice(newline + 1);
        if (line.trim() !== '') {
          const checked = checkMessage(line, o.maxMessageBytes);
          if (typeof checked === 'string') onText(checked);
          else return fail(checked);
        }
        newline = buffered.indexOf('\n');
      }
      if (buffered.length > o.maxMessageBytes) {
        fail({ kind: 'protocol', message: `wrote more than ${o.maxMessageBytes} bytes on stdout without a newline: ${preview(buffered, 60)}` });
      }
    });
    child.stdin?.on('error', () => {
      // EPIPE when python died: the exit handler reports it.
    });
    return (text) => {
      if (!child.stdin || child.stdin.destroyed || child.exitCode !== null) throw new Error('plugin process is gone');
      child.stdin.write(`${text}\n`);
    };
  });
}

/** Exit, stderr, kill and failure handling shared by the two child-process kinds. */
function wireChild(
  child: ChildProcess,
  o: ChannelOptions,
  raw: ChannelEvents,
  setup: (onText: (text: string) => void, fail: (exit: ChannelExit) => void) => (text: string) => void,
): PluginChannel {
  const events = once(raw);
  let failure: ChannelExit | undefined;
  const err = new OutputLog(o.logger, 'stderr');
  child.stderr?.on('data', (chunk: Buffer) => err.write(chunk));
  const fail = (exit: ChannelExit) => {
    failure ??= exit;
    child.kill('SIGKILL');
  };
  const send = setup((text) => events.message(text), fail);
  child.on('error', (error: NodeJS.ErrnoException) => {
    // Spawn failures (ENOENT for a missing python3) come here and no 'exit' may follow.
    if (child.pid === undefined) {
      events.exit({ kind: 'spawn', message: `could not start: ${error.message}` });
    }
  });
  const exited = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      events.exit(failure ?? { kind: 'exited', message: how });
      resolve();
    });
    child.on('error', () => {
      if (child.pid === undefined) resolve();
    });
  });
  return {
    get pid() {
      return child.pid;
    },
    send(text) {
      if (events.gone()) throw new Error('plugin process is gone');
      send(text);
    },
    async kill() {
      if (events.gone()) return;
      child.kill('SIGKILL');
      await Promise.race([exited, delay(KILL_GRACE_MS)]);
    },
  };
}

// Only called when running from sources, where tsx (a dev dependency) is installed.
function tsxLoaderUrl(): string {
  return import.meta.resolve('tsx');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

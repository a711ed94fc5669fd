/**
 * The installed command (bin/clawbox.js with its #! line's flags) of a staged app, started as the image
 * starts it, with the files it loads traced; and a device command round trip against it. For the tests of
 * what the image build does to the app (app/bundle.test.ts, app/flatten-packages.test.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import mqtt from 'mqtt';
import { installedCommandLine } from '../../bench/runtime-process.js';
import { cleanEnv } from '../../test/cli-helpers.js';

/** Logs every module file the process loads (ESM and CommonJS), one `LOADED <url>` line each on stderr. */
const LOAD_TRACE = `data:text/javascript,${encodeURIComponent(`
import module from 'node:module';
import { writeSync } from 'node:fs';
module.registerHooks({ load(url, context, next) { if (url.startsWith('file:')) writeSync(2, 'LOADED ' + url + '\\n'); return next(url, context); } });
`)}`;

export interface Started {
  child: ChildProcess;
  httpPort: number;
  mqttPort: number;
  loaded: Set<string>;
  /** Kills it and waits for the exit. */
  stop(): Promise<void>;
}

/** `clawbox start` of the app in `dir` as installed (the #! line's flags), resolved once it says it is serving; `extraEnv` adds to its environment. */
export function startInstalled(dir: string, stateDir: string, extraEnv: Record<string, string> = {}): Promise<Started> {
  const { env, flags } = installedCommandLine(path.join(dir, 'bin', 'clawbox.js'));
  const child = spawn(process.execPath, [...flags, '--import', LOAD_TRACE, path.join(dir, 'bin', 'clawbox.js'), 'start'], {
    cwd: dir,
    env: cleanEnv({ ...env, ...extraEnv, CLAWBOX_STATE_DIR: stateDir, CLAWBOX_BROKER_PORT: '0', CLAWBOX_HTTP_PORT: '0' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const loaded = new Set<string>();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    child.kill('SIGKILL');
    await exited;
  };
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
    const lines = stderr.split('\n');
    stderr = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('LOADED ')) loaded.add(line.slice('LOADED '.length));
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`no 'serving' line within 120 s:\n${output.slice(-2000)}${stderr.slice(-2000)}`));
    }, 120_000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      output += chunk;
      for (const line of output.split('\n')) {
        if (!line.includes(' serving: ')) continue;
        const { httpPort, mqttPort } = JSON.parse(line) as { httpPort: number; mqttPort: number };
        clearTimeout(timer);
        resolve({ child, httpPort, mqttPort, loaded, stop });
        return;
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the runtime exited (${code ?? signal}) before serving:\n${output.slice(-2000)}${stderr.slice(-2000)}`));
    });
  });
}

/** The device's next state message after a `set` (the state it publishes on `clawbox/<id>`). */
export async function commandRoundTrip(mqttPort: number, device: string, state: 'ON' | 'OFF'): Promise<unknown> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0, connectTimeout: 30_000 });
  try {
    const reported = new Promise<unknown>((resolve) => {
      client.on('message', (_topic, payload) => {
        const message = JSON.parse(payload.toString()) as { state?: string };
        if (message.state === state) resolve(message.state);
      });
    });
    await client.subscribeAsync(`clawbox/${device}`, { qos: 1 });
    await client.publishAsync(`clawbox/${device}/set`, JSON.stringify({ state }), { qos: 1 });
    return await reported;
  } finally {
    await client.endAsync();
  }
}

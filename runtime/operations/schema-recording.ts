/**
 * One recorded start, for precompiling the validators a start uses: the build's (bin/precompile-validators.js,
 * from dist/) and the test run's (test/precompile-source-validators.ts, from the sources). It starts the
 * runtime on embedded defaults, a temp state dir and free loopback ports with the caller's recorder module
 * `--import`ed (it writes one JSON line per schema into `recordFile`, named by RECORD_ENV), and stops it
 * once it logs that it serves.
 */
import { spawn } from 'node:child_process';

export const RECORD_ENV = 'PRECOMPILE_VALIDATORS_RECORD';
const START_TIMEOUT_MS = 120_000;
/** What the runtime would take from the caller's environment and must not here. */
const DROPPED_ENV = new Set(['NODE_COMPILE_CACHE', 'NOTIFY_SOCKET', 'WATCHDOG_USEC']);

export interface RecordStartOptions {
  /** Everything after `node`: loaders, the recorder, the entry and `start`. */
  readonly nodeArgs: readonly string[];
  readonly recordFile: string;
  readonly stateDir: string;
  readonly env?: Readonly<Record<string, string>>;
}

/** Resolves once the runtime said it serves and exited; rejects when it exits first or takes too long. */
export function recordStart({ nodeArgs, recordFile, stateDir, env = {} }: RecordStartOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const inherited = Object.entries(process.env).filter(([name]) => !name.startsWith('CLAWBOX_') && !DROPPED_ENV.has(name));
    const child = spawn(process.execPath, [...nodeArgs], {
      cwd: stateDir,
      env: {
        ...Object.fromEntries(inherited),
        ...env,
        [RECORD_ENV]: recordFile,
        CLAWBOX_CONFIG: '',
        CLAWBOX_MODE: 'local',
        CLAWBOX_STATE_DIR: stateDir,
        CLAWBOX_BROKER_PORT: '0',
        CLAWBOX_HTTP_PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let serving = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the runtime did not say it was serving within ${START_TIMEOUT_MS / 1000} s`));
    }, START_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      out = (out + chunk.toString()).slice(-20_000);
      if (!serving && /"mqttPort":\d+/.test(out)) {
        serving = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err = (err + chunk.toString()).slice(-4000);
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (serving) resolve();
      else reject(new Error(`the runtime exited (${code ?? signal}) before serving: ${(err || out).trim().slice(-1000)}`));
    });
  });
}

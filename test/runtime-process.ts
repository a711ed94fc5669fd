/**
 * Runs the real runtime (`clawbox start`, from the sources) as a child process on ephemeral ports and
 * reads its JSON log lines, so end-to-end tests can talk to it and kill it like systemd would.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnCli } from './cli-helpers.js';

export interface LogLine {
  level: number;
  msg: string;
  component?: string;
  code?: string;
  [key: string]: unknown;
}

export interface RuntimeProcess {
  child: ChildProcess;
  stateDir: string;
  mqttPort: number;
  httpPort: number;
  logs: LogLine[];
  /** Resolves with the exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

export function newStateDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'clawbox-e2e-'));
}

export async function startRuntime(
  options: { stateDir?: string; env?: Record<string, string>; args?: string[]; /** Default 20 s. */ startTimeoutMs?: number } = {},
): Promise<RuntimeProcess> {
  const stateDir = options.stateDir ?? newStateDir();
  const child = spawnCli(['start', ...(options.args ?? [])], {
    env: {
      CLAWBOX_BROKER_PORT: '0',
      CLAWBOX_HTTP_PORT: '0',
      CLAWBOX_STATE_DIR: stateDir,
      CLAWBOX_LOG_LEVEL: 'info',
      ...options.env,
    },
  });
  const logs: LogLine[] = [];
  const waiters = new Set<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let buffer = '';
  let stderr = '';
  child.stdout!.on('data', (data: Buffer) => {
    buffer += data.toString();
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      const text = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf('\n');
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue;
      }
      logs.push(line);
      for (const waiter of waiters) {
        if (waiter.match(line)) {
          waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr!.on('data', (data: Buffer) => {
    stderr += data.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const waitForLog = (match: (line: LogLine) => boolean, timeoutMs = 20000) => {
    const found = logs.find(match);
    if (found) return Promise.resolve(found);
    return new Promise<LogLine>((resolve, reject) => {
      const waiter = {
        match,
        resolve: (line: LogLine) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      waiters.add(waiter);
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`));
      }, timeoutMs);
      void exited.then(({ code, signal }) => {
        if (!waiters.has(waiter)) return;
        waiters.delete(waiter);
        clearTimeout(timer);
        reject(new Error(`runtime exited (code ${code}, signal ${signal}) before the log line; stderr: ${stderr.slice(-2000)}`));
      });
    });
  };
  const serving = await waitForLog((l) => typeof l.mqttPort === 'number' && typeof l.httpPort === 'number', options.startTimeoutMs);
  return {
    child,
    stateDir,
    mqttPort: serving.mqttPort as number,
    httpPort: serving.httpPort as number,
    logs,
    exited,
    waitForLog,
  };
}

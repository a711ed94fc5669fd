/**
 * A throwaway Debian redis-server on a loopback port for tests and benchmarks: its own temp dir, the
 * append-only log fsynced on every write (what cluster mode asks of Redis), no RDB snapshots. Restartable
 * on the same port and data, to test what replicas do while Redis is down.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../test/free-port.js';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** Stops it (SIGKILL when `hard`), keeping its data for start(). */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > until) reject(new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** `replicaOf`: the port of a primary on loopback, to run as its Redis replica. */
export async function startRedisServer(options: { requirePass?: string; replicaOf?: number } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always',
    '--daemonize', 'no', '--logfile', path.join(dir, 'redis.log'),
    ...(options.requirePass ? ['--requirepass', options.requirePass] : []),
    ...(options.replicaOf ? ['--replicaof', '127.0.0.1', String(options.replicaOf)] : []),
  ];
  const start = async () => {
    child = spawn('/usr/bin/redis-server', args, { stdio: 'ignore' });
    await waitForPort(port, 15_000);
  };
  const stop = async (hard = false) => {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    dir,
    stop,
    start,
    destroy: async () => {
      await stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

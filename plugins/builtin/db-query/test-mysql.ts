/**
 * Test support: a throwaway MariaDB server (Debian package `mariadb-server`) in a temp dir on a loopback
 * port, run as the current user (root needs --user=root), with a database `shop`, a read-only user
 * (SELECT only) and a read-write user; `admin` runs SQL as root over the server's socket. stop() kills the
 * server by PID and removes the dir. Returns null when the MariaDB binaries are not installed.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { freePort } from '../../../test/free-port.js';

export interface TestMysql {
  port: number;
  database: string;
  reader: { user: string; password: string };
  writer: { user: string; password: string };
  /** Runs SQL (several statements allowed) as root. */
  admin(sql: string): Promise<void>;
  stop(): void;
}

const first = (paths: string[]) => paths.find((p) => existsSync(p)) ?? null;


export async function startTestMysql(): Promise<TestMysql | null> {
  const server = first(['/usr/sbin/mariadbd', '/usr/sbin/mysqld']);
  const install = first(['/usr/bin/mariadb-install-db', '/usr/bin/mysql_install_db']);
  if (!server || !install) return null;
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-my-'));
  const data = path.join(dir, 'data');
  const socket = path.join(dir, 'sock');
  const errorLog = path.join(dir, 'error.log');
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  const logTail = () => (existsSync(errorLog) ? readFileSync(errorLog, 'utf8').split('\n').slice(-15).join('\n') : '');
  let child: ChildProcess | undefined;
  const kill = () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  };
  const stop = () => {
    kill();
    process.off('exit', kill);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    execFileSync(
      install,
      ['--no-defaults', `--datadir=${data}`, ...asRoot, '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve'],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 },
    );
    const port = await freePort();
    child = spawn(
      server,
      [
        '--no-defaults',
        `--datadir=${data}`,
        ...asRoot,
        `--socket=${socket}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--pid-file=${path.join(dir, 'pid')}`,
        `--log-error=${errorLog}`,
        `--tmpdir=${dir}`,
        '--skip-name-resolve',
        '--innodb-buffer-pool-size=16M',
        '--innodb-flush-log-at-trx-commit=0',
      ],
      { stdio: 'ignore' },
    );
    process.on('exit', kill);
    const admin = await connectAdmin(socket, child, logTail);
    const reader = { user: 'reader', password: 'reader-pw' };
    const writer = { user: 'writer', password: 'writer-pw' };
    await admin.query(`CREATE DATABASE shop;
      CREATE USER '${reader.user}'@'%' IDENTIFIED BY '${reader.password}';
      CREATE USER '${writer.user}'@'%' IDENTIFIED BY '${writer.password}';
      GRANT SELECT ON shop.* TO '${reader.user}'@'%';
      GRANT ALL ON shop.* TO '${writer.user}'@'%';`);
    await admin.end();
    return {
      port,
      database: 'shop',
      reader,
      writer,
      async admin(sql) {
        const conn = await mysql.createConnection({ socketPath: socket, user: 'root', database: 'shop', multipleStatements: true });
        try {
          await conn.query(sql);
        } finally {
          await conn.end();
        }
      },
      stop,
    };
  } catch (error) {
    stop();
    throw error;
  }
}

/** Root over the socket once the server answers (10 s at most). */
async function connectAdmin(socket: string, child: ChildProcess, logTail: () => string): Promise<mysql.Connection> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`mariadbd exited early:\n${logTail()}`);
    try {
      return await mysql.createConnection({ socketPath: socket, user: 'root', multipleStatements: true });
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`mariadbd did not answer within 10 s (${(error as Error).message}):\n${logTail()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

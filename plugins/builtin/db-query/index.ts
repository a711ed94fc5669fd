/**
 * db-query: SQL over named connections from the plugin config (SQLite, PostgreSQL, MySQL/MariaDB). Each query passes the SQL guard (one
 * statement, parameters only, read-only unless the connection says otherwise), then runs with the row
 * and time limits of its connection. Runs as a child process (isolation: process): SQLite work happens in
 * a worker thread, and when a SQLite query outlives its limit the call is answered DEADLINE_EXCEEDED and
 * this process ends itself, because nothing can interrupt SQLite from outside; the host restarts it.
 */
import type { Worker } from 'node:worker_threads';
import { siblingModule, startModuleWorker } from '../../runner/ts-worker.js';
import { type PluginContext, PluginError, definePlugin } from '../../sdk.js';
import { MysqlConnection, type MysqlConnectionConfig } from './mysql.js';
import { PostgresConnection, type PostgresConnectionConfig } from './postgres.js';
import { guardSql } from './sql-guard.js';
import type { SqliteJob, SqliteReply } from './sqlite-worker.js';

interface ConnectionConfig {
  driver: 'sqlite' | 'postgres' | 'mysql';
  path?: string;
  host: string;
  port: number;
  database?: string;
  user?: string;
  password?: string;
  password_file?: string;
  ssl: boolean;
  readonly: boolean;
  allow_string_literals: boolean;
  max_rows?: number;
  timeout_ms?: number;
}

interface DbQueryConfig {
  connections: Record<string, ConnectionConfig>;
  max_rows: number;
  timeout_ms: number;
  max_sql_length: number;
}

type Param = string | number | boolean | null;

/** Time after a SQLite deadline before the query is given up as stuck. */
const SQLITE_GRACE_MS = 250;

let config: DbQueryConfig;
let log: PluginContext['log'] | undefined;
/** PostgreSQL and MySQL connections, by name. */
const servers = new Map<string, PostgresConnection | MysqlConnection>();
interface SqliteWorker {
  worker: Worker;
  ready: Promise<void>;
  pending: Map<number, (reply: SqliteReply) => void>;
  next: number;
}
let sqlite: SqliteWorker | undefined;

function sqliteWorker(): SqliteWorker {
  if (sqlite) return sqlite;
  const worker = startModuleWorker(siblingModule(import.meta.url, 'sqlite-worker'));
  const pending = new Map<number, (reply: SqliteReply) => void>();
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  worker.on('message', (reply: SqliteReply | { ready: true }) => {
    if ('ready' in reply) return markReady();
    pending.get(reply.id)?.(reply);
    pending.delete(reply.id);
  });
  worker.on('error', (error) => log?.error(`sqlite worker failed: ${error.message}`));
  worker.on('exit', () => {
    for (const resolve of pending.values()) resolve({ id: -1, ok: false, code: 'PLUGIN_FAILED', message: 'the SQLite worker stopped' });
    pending.clear();
    markReady();
    sqlite = undefined;
  });
  sqlite = { worker, ready, pending, next: 1 };
  return sqlite;
}

async function sqliteJob(job: Omit<SqliteJob, 'id'>, timeoutMs: number): Promise<unknown> {
  const s = sqliteWorker();
  await s.ready;
  const id = s.next++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      s.pending.delete(id);
      reject(new PluginError('DEADLINE_EXCEEDED', `the query ran longer than ${timeoutMs} ms and was stopped (db-query restarts)`));
      // SQLite cannot be interrupted: end this process once the answer is on its way; the host restarts it.
      log?.warn('a SQLite query overran its limit; restarting db-query');
      setTimeout(() => process.kill(process.pid, 'SIGKILL'), 100);
    }, timeoutMs + SQLITE_GRACE_MS);
    s.pending.set(id, (reply) => {
      clearTimeout(timer);
      if (reply.ok) resolve(reply.result);
      else reject(new PluginError(reply.code, reply.message));
    });
    s.worker.postMessage({ ...job, id } satisfies SqliteJob);
  });
}

function connection(name: string): ConnectionConfig {
  const found = config.connections[name];
  if (!found) {
    const known = Object.keys(config.connections);
    throw new PluginError('NOT_FOUND', `no connection "${name}"; configured: ${known.join(', ') || 'none (plugins.config.db-query.connections)'}`);
  }
  return found;
}

function serverConnection(name: string, c: ConnectionConfig): PostgresConnection | MysqlConnection {
  let conn = servers.get(name);
  if (!conn) {
    conn =
      c.driver === 'mysql'
        ? new MysqlConnection({ ...(c as unknown as MysqlConnectionConfig), name })
        : new PostgresConnection({ ...(c as unknown as PostgresConnectionConfig), name });
    servers.set(name, conn);
  }
  return conn;
}

function limits(c: ConnectionConfig, requestedRows?: number): { maxRows: number; timeoutMs: number } {
  const cap = c.max_rows ?? config.max_rows;
  return { maxRows: Math.min(requestedRows ?? cap, cap), timeoutMs: c.timeout_ms ?? config.timeout_ms };
}

export default definePlugin({
  async start(ctx) {
    config = ctx.config as unknown as DbQueryConfig;
    log = ctx.log;
    // Start SQLite's thread now, so the first query does not pay for it.
    if (Object.values(config.connections).some((c) => c.driver === 'sqlite')) await sqliteWorker().ready;
  },
  async stop() {
    await Promise.allSettled([...servers.values()].map((c) => c.close()));
    await sqlite?.worker.terminate();
  },
  tools: {
    async query({ connection: name, sql, params, max_rows }: { connection: string; sql: string; params: Param[]; max_rows?: number }) {
      const c = connection(name);
      const guarded = guardSql(sql, {
        dialect: c.driver,
        readonly: c.readonly,
        allowStringLiterals: c.allow_string_literals,
        maxLength: config.max_sql_length,
      });
      const { maxRows, timeoutMs } = limits(c, max_rows);
      if (c.driver !== 'sqlite') return serverConnection(name, c).query(guarded, params, maxRows, timeoutMs);
      return sqliteJob(
        { kind: 'query', connection: { name, path: c.path!, readonly: c.readonly }, sql: guarded.sql, params, maxRows, timeoutMs },
        timeoutMs,
      );
    },
    connections: () =>
      Object.entries(config.connections).map(([name, c]) => ({ name, driver: c.driver, readonly: c.readonly })),
    async tables({ connection: name }: { connection: string }) {
      const c = connection(name);
      const { timeoutMs } = limits(c);
      if (c.driver !== 'sqlite') return serverConnection(name, c).tables(timeoutMs);
      return sqliteJob({ kind: 'tables', connection: { name, path: c.path!, readonly: c.readonly } }, timeoutMs);
    },
  },
});

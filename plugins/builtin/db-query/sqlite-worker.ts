/**
 * Runs SQLite queries in a worker thread of the db-query process, so that a query stuck inside SQLite
 * (better-sqlite3 cannot interrupt one) never blocks the plugin's main thread: that thread answers the
 * call with DEADLINE_EXCEEDED and the process is restarted. Files are opened, never created; read-only
 * connections use a read-only handle with query_only on, and refuse any statement SQLite does not call
 * read-only.
 */
import { parentPort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { jsonValue, uniqueColumns } from './values.js';

export interface SqliteJob {
  id: number;
  kind: 'query' | 'tables';
  connection: { name: string; path: string; readonly: boolean };
  sql?: string;
  params?: (string | number | boolean | null)[];
  maxRows?: number;
  timeoutMs?: number;
}

export type SqliteReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; code: string; message: string };

const open = new Map<string, Database.Database>();

function db(connection: SqliteJob['connection']): Database.Database {
  let handle = open.get(connection.name);
  if (!handle) {
    handle = new Database(connection.path, { readonly: connection.readonly, fileMustExist: true });
    if (connection.readonly) handle.pragma('query_only = ON');
    open.set(connection.name, handle);
  }
  return handle;
}

class JobError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function query(job: SqliteJob): unknown {
  const handle = db(job.connection);
  let stmt: Database.Statement;
  try {
    stmt = handle.prepare(job.sql ?? '');
  } catch (error) {
    throw new JobError('PAYLOAD_INVALID', `SQLite refused the statement: ${(error as Error).message}`);
  }
  if (job.connection.readonly && !stmt.readonly) {
    throw new JobError('FORBIDDEN', `connection ${job.connection.name} is read-only; this statement would write`);
  }
  const params = (job.params ?? []).map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p));
  const maxRows = job.maxRows ?? 1000;
  const deadline = Date.now() + (job.timeoutMs ?? 5000);
  try {
    if (!stmt.reader) {
      const info = stmt.run(...params);
      return { columns: [], rows: [], row_count: 0, truncated: false, changes: info.changes };
    }
    const columns = uniqueColumns(stmt.columns().map((c) => c.name));
    const rows: Record<string, unknown>[] = [];
    let truncated = false;
    let seen = 0;
    for (const raw of stmt.raw(true).iterate(...params) as IterableIterator<unknown[]>) {
      if (++seen % 64 === 0 && Date.now() > deadline) {
        throw new JobError('DEADLINE_EXCEEDED', `the query ran longer than ${job.timeoutMs} ms`);
      }
      if (rows.length === maxRows) {
        truncated = true;
        break;
      }
      rows.push(Object.fromEntries(columns.map((c, i) => [c, jsonValue(raw[i])])));
    }
    return { columns, rows, row_count: rows.length, truncated };
  } catch (error) {
    if (error instanceof JobError) throw error;
    const message = (error as Error).message;
    if (/readonly|read-only|query_only/i.test(message)) throw new JobError('FORBIDDEN', `SQLite refused a write: ${message}`);
    throw new JobError('PAYLOAD_INVALID', `SQLite: ${message}`);
  }
}

function tables(job: SqliteJob): unknown {
  const handle = db(job.connection);
  const list = handle
    .prepare("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all() as { name: string; type: string }[];
  const columns = handle.prepare('SELECT name, type FROM pragma_table_info(?)');
  return list.map((t) => ({ schema: 'main', name: t.name, type: t.type, columns: columns.all(t.name) }));
}

parentPort?.on('message', (job: SqliteJob) => {
  let reply: SqliteReply;
  try {
    reply = { id: job.id, ok: true, result: job.kind === 'tables' ? tables(job) : query(job) };
  } catch (error) {
    const code = error instanceof JobError ? error.code : /SQLITE_CANTOPEN|unable to open|does not exist/i.test(String((error as Error).message)) ? 'NOT_FOUND' : 'PAYLOAD_INVALID';
    reply = { id: job.id, ok: false, code, message: (error as Error).message };
  }
  parentPort?.postMessage(reply);
});

// Loaded (better-sqlite3 included): deadlines count from here, not from the worker's start-up.
parentPort?.postMessage({ ready: true });

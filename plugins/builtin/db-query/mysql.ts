/**
 * MySQL and MariaDB for db-query (mysql2): one small pool per named connection. Every query runs in its own
 * transaction — START TRANSACTION READ ONLY for read-only connections, always rolled back — under the
 * server's statement time limit (MariaDB: max_statement_time, every statement; MySQL: max_execution_time,
 * which the server applies to SELECT only), as a server-side prepared statement (which refuses a second
 * statement on its own). For a reading statement sql_select_limit stops the server after limit+1 rows, and
 * rows past that (a query with its own, larger LIMIT) are counted and dropped as they arrive, so a huge
 * result is never materialised. Each session gets time_zone +00:00 and a sql_mode without ANSI_QUOTES and
 * NO_BACKSLASH_ESCAPES, so the server reads quotes as the SQL guard does.
 */
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { PluginError } from '../../sdk.js';
import type { QueryResult } from './postgres.js';
import type { GuardedSql } from './sql-guard.js';
import { inTransaction } from './transaction.js';
import { jsonValue, uniqueColumns } from './values.js';

export interface MysqlConnectionConfig {
  name: string;
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  password_file?: string;
  ssl: boolean;
  readonly: boolean;
}

/** Modes that would make the server read quotes differently from the SQL guard. */
const UNSAFE_SQL_MODES = new Set(['ANSI', 'ANSI_QUOTES', 'NO_BACKSLASH_ESCAPES']);

interface Session {
  mariadb: boolean;
}

interface Streamed {
  columns: string[];
  rows: unknown[][];
  /** Rows the statement returned, kept or not. */
  seen: number;
  affectedRows?: number;
}

/** mysql2's core Execute command (the promise API has no row events); typed here as far as it is used. */
interface ExecuteEvents extends EventEmitter {
  on(event: 'fields', listener: (fields: mysql.FieldPacket[] | undefined, index?: number) => void): this;
  on(event: 'result', listener: (row: unknown[] | mysql.ResultSetHeader, index?: number) => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(event: 'end', listener: () => void): this;
}

export class MysqlConnection {
  readonly #config: MysqlConnectionConfig;
  readonly #pool: mysql.Pool;
  readonly #sessions = new WeakMap<object, Session>();

  constructor(config: MysqlConnectionConfig) {
    this.#config = config;
    const password = config.password_file ? readFileSync(config.password_file, 'utf8').trim() : config.password;
    this.#pool = mysql.createPool({
      host: config.host,
      port: config.port,
      database: config.database,
      user: config.user,
      ...(password === undefined ? {} : { password }),
      ...(config.ssl ? { ssl: {} } : {}),
      connectionLimit: 2,
      maxIdle: 2,
      idleTimeout: 30_000,
      connectTimeout: 5000,
      maxPreparedStatements: 100,
      multipleStatements: false,
      // BIGINT and DECIMAL as text (like pg), DATETIME/TIMESTAMP read as UTC (the session's time_zone).
      supportBigNumbers: true,
      bigNumberStrings: true,
      timezone: 'Z',
      connectAttributes: { program_name: 'clawbox-db-query' },
    });
  }

  async query(guarded: GuardedSql, params: unknown[], maxRows: number, timeoutMs: number): Promise<QueryResult> {
    return this.#transaction(timeoutMs, guarded.reads ? maxRows + 1 : undefined, async (conn) => {
      const res = await execute(conn, guarded.sql, params, maxRows);
      const rows = res.rows.map((row) => Object.fromEntries(res.columns.map((c, i) => [c, jsonValue(row[i])])));
      const result = { columns: res.columns, rows, row_count: rows.length, truncated: res.seen > maxRows };
      return guarded.reads ? result : { ...result, changes: res.affectedRows ?? res.seen };
    });
  }

  async tables(timeoutMs: number): Promise<unknown[]> {
    return this.#transaction(timeoutMs, undefined, async (conn) => {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        `SELECT t.TABLE_SCHEMA AS \`schema\`, t.TABLE_NAME AS name, LOWER(t.TABLE_TYPE) AS type,
                c.COLUMN_NAME AS \`column\`, c.DATA_TYPE AS column_type
           FROM information_schema.TABLES t
           LEFT JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME
          WHERE t.TABLE_SCHEMA = DATABASE()
          ORDER BY t.TABLE_NAME, c.ORDINAL_POSITION`,
      );
      const tables = new Map<string, { schema: string; name: string; type: string; columns: { name: string; type: string }[] }>();
      for (const row of rows) {
        let table = tables.get(row.name);
        if (!table) {
          table = { schema: row.schema, name: row.name, type: row.type, columns: [] };
          tables.set(row.name, table);
        }
        if (row.column !== null) table.columns.push({ name: row.column, type: row.column_type });
      }
      return [...tables.values()];
    });
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => {});
  }

  /** Runs work in a transaction under the time limit; selectLimit caps the rows a SELECT sends (undefined: no cap). */
  #transaction<T>(timeoutMs: number, selectLimit: number | undefined, work: (conn: mysql.PoolConnection) => Promise<T>): Promise<T> {
    return inTransaction<mysql.PoolConnection, T>(
      {
        name: this.#config.name,
        readonly: this.#config.readonly,
        acquire: () => this.#pool.getConnection(),
        release: (conn, broken) => (broken ? conn.destroy() : conn.release()),
        query: (conn, sql) => conn.query(sql),
        begin: async (conn) => {
          const session = await this.#session(conn);
          const ms = Math.max(1, Math.floor(timeoutMs));
          const timeout = session.mariadb ? `max_statement_time = ${(ms / 1000).toFixed(3)}` : `max_execution_time = ${ms}`;
          await conn.query(`SET SESSION ${timeout}, sql_select_limit = ${selectLimit ?? 'DEFAULT'}`);
          await conn.query(this.#config.readonly ? 'START TRANSACTION READ ONLY' : 'START TRANSACTION');
        },
        mapError: (error) => mapError(error, timeoutMs),
      },
      work,
    );
  }

  /** Once per server session: which server it is, UTC, and a sql_mode the SQL guard agrees with. */
  async #session(conn: mysql.PoolConnection): Promise<Session> {
    const key = conn.connection as object;
    const known = this.#sessions.get(key);
    if (known) return known;
    const [[row]] = await conn.query<mysql.RowDataPacket[]>('SELECT @@SESSION.sql_mode AS mode, VERSION() AS version');
    const mode = String(row?.mode ?? '')
      .split(',')
      .filter((m) => m && !UNSAFE_SQL_MODES.has(m))
      .join(',');
    await conn.query('SET SESSION sql_mode = ?, time_zone = ?', [mode, '+00:00']);
    const session = { mariadb: /mariadb/i.test(String(row?.version)) };
    this.#sessions.set(key, session);
    return session;
  }
}

/** A prepared statement, its rows taken as they arrive: the first maxRows kept, the rest only counted. */
function execute(conn: mysql.PoolConnection, sql: string, params: unknown[], maxRows: number): Promise<Streamed> {
  const core = conn.connection as unknown as { execute(options: mysql.QueryOptions): ExecuteEvents };
  return new Promise((resolve, reject) => {
    const out: Streamed = { columns: [], rows: [], seen: 0 };
    let failed = false;
    core
      .execute({ sql, values: params, rowsAsArray: true })
      .on('fields', (fields, index = 0) => {
        if (index === 0 && fields) out.columns = uniqueColumns(fields.map((f) => f.name));
      })
      .on('result', (row, index = 0) => {
        if (Array.isArray(row)) {
          if (index !== 0) return;
          out.seen++;
          if (out.rows.length < maxRows) out.rows.push(row);
        } else out.affectedRows ??= row.affectedRows;
      })
      .on('error', (error) => {
        failed = true;
        reject(error);
      })
      .on('end', () => {
        if (!failed) resolve(out);
      });
  });
}

function mapError(error: unknown, timeoutMs: number): Error {
  if (error instanceof PluginError) return error;
  const e = error as { errno?: number; sqlState?: string; message?: string };
  const message = e.message ?? String(error);
  if (e.sqlState === undefined) {
    return new PluginError('PLUGIN_FAILED', `MySQL connection failed: ${message}`, { reason: 'database_unavailable' });
  }
  switch (e.errno) {
    case 1969: // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
    case 3024: // ER_QUERY_TIMEOUT (MySQL max_execution_time)
      return new PluginError('DEADLINE_EXCEEDED', `the query ran longer than ${timeoutMs} ms and was cancelled`);
    case 1792: // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
    case 1044: // ER_DBACCESS_DENIED_ERROR
    case 1142: // ER_TABLEACCESS_DENIED_ERROR
    case 1143: // ER_COLUMNACCESS_DENIED_ERROR
    case 1227: // ER_SPECIFIC_ACCESS_DENIED_ERROR
    case 1290: // ER_OPTION_PREVENTS_STATEMENT (--read-only server)
    case 1370: // ER_PROCACCESS_DENIED_ERROR
      return new PluginError('FORBIDDEN', `MySQL refused: ${message}`);
    default:
      return new PluginError('PAYLOAD_INVALID', `MySQL: ${message}`, { sqlstate: e.sqlState, errno: e.errno });
  }
}

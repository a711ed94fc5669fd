/**
 * PostgreSQL for db-query: one small pool per named connection. Every query runs in its own transaction
 * — READ ONLY for read-only connections, always rolled back — with a statement_timeout, over the extended
 * protocol (which refuses a second statement on its own). A reading statement runs under a cursor and
 * only limit+1 rows are fetched, so a huge result is never materialised.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { PluginError } from '../../sdk.js';
import type { GuardedSql } from './sql-guard.js';
import { inTransaction } from './transaction.js';
import { jsonValue, uniqueColumns } from './values.js';

export interface PostgresConnectionConfig {
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

export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
  row_count: number;
  truncated: boolean;
  changes?: number;
}

export class PostgresConnection {
  readonly #config: PostgresConnectionConfig;
  readonly #pool: pg.Pool;

  constructor(config: PostgresConnectionConfig) {
    this.#config = config;
    const password = config.password_file ? readFileSync(config.password_file, 'utf8').trim() : config.password;
    this.#pool = new pg.Pool({
      host: config.host,
      port: config.port,
      database: config.database,
      user: config.user,
      ...(password === undefined ? {} : { password }),
      ssl: config.ssl,
      max: 2,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      application_name: 'clawbox-db-query',
    });
    // An idle client losing its server must not crash the plugin.
    this.#pool.on('error', () => {});
  }

  async query(guarded: GuardedSql, params: unknown[], maxRows: number, timeoutMs: number): Promise<QueryResult> {
    return this.#transaction(timeoutMs, async (client) => {
      if (guarded.reads) {
        await client.query(extended({ text: `DECLARE clawbox_cursor NO SCROLL CURSOR FOR ${guarded.sql}`, values: params }));
        const res = await client.query({ text: `FETCH FORWARD ${maxRows + 1} FROM clawbox_cursor`, rowMode: 'array' });
        return toResult(res, maxRows);
      }
      const res = await client.query(extended({ text: guarded.sql, values: params, rowMode: 'array' }));
      return { ...toResult(res, maxRows), changes: res.rowCount ?? 0 };
    });
  }

  async tables(timeoutMs: number): Promise<unknown[]> {
    return this.#transaction(timeoutMs, async (client) => {
      const res = await client.query<{ schema: string; name: string; type: string; columns: unknown[] }>(
        `SELECT t.table_schema AS schema, t.table_name AS name, lower(t.table_type) AS type,
                coalesce(json_agg(json_build_object('name', c.column_name, 'type', c.data_type) ORDER BY c.ordinal_position)
                         FILTER (WHERE c.column_name IS NOT NULL), '[]') AS columns
           FROM information_schema.tables t
           LEFT JOIN information_schema.columns c ON c.table_schema = t.table_schema AND c.table_name = t.table_name
          WHERE t.table_schema NOT IN ('pg_catalog', 'information_schema')
          GROUP BY 1, 2, 3 ORDER BY 1, 2`,
      );
      return res.rows;
    });
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => {});
  }

  #transaction<T>(timeoutMs: number, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction<pg.PoolClient, T>(
      {
        name: this.#config.name,
        readonly: this.#config.readonly,
        acquire: () => this.#pool.connect(),
        release: (client, broken) => client.release(broken),
        query: (client, sql) => client.query(sql),
        begin: async (client) => {
          await client.query(this.#config.readonly ? 'BEGIN TRANSACTION READ ONLY' : 'BEGIN');
          await client.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
        },
        mapError: (error) => mapError(error, timeoutMs),
      },
      work,
    );
  }
}

/** The extended protocol even without parameters: it refuses a second statement (queryMode is missing from @types/pg). */
function extended(query: { text: string; values: unknown[]; rowMode?: 'array' }): pg.QueryArrayConfig {
  return { ...query, queryMode: 'extended' } as unknown as pg.QueryArrayConfig;
}

function toResult(res: pg.QueryArrayResult, maxRows: number): QueryResult {
  const columns = uniqueColumns((res.fields ?? []).map((f) => f.name));
  const truncated = res.rows.length > maxRows;
  const rows = res.rows.slice(0, maxRows).map((row) => Object.fromEntries(columns.map((c, i) => [c, jsonValue(row[i])])));
  return { columns, rows, row_count: rows.length, truncated };
}

function mapError(error: unknown, timeoutMs: number): Error {
  if (error instanceof PluginError) return error;
  const e = error as { code?: string; message?: string };
  const message = e.message ?? String(error);
  switch (e.code) {
    case '57014':
      return new PluginError('DEADLINE_EXCEEDED', `the query ran longer than ${timeoutMs} ms and was cancelled`);
    case '25006':
    case '42501':
      return new PluginError('FORBIDDEN', `PostgreSQL refused: ${message}`);
    case undefined:
      return new PluginError('PLUGIN_FAILED', `PostgreSQL connection failed: ${message}`, { reason: 'database_unavailable' });
    default:
      return new PluginError('PAYLOAD_INVALID', `PostgreSQL: ${message}`, { sqlstate: e.code });
  }
}

/**
 * db-query through the real host against a real SQLite file and a real PostgreSQL server: results as
 * JSON, injection attempts refused or defused, writes refused on read-only connections (and by the
 * database itself when the guard is bypassed), row and time limits enforced, the plugin back after a
 * runaway SQLite query.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import t from 'tap';
import { makeTestContext } from '../../../app/testing/test-context.js';
import { PluginHost } from '../../host.js';
import { guardSql } from './sql-guard.js';
import { startTestPostgres } from './test-postgres.js';

const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-dbq-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const sqliteFile = path.join(dir, 'shop.db');
{
  const db = new Database(sqliteFile);
  db.exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, photo BLOB);
           CREATE TABLE numbers (n INTEGER);`);
  const insert = db.prepare('INSERT INTO users (name, email, photo) VALUES (?, ?, ?)');
  insert.run('ada', 'ada@example.org', Buffer.from([1, 2, 3]));
  insert.run('bob', 'bob@example.org', null);
  db.prepare('INSERT INTO numbers (n) SELECT value FROM json_each(?)').run(JSON.stringify(Array.from({ length: 3000 }, (_, i) => i)));
  db.close();
}

const postgres = await startTestPostgres();
t.teardown(() => postgres?.stop());
if (postgres) {
  const client = new pg.Client({ host: '127.0.0.1', port: postgres.port, user: postgres.user, database: postgres.database });
  await client.connect();
  await client.query(`CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, email text, born timestamptz,
                                          score numeric(6,2), tags jsonb, photo bytea, active boolean);
                      INSERT INTO users (name, email, born, score, tags, photo, active) VALUES
                        ('ada', 'ada@example.org', '1815-12-10T00:00:00Z', 99.50, '{"langs":["analytical"]}', '\\x010203', true),
                        ('bob', 'bob@example.org', NULL, 12.25, '[]', NULL, false);
                      CREATE TABLE big AS SELECT g AS n FROM generate_series(1, 5000) g;`);
  await client.end();
}

const tc = makeTestContext({ config: { devices: [] } });
const host = new PluginHost({
  env: {},
  config: {
    allow: ['db-query'],
    restart: { initial_ms: 50, max_ms: 200 },
    config: {
      'db-query': {
        max_rows: 100,
        timeout_ms: 400,
        connections: {
          shop: { driver: 'sqlite', path: sqliteFile },
          shoprw: { driver: 'sqlite', path: sqliteFile, readonly: false },
          missing: { driver: 'sqlite', path: path.join(dir, 'nope.db') },
          ...(postgres
            ? {
                pg: { driver: 'postgres', port: postgres.port, database: postgres.database, user: postgres.user },
                pgrw: { driver: 'postgres', port: postgres.port, database: postgres.database, user: postgres.user, readonly: false },
              }
            : {}),
          down: { driver: 'postgres', port: 1, database: 'x', user: 'x' },
        },
      },
    },
  },
});
t.teardown(async () => {
  await host.stop();
  tc.cleanup();
});
await host.start(tc.ctx);

const q = (connection: string, sql: string, params: unknown[] = [], extra: Record<string, unknown> = {}) =>
  host.call('db-query', 'query', { connection, sql, params, ...extra });
const count = async (connection: string, table: string) =>
  Number(((await q(connection, `SELECT count(*) AS c FROM ${table}`)) as { rows: { c: number | string }[] }).rows[0]?.c);

t.test('the SQL guard', async (t) => {
  const ro = { dialect: 'postgres' as const, readonly: true, allowStringLiterals: false, maxLength: 1000 };
  t.match(guardSql('SELECT 1;', ro), { sql: 'SELECT 1', verb: 'SELECT', reads: true });
  t.match(guardSql("select $$a;b$$ -- x; y\n", { ...ro, allowStringLiterals: true }), { verb: 'SELECT' });
  t.throws(() => guardSql('SELECT 1; SELECT 2', ro), { code: 'PAYLOAD_INVALID', message: /one SQL statement/ });
  t.throws(() => guardSql("SELECT 'a'';DROP TABLE x;--'", ro), { code: 'PAYLOAD_INVALID', message: /string literals are refused/ });
  t.throws(() => guardSql('SELECT 1 /* unterminated', ro), { message: /unterminated comment/ });
  t.throws(() => guardSql('SELECT * INTO copy FROM users', ro), { code: 'FORBIDDEN', message: /INTO/ });
  t.throws(() => guardSql('UPDATE users SET name = $1', ro), { code: 'FORBIDDEN', message: /UPDATE is refused/ });
  t.throws(() => guardSql('x'.repeat(1001), ro), { code: 'PAYLOAD_TOO_LARGE' });
  t.match(guardSql('SELECT "update" FROM t /* DELETE */ -- INSERT', ro), { reads: true }, 'quoted names and comments are not keywords');
  t.match(guardSql('SELECT * FROM t FETCH FIRST 5 ROWS ONLY', ro), { reads: true });
});

t.test('SQLite: JSON results, parameters, injection, read-only, limits', async (t) => {
  t.same(await q('shop', 'SELECT id, name, email, photo FROM users WHERE name = ?', ['ada']), {
    columns: ['id', 'name', 'email', 'photo'],
    rows: [{ id: 1, name: 'ada', email: 'ada@example.org', photo: 'AQID' }],
    row_count: 1,
    truncated: false,
  });
  t.match(await q('shop', 'SELECT u.id, v.id FROM users u JOIN users v ON v.id = u.id WHERE u.id = ?', [2]), {
    columns: ['id', 'id_2'],
    rows: [{ id: 2, id_2: 2 }],
  });
  t.match(await q('shop', 'SELECT name FROM users WHERE name = ?', ["' OR '1'='1"]), { row_count: 0 }, 'an injection in a parameter is just a value');
  await t.rejects(q('shop', "SELECT name FROM users WHERE name = '' OR '1'='1'"), { code: 'PAYLOAD_INVALID', message: /string literals are refused/ });
  await t.rejects(q('shop', 'SELECT 1; DROP TABLE users'), { code: 'PAYLOAD_INVALID', message: /one SQL statement/ });
  await t.rejects(q('shop', 'DELETE FROM users'), { code: 'FORBIDDEN' });
  await t.rejects(q('shop', 'INSERT INTO users (name) VALUES (?)', ['eve']), { code: 'FORBIDDEN' });
  await t.rejects(q('shop', 'WITH x AS (SELECT 1) DELETE FROM users'), { code: 'FORBIDDEN' });
  await t.rejects(q('shop', 'ATTACH DATABASE ? AS other', [path.join(dir, 'other.db')]), { code: 'FORBIDDEN' });
  await t.rejects(q('shop', 'PRAGMA writable_schema = 1'), { code: 'FORBIDDEN' });
  await t.rejects(q('shop', 'SELECT * FROM nowhere'), { code: 'PAYLOAD_INVALID', message: /no such table/ });
  await t.rejects(q('shop', 'SELECT ?', []), { code: 'PAYLOAD_INVALID' });
  await t.rejects(q('missing', 'SELECT 1'), { code: 'NOT_FOUND' }, 'a missing file is not created');
  await t.rejects(q('nowhere', 'SELECT 1'), { code: 'NOT_FOUND', message: /no connection "nowhere"/ });
  t.equal(await count('shop', 'users'), 2, 'nothing was written');

  t.match(await q('shop', 'SELECT n FROM numbers'), { row_count: 100, truncated: true }, 'the connection row limit');
  t.match(await q('shop', 'SELECT n FROM numbers', [], { max_rows: 5 }), { row_count: 5, truncated: true, rows: [{ n: 0 }] });
  t.match(await q('shop', 'SELECT n FROM numbers WHERE n < ?', [3]), { row_count: 3, truncated: false });

  t.match(await q('shoprw', 'INSERT INTO users (name, email) VALUES (?, ?)', ['eve', "x'); DROP TABLE users; --"]), { changes: 1 });
  t.equal(await count('shop', 'users'), 3, 'a read-write connection writes, with values as parameters');
  t.match(await host.call('db-query', 'tables', { connection: 'shop' }), [
    { name: 'numbers', type: 'table', columns: [{ name: 'n', type: 'INTEGER' }] },
    { name: 'users', type: 'table' },
  ]);
  t.same(await host.call('db-query', 'connections', {}), [
    { name: 'shop', driver: 'sqlite', readonly: true },
    { name: 'shoprw', driver: 'sqlite', readonly: false },
    { name: 'missing', driver: 'sqlite', readonly: true },
    ...(postgres
      ? [
          { name: 'pg', driver: 'postgres', readonly: true },
          { name: 'pgrw', driver: 'postgres', readonly: false },
        ]
      : []),
    { name: 'down', driver: 'postgres', readonly: true },
  ]);

  // A query SQLite cannot be interrupted in: answered at the deadline, then the plugin restarts.
  await t.rejects(q('shop', 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c'), {
    code: 'DEADLINE_EXCEEDED',
    message: /longer than 400 ms/,
  });
  const deadline = Date.now() + 15_000;
  let back: unknown;
  while (Date.now() < deadline) {
    back = await q('shop', 'SELECT count(*) AS c FROM users').catch(() => undefined);
    if (back) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.match(back, { rows: [{ c: 3 }] }, 'db-query answers again after its restart');
  t.ok((host.list()[0]?.figures.restarts ?? 0) >= 1, 'it was restarted');
});

t.test('PostgreSQL: JSON results, parameters, injection, read-only, limits', { skip: postgres ? false : 'PostgreSQL is not installed (apt-get install postgresql)' }, async (t) => {
  t.same(await q('pg', 'SELECT id, name, born, score, tags, photo, active FROM users WHERE name = $1', ['ada']), {
    columns: ['id', 'name', 'born', 'score', 'tags', 'photo', 'active'],
    rows: [{ id: 1, name: 'ada', born: '1815-12-10T00:00:00.000Z', score: '99.50', tags: { langs: ['analytical'] }, photo: 'AQID', active: true }],
    row_count: 1,
    truncated: false,
  });
  t.match(await q('pg', 'SELECT name FROM users WHERE name = $1', ["' OR '1'='1"]), { row_count: 0 });
  await t.rejects(q('pg', "SELECT name FROM users WHERE name = '' OR '1'='1'"), { code: 'PAYLOAD_INVALID', message: /string literals/ });
  await t.rejects(q('pg', 'SELECT 1; DROP TABLE users'), { code: 'PAYLOAD_INVALID', message: /one SQL statement/ });
  await t.rejects(q('pg', 'SELECT $1::int; DROP TABLE users; --', [1]), { code: 'PAYLOAD_INVALID' });
  await t.rejects(q('pg', 'DELETE FROM users'), { code: 'FORBIDDEN' });
  await t.rejects(q('pg', 'WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d'), { code: 'FORBIDDEN' });
  await t.rejects(q('pg', 'SELECT * FROM users FOR UPDATE'), { code: 'FORBIDDEN' });
  await t.rejects(q('pg', 'SELECT nextval($1)', ['users_id_seq']), { code: 'FORBIDDEN', message: /read-only transaction/ }, 'past the guard, the READ ONLY transaction refuses');
  await t.rejects(q('pg', 'SELECT * FROM nowhere'), { code: 'PAYLOAD_INVALID', message: /does not exist/ });
  t.equal(await count('pg', 'users'), 2, 'nothing was written');

  t.match(await q('pg', 'SELECT n FROM big ORDER BY n'), { row_count: 100, truncated: true, rows: [{ n: 1 }] });
  t.match(await q('pg', 'SELECT n FROM big WHERE n > $1 ORDER BY n', [4990], { max_rows: 3 }), { rows: [{ n: 4991 }, { n: 4992 }, { n: 4993 }], truncated: true });
  await t.rejects(q('pg', 'SELECT pg_sleep($1)', [5]), { code: 'DEADLINE_EXCEEDED', message: /longer than 400 ms/ });
  t.match(await q('pg', 'SELECT count(*)::int AS c FROM big'), { rows: [{ c: 5000 }] }, 'the connection still works after a cancelled query');

  t.match(await q('pgrw', 'INSERT INTO users (name) VALUES ($1) RETURNING id', ["x'); DROP TABLE users; --"]), { changes: 1, rows: [{ id: 3 }] });
  t.equal(await count('pg', 'users'), 3);
  t.match(await host.call('db-query', 'tables', { connection: 'pg' }), [
    { schema: 'public', name: 'big', type: 'base table', columns: [{ name: 'n', type: 'integer' }] },
    { schema: 'public', name: 'users' },
  ]);
});

t.test('an unreachable database fails the call, not the plugin', async (t) => {
  await t.rejects(q('down', 'SELECT 1'), { code: 'PLUGIN_FAILED', message: /unreachable/, details: { reason: 'database_unavailable' } });
  t.match(await q('shop', 'SELECT 1 AS one'), { rows: [{ one: 1 }] });
});

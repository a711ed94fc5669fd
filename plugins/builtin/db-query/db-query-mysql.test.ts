/**
 * db-query through the real host against a real MariaDB server (the MySQL driver, mysql2): results as
 * JSON, injection attempts refused or defused, writes refused on read-only connections (by the guard, and
 * by the READ ONLY transaction and the grants when the guard is bypassed), row and time limits enforced,
 * bad connection settings answered with a clear error.
 */
import t from 'tap';
import { makeTestContext } from '../../../app/testing/test-context.js';
import { PluginHost } from '../../host.js';
import { guardSql } from './sql-guard.js';
import { startTestMysql } from './test-mysql.js';

const mysql = await startTestMysql();
t.teardown(() => mysql?.stop());
if (!mysql) {
  t.test('MySQL: JSON results, parameters, injection, read-only, limits', { skip: 'MariaDB is not installed (apt-get install mariadb-server)' }, async () => {});
} else {
  await mysql.admin(`
    CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL, email VARCHAR(128), born DATETIME(3),
                        score DECIMAL(6,2), visits BIGINT, tags JSON, photo BLOB, active BOOLEAN);
    INSERT INTO users (name, email, born, score, visits, tags, photo, active) VALUES
      ('ada', 'ada@example.org', '1815-12-10 00:00:00', 99.50, 9007199254740993, '{"langs":["analytical"]}', x'010203', TRUE),
      ('bob', 'bob@example.org', NULL, 12.25, 0, '[]', NULL, FALSE);
    CREATE TABLE big (n INT PRIMARY KEY);
    INSERT INTO big (n) SELECT seq FROM seq_1_to_5000;
    CREATE SEQUENCE tickets;
    CREATE FUNCTION add_user(who VARCHAR(64)) RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO users (name) VALUES (who); RETURN 1; END;
    GRANT EXECUTE ON FUNCTION shop.add_user TO 'reader'@'%';`);

  const { port, database, reader, writer } = mysql;
  const tc = makeTestContext({ config: { devices: [] } });
  const host = new PluginHost({
    env: {},
    config: {
      allow: ['db-query'],
      config: {
        'db-query': {
          max_rows: 100,
          timeout_ms: 400,
          connections: {
            // The read-write user on a read-only connection: only the READ ONLY transaction stops a write the guard misses.
            my: { driver: 'mysql', port, database, ...writer },
            myro: { driver: 'mysql', port, database, ...reader },
            myrw: { driver: 'mysql', port, database, ...writer, readonly: false },
            badpw: { driver: 'mysql', port, database, user: reader.user, password: 'wrong' },
            down: { driver: 'mysql', port: 1, database: 'x', user: 'x' },
            // Never queried: the port defaults per driver.
            myport: { driver: 'mysql', database: 'x', user: 'x' },
            pgport: { driver: 'postgres', database: 'x', user: 'x' },
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
  const count = async (table: string) => Number(((await q('my', `SELECT count(*) AS c FROM ${table}`)) as { rows: { c: string }[] }).rows[0]?.c);

  t.test('the SQL guard reads MySQL quoting and comments as the server does', async (t) => {
    const ro = { dialect: 'mysql' as const, readonly: true, allowStringLiterals: true, maxLength: 1000 };
    // The server reads '\'' as a string holding one quote, then two more statements; without backslash escapes all would be one string.
    t.throws(() => guardSql("SELECT '\\'' ; DELETE FROM users; -- '", ro), { message: /one SQL statement/ }, 'a backslash escapes a quote');
    t.match(guardSql("SELECT 'a\\'; DELETE FROM users; -- '", ro), { reads: true }, 'all one string, as the server reads it');
    t.throws(() => guardSql('SELECT "a\\"" FROM t WHERE 1 = 1; DROP TABLE t', ro), { message: /one SQL statement/ });
    t.throws(() => guardSql('SELECT "x"', { ...ro, allowStringLiterals: false }), { message: /string literals are refused.*\?/ }, '"…" is a string');
    t.throws(() => guardSql('SELECT 1 /*! ; DELETE FROM users */', ro), { code: 'PAYLOAD_INVALID', message: /executable comments/ });
    t.throws(() => guardSql('SELECT 1 /*M!100000 , (DELETE FROM users) */', ro), { message: /executable comments/ });
    t.throws(() => guardSql('SELECT 1--1\nDELETE FROM users', ro), { code: 'FORBIDDEN' }, '"--" without a space is not a comment');
    t.match(guardSql('SELECT 1 -- DELETE\n# DELETE\n/* DELETE */', ro), { reads: true }, '"-- ", "#" and /* */ are comments');
    t.match(guardSql('SELECT `update` FROM t', ro), { reads: true }, 'a backquoted name is not a keyword');
  });

  t.test('MySQL: JSON results, parameters, injection, read-only, limits', async (t) => {
    t.same(await q('my', 'SELECT id, name, born, score, visits, tags, photo, active FROM users WHERE name = ?', ['ada']), {
      columns: ['id', 'name', 'born', 'score', 'visits', 'tags', 'photo', 'active'],
      rows: [
        { id: 1, name: 'ada', born: '1815-12-10T00:00:00.000Z', score: '99.50', visits: '9007199254740993', tags: { langs: ['analytical'] }, photo: 'AQID', active: 1 },
      ],
      row_count: 1,
      truncated: false,
    });
    t.match(await q('my', 'SELECT u.id, v.id FROM users u JOIN users v ON v.id = u.id WHERE u.id = ?', [2]), { columns: ['id', 'id_2'], rows: [{ id: 2, id_2: 2 }] });
    t.match(await q('my', 'SELECT ? AS s, ? AS n, ? AS f, ? AS b, ? AS z', ['x', 7, 1.5, true, null]), { rows: [{ s: 'x', n: 7, f: 1.5, b: 1, z: null }] });
    t.match(await q('my', 'SELECT name FROM users WHERE name = ?', ["' OR '1'='1"]), { row_count: 0 }, 'an injection in a parameter is just a value');
    await t.rejects(q('my', "SELECT name FROM users WHERE name = '' OR '1'='1'"), { code: 'PAYLOAD_INVALID', message: /string literals/ });
    await t.rejects(q('my', 'SELECT 1; DROP TABLE users'), { code: 'PAYLOAD_INVALID', message: /one SQL statement/ });
    await t.rejects(q('my', 'SELECT ?; DROP TABLE users; -- ', [1]), { code: 'PAYLOAD_INVALID' });
    await t.rejects(q('my', 'SELECT 1 /*!, (SELECT 1) */'), { code: 'PAYLOAD_INVALID', message: /executable comments/ });
    await t.rejects(q('my', 'DELETE FROM users'), { code: 'FORBIDDEN' });
    await t.rejects(q('my', 'SELECT * FROM users FOR UPDATE'), { code: 'FORBIDDEN' });
    await t.rejects(q('my', 'SELECT * INTO OUTFILE ? FROM users', ['/tmp/x']), { code: 'FORBIDDEN' });
    await t.rejects(q('my', 'SELECT nextval(tickets)'), { code: 'FORBIDDEN', message: /READ ONLY transaction/ }, 'past the guard, the READ ONLY transaction refuses');
    await t.rejects(q('my', 'SELECT add_user(?)', ['eve']), { code: 'FORBIDDEN', message: /READ ONLY transaction/ });
    await t.rejects(q('myro', 'SELECT nextval(tickets)'), { code: 'FORBIDDEN', message: /denied|READ ONLY/ }, 'and the read-only user has no grant');
    await t.rejects(q('my', 'SELECT * FROM nowhere'), { code: 'PAYLOAD_INVALID', message: /doesn't exist/, details: { errno: 1146 } });
    await t.rejects(q('my', 'SELECT ?', []), { code: 'PAYLOAD_INVALID' });
    t.equal(await count('users'), 2, 'nothing was written');

    t.match(await q('myro', 'SELECT n FROM big ORDER BY n'), { row_count: 100, truncated: true, rows: [{ n: 1 }] }, 'the connection row limit');
    t.match(await q('my', 'SELECT n FROM big WHERE n > ? ORDER BY n', [4990], { max_rows: 3 }), { rows: [{ n: 4991 }, { n: 4992 }, { n: 4993 }], truncated: true });
    t.match(await q('my', 'SELECT n FROM big ORDER BY n LIMIT 5000'), { row_count: 100, truncated: true }, "a query's own larger LIMIT is cut too");
    t.match(await q('my', 'SELECT n FROM big WHERE n <= ?', [3]), { row_count: 3, truncated: false });
    t.match(await q('my', 'SELECT count(*) AS c FROM big'), { rows: [{ c: '5000' }], truncated: false }, 'the row limit is per query, not left on the session');
    const started = Date.now();
    await t.rejects(q('my', 'SELECT SLEEP(5)'), { code: 'DEADLINE_EXCEEDED', message: /longer than 400 ms/ });
    t.ok(Date.now() - started < 2000, `cut at the limit (${Date.now() - started} ms)`);
    await t.rejects(q('myrw', 'UPDATE users SET email = email WHERE SLEEP(1) = 0'), { code: 'DEADLINE_EXCEEDED' }, 'writes have the time limit too');
    t.match(await q('my', 'SELECT count(*) AS c FROM big'), { rows: [{ c: '5000' }] }, 'the connection still works after a cancelled query');

    t.match(await q('myrw', 'INSERT INTO users (name, email) VALUES (?, ?)', ['eve', "x'); DROP TABLE users; --"]), { changes: 1, row_count: 0 });
    t.match(await q('myrw', 'INSERT INTO users (name) VALUES (?) RETURNING id', ['fay']), { changes: 1, rows: [{ id: 4 }] });
    t.match(await q('myrw', 'DELETE FROM users WHERE name = ?', ['fay']), { changes: 1 });
    t.equal(await count('users'), 3, 'a read-write connection writes and commits, with values as parameters');
    await t.rejects(q('myro', 'SELECT add_user(?)', ['eve']), { code: 'FORBIDDEN' });
    t.match(await host.call('db-query', 'tables', { connection: 'myro' }), [
      { schema: 'shop', name: 'big', type: 'base table', columns: [{ name: 'n', type: 'int' }] },
      { schema: 'shop', name: 'tickets', type: 'sequence' },
      { schema: 'shop', name: 'users', type: 'base table', columns: [{ name: 'id', type: 'int' }, { name: 'name', type: 'varchar' }] },
    ]);
    t.match(await host.call('db-query', 'connections', {}), [{ name: 'my', driver: 'mysql', readonly: true }, { name: 'myro' }, { name: 'myrw', readonly: false }]);
  });

  t.test('bad connection settings fail the call with a clear error, not the plugin', async (t) => {
    await t.rejects(q('badpw', 'SELECT 1'), { code: 'PLUGIN_FAILED', message: /unreachable: Access denied for user 'reader'/, details: { reason: 'database_unavailable' } });
    await t.rejects(q('down', 'SELECT 1'), { code: 'PLUGIN_FAILED', message: /database down is unreachable/, details: { reason: 'database_unavailable' } });
    t.match(await q('myro', 'SELECT 1 AS one'), { rows: [{ one: 1 }] });
    t.match(host.configOf('db-query'), { connections: { myport: { host: '127.0.0.1', port: 3306 }, pgport: { port: 5432 } } }, 'default ports');
  });

  t.test('a mysql connection without a user or database is refused at start, with the reason', async (t) => {
    const other = new PluginHost({
      env: {},
      config: { allow: ['db-query'], config: { 'db-query': { connections: { x: { driver: 'mysql', database: 'shop' } } } } },
    });
    const tc2 = makeTestContext({ config: { devices: [] } });
    t.teardown(async () => {
      await other.stop();
      tc2.cleanup();
    });
    await other.start(tc2.ctx);
    t.match(other.problems(), [{ name: 'db-query', code: 'PLUGIN_INVALID', message: /user/ }]);
  });
}

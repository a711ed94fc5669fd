/**
 * Checks SQL text before it reaches a database: one statement only, no string literals unless allowed
 * (values go in parameters: $1 for PostgreSQL, ? for SQLite and MySQL), and in read-only mode a reading statement
 * with no writing keyword anywhere outside quotes and comments. The database's own read-only mode
 * (a read-only SQLite handle, a READ ONLY PostgreSQL or MySQL transaction) stays the backstop; this gives the early,
 * clear refusal. The scanner knows quoted strings and identifiers, E-strings, dollar quoting, line
 * comments and block comments (nested, as PostgreSQL allows). For MySQL/MariaDB it reads SQL as the server
 * does in the sql_mode that mysql.ts sets: "double quotes" and 'single quotes' are strings with backslash
 * escapes, `#` starts a comment and `--` only when a space follows; executable comments (`/*!` …), which
 * the server runs, are refused.
 */
import { PluginError } from '../../sdk.js';

export type Dialect = 'sqlite' | 'postgres' | 'mysql';

export interface GuardOptions {
  dialect: Dialect;
  readonly: boolean;
  allowStringLiterals: boolean;
  maxLength: number;
}

export interface GuardedSql {
  /** The SQL without a trailing semicolon. */
  sql: string;
  /** First keyword, upper case (SELECT, WITH, INSERT …). */
  verb: string;
  /** True when the statement returns rows and can run under a cursor (SELECT, WITH … SELECT, VALUES, TABLE). */
  reads: boolean;
}

const READ_VERBS = new Set(['SELECT', 'WITH', 'VALUES', 'TABLE']);
/**
 * Anywhere outside quotes, any of these makes a read-only query a refusal: a write hidden in a CTE
 * (WITH x AS (DELETE …)), SELECT … INTO, FOR UPDATE locks. Statement-only verbs (BEGIN, SET, VACUUM …)
 * are already refused as the first keyword, and only one statement gets through.
 */
const WRITE_WORDS = new Set([
  'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'UPSERT', 'INTO', 'DROP', 'ALTER', 'CREATE', 'TRUNCATE', 'ATTACH',
  'DETACH', 'PRAGMA', 'VACUUM', 'COPY', 'CALL', 'GRANT', 'REVOKE',
]);

interface Token {
  kind: 'word' | 'string' | 'ident' | 'semicolon' | 'other';
  text: string;
  start: number;
}

export function guardSql(input: string, options: GuardOptions): GuardedSql {
  if (input.length > options.maxLength) {
    throw new PluginError('PAYLOAD_TOO_LARGE', `the SQL has ${input.length} characters; the limit is ${options.maxLength}`);
  }
  if (input.includes('\u0000')) throw new PluginError('PAYLOAD_INVALID', 'the SQL contains a NUL character');
  const tokens = tokenize(input, options.dialect);
  const semicolons = tokens.filter((t) => t.kind === 'semicolon');
  const last = tokens.at(-1);
  if (semicolons.length > 1 || (semicolons.length === 1 && last?.kind !== 'semicolon')) {
    throw new PluginError('PAYLOAD_INVALID', 'only one SQL statement per query; a ";" followed by more SQL is refused');
  }
  const body = tokens.filter((t) => t.kind !== 'semicolon');
  const first = body.find((t) => t.kind === 'word');
  if (!first) throw new PluginError('PAYLOAD_INVALID', 'the SQL has no statement');
  const verb = first.text.toUpperCase();
  if (!options.allowStringLiterals) {
    const literal = body.find((t) => t.kind === 'string');
    if (literal) {
      throw new PluginError(
        'PAYLOAD_INVALID',
        `string literals are refused (${preview(literal.text)}); pass values as parameters (${options.dialect === 'postgres' ? '$1, $2' : '?'}) in "params"`,
      );
    }
  }
  if (options.readonly) {
    if (!READ_VERBS.has(verb)) {
      throw new PluginError('FORBIDDEN', `this connection is read-only: ${verb} is refused (SELECT, WITH, VALUES and TABLE are allowed)`);
    }
    const write = body.find((t) => t.kind === 'word' && WRITE_WORDS.has(t.text.toUpperCase()));
    if (write) throw new PluginError('FORBIDDEN', `this connection is read-only: ${write.text.toUpperCase()} is refused`);
  }
  const end = semicolons.length === 1 ? semicolons[0]!.start : input.length;
  const hasWrite = body.some((t) => t.kind === 'word' && WRITE_WORDS.has(t.text.toUpperCase()));
  return { sql: input.slice(0, end), verb, reads: READ_VERBS.has(verb) && !hasWrite };
}

function tokenize(sql: string, dialect: Dialect): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  const unterminated = (what: string) => new PluginError('PAYLOAD_INVALID', `the SQL has an unterminated ${what}`);
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (/\s/.test(c)) {
      i++;
    } else if ((c === '-' && next === '-' && (dialect !== 'mysql' || !sql[i + 2] || /\s/.test(sql[i + 2]!))) || (c === '#' && dialect === 'mysql')) {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? n : eol + 1;
    } else if (c === '/' && next === '*') {
      if (dialect === 'mysql' && /^\/\*M?!/.test(sql.slice(i, i + 4))) {
        throw new PluginError('PAYLOAD_INVALID', 'executable comments (/*! … */) are refused');
      }
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*' && dialect === 'postgres') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
      if (depth > 0) throw unterminated('comment');
    } else if (c === "'" || (c === '"' && dialect === 'mysql') || ((c === 'E' || c === 'e') && next === "'" && dialect === 'postgres')) {
      const start = i;
      const quote = c === '"' ? '"' : "'";
      const backslash = dialect === 'mysql' || c !== quote;
      i += c === quote ? 1 : 2;
      for (;;) {
        if (i >= n) throw unterminated('string');
        if (backslash && sql[i] === '\\') i += 2;
        else if (sql[i] === quote && sql[i + 1] === quote) i += 2;
        else if (sql[i] === quote) {
          i++;
          break;
        } else i++;
      }
      tokens.push({ kind: 'string', text: sql.slice(start, i), start });
    } else if (c === '"' || c === '`' || (c === '[' && dialect === 'sqlite')) {
      const close = c === '[' ? ']' : c;
      const start = i++;
      for (;;) {
        if (i >= n) throw unterminated('quoted identifier');
        if (sql[i] === close && sql[i + 1] === close && close !== ']') i += 2;
        else if (sql[i] === close) {
          i++;
          break;
        } else i++;
      }
      tokens.push({ kind: 'ident', text: sql.slice(start, i), start });
    } else if (c === '$' && dialect === 'postgres' && /^\$[A-Za-z_]?[A-Za-z0-9_]*\$/.test(sql.slice(i, i + 66)) && !/^\$\d/.test(sql.slice(i))) {
      const tag = /^\$[A-Za-z_]?[A-Za-z0-9_]*\$/.exec(sql.slice(i))![0];
      const close = sql.indexOf(tag, i + tag.length);
      if (close < 0) throw unterminated('dollar-quoted string');
      tokens.push({ kind: 'string', text: sql.slice(i, close + tag.length), start: i });
      i = close + tag.length;
    } else if (c === ';') {
      tokens.push({ kind: 'semicolon', text: ';', start: i });
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      const start = i;
      while (i < n && /[A-Za-z0-9_$]/.test(sql[i]!)) i++;
      tokens.push({ kind: 'word', text: sql.slice(start, i), start });
    } else {
      tokens.push({ kind: 'other', text: c, start: i });
      i++;
    }
  }
  return tokens;
}

function preview(text: string): string {
  return text.length > 24 ? `${text.slice(0, 24)}…` : text;
}

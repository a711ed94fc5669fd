/**
 * Logging: pino JSON lines on stdout (journald keeps them), pretty when stdout is a terminal, one child
 * logger per component with its own level. Warnings and errors also go to a small ring that the status
 * page shows as "recent warnings".
 *
 * No secret reaches a log line: values under secret-looking keys (password, password_hash, token,
 * authorization, cookie, ...) at any depth of a logged object, errors included, become `[redacted]`; and in
 * the finished line, wherever a URL or message carries `token=`, `access_token=`, `password=` or `appid=` (also
 * percent-encoded `=`), or `Bearer <credential>`, the value becomes `[redacted]`, as does any string under a
 * secret key. The line check runs on every finished line, so a URL inside an error message or stack and a
 * child logger's bindings are covered too.
 */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';
import type { LogLevel } from './config/schema.js';

export type { Logger };

export const REDACTED = '[redacted]';

/** Keys whose values are secrets wherever they appear (compared in lower case). */
const SECRET_KEYS = new Set([
  'password',
  'password_hash',
  'passwd',
  'token',
  'access_token',
  'refresh_token',
  'secret',
  'client_secret',
  'api_key',
  // A chat platform's credentials (channels.platforms.<name>.credentials) and Telegram's bot token.
  'credentials',
  'bot_token',
  'app_id',
  'appid',
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
]);

// In a finished JSON line: a value runs to the next `&`, `#`, whitespace, closing quote or JSON escape,
// except an escaped quote or backslash, which a secret may contain. The name starts the text or follows a
// non-word character or a percent-encoded `?` or `&` (a URL inside a URL).
const SECRET_PARAM = /((?:(?<![A-Za-z0-9_])|(?<=%3F|%26))(?:access_token|token|password|appid|app_id)(?:=|%3D))(?:\\["\\]|[^&#\s"\\])*/gi;
const BEARER = /\b(Bearer\s+)[A-Za-z0-9._~+/-]+=*/gi;
/** A string under a secret key in a finished JSON line: catches child-logger bindings, which skip formatters. */
const SECRET_JSON_FIELD = new RegExp(`("(?:${[...SECRET_KEYS].join('|')})":)"(?:[^"\\\\]|\\\\.)*"`, 'gi');

/** Redacts secret query parameters and bearer credentials in text (a URL, a message, a whole log line). */
export function redactText(text: string): string {
  return text.replace(SECRET_PARAM, `$1${REDACTED}`).replace(BEARER, `$1${REDACTED}`);
}

/** The last pass over every finished line. */
function redactLine(line: string): string {
  return redactText(line).replace(SECRET_JSON_FIELD, `$1"${REDACTED}"`);
}

const MAX_DEPTH = 12;

/** A copy of a logged value with secret-keyed values replaced; errors are serialized first. */
export function redactValue(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (value instanceof Error) return redactValue(pino.stdSerializers.err(value), depth, seen);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1, seen));
  // URL, Date, Buffer and the like serialize themselves; the line check still sees their text.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = SECRET_KEYS.has(key.toLowerCase()) && item !== undefined && item !== null ? REDACTED : redactValue(item, depth + 1, seen);
  }
  return out;
}

const redactObject = (object: Record<string, unknown>): Record<string, unknown> => redactValue(object) as Record<string, unknown>;

export interface LogEntry {
  time: number;
  level: 'warn' | 'error' | 'fatal';
  component?: string;
  msg: string;
  code?: string;
}

const LEVEL_NAMES: Record<number, LogEntry['level']> = { 40: 'warn', 50: 'error', 60: 'fatal' };

/** Keeps the last N warn-or-worse entries in memory. */
export class LogRing extends Writable {
  readonly #entries: LogEntry[] = [];
  readonly #capacity: number;
  readonly #listeners = new Set<(entry: LogEntry) => void>();

  constructor(capacity = 100) {
    super();
    this.#capacity = capacity;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    try {
      const line = JSON.parse(chunk.toString()) as { time: number; level: number; component?: string; msg?: string; code?: string };
      const entry: LogEntry = {
        time: line.time,
        level: LEVEL_NAMES[line.level] ?? 'warn',
        msg: line.msg ?? '',
        ...(line.component ? { component: line.component } : {}),
        ...(line.code ? { code: line.code } : {}),
      };
      this.#entries.push(entry);
      if (this.#entries.length > this.#capacity) this.#entries.shift();
      for (const listener of this.#listeners) listener(entry);
    } catch {
      // A line we cannot parse is still on stdout; the ring is only a convenience.
    }
    done();
  }

  entries(): LogEntry[] {
    return [...this.#entries];
  }

  /** Drops the entries a predicate picks (erasure, retention); how many went. */
  removeWhere(drop: (entry: LogEntry) => boolean): number {
    const before = this.#entries.length;
    const kept = this.#entries.filter((entry) => !drop(entry));
    this.#entries.splice(0, before, ...kept);
    return before - kept.length;
  }

  onEntry(listener: (entry: LogEntry) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** One line of the log tail (any level), numbered so a reader can ask for what came after. */
export interface TailEntry {
  seq: number;
  time: number;
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  component?: string;
  msg: string;
  code?: string;
}

const ALL_LEVEL_NAMES: Record<number, TailEntry['level']> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
/** A message longer than this is cut in the tail (stdout keeps all of it). */
const TAIL_MSG_CHARS = 2000;

/** Keeps the last N log lines of every level that is logged, already redacted, for the web app's log view. */
export class LogTail extends Writable {
  readonly #entries: TailEntry[] = [];
  readonly #capacity: number;
  #seq = 0;

  constructor(capacity = 1000) {
    super();
    this.#capacity = capacity;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    try {
      const line = JSON.parse(chunk.toString()) as { time: number; level: number; component?: string; msg?: string; code?: string };
      this.#entries.push({
        seq: ++this.#seq,
        time: line.time,
        level: ALL_LEVEL_NAMES[line.level] ?? 'info',
        msg: (line.msg ?? '').slice(0, TAIL_MSG_CHARS),
        ...(typeof line.component === 'string' ? { component: line.component } : {}),
        ...(typeof line.code === 'string' ? { code: line.code } : {}),
      });
      if (this.#entries.length > this.#capacity) this.#entries.shift();
    } catch {
      // Not JSON: the line is still on stdout.
    }
    done();
  }

  /** Entries after `afterSeq` (all kept ones for 0), oldest first. */
  since(afterSeq = 0): TailEntry[] {
    const first = this.#entries.findIndex((e) => e.seq > afterSeq);
    return first < 0 ? [] : this.#entries.slice(first);
  }

  entries(): TailEntry[] {
    return [...this.#entries];
  }

  /** Drops the entries a predicate picks (erasure, retention); how many went. */
  removeWhere(drop: (entry: TailEntry) => boolean): number {
    const before = this.#entries.length;
    const kept = this.#entries.filter((entry) => !drop(entry));
    this.#entries.splice(0, before, ...kept);
    return before - kept.length;
  }
}

export interface LoggingOptions {
  level: LogLevel;
  components: Readonly<Record<string, LogLevel>>;
  /** Defaults to pretty output when stdout is a TTY. */
  pretty?: boolean;
  /** Where JSON lines go; stdout by default (tests pass a stream). */
  destination?: NodeJS.WritableStream;
}

export interface Logging {
  root: Logger;
  ring: LogRing;
  /** The last lines of every level, for the web app's log view (absent in hand-made test loggings). */
  tail?: LogTail;
  forComponent(component: string): Logger;
}

const ORDER: LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function createLogging(options: LoggingOptions): Logging {
  const ring = new LogRing();
  const tail = new LogTail();
  const usePretty = options.pretty ?? process.stdout.isTTY === true;
  const out = options.destination ?? process.stdout;
  // pino-pretty is loaded only for a terminal: under systemd the runtime logs JSON and never needs it.
  const pretty = usePretty ? (createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty) : undefined;
  const main = pretty ? pretty({ colorize: true, destination: 1, sync: true }) : out;
  // The root must pass the most verbose level any component asks for; children filter themselves.
  const levels = [options.level, ...Object.values(options.components)];
  const rootLevel = levels.reduce((a, b) => (ORDER.indexOf(b) < ORDER.indexOf(a) ? b : a));
  const root = pino(
    {
      level: rootLevel,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.epochTime,
      formatters: { log: redactObject },
      // Errors were serialized (and redacted) by the log formatter; a real Error here came another way.
      serializers: { err: (value: unknown) => (value instanceof Error ? redactValue(value) : value) },
      hooks: { streamWrite: redactLine },
    },
    pino.multistream([
      { level: 'trace', stream: main },
      { level: 'warn', stream: ring },
      { level: 'trace', stream: tail },
    ]),
  );
  return {
    root,
    ring,
    tail,
    forComponent(component) {
      return root.child({ component }, { level: options.components[component] ?? options.level });
    },
  };
}

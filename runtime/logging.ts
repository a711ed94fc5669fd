/**
 * Logging: pino JSON lines on stdout (journald keeps them), pretty when stdout is a terminal, one child
 * logger per component with its own level. Warnings and errors also go to a small ring that the status
 * page shows as "recent warnings".
 */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { LogLevel } from './config/schema.js';

export type { Logger };

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

  onEntry(listener: (entry: LogEntry) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
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
  forComponent(component: string): Logger;
}

const ORDER: LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function createLogging(options: LoggingOptions): Logging {
  const ring = new LogRing();
  const usePretty = options.pretty ?? process.stdout.isTTY === true;
  const out = options.destination ?? process.stdout;
  const main = usePretty ? pretty({ colorize: true, destination: 1, sync: true }) : out;
  // The root must pass the most verbose level any component asks for; children filter themselves.
  const levels = [options.level, ...Object.values(options.components)];
  const rootLevel = levels.reduce((a, b) => (ORDER.indexOf(b) < ORDER.indexOf(a) ? b : a));
  const root = pino(
    { level: rootLevel, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.epochTime },
    pino.multistream([
      { level: 'trace', stream: main },
      { level: 'warn', stream: ring },
    ]),
  );
  return {
    root,
    ring,
    forComponent(component) {
      return root.child({ component }, { level: options.components[component] ?? options.level });
    },
  };
}

/**
 * serial-line: devices that speak text lines over a serial port (AT-style modems, Arduino sketches).
 * Per property a template (`DIM {brightness}`) and a reply pattern (`^OK DIM (?<brightness>\d+)$`) whose
 * named groups become state; a query for the whole state; patterns for unsolicited lines; an error
 * pattern. One exchange at a time, each under the command deadline, unless `pipeline` > 1: then up to that
 * many commands are on the wire at once (for devices that read their input in order and answer every
 * line), lines written in one event-loop turn go out in one write, and each reply goes to the oldest
 * waiting command whose reply pattern it matches, preferring one whose values it echoes (`OK DIM 40` for
 * `DIM 40`), so a reply that never comes times out only its own command. An error line carries no
 * correlation: it fails the oldest waiting command. The port going away (close event or the device node
 * vanishing) marks the device offline at once; it reopens with backoff.
 */
import { existsSync } from 'node:fs';
import { SerialPort } from 'serialport';
import { ClawboxError } from '../../runtime/errors.js';
import { impliedState } from '../capabilities.js';
import type { DeviceDriver, DriverContext, DriverFactory } from '../driver.js';
import type { Availability, DeviceCommand, DeviceState, StateValue } from '../model.js';
import { AvailabilityState, Reconnector, SerialQueue, StatePoller, timeoutError } from './common.js';
import { eventLoopBinding } from './event-loop-binding.js';
import { LineSplitter } from './line-splitter.js';

/** Reads and writes on the event loop instead of libuv's thread pool (see event-loop-binding.ts). */
const BINDING = eventLoopBinding();

export interface SerialLineOptions {
  path: string;
  baud_rate?: number;
  delimiter?: string;
  commands?: Record<string, { template: string; response?: string }>;
  query?: { template: string; response: string };
  reports?: string[];
  error?: string;
  values?: Record<string, Record<string, string | number>>;
  poll_interval_ms?: number;
  reconnect?: { initial_ms?: number; max_ms?: number };
  /** Commands on the wire at once (1: wait for each reply before the next line). */
  pipeline?: number;
}

/** How often the device node is checked while open: a vanished node means unplugged (< 2 s to offline). */
const PRESENCE_CHECK_MS = 250;

interface Waiter {
  response: RegExp;
  /** Wire values the command sent, by placeholder name: a reply echoing them is this command's. */
  sent: Record<string, string>;
  resolve: (groups: Record<string, string>) => void;
  reject: (error: ClawboxError) => void;
}

/** A line waiting for the next write, and what to tell when the write is done. */
interface Outgoing {
  text: string;
  written: (error: Error | null) => void;
}

export class ValueCodec {
  constructor(private readonly values: Record<string, Record<string, string | number>> = {}) {}

  /** Capability value -> wire text. */
  encode(property: string, value: StateValue): string {
    const mapped = this.values[property]?.[String(value)];
    return String(mapped ?? value);
  }

  /** Wire text -> capability value (reverse map, then number when it looks like one). */
  decode(property: string, text: string): StateValue {
    const map = this.values[property];
    if (map) {
      for (const [value, wire] of Object.entries(map)) if (String(wire) === text) return coerce(value);
    }
    return coerce(text);
  }
}

/** True when every value the reply carries for a sent placeholder is the one sent. */
function echoes(groups: Record<string, string>, sent: Record<string, string>): boolean {
  for (const [name, wire] of Object.entries(sent)) {
    const got = groups[name];
    if (got !== undefined && got !== wire) return false;
  }
  return true;
}

function coerce(text: string): StateValue {
  return /^-?\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : text;
}

/**
 * A command template split once at its placeholders (`DIM {brightness}`: "DIM ", brightness, ""), so a
 * command fills it in without a regular expression; with its reply pattern compiled.
 */
interface CompiledTemplate {
  template: string;
  /** The text around the placeholders: one more than `names`. */
  literals: string[];
  names: string[];
  response: RegExp | null;
}

function compileTemplate(template: string, response: RegExp | null): CompiledTemplate {
  const literals: string[] = [];
  const names: string[] = [];
  let last = 0;
  for (const match of template.matchAll(/\{([a-z][a-z0-9_]*)\}/g)) {
    literals.push(template.slice(last, match.index));
    names.push(match[1]!);
    last = match.index + match[0].length;
  }
  literals.push(template.slice(last));
  return { template, literals, names, response };
}

class SerialLineDriver implements DeviceDriver {
  readonly #o: SerialLineOptions;
  readonly #id: string;
  readonly #availability: AvailabilityState;
  readonly #reconnector: Reconnector;
  readonly #queue = new SerialQueue();
  readonly #codec: ValueCodec;
  readonly #reports: RegExp[];
  readonly #error: RegExp | null;
  readonly #known: DeviceState;
  /** Compiled once: reply patterns by source. */
  readonly #patterns = new Map<string, RegExp>();
  /** Compiled once: each property's command template. */
  readonly #templates = new Map<string, CompiledTemplate>();
  readonly #pipeline: number;
  #port: SerialPort | null = null;
  /** Exchanges written and not yet answered, oldest first. */
  readonly #waiters: Waiter[] = [];
  #outbox: Outgoing[] = [];
  #presence: NodeJS.Timeout | null = null;
  readonly #poller: StatePoller;
  #stopped = false;

  constructor(private readonly ctx: DriverContext) {
    this.#o = ctx.definition.options.serial as SerialLineOptions;
    this.#id = ctx.definition.id;
    this.#availability = new AvailabilityState(ctx);
    this.#poller = new StatePoller(ctx, this.#availability, () => (this.#stopped || !this.#port ? null : this.#query(this.ctx.definition.timeout_ms)));
    this.#codec = new ValueCodec(this.#o.values);
    // Unsolicited lines: the report patterns, and the query reply (a device may push its status).
    this.#reports = [...(this.#o.reports ?? []), ...(this.#o.query ? [this.#o.query.response] : [])].map(
      (r) => new RegExp(r),
    );
    this.#error = this.#o.error ? new RegExp(this.#o.error) : null;
    this.#known = { ...ctx.initialState };
    this.#pipeline = this.#o.pipeline ?? 1;
    const backoff = { initial_ms: this.#o.reconnect?.initial_ms ?? 250, max_ms: this.#o.reconnect?.max_ms ?? 5000 };
    this.#reconnector = new Reconnector(
      () => this.#open(),
      backoff,
      (error, attempt, next) => {
        const log = attempt === 1 ? 'warn' : 'debug';
        this.ctx.logger[log](
          { path: this.#o.path, attempt, retry_in_ms: next, reason: (error as Error).message },
          `cannot open ${this.#o.path}; retrying`,
        );
      },
    );
  }

  get availability(): Availability {
    return this.#availability.value;
  }

  get maxInFlight(): number {
    return this.#pipeline;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    await this.#reconnector.start();
    if (this.#o.query) this.#poller.start(this.#o.poll_interval_ms ?? 0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#reconnector.stop();
    this.#poller.stop();
    await this.#closePort('stopped');
  }

  async execute(command: DeviceCommand, timeoutMs: number): Promise<DeviceState> {
    this.#availability.assertOnline();
    const deadline = Date.now() + timeoutMs;
    const run = async () => {
      const lines: Array<{ line: string; response: RegExp | null; what: string; sent: Record<string, string> }> = [];
      for (const property in command) {
        const template = this.#template(property);
        const sent: Record<string, string> = {};
        const line = this.#render(template, command, sent);
        // One template may carry several properties.
        if (!lines.some((l) => l.line === line)) lines.push({ line, response: template.response, what: property, sent });
      }
      const patch: DeviceState = {};
      if (this.#pipeline > 1) {
        // Every line of the command goes out now; the replies are matched as they come.
        const replies = lines.map((l) => this.#exchange(l.line, l.response, deadline, l.what, l.sent));
        for (const groups of await Promise.all(replies)) Object.assign(patch, this.#decode(groups));
      } else {
        for (const l of lines) Object.assign(patch, this.#decode(await this.#exchange(l.line, l.response, deadline, l.what, l.sent)));
      }
      // A bare confirmation ("OK") confirms what was asked for.
      const confirmed = { ...impliedState(this.ctx.definition.capabilities, command), ...patch };
      Object.assign(this.#known, confirmed);
      return confirmed;
    };
    return this.#pipeline > 1 ? run() : this.#queue.run(run);
  }

  async read(properties: readonly string[] | null, timeoutMs: number): Promise<DeviceState> {
    this.#availability.assertOnline();
    const state = await this.#query(timeoutMs);
    if (!properties) return state;
    return Object.fromEntries(properties.filter((p) => p in state).map((p) => [p, state[p] ?? null]));
  }

  /** Runs the query (when configured) and returns the full known state. */
  async #query(timeoutMs: number): Promise<DeviceState> {
    const query = this.#o.query;
    if (query) {
      const deadline = Date.now() + timeoutMs;
      const ask = () => this.#exchange(query.template, this.#pattern(query.response), deadline, 'the query', {});
      const groups = await (this.#pipeline > 1 ? ask() : this.#queue.run(ask));
      Object.assign(this.#known, this.#decode(groups));
    }
    return { ...this.#known };
  }

  // ---- the port ------------------------------------------------------------------------------------

  async #open(): Promise<void> {
    if (this.#stopped) return;
    if (!existsSync(this.#o.path)) throw new Error(`${this.#o.path} does not exist`);
    // SerialPort's typings leave `binding` out, but its constructor takes one (it only fills in the default).
    const options = { path: this.#o.path, baudRate: this.#o.baud_rate ?? 9600, autoOpen: false, binding: BINDING };
    const port = new SerialPort(options as ConstructorParameters<typeof SerialPort>[0]);
    await new Promise<void>((resolve, reject) => port.open((error) => (error ? reject(error) : resolve())));
    if (this.#stopped) {
      await closeQuietly(port);
      return;
    }
    this.#port = port;
    const lines = new LineSplitter(
      this.#o.delimiter ?? '\n',
      (line) => this.#onLine(line.endsWith('\r') ? line.slice(0, -1) : line),
      (bytes) => this.ctx.logger.debug({ bytes }, 'dropped a line too long to be a reply'),
    );
    port.on('data', (chunk: Buffer) => lines.push(chunk));
    port.on('error', (error) => this.#lost(port, `port error: ${error.message}`));
    port.on('close', (error?: { disconnected?: boolean; message?: string }) =>
      this.#lost(port, error?.disconnected ? 'disconnected' : 'port closed'),
    );
    this.#presence = setInterval(() => {
      if (!existsSync(this.#o.path)) this.#lost(port, `${this.#o.path} disappeared`);
    }, PRESENCE_CHECK_MS);
    this.#presence.unref();
    this.#poller.connected();
    // With a status query, "online" means the device answered it (a USB adapter can be present while
    // the device behind it still boots); otherwise an open port is all we can know.
    if (this.#o.query) {
      try {
        this.ctx.report(await this.#query(this.ctx.definition.timeout_ms));
      } catch (error) {
        this.#lost(port, 'no answer to the status query');
        throw error;
      }
    }
    if (this.#port !== port) throw new Error(`${this.#o.path} went away while opening`);
    this.#availability.set('online');
    this.ctx.logger.info({ path: this.#o.path }, `opened ${this.#o.path}`);
  }

  #lost(port: SerialPort, reason: string): void {
    if (this.#port !== port) return;
    this.#port = null;
    if (this.#presence) clearInterval(this.#presence);
    this.#presence = null;
    this.#failWaiters(new ClawboxError('DEVICE_UNAVAILABLE', `${this.#id} went offline (${reason})`));
    this.#availability.set('offline', reason);
    void closeQuietly(port);
    if (!this.#stopped) this.#reconnector.lost();
  }

  async #closePort(reason: string): Promise<void> {
    const port = this.#port;
    if (port) {
      this.#lost(port, reason);
      await closeQuietly(port);
    }
    this.#availability.set('offline', reason);
  }

  // ---- exchanges -----------------------------------------------------------------------------------

  /** The property's command template, compiled; COMMAND_INVALID when the device has none for it. */
  #template(property: string): CompiledTemplate {
    let compiled = this.#templates.get(property);
    if (!compiled) {
      const spec = this.#o.commands?.[property];
      if (!spec) throw new ClawboxError('COMMAND_INVALID', `${this.#id} has no serial template for "${property}"`);
      compiled = compileTemplate(spec.template, spec.response ? this.#pattern(spec.response) : null);
      this.#templates.set(property, compiled);
    }
    return compiled;
  }

  /**
   * A template filled in from the command, and for what it does not set from the last known state; `sent`
   * collects each placeholder's wire text.
   */
  #render(template: CompiledTemplate, command: DeviceCommand, sent: Record<string, string>): string {
    let line = template.literals[0]!;
    for (let i = 0; i < template.names.length; i++) {
      const name = template.names[i]!;
      const value = name in command ? command[name] : this.#known[name];
      if (value === undefined) {
        throw new ClawboxError('COMMAND_INVALID', `${this.#id}: template "${template.template}" needs "${name}", which is unknown`);
      }
      const wire = this.#codec.encode(name, value);
      sent[name] = wire;
      line += wire + template.literals[i + 1]!;
    }
    return line;
  }

  /** Writes one line and waits for the reply pattern (or just the write, when there is none). */
  #exchange(line: string, response: RegExp | null, deadline: number, what: string, sent: Record<string, string>) {
    const port = this.#port;
    if (!port) return Promise.reject(new ClawboxError('DEVICE_UNAVAILABLE', `${this.#id} is offline`, { device: this.#id }));
    const remaining = deadline - Date.now();
    if (remaining <= 0) return Promise.reject(timeoutError(this.#id, what, 0));
    return new Promise<Record<string, string>>((resolve, reject) => {
      let waiter: Waiter | null = null;
      const done = () => {
        clearTimeout(timer);
        if (!waiter) return;
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
      };
      const timer = setTimeout(() => {
        done();
        reject(timeoutError(this.#id, what, remaining));
      }, remaining);
      if (response) {
        waiter = {
          response,
          sent,
          resolve: (groups) => {
            done();
            resolve(groups);
          },
          reject: (error) => {
            done();
            reject(error);
          },
        };
        this.#waiters.push(waiter);
      }
      this.#send(port, line + (this.#o.delimiter ?? '\n'), (error) => {
        if (error) {
          done();
          reject(new ClawboxError('DEVICE_UNAVAILABLE', `${this.#id}: write failed: ${error.message}`));
        } else if (!response) {
          done();
          resolve({});
        }
      });
    });
  }

  /** Lines written in one event-loop turn go out in one write. */
  #send(port: SerialPort, text: string, written: (error: Error | null) => void): void {
    this.#outbox.push({ text, written });
    if (this.#outbox.length > 1) return;
    queueMicrotask(() => {
      const batch = this.#outbox;
      this.#outbox = [];
      if (this.#port !== port) {
        for (const out of batch) out.written(new Error('the port closed'));
        return;
      }
      port.write(batch.length === 1 ? batch[0]!.text : batch.map((out) => out.text).join(''), (error) => {
        for (const out of batch) out.written(error ?? null);
      });
    });
  }

  #pattern(source: string): RegExp {
    let pattern = this.#patterns.get(source);
    if (!pattern) {
      pattern = new RegExp(source);
      this.#patterns.set(source, pattern);
    }
    return pattern;
  }

  #onLine(line: string): void {
    if (this.#waiters.length > 0) {
      const error = this.#error?.exec(line);
      if (error) {
        this.#waiters[0]!.reject(
          new ClawboxError('DEVICE_ERROR', `${this.#id} answered: ${error.groups?.message ?? line}`.slice(0, 300), {
            device: this.#id,
          }),
        );
        return;
      }
      const reply = this.#matchReply(line);
      if (reply) {
        reply.waiter.resolve(reply.groups);
        return;
      }
    }
    for (const pattern of this.#reports) {
      const match = pattern.exec(line);
      if (match?.groups) {
        const patch = this.#decode({ ...match.groups });
        Object.assign(this.#known, patch);
        this.ctx.report(patch);
        return;
      }
    }
    this.ctx.logger.debug({ line: line.slice(0, 200) }, 'ignored a line from the device');
  }

  /** The waiting exchange a reply belongs to: the oldest one it echoes, else the oldest whose pattern it matches. */
  #matchReply(line: string): { waiter: Waiter; groups: Record<string, string> } | null {
    let first: { waiter: Waiter; groups: Record<string, string> } | null = null;
    for (const waiter of this.#waiters) {
      const match = waiter.response.exec(line);
      if (!match) continue;
      const groups = { ...match.groups };
      if (this.#waiters.length === 1) return { waiter, groups };
      if (echoes(groups, waiter.sent)) return { waiter, groups };
      first ??= { waiter, groups };
    }
    return first;
  }

  #failWaiters(error: ClawboxError): void {
    for (const waiter of [...this.#waiters]) waiter.reject(error);
    this.#waiters.length = 0;
  }

  #decode(groups: Record<string, string>): DeviceState {
    const out: DeviceState = {};
    for (const [key, text] of Object.entries(groups)) {
      if (text !== undefined) out[key] = this.#codec.decode(key, text);
    }
    return out;
  }
}

function closeQuietly(port: SerialPort): Promise<void> {
  return new Promise((resolve) => {
    if (!port.isOpen) return resolve();
    port.close(() => resolve());
  });
}

export const createSerialLineDriver: DriverFactory = (ctx) => new SerialLineDriver(ctx);

/**
 * Keeps one plugin running: starts it (initialize within a deadline), runs calls with a per-call timeout,
 * and when it throws outside a call, exits, runs out of memory, hangs or breaks the protocol, fails the
 * calls in flight with PLUGIN_FAILED (naming the reason) and restarts it with exponential backoff. Nothing
 * a plugin does can throw out of here.
 */
import { ClawboxError, ERROR_CATALOG, type ErrorCode } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logging.js';
import type { DiscoveredPlugin } from '../discovery.js';
import type { ChannelExit, PluginChannel } from './channels.js';
import { ProtocolError, RemoteError, RpcPeer } from './rpc.js';

/** idle: started lazily — the process starts at the first call. */
export type PluginState = 'stopped' | 'idle' | 'starting' | 'running' | 'backoff' | 'stopping';

export type FailureReason =
  | 'timeout'
  | 'hung'
  | 'threw'
  | 'stopped'
  | 'not_running'
  | 'result_invalid'
  /** The caller gave up (deadline, disconnect) after the call was sent. */
  | 'cancelled'
  | ChannelExit['kind'];

export interface SupervisorLimits {
  memoryLimitMb: number;
  maxMessageBytes: number;
  startTimeoutMs: number;
  restart: { initial_ms: number; max_ms: number; stable_ms: number };
  python: string;
}

/** A call in flight: the host looks it up when the plugin makes a request on the caller's behalf. */
export interface ActiveCall {
  id: string;
  tool: string;
  caller: Record<string, unknown>;
  transaction?: string | number;
}

export interface SupervisorOptions {
  plugin: DiscoveredPlugin;
  config: Record<string, unknown>;
  dataDir: string;
  limits: SupervisorLimits;
  logger: Logger;
  /** A request from the plugin to the host (devices, MQTT); `call` is set when made for a call in flight. */
  hostRequest(method: string, params: Record<string, unknown>, call: ActiveCall | undefined): Promise<unknown>;
  /** Extra initialize parameters (a channel plugin's kind and credentials). */
  initialize?: Record<string, unknown>;
  /** Each time a generation is up and initialized (after every restart too). */
  onRunning?(): void;
  /** Notifications from the plugin other than `log` (a channel's `channel.state`). */
  onNotification?(method: string, params: unknown): void;
}

export interface CallRequest {
  tool: string;
  args: unknown;
  timeoutMs: number;
  caller: Record<string, unknown>;
  transaction?: string | number;
  /** The caller's cancellation: before the call is sent it is not sent; after, the plugin is asked to cancel. */
  signal?: AbortSignal;
}

export interface SupervisorFigures {
  state: PluginState;
  pid: number | null;
  restarts: number;
  calls: number;
  failures: number;
  in_flight: number;
  last_error: { reason: string; message: string; at: number } | null;
  next_start_in_ms: number | null;
}

interface Generation {
  channel: PluginChannel;
  peer: RpcPeer;
  startedAt: number;
  exited: boolean;
  /** The runner said at initialize that it honours `cancel {id}` (the Node runner does). */
  cancels: boolean;
}

/** The runners (child process, worker thread), imported only when a plugin first starts. */
function runnerChannels(): Promise<typeof import('./channels.js')> {
  return import('./channels.js');
}

const PING_GRACE_MS = 1000;
const SHUTDOWN_GRACE_MS = 1000;
const LOG_BUDGET = 200;
const LOG_WINDOW_MS = 10_000;

export function pluginFailed(plugin: string, reason: FailureReason, message: string, extra: Record<string, unknown> = {}): ClawboxError {
  return new ClawboxError('PLUGIN_FAILED', `plugin ${plugin}: ${message}`, { plugin, reason, ...extra });
}

export class PluginSupervisor {
  readonly #o: SupervisorOptions;
  readonly #name: string;
  #state: PluginState = 'stopped';
  #gen: Generation | undefined;
  /** The start under way (#spawn): one that finds another in its place gives up. */
  #attempt: object | null = null;
  #consecutiveFailures = 0;
  #backoffTimer: NodeJS.Timeout | undefined;
  #nextStartAt: number | null = null;
  #waiters = new Set<() => void>();
  #active = new Map<string, ActiveCall>();
  #nextCall = 1;
  #probing = false;
  #logWindow = { start: 0, count: 0 };
  #figures = { restarts: 0, calls: 0, failures: 0 };
  #lastError: SupervisorFigures['last_error'] = null;
  /** Why the current generation is being killed, so its exit reports that rather than "killed". */
  #failure?: { gen: Generation; exit: ChannelExit; reason: FailureReason };

  constructor(options: SupervisorOptions) {
    this.#o = options;
    this.#name = options.plugin.name;
  }

  get state(): PluginState {
    return this.#state;
  }

  figures(): SupervisorFigures {
    return {
      state: this.#state,
      pid: this.#gen?.channel.pid ?? null,
      ...this.#figures,
      in_flight: this.#active.size,
      last_error: this.#lastError,
      next_start_in_ms: this.#nextStartAt === null ? null : Math.max(0, this.#nextStartAt - Date.now()),
    };
  }

  /**
   * Starts the plugin; resolves once it runs or its first start failed (restarts then go on in the
   * background). Lazy: nothing runs until the first call.
   */
  async start(options: { lazy?: boolean } = {}): Promise<void> {
    if (this.#state !== 'stopped') return;
    if (options.lazy) this.#state = 'idle';
    else await this.#spawn();
  }

  async stop(): Promise<void> {
    await this.#shutdown('the plugin host is stopping');
  }

  /**
   * A fresh start someone asked for (the web app's restart button): the running process is shut down
   * gracefully (calls in flight fail with PLUGIN_FAILED, reason `stopped`) and started again at once,
   * without the failure backoff; a waiting backoff is cut short; a lazy plugin not yet started stays
   * lazy. Counts as a restart. Throws PLUGIN_FAILED when the plugin is stopped for good.
   */
  async restartNow(reason: string): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') throw pluginFailed(this.#name, 'not_running', 'the plugin is stopped; it cannot be restarted');
    const lazy = this.#state === 'idle';
    this.#o.logger.info({ reason }, `restarting the plugin: ${reason}`);
    await this.#shutdown(`restarted: ${reason}`);
    this.#figures.restarts++;
    this.#consecutiveFailures = 0;
    if (lazy) this.#state = 'idle';
    else await this.#spawn();
  }

  async #shutdown(why: string): Promise<void> {
    if (this.#state === 'stopped') return;
    if (this.#state === 'idle') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    clearTimeout(this.#backoffTimer);
    this.#nextStartAt = null;
    this.#wake();
    const gen = this.#gen;
    if (gen && !gen.exited) {
      try {
        await withTimeout(gen.peer.request('shutdown').result, SHUTDOWN_GRACE_MS);
      } catch {
        // It will be killed below either way.
      }
      gen.peer.failAll(pluginFailed(this.#name, 'stopped', why));
      await gen.channel.kill();
    }
    this.#gen = undefined;
    this.#state = 'stopped';
    this.#wake();
  }

  /** Runs one tool call; rejects with PLUGIN_FAILED (reason in details) or the plugin's own coded error. */
  async call(request: CallRequest): Promise<unknown> {
    const deadline = Date.now() + request.timeoutMs;
    const { signal } = request;
    if (signal?.aborted) throw this.#notSent(request.tool, signal);
    this.#figures.calls++;
    try {
      await this.#waitRunning(deadline, signal);
      if (signal?.aborted) throw this.#notSent(request.tool, signal);
      const gen = this.#gen!;
      const id = `c${this.#nextCall++}`;
      const active: ActiveCall = {
        id,
        tool: request.tool,
        caller: request.caller,
        ...(request.transaction === undefined ? {} : { transaction: request.transaction }),
      };
      this.#active.set(id, active);
      const { id: rpcId, result } = gen.peer.request('call', {
        id,
        tool: request.tool,
        args: request.args,
        caller: request.caller,
        ...(request.transaction === undefined ? {} : { transaction: request.transaction }),
      });
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          gen.peer.forget(rpcId);
          this.#notify(gen, 'cancel', { id });
          reject(pluginFailed(this.#name, 'timeout', `${request.tool} did not answer within ${request.timeoutMs} ms`, { tool: request.tool }));
          void this.#probe(gen);
        }, Math.max(1, deadline - Date.now()));
        onAbort = () => {
          gen.peer.forget(rpcId);
          this.#notify(gen, 'cancel', { id });
          reject(this.#cancelled(request.tool, gen, signal!));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      try {
        return await Promise.race([result, timeout]);
      } finally {
        clearTimeout(timer);
        if (onAbort) signal?.removeEventListener('abort', onAbort);
        this.#active.delete(id);
      }
    } catch (error) {
      throw this.#callError(error, request.tool);
    }
  }

  /** Gave up before the call reached the plugin: nothing ran, and the error says so. */
  #notSent(tool: string, signal: AbortSignal): ClawboxError {
    const reason = signal.reason instanceof ClawboxError ? signal.reason : null;
    return new ClawboxError(reason?.code ?? 'DEADLINE_EXCEEDED', `${tool} was not sent to plugin ${this.#name}: ${reason?.message ?? 'the caller gave up'}`, {
      ...(reason?.details ?? {}),
      plugin: this.#name,
      tool,
      sent: false,
      not_run: true,
    });
  }

  /**
   * Gave up after the call was sent: the plugin may have done (part of) it. A runner that honours cancel
   * was asked to stop; one that does not may still finish, and the error says which.
   */
  #cancelled(tool: string, gen: Generation, signal: AbortSignal): ClawboxError {
    const why = signal.reason instanceof ClawboxError ? signal.reason.message : 'the caller gave up';
    const what = gen.cancels
      ? 'the plugin was asked to cancel it and may have finished part of it'
      : 'this plugin cannot cancel calls, so it may still finish it';
    return pluginFailed(this.#name, 'cancelled', `${tool} was sent, then cancelled (${why}); ${what}`, {
      tool,
      sent: true,
      cancel: gen.cancels ? 'requested' : 'unsupported',
    });
  }

  #callError(error: unknown, tool: string): ClawboxError {
    if (error instanceof ClawboxError) {
      // A cancelled call is the caller's doing, not a plugin failure.
      if (error.code === 'PLUGIN_FAILED' && error.details.reason !== 'cancelled') this.#recordFailure(String(error.details.reason), error.message);
      return error;
    }
    if (error instanceof RemoteError) {
      const data = (error.data ?? {}) as { code?: unknown; name?: unknown; details?: unknown };
      const code = typeof data.code === 'string' ? data.code : undefined;
      // A plugin may fail a call with a catalog code (its own expected error); anything else is a failure.
      if (code && code !== 'INTERNAL' && code !== 'PLUGIN_INVALID' && isCatalogCode(code)) {
        const details = typeof data.details === 'object' && data.details !== null ? (data.details as Record<string, unknown>) : {};
        return new ClawboxError(code, error.message, { ...details, plugin: this.#name, tool });
      }
      const err = pluginFailed(this.#name, 'threw', `${tool} threw: ${error.message}`, { tool });
      this.#recordFailure('threw', error.message);
      return err;
    }
    const err = pluginFailed(this.#name, 'threw', `${tool} failed: ${(error as Error)?.message ?? String(error)}`, { tool });
    this.#recordFailure('threw', err.message);
    return err;
  }

  #recordFailure(reason: string, message: string): void {
    this.#figures.failures++;
    this.#lastError = { reason, message, at: Date.now() };
  }

  async #waitRunning(deadline: number, signal?: AbortSignal): Promise<void> {
    if (this.#state === 'idle') void this.#spawn();
    for (;;) {
      if (this.#state === 'running' && this.#gen) return;
      if (signal?.aborted) return;
      if (this.#state === 'stopped' || this.#state === 'stopping') {
        throw pluginFailed(this.#name, 'stopped', 'the plugin is not running (stopped)');
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const why = this.#lastError ? `; last failure: ${this.#lastError.message}` : '';
        throw pluginFailed(this.#name, 'not_running', `the plugin is ${this.#state === 'backoff' ? 'restarting' : 'starting'}${why}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        const waiter = () => done();
        function done() {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        }
        signal?.addEventListener('abort', done, { once: true });
        this.#waiters.add(waiter);
        setTimeout(() => this.#waiters.delete(waiter), left + 5).unref();
      });
    }
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  async #spawn(): Promise<void> {
    this.#state = 'starting';
    this.#nextStartAt = null;
    const attempt = {};
    this.#attempt = attempt;
    // The runners' code (child processes, worker threads) is loaded when the first plugin starts; a stop
    // or another start meanwhile wins.
    const { openChannel } = await runnerChannels();
    if (this.#state !== 'starting' || this.#attempt !== attempt) return;
    const { plugin, limits, logger } = this.#o;
    let gen!: Generation;
    const peer = new RpcPeer((text) => gen.channel.send(text), {
      request: (method, params) => {
        const p = (params ?? {}) as Record<string, unknown>;
        const call = typeof p.call === 'string' ? this.#active.get(p.call) : undefined;
        if (typeof p.call === 'string' && !call) {
          return Promise.reject(new ClawboxError('FORBIDDEN', 'that call is over; a request on its behalf is refused'));
        }
        return this.#o.hostRequest(method, p, call);
      },
      notification: (method, params) => {
        if (method === 'log') this.#pluginLog(params);
        else this.#o.onNotification?.(method, params);
      },
      toRpcError: (error) => {
        const e = error instanceof ClawboxError ? error : new ClawboxError('INTERNAL', String((error as Error)?.message ?? error));
        return { code: -32000, message: e.message, data: { code: e.code } };
      },
    });
    const channel = openChannel(
      plugin.compiled.manifest.runtime,
      plugin.compiled.manifest.isolation,
      {
        name: plugin.name,
        entryPath: plugin.entryPath,
        pluginDir: plugin.dir,
        memoryLimitMb: limits.memoryLimitMb,
        maxMessageBytes: limits.maxMessageBytes,
        logger,
        python: limits.python,
      },
      {
        message: (text) => {
          // Once a plugin broke the protocol nothing more it says counts (not even a well-formed answer).
          if (this.#failure?.gen === gen) return;
          try {
            peer.receive(text);
          } catch (error) {
            if (!(error instanceof ProtocolError)) throw error;
            void this.#fail(gen, { kind: 'protocol', message: `broke the protocol: ${error.message}` });
          }
        },
        exit: (exit) => void this.#onExit(gen, exit),
      },
    );
    gen = { channel, peer, startedAt: Date.now(), exited: false, cancels: false };
    this.#gen = gen;
    try {
      const result = (await withTimeout(
        peer.request('initialize', {
          name: plugin.name,
          config: this.#o.config,
          dataDir: this.#o.dataDir,
          tools: [...plugin.compiled.tools.keys()],
          ...(this.#o.initialize ?? {}),
        }).result,
        limits.startTimeoutMs,
      )) as { tools?: unknown; cancel?: unknown } | null;
      gen.cancels = result?.cancel === true;
      const offered = Array.isArray(result?.tools) ? result.tools.filter((t): t is string => typeof t === 'string') : [];
      const missing = [...plugin.compiled.tools.keys()].filter((t) => !offered.includes(t));
      if (missing.length > 0) throw new Error(`does not implement the manifest's tools: ${missing.join(', ')}`);
    } catch (error) {
      if (this.#gen !== gen || this.#state !== 'starting') return;
      const message = error instanceof RemoteError || error instanceof Error ? error.message : String(error);
      await this.#fail(gen, { kind: 'spawn', message: `failed to start: ${message}` });
      return;
    }
    if (this.#gen !== gen || this.#state !== 'starting') return;
    this.#state = 'running';
    logger.info({ pid: channel.pid ?? null }, 'plugin started');
    this.#wake();
    this.#o.onRunning?.();
  }

  /**
   * One request to the running plugin other than a tool call (a channel's connect, send, disconnect):
   * waits until it runs, then for the answer, within timeoutMs. Rejects PLUGIN_FAILED when it cannot.
   */
  async request(method: string, params: unknown, options: { timeoutMs: number; signal?: AbortSignal }): Promise<unknown> {
    const deadline = Date.now() + options.timeoutMs;
    await this.#waitRunning(deadline, options.signal);
    if (options.signal?.aborted) throw pluginFailed(this.#name, 'cancelled', `${method} was not sent: the caller gave up`, { sent: false });
    const gen = this.#gen!;
    const { id, result } = gen.peer.request(method, params);
    try {
      return await withTimeout(result, Math.max(1, deadline - Date.now()));
    } catch (error) {
      gen.peer.forget(id);
      if (error instanceof RemoteError || error instanceof ClawboxError) throw this.#callError(error, method);
      throw pluginFailed(this.#name, 'timeout', `${method}: ${(error as Error).message}`);
    }
  }

  /** Kills the running generation so it restarts with backoff (e.g. a channel whose connect keeps failing). */
  async restart(reason: string): Promise<void> {
    const gen = this.#gen;
    if (gen && !gen.exited && this.#state === 'running') await this.#fail(gen, { kind: 'exited', message: reason });
  }

  /** After a timeout: is the plugin still answering? If not, it is hung: restart it. */
  async #probe(gen: Generation): Promise<void> {
    if (this.#probing || gen.exited || this.#gen !== gen) return;
    this.#probing = true;
    try {
      await withTimeout(gen.peer.request('ping').result, PING_GRACE_MS);
    } catch {
      if (this.#gen === gen && !gen.exited) {
        await this.#fail(gen, { kind: 'exited', message: `stopped answering (no reply to ping within ${PING_GRACE_MS} ms); restarted` }, 'hung');
      }
    } finally {
      this.#probing = false;
    }
  }

  async #fail(gen: Generation, exit: ChannelExit, reason?: FailureReason): Promise<void> {
    if (gen.exited) return;
    this.#record(gen, exit, reason);
    await gen.channel.kill();
  }

  #record(gen: Generation, exit: ChannelExit, reason?: FailureReason): void {
    if (!this.#failure || this.#failure.gen !== gen) this.#failure = { gen, exit, reason: reason ?? exit.kind };
  }

  async #onExit(gen: Generation, exit: ChannelExit): Promise<void> {
    if (gen.exited) return;
    gen.exited = true;
    const recorded = this.#failure?.gen === gen ? this.#failure : undefined;
    const why = recorded?.exit ?? exit;
    const reason = recorded?.reason ?? exit.kind;
    this.#failure = undefined;
    const error = pluginFailed(this.#name, reason, why.message);
    gen.peer.failAll(error);
    if (this.#gen !== gen || this.#state === 'stopping' || this.#state === 'stopped') return;
    this.#gen = undefined;
    this.#lastError = { reason, message: why.message, at: Date.now() };
    if (Date.now() - gen.startedAt >= this.#o.limits.restart.stable_ms) this.#consecutiveFailures = 0;
    const { initial_ms, max_ms } = this.#o.limits.restart;
    const delay = Math.min(max_ms, initial_ms * 2 ** this.#consecutiveFailures);
    this.#consecutiveFailures++;
    this.#o.logger.warn({ reason, delay_ms: delay }, `plugin ${why.message}; restarting in ${delay} ms`);
    this.#state = 'backoff';
    this.#nextStartAt = Date.now() + delay;
    this.#backoffTimer = setTimeout(() => {
      if (this.#state !== 'backoff') return;
      this.#figures.restarts++;
      void this.#spawn();
    }, delay);
  }

  /** A notification to the running plugin (e.g. an MQTT message); dropped while it is not running. */
  notify(method: string, params: unknown): void {
    if (this.#state === 'running' && this.#gen) this.#notify(this.#gen, method, params);
  }

  #notify(gen: Generation, method: string, params: unknown): void {
    try {
      gen.peer.notify(method, params);
    } catch {
      // Gone: nothing to tell.
    }
  }

  #pluginLog(params: unknown): void {
    const now = Date.now();
    if (now - this.#logWindow.start > LOG_WINDOW_MS) this.#logWindow = { start: now, count: 0 };
    if (++this.#logWindow.count > LOG_BUDGET) return;
    const p = (params ?? {}) as { level?: unknown; message?: unknown; fields?: unknown };
    const level = p.level === 'debug' || p.level === 'warn' || p.level === 'error' ? p.level : 'info';
    const message = String(p.message ?? '').slice(0, 2000);
    const fields = typeof p.fields === 'object' && p.fields !== null ? { fields: p.fields } : {};
    this.#o.logger[level](fields, message);
  }
}

function isCatalogCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CATALOG, code);
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

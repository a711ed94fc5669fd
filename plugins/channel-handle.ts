/**
 * A channel plugin as the channel gateway sees it: a durable chat channel (connect, send, onMessage,
 * disconnect) whose platform code runs in its own process under a PluginSupervisor. The handle
 *   - starts the plugin and asks it to connect, again after every restart (a crash, a hang, a failed
 *     connect all restart it with the supervisor's backoff);
 *   - passes each platform message to the gateway (`channel.message`, checked here: the plugin is not
 *     trusted) and the gateway's acceptance back, so the plugin acknowledges only what is stored;
 *   - delivers replies (`channel.send`) and keeps the channel's state for the status document, with the
 *     pairing QR code (text, SVG) while one is shown, and prints that QR on the terminal.
 * The handle matches channels' `Channel` interface structurally; plugins/ does not import channels/.
 */
import type { Writable } from 'node:stream';
import { ClawboxError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logging.js';
import type { DiscoveredPlugin } from './discovery.js';
import { PluginSupervisor, type SupervisorFigures, type SupervisorLimits } from './runner/supervisor.js';
import type { ChannelStateName } from './sdk.js';

const STATES: readonly string[] = ['connecting', 'connected', 'reconnecting', 'pairing', 'logged_out', 'failed'];
const CONNECT_TIMEOUT_MS = 120_000;
const SEND_TIMEOUT_MS = 120_000;
const DISCONNECT_TIMEOUT_MS = 5_000;
const MAX_TEXT = 100_000;
const MAX_MEDIA = 16;
const MAX_QR_CHARS = 4096;
const MAX_DETAIL_CHARS = 500;

export interface PlatformSender {
  channel: string;
  sender_id: string;
  display_name?: string;
}

export interface PlatformInbound {
  sender: PlatformSender;
  text: string;
  media?: { kind: string }[];
}

/** What the gateway answers (channels' Acceptance); passed back to the plugin as it is. */
export type PlatformListener = (message: PlatformInbound) => Promise<unknown>;

export interface PlatformOutbound {
  text: string;
  error?: { code: string; message: string; retry_after_ms?: number };
}

export interface ChannelPluginStatus {
  name: string;
  plugin: string;
  state: ChannelStateName | 'starting' | 'stopped';
  detail: string | null;
  since: number;
  /** While the platform waits for a QR scan (WhatsApp): the code as text and as an SVG image. */
  qr: { text: string; svg: string | null } | null;
  max_message_chars: number;
  process: SupervisorFigures;
}

export interface ChannelHandleOptions {
  /** The channel's name: session ids are `<name>:<sender_id>`. */
  name: string;
  plugin: DiscoveredPlugin;
  config: Record<string, unknown>;
  credentials: Record<string, string>;
  dataDir: string;
  limits: SupervisorLimits;
  logger: Logger;
  /** Where the pairing QR is drawn for a person at the terminal (default stderr; null: nowhere). */
  terminal?: Writable | null;
}

export class PluginChannelHandle {
  readonly name: string;
  /** Platform senders are strangers until the DM policy says otherwise. */
  readonly local = false;
  readonly #o: ChannelHandleOptions;
  readonly #supervisor: PluginSupervisor;
  #listener: PlatformListener | null = null;
  #state: ChannelPluginStatus['state'] = 'stopped';
  #detail: string | null = null;
  #since = Date.now();
  #qr: ChannelPluginStatus['qr'] = null;
  #running = false;
  /** The plugin reported a state during the current connect. */
  #reported = false;
  #stateWaiters = new Set<() => void>();

  constructor(options: ChannelHandleOptions) {
    this.#o = options;
    this.name = options.name;
    this.#supervisor = new PluginSupervisor({
      plugin: options.plugin,
      config: options.config,
      dataDir: options.dataDir,
      logger: options.logger,
      limits: options.limits,
      initialize: { kind: 'channel', credentials: options.credentials },
      hostRequest: (method, params) => this.#hostRequest(method, params),
      onRunning: () => void this.#connectPlugin(),
      onNotification: (method, params) => {
        if (method === 'channel.state') this.#onState(params);
      },
    });
  }

  onMessage(listener: PlatformListener): void {
    this.#listener = listener;
  }

  /** Starts the plugin; logging in happens in the background (see status()), so a slow platform holds nothing up. */
  async connect(): Promise<void> {
    this.#running = true;
    this.#setState('starting', null);
    void this.#supervisor.start().catch((error: unknown) => this.#setState('failed', (error as Error).message));
  }

  async disconnect(): Promise<void> {
    this.#running = false;
    this.#listener = null;
    if (this.#supervisor.state === 'running') {
      await this.#supervisor.request('channel.disconnect', {}, { timeoutMs: DISCONNECT_TIMEOUT_MS }).catch(() => {});
    }
    await this.#supervisor.stop();
    this.#qr = null;
    this.#setState('stopped', null);
  }

  /** A fresh start of the channel's plugin (asked for, not a failure): it logs out politely, restarts and logs in again. */
  async restart(reason: string): Promise<void> {
    if (!this.#running) throw new ClawboxError('PLUGIN_FAILED', `channel ${this.name} is not running; it cannot be restarted`, { plugin: this.#o.plugin.name, reason: 'not_running' });
    if (this.#supervisor.state === 'running') {
      await this.#supervisor.request('channel.disconnect', {}, { timeoutMs: DISCONNECT_TIMEOUT_MS }).catch(() => {});
    }
    this.#qr = null;
    this.#setState('starting', null);
    await this.#supervisor.restartNow(reason);
  }

  /** Delivers a reply to the sender of a session (`<channel>:<sender_id>`); throws when it could not. */
  async send(sessionId: string, message: PlatformOutbound): Promise<void> {
    const at = sessionId.indexOf(':');
    const senderId = at < 0 ? sessionId : sessionId.slice(at + 1);
    const outbound = { text: String(message.text), ...(message.error ? { error: { code: message.error.code, message: message.error.message } } : {}) };
    await this.#supervisor.request('channel.send', { to: { sender_id: senderId }, message: outbound }, { timeoutMs: SEND_TIMEOUT_MS });
  }

  status(): ChannelPluginStatus {
    return {
      name: this.name,
      plugin: this.#o.plugin.name,
      state: this.#state,
      detail: this.#detail,
      since: this.#since,
      qr: this.#qr,
      max_message_chars: this.#o.plugin.compiled.manifest.channel?.max_message_chars ?? 0,
      process: this.#supervisor.figures(),
    };
  }

  /** Resolves once the state is one of `states` (tests, and whoever must wait for a login); false at the deadline. */
  async waitForState(states: readonly string[], withinMs: number): Promise<boolean> {
    const until = Date.now() + withinMs;
    while (!states.includes(this.#state)) {
      const left = until - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        const waiter = () => done();
        const waiters = this.#stateWaiters;
        function done() {
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve();
        }
        waiters.add(waiter);
      });
    }
    return true;
  }

  /** The plugin process is up (first start or a restart): ask it to log in. */
  async #connectPlugin(): Promise<void> {
    if (!this.#running) return;
    this.#setState('connecting', null);
    this.#reported = false;
    try {
      await this.#supervisor.request('channel.connect', {}, { timeoutMs: CONNECT_TIMEOUT_MS });
      // A plugin that reports nothing itself is connected once connect resolved.
      if (!this.#reported) this.#setState('connected', null);
    } catch (error) {
      if (!this.#running) return;
      const message = (error as Error).message;
      this.#setState('failed', message.slice(0, MAX_DETAIL_CHARS));
      this.#o.logger.warn({ channel: this.name }, `channel ${this.name} could not connect; restarting it with backoff: ${message}`);
      await this.#supervisor.restart(`could not connect: ${message}`);
    }
  }

  async #hostRequest(method: string, params: Record<string, unknown>): Promise<unknown> {
    if (method !== 'channel.message') throw new ClawboxError('FORBIDDEN', `a channel plugin may not ask for "${method.slice(0, 64)}"`);
    const listener = this.#listener;
    if (!listener) throw new ClawboxError('BUSY', 'the channel is not connected to the gateway', { retry_after_ms: 1000 });
    return listener(this.#checkInbound(params));
  }

  /** What a plugin hands in is hostile until checked: shape and sizes, nothing else passes. */
  #checkInbound(params: Record<string, unknown>): PlatformInbound {
    const { sender_id, display_name, text, media } = params;
    if (typeof sender_id !== 'string' || sender_id.length < 1 || sender_id.length > 128) {
      throw new ClawboxError('PAYLOAD_INVALID', 'channel.message needs sender_id: 1-128 characters');
    }
    if (typeof text !== 'string' || text.length > MAX_TEXT) throw new ClawboxError('PAYLOAD_INVALID', `channel.message needs text of at most ${MAX_TEXT} characters`);
    const kinds = Array.isArray(media)
      ? media.slice(0, MAX_MEDIA).map((m) => ({ kind: String((m as { kind?: unknown })?.kind ?? 'file').slice(0, 32) }))
      : [];
    return {
      sender: {
        channel: this.name,
        sender_id,
        ...(typeof display_name === 'string' && display_name !== '' ? { display_name: display_name.slice(0, 128) } : {}),
      },
      text,
      ...(kinds.length > 0 ? { media: kinds } : {}),
    };
  }

  #onState(params: unknown): void {
    const p = (params ?? {}) as { state?: unknown; detail?: unknown; qr?: unknown };
    if (typeof p.state !== 'string' || !STATES.includes(p.state)) return;
    this.#reported = true;
    const detail = typeof p.detail === 'string' ? p.detail.slice(0, MAX_DETAIL_CHARS) : null;
    if (p.state === 'pairing' && typeof p.qr === 'string' && p.qr.length > 0 && p.qr.length <= MAX_QR_CHARS) {
      void this.#showQr(p.qr);
    } else if (p.state !== 'pairing') {
      this.#qr = null;
    }
    this.#setState(p.state as ChannelStateName, detail);
  }

  async #showQr(text: string): Promise<void> {
    this.#qr = { text, svg: null };
    const terminal = this.#o.terminal === undefined ? process.stderr : this.#o.terminal;
    try {
      // qrcode is loaded on the first pairing: most boxes never pair a channel.
      const { default: QRCode } = await import('qrcode');
      const [svg, drawing] = await Promise.all([
        QRCode.toString(text, { type: 'svg', margin: 2 }),
        terminal ? QRCode.toString(text, { type: 'terminal', small: true }) : Promise.resolve(''),
      ]);
      if (this.#qr?.text !== text) return; // a newer code (or none) meanwhile
      this.#qr = { text, svg };
      terminal?.write(`\n${this.name}: scan this QR code with the app (Linked devices) to pair this box:\n${drawing}\n`);
      this.#o.logger.warn({ channel: this.name }, `${this.name} waits for pairing: scan the QR code shown in the terminal or on the status page`);
    } catch (error) {
      this.#o.logger.warn({ err: error, channel: this.name }, 'could not draw the pairing QR code');
    }
  }

  #setState(state: ChannelPluginStatus['state'], detail: string | null): void {
    if (state !== this.#state) this.#since = Date.now();
    this.#state = state;
    this.#detail = detail;
    for (const waiter of [...this.#stateWaiters]) waiter();
  }
}

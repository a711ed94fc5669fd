/**
 * sd_notify(3) without libsystemd: a datagram to $NOTIFY_SOCKET. Node's dgram has no AF_UNIX datagrams,
 * hence the small unix-dgram addon (spawning `systemd-notify` races with systemd's PID lookup).
 * Does nothing when not run by systemd.
 */
import { createRequire } from 'node:module';
import type { Logger } from 'pino';

interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, callback?: (err?: Error) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  close(): void;
}

export class SystemdNotifier {
  readonly #socketPath: string | undefined;
  #socket: UnixDgramSocket | undefined;
  #watchdog: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    const raw = env.NOTIFY_SOCKET;
    // Abstract sockets are written with a leading '@' and addressed with a NUL byte.
    this.#socketPath = raw ? (raw.startsWith('@') ? `\0${raw.slice(1)}` : raw) : undefined;
    const usec = Number(env.WATCHDOG_USEC);
    const pid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : process.pid;
    if (this.#socketPath && Number.isFinite(usec) && usec > 0 && pid === process.pid) {
      this.watchdogIntervalMs = Math.max(1, Math.floor(usec / 2000));
    }
  }

  /** Half of WATCHDOG_USEC, in ms, when systemd asked for a watchdog. */
  readonly watchdogIntervalMs: number | undefined;

  get enabled(): boolean {
    return this.#socketPath !== undefined;
  }

  notify(state: string): void {
    if (!this.#socketPath) return;
    if (!this.#socket) {
      const require = createRequire(import.meta.url);
      const unix = require('unix-dgram') as { createSocket(type: 'unix_dgram'): UnixDgramSocket };
      this.#socket = unix.createSocket('unix_dgram');
      this.#socket.on('error', (err) => this.logger.warn({ err }, 'sd_notify failed'));
    }
    const message = Buffer.from(state);
    this.#socket.send(message, 0, message.length, this.#socketPath);
  }

  ready(): void {
    this.notify('READY=1');
    if (this.watchdogIntervalMs) {
      this.#watchdog = setInterval(() => this.notify('WATCHDOG=1'), this.watchdogIntervalMs);
      this.#watchdog.unref();
    }
  }

  stopping(): void {
    this.notify('STOPPING=1');
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  close(): void {
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#socket?.close();
    this.#socket = undefined;
  }
}

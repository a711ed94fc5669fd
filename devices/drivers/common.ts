/**
 * Pieces every connection-based driver shares: availability that reports only changes, a reconnect
 * loop with capped exponential backoff and jitter, deadlines, and a one-at-a-time exchange queue.
 */
import { ClawboxError } from '../../runtime/errors.js';
import type { DriverContext } from '../driver.js';
import type { Availability, DeviceState } from '../model.js';

export class AvailabilityState {
  #value: Availability = 'offline';

  constructor(private readonly ctx: DriverContext) {}

  get value(): Availability {
    return this.#value;
  }

  set(value: Availability, reason?: string): void {
    if (value === this.#value) return;
    this.#value = value;
    this.ctx.setAvailability(value, reason);
  }

  /** Throws DEVICE_UNAVAILABLE when offline: commands fail fast instead of waiting for a timeout. */
  assertOnline(): void {
    if (this.#value !== 'online') {
      throw new ClawboxError('DEVICE_UNAVAILABLE', `${this.ctx.definition.id} is offline`, {
        device: this.ctx.definition.id,
      });
    }
  }
}

/** Consecutive failed polls after which a device that keeps its connection open counts as offline. */
export const POLL_FAILURES_OFFLINE = 3;

/**
 * Reads a connected device's state at an interval and reports it. POLL_FAILURES_OFFLINE failures in a
 * row mark the device offline (a port can stay open while the device behind it is dead); the next
 * success marks it online again.
 */
export class StatePoller {
  #timer: NodeJS.Timeout | null = null;
  #failures = 0;

  constructor(
    private readonly ctx: DriverContext,
    private readonly availability: AvailabilityState,
    /** The device's full state, or null when not connected (nothing to poll). */
    private readonly read: () => Promise<DeviceState> | null,
  ) {}

  start(everyMs: number): void {
    this.stop();
    if (everyMs <= 0) return;
    this.#timer = setInterval(() => void this.pollOnce(), everyMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** A fresh connection starts with a clean slate. */
  connected(): void {
    this.#failures = 0;
  }

  async pollOnce(): Promise<void> {
    const reading = this.read();
    if (!reading) return;
    try {
      const state = await reading;
      this.#failures = 0;
      this.availability.set('online');
      this.ctx.report(state);
    } catch (error) {
      this.#failures++;
      if (this.#failures >= POLL_FAILURES_OFFLINE) {
        this.availability.set('offline', `${this.#failures} polls failed: ${(error as Error).message}`);
      }
    }
  }
}

export interface BackoffOptions {
  initial_ms: number;
  max_ms: number;
}

/**
 * Keeps a connection up: calls `open` until it succeeds, waiting initial, 2x, 4x ... up to max between
 * tries (with +-20% jitter so that several devices do not retry in lockstep). `lost()` restarts the loop.
 */
export class Reconnector {
  #timer: NodeJS.Timeout | null = null;
  #attempt = 0;
  #stopped = false;
  #opening = false;

  constructor(
    private readonly open: () => Promise<void>,
    private readonly options: BackoffOptions,
    private readonly onFailure: (error: unknown, attempt: number, nextMs: number) => void,
  ) {}

  /** First attempt now; resolves once it has succeeded or failed (later tries run in the background). */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.#try();
  }

  lost(): void {
    if (this.#stopped || this.#timer || this.#opening) return;
    this.#schedule(this.options.initial_ms);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #try(): Promise<void> {
    if (this.#stopped) return;
    this.#opening = true;
    try {
      await this.open();
      this.#attempt = 0;
    } catch (error) {
      this.#attempt++;
      const base = Math.min(this.options.max_ms, this.options.initial_ms * 2 ** (this.#attempt - 1));
      const next = Math.round(base * (0.8 + Math.random() * 0.4));
      this.onFailure(error, this.#attempt, next);
      this.#opening = false;
      this.#schedule(next);
      return;
    }
    this.#opening = false;
  }

  #schedule(ms: number): void {
    if (this.#stopped || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#try();
    }, ms);
    this.#timer.unref();
  }
}

/** Runs async jobs one at a time in arrival order (a serial line carries one exchange at a time). */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(job, job);
    this.#tail = result.catch(() => {});
    return result;
  }
}

export function timeoutError(device: string, what: string, ms: number): ClawboxError {
  return new ClawboxError('DEVICE_TIMEOUT', `${device} did not answer ${what} within ${ms} ms`, {
    device,
    timeout_ms: ms,
  });
}

/** Rejects with DEVICE_TIMEOUT when `promise` has not settled by `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, device: string, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError(device, what, ms)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

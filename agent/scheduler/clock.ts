/**
 * Time for the scheduler, injected so the decision path is deterministic under test: the core reads
 * `clock.now()` and never schedules anything itself. Timers (deadline aborts, queue sweeps) go through
 * `Timers`, which a FakeClock implements too, so tests advance time by hand.
 */

export interface Clock {
  /** Milliseconds on a monotonic scale (performance.now() in production). */
  now(): number;
}

export interface TimerHandle {
  cancel(): void;
}

export interface Timers {
  /** Calls `fn` once after `ms` (never synchronously). */
  after(ms: number, fn: () => void): TimerHandle;
}

export const systemClock: Clock & Timers = {
  now: () => performance.now(),
  after(ms, fn) {
    const handle = setTimeout(fn, Math.max(0, ms));
    // A pending deadline must not keep a stopping process alive.
    handle.unref?.();
    return { cancel: () => clearTimeout(handle) };
  },
};

/** A manual clock for tests: `advance(ms)` moves time and fires the timers that fall due, in order. */
export class FakeClock implements Clock, Timers {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, { at: number; seq: number; fn: () => void }>();

  constructor(start = 1000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): TimerHandle {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), seq: id, fn });
    return { cancel: () => this.#timers.delete(id) };
  }

  /** Timers still pending. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing each due timer at its own time (timers may add timers). */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: { id: number; at: number; seq: number; fn: () => void } | null = null;
      for (const [id, timer] of this.#timers) {
        if (timer.at <= end && (!next || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq))) next = { id, ...timer };
      }
      if (!next) break;
      this.#timers.delete(next.id);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = end;
  }
}

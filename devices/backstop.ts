/**
 * A last-resort deadline for driver calls: a driver that neither answers nor times out must not hold its
 * device's lane forever. Drivers keep their own, precise deadlines; this one only catches a driver that
 * broke its promise, so one timer for every call in flight will do (a call expires up to `sweepMs` late)
 * instead of a timer, a promise and a Promise.race per command. The timer runs only while calls are in
 * flight.
 */
import { performance } from 'node:perf_hooks';

interface Guarded {
  deadline: number;
  expire: () => void;
}

export class Backstop {
  readonly #calls = new Set<Guarded>();
  #timer: NodeJS.Timeout | null = null;

  constructor(private readonly sweepMs = 100) {}

  /** Calls in flight. */
  get size(): number {
    return this.#calls.size;
  }

  /** Settles as `work` does, or rejects with `expired()` once `ms` have passed without it settling. */
  guard<T>(work: Promise<T>, ms: number, expired: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const call: Guarded = { deadline: performance.now() + ms, expire: () => reject(expired()) };
      this.#calls.add(call);
      this.#timer ??= setInterval(() => this.#sweep(), this.sweepMs);
      work.then(
        (value) => {
          this.#calls.delete(call);
          resolve(value);
        },
        (error: unknown) => {
          this.#calls.delete(call);
          reject(error);
        },
      );
    });
  }

  #sweep(): void {
    const now = performance.now();
    for (const call of this.#calls) {
      if (call.deadline > now) continue;
      this.#calls.delete(call);
      call.expire();
    }
    if (this.#calls.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }
}

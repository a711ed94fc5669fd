/**
 * A circuit breaker for the brain link: after `threshold` failures in a row the link is open (the edge
 * does not offload) for a cool-down that doubles on each failed trial up to `max_cooldown_ms`; then one
 * trial (a health check or a request) decides: success closes it, failure opens it again.
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  threshold?: number;
  cooldown_ms?: number;
  max_cooldown_ms?: number;
  now?: () => number;
}

export class CircuitBreaker {
  #state: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #cooldown: number;
  #trial = false;
  #opened = 0;
  readonly #threshold: number;
  readonly #base: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(options: BreakerOptions = {}) {
    this.#threshold = options.threshold ?? 3;
    this.#base = options.cooldown_ms ?? 1000;
    this.#max = options.max_cooldown_ms ?? 30_000;
    this.#cooldown = this.#base;
    this.#now = options.now ?? Date.now;
  }

  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#cooldown) this.#state = 'half_open';
    return this.#state;
  }

  /** Whether a request may go out now (in half-open: one trial at a time). */
  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'half_open' && !this.#trial) {
      this.#trial = true;
      return true;
    }
    return false;
  }

  /** Whether the link looks usable (the scheduler's `available`): closed, or ready for a trial. */
  usable(): boolean {
    const state = this.state;
    return state === 'closed' || (state === 'half_open' && !this.#trial);
  }

  success(): void {
    this.#state = 'closed';
    this.#failures = 0;
    this.#trial = false;
    this.#cooldown = this.#base;
  }

  failure(): void {
    this.#failures++;
    const wasTrial = this.state === 'half_open';
    this.#trial = false;
    if (wasTrial || this.#failures >= this.#threshold) {
      if (wasTrial) this.#cooldown = Math.min(this.#max, this.#cooldown * 2);
      if (this.#state !== 'open') this.#opened++;
      this.#state = 'open';
      this.#openedAt = this.#now();
    }
  }

  snapshot(): { state: BreakerState; consecutive_failures: number; cooldown_ms: number; opened_total: number } {
    return { state: this.state, consecutive_failures: this.#failures, cooldown_ms: this.#cooldown, opened_total: this.#opened };
  }
}

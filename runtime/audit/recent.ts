/** Counts events over the last minute in one-second buckets: constant memory at any rate. */
export class RecentCounter {
  readonly #buckets = new Array<number>(60).fill(0);
  readonly #seconds = new Array<number>(60).fill(-1);
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  add(n = 1): void {
    const second = Math.floor(this.#now() / 1000);
    const slot = second % 60;
    if (this.#seconds[slot] !== second) {
      this.#seconds[slot] = second;
      this.#buckets[slot] = 0;
    }
    this.#buckets[slot]! += n;
  }

  /** Events in the last 60 seconds (the current second included). */
  lastMinute(): number {
    const second = Math.floor(this.#now() / 1000);
    let total = 0;
    for (let slot = 0; slot < 60; slot++) if (second - this.#seconds[slot]! < 60) total += this.#buckets[slot]!;
    return total;
  }
}

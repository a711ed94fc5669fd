/**
 * The model lane's wait queue: priority classes, adaptive LIFO and CoDel-style dropping (the approach
 * Facebook described for RPC queues, "Fail at Scale", 2015).
 *
 * - Higher priority is always served first.
 * - Within a class, FIFO while the queue drains; once it has not been empty for `interval_ms` (a standing
 *   queue), LIFO: the newest request has the most of its deadline left, the oldest would miss anyway.
 * - Under a standing queue, requests that waited longer than `target_ms` are dropped (answered BUSY at
 *   once instead of late), except the newest of each class, which is next in line for its class: a slot
 *   that frees never finds the queue emptied by the dropping itself.
 *
 * Pure: it reads the time it is given and never schedules anything.
 */

export interface Queued {
  /** Arrival order; larger is newer. */
  readonly seq: number;
  readonly priority: number;
  /** Clock time it entered the queue. */
  readonly enqueued: number;
}

export interface QueueOptions {
  target_ms: number;
  interval_ms: number;
}

export class AdaptiveQueue<T extends Queued> {
  readonly #items: T[] = [];
  readonly #options: QueueOptions;
  #lastEmptyAt: number;

  constructor(options: QueueOptions, now: number) {
    this.#options = options;
    this.#lastEmptyAt = now;
  }

  get length(): number {
    return this.#items.length;
  }

  /** Items in arrival order. */
  items(): readonly T[] {
    return this.#items;
  }

  get lastEmptyAt(): number {
    return this.#lastEmptyAt;
  }

  /** Notes that the queue is empty right now (the start of its current busy period is later than this). */
  observe(now: number): void {
    if (this.#items.length === 0) this.#lastEmptyAt = now;
  }

  /** True when the queue was last empty more than `interval_ms` ago. */
  standing(now: number): boolean {
    this.observe(now);
    return this.#items.length > 0 && now - this.#lastEmptyAt > this.#options.interval_ms;
  }

  push(item: T, now: number): void {
    this.observe(now);
    this.#items.push(item);
  }

  remove(item: T, now: number): boolean {
    const at = this.#items.indexOf(item);
    if (at < 0) return false;
    this.#items.splice(at, 1);
    this.observe(now);
    return true;
  }

  /** Serving order now: priority first, then FIFO or (standing queue) LIFO. */
  serviceOrder(now: number): T[] {
    const lifo = this.standing(now);
    return [...this.#items].sort((a, b) => b.priority - a.priority || (lifo ? b.seq - a.seq : a.seq - b.seq));
  }

  /** Items a new arrival of `priority` would wait behind, in serving order. */
  ahead(priority: number, now: number): T[] {
    const lifo = this.standing(now);
    return this.serviceOrder(now).filter((item) => item.priority > priority || (!lifo && item.priority === priority));
  }

  /** The next item to serve for which `canStart` holds (reservations may hold back a class). */
  next(now: number, canStart: (item: T) => boolean = () => true): T | null {
    for (const item of this.serviceOrder(now)) if (canStart(item)) return item;
    return null;
  }

  #newestByPriority(): Map<number, T> {
    const newest = new Map<number, T>();
    for (const item of this.#items) {
      const seen = newest.get(item.priority);
      if (!seen || item.seq > seen.seq) newest.set(item.priority, item);
    }
    return newest;
  }

  /** Items CoDel drops now: under a standing queue, those older than target that are not next in their class. */
  codelVictims(now: number): T[] {
    if (!this.standing(now)) return [];
    const keep = new Set(this.#newestByPriority().values());
    return this.#items.filter((item) => !keep.has(item) && now - item.enqueued > this.#options.target_ms);
  }

  /** The earliest time CoDel could drop something if nothing else happens; null when it never would. */
  nextCodelCheck(now: number): number | null {
    if (this.#items.length < 2) return null;
    const standingAt = this.#lastEmptyAt + this.#options.interval_ms;
    const keep = new Set(this.#newestByPriority().values());
    let earliest: number | null = null;
    for (const item of this.#items) {
      if (keep.has(item)) continue;
      const at = Math.max(item.enqueued + this.#options.target_ms, standingAt) + 0.001;
      if (earliest === null || at < earliest) earliest = at;
    }
    return earliest === null ? null : Math.max(earliest, now);
  }

  /** The item a full queue gives up for a new arrival of `priority`, or null to refuse the arrival. */
  evictionFor(priority: number, now: number): T | null {
    const lifo = this.standing(now);
    let victim: T | null = null;
    for (const item of this.#items) {
      const eligible = item.priority < priority || (lifo && item.priority === priority);
      if (!eligible) continue;
      // Lowest priority first; among equals the oldest (it has the least deadline left).
      if (!victim || item.priority < victim.priority || (item.priority === victim.priority && item.seq < victim.seq)) victim = item;
    }
    return victim;
  }
}

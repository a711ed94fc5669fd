/**
 * The model lane's wait queue: priority classes, adaptive LIFO and CoDel-style dropping (the approach
 * Facebook described for RPC queues, "Fail at Scale", 2015), adapted to a queue behind admission control.
 *
 * Admission already predicts when each request will start, so a queue that holds admitted work is by
 * design, not a symptom. What CoDel watches here is *lateness*: how far a request's wait has run past the
 * start it was promised (its sojourn beyond the predicted one). That only grows when the estimates were
 * wrong (a stall, a noisy neighbour, a longer answer than expected).
 *
 * - Higher priority is always served first.
 * - The queue is *standing* ("not draining") when some request has been more than `target_ms` late for at
 *   least `interval_ms`. Then, within a class, LIFO: the newest request has the most deadline left, the
 *   oldest would miss anyway. Otherwise FIFO.
 * - Under a standing queue, requests more than `target_ms` late are dropped (answered BUSY at once instead
 *   of late), except the newest of each class, which is next in line for its class: a slot that frees
 *   never finds the queue emptied by the dropping itself.
 *
 * Pure: it reads the time it is given and never schedules anything.
 */

export interface Queued {
  /** Arrival order; larger is newer. */
  readonly seq: number;
  readonly priority: number;
  /** Clock time it entered the queue. */
  readonly enqueued: number;
  /** Clock time admission predicted it would start. */
  readonly expectedStart: number;
}

export interface QueueOptions {
  target_ms: number;
  interval_ms: number;
}

export class AdaptiveQueue<T extends Queued> {
  readonly #items: T[] = [];
  readonly #options: QueueOptions;
  /** Since when some item has been more than target late (null: none is). */
  #lateSince: number | null = null;
  /** Serving order, cached until the items or the discipline change (a decision asks several times). */
  #order: { version: number; lifo: boolean; items: T[] } | null = null;
  #version = 0;

  constructor(options: QueueOptions) {
    this.#options = options;
  }

  get length(): number {
    return this.#items.length;
  }

  /** Items in arrival order. */
  items(): readonly T[] {
    return this.#items;
  }

  /** How far past its promised start an item has waited (negative: not yet due). */
  lateness(item: T, now: number): number {
    return now - item.expectedStart;
  }

  /** Updates the standing-queue state for `now`. */
  observe(now: number): void {
    let lateFrom: number | null = null;
    for (const item of this.#items) {
      const from = item.expectedStart + this.#options.target_ms;
      if (from < now && (lateFrom === null || from < lateFrom)) lateFrom = from;
    }
    if (lateFrom === null) this.#lateSince = null;
    else if (this.#lateSince === null) this.#lateSince = lateFrom;
  }

  /** True when some request has been more than target late for at least the interval. */
  standing(now: number): boolean {
    this.observe(now);
    return this.#lateSince !== null && now - this.#lateSince >= this.#options.interval_ms;
  }

  push(item: T, now: number): void {
    this.#items.push(item);
    this.#version++;
    this.observe(now);
  }

  remove(item: T, now: number): boolean {
    const at = this.#items.indexOf(item);
    if (at < 0) return false;
    this.#items.splice(at, 1);
    this.#version++;
    this.observe(now);
    return true;
  }

  /** Serving order now: priority first, then FIFO or (standing queue) LIFO. */
  serviceOrder(now: number): readonly T[] {
    const lifo = this.standing(now);
    const cached = this.#order;
    if (cached && cached.version === this.#version && cached.lifo === lifo) return cached.items;
    const items = [...this.#items].sort((a, b) => b.priority - a.priority || (lifo ? b.seq - a.seq : a.seq - b.seq));
    this.#order = { version: this.#version, lifo, items };
    return items;
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

  #newestByPriority(): Set<T> {
    const newest = new Map<number, T>();
    for (const item of this.#items) {
      const seen = newest.get(item.priority);
      if (!seen || item.seq > seen.seq) newest.set(item.priority, item);
    }
    return new Set(newest.values());
  }

  /** Items CoDel drops now: under a standing queue, those more than target late that are not next in their class. */
  codelVictims(now: number): T[] {
    if (!this.standing(now)) return [];
    const keep = this.#newestByPriority();
    return this.#items.filter((item) => !keep.has(item) && this.lateness(item, now) > this.#options.target_ms);
  }

  /** The earliest later time at which the queue state could change by time alone; null when never. */
  nextCheck(now: number): number | null {
    let earliest: number | null = null;
    const consider = (at: number) => {
      if (at > now && (earliest === null || at < earliest)) earliest = at;
    };
    if (this.#lateSince !== null) consider(this.#lateSince + this.#options.interval_ms + 0.001);
    for (const item of this.#items) consider(item.expectedStart + this.#options.target_ms + 0.001);
    return earliest;
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

/**
 * Logs a repeated problem once per window per key (e.g. per error code and device), then says how many
 * were suppressed. A client that floods bad payloads must not flood the journal.
 */
import type { Logger } from '../runtime/logging.js';

export class LogLimiter {
  readonly #seen = new Map<string, { until: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly windowMs = 10_000,
  ) {}

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const entry = this.#seen.get(key);
    if (entry && now < entry.until) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#seen.set(key, { until: now + this.windowMs, suppressed: 0 });
    if (this.#seen.size > 1000) this.#prune(now);
    this.logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }

  #prune(now: number): void {
    for (const [key, entry] of this.#seen) if (entry.until < now) this.#seen.delete(key);
  }
}

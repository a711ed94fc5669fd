/**
 * A plugin's own stdout/stderr (not the protocol): split into lines and logged, within a byte budget per
 * window so that a plugin flooding its output costs the host a counter, not its log or its memory.
 */
import type { Logger } from '../../runtime/logging.js';

const MAX_LINE = 2000;

export class OutputLog {
  readonly #logger: Logger;
  readonly #stream: 'stdout' | 'stderr';
  readonly #budget: number;
  readonly #windowMs: number;
  #partial = '';
  #windowStart = 0;
  #spent = 0;
  #dropped = 0;
  /** Bytes dropped over the whole life of this log (for status). */
  droppedTotal = 0;

  constructor(logger: Logger, stream: 'stdout' | 'stderr', options: { budgetBytes?: number; windowMs?: number } = {}) {
    this.#logger = logger;
    this.#stream = stream;
    this.#budget = options.budgetBytes ?? 16 * 1024;
    this.#windowMs = options.windowMs ?? 10_000;
  }

  write(chunk: Buffer | string): void {
    const now = Date.now();
    if (now - this.#windowStart > this.#windowMs) {
      if (this.#dropped > 0) {
        this.#logger.warn({ stream: this.#stream, dropped_bytes: this.#dropped }, 'plugin output over budget was dropped');
      }
      this.#windowStart = now;
      this.#spent = 0;
      this.#dropped = 0;
    }
    const size = chunk.length;
    if (this.#spent + size > this.#budget) {
      this.#dropped += size;
      this.droppedTotal += size;
      this.#partial = '';
      return;
    }
    this.#spent += size;
    const text = this.#partial + chunk.toString();
    const lines = text.split('\n');
    this.#partial = (lines.pop() ?? '').slice(0, MAX_LINE);
    for (const line of lines) {
      if (line.trim() === '') continue;
      const out = line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line;
      if (this.#stream === 'stderr') this.#logger.warn({ stream: 'stderr' }, out);
      else this.#logger.info({ stream: 'stdout' }, out);
    }
  }
}

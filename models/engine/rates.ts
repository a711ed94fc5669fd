/**
 * Measured service rates for admission control: EWMA of prefill tokens/s and of the per-token decode
 * time. Decode is updated per token gap, so a stall (another process took a core) moves the estimate at
 * once instead of after the request ends. Estimates are in ms for a request of a given shape.
 */

export interface RateSnapshot {
  /** EWMA prompt-evaluation throughput, tokens/s (null before the first measurement). */
  prefill_tok_s: number | null;
  /** EWMA decode throughput, tokens/s. */
  decode_tok_s: number | null;
  /** EWMA fixed cost of a request beyond token work (sampling setup, first-token overhead), ms. */
  overhead_ms: number | null;
  /** The most recent inter-token gap, ms. */
  last_gap_ms: number | null;
  prefill_samples: number;
  decode_samples: number;
}

export interface RequestShape {
  /** Tokens that must be evaluated (prompt minus the cached prefix). */
  evaluate_tokens: number;
  /** Tokens to generate. */
  output_tokens: number;
}

export class ServiceRates {
  #prefillMsPerToken: number | null = null;
  #decodeMsPerToken: number | null = null;
  #overheadMs: number | null = null;
  #lastGap: number | null = null;
  #prefillSamples = 0;
  #decodeSamples = 0;

  constructor(
    private readonly alpha = 0.2,
    /** Gaps longer than this multiple of the average count at full weight (stall detection). */
    private readonly stallFactor = 3,
  ) {}

  #ewma(prev: number | null, value: number, alpha = this.alpha): number {
    return prev === null ? value : prev + alpha * (value - prev);
  }

  /** One prompt evaluation: `tokens` evaluated in `ms` (time to the first sampled token). */
  observePrefill(tokens: number, ms: number): void {
    if (!(ms >= 0) || tokens <= 0) return;
    // Tiny batches measure mostly overhead; weight by size so a 3-token prompt does not skew the rate.
    if (tokens >= 8) {
      this.#prefillMsPerToken = this.#ewma(this.#prefillMsPerToken, ms / tokens);
      this.#prefillSamples++;
    } else {
      this.#overheadMs = this.#ewma(this.#overheadMs, Math.max(0, ms - tokens * (this.#prefillMsPerToken ?? 0)));
    }
  }

  /** One inter-token gap during decoding. */
  observeDecodeGap(ms: number): void {
    if (!(ms >= 0)) return;
    this.#lastGap = ms;
    const prev = this.#decodeMsPerToken;
    const stall = prev !== null && ms > prev * this.stallFactor;
    this.#decodeMsPerToken = this.#ewma(prev, ms, stall ? 0.5 : this.alpha);
    this.#decodeSamples++;
  }

  /** Predicted service time (ms) for a request shape; null until both rates were measured once. */
  estimateMs(shape: RequestShape): number | null {
    if (this.#decodeMsPerToken === null) return null;
    const prefill = this.#prefillMsPerToken ?? this.#decodeMsPerToken;
    return (this.#overheadMs ?? 0) + shape.evaluate_tokens * prefill + shape.output_tokens * this.#decodeMsPerToken;
  }

  snapshot(): RateSnapshot {
    const perSecond = (msPerToken: number | null) => (msPerToken && msPerToken > 0 ? 1000 / msPerToken : null);
    return {
      prefill_tok_s: perSecond(this.#prefillMsPerToken),
      decode_tok_s: perSecond(this.#decodeMsPerToken),
      overhead_ms: this.#overheadMs,
      last_gap_ms: this.#lastGap,
      prefill_samples: this.#prefillSamples,
      decode_samples: this.#decodeSamples,
    };
  }
}

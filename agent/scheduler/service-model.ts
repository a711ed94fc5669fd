/**
 * The service-time model: predicts how long a model request takes once it holds a sequence, learned
 * online from what the lane measures. One instance per backend/model (a lane).
 *
 *   service(plan, k) = prefill(evaluated tokens) + output tokens x gap(k), times a stall multiplier
 *
 * - prefill: EWMA-weighted linear fit of time-to-first-token against evaluated tokens (intercept = fixed
 *   cost per request, slope = ms per prompt token). Evaluated tokens = prompt + the prefix on a cache miss.
 * - gap(k): EWMA of the decode step per token while k sequences run in parallel (llama.cpp batches them,
 *   so a step with k tokens costs more than with one). An unmeasured k is extrapolated from the nearest
 *   measured one with `batch_cost` per extra sequence.
 * - output tokens: what the caller expects, else the EWMA (+1 deviation) of what this kind generated,
 *   capped by the budget.
 * - stall: an inter-token gap far above gap(k) multiplies every estimate at once by gap / expected (capped);
 *   each normal gap after it halves the excess, and it also decays with a half-life in wall time, so a
 *   lane that is refused everything recovers. A lasting slowdown keeps producing stalls until the
 *   per-request samples have taught gap(k) the slower rate.
 */
import type { Clock } from './clock.js';

export interface WorkPlan {
  /** Tokens of the variable part (history + user text), evaluated on every request. */
  prompt_tokens: number;
  /** Tokens of the cacheable prefix (system prompt + device list). */
  prefix_tokens?: number;
  /** Whether the prefix is expected to be in a sequence's KV cache (default true when prefix_tokens > 0). */
  prefix_cached?: boolean;
  /** Output budget of the full answer (tool call + explanation). */
  max_output_tokens: number;
  /** Output budget without the free-text explanation (rung 2); absent when the request cannot be shortened. */
  short_output_tokens?: number;
  /** Expected output tokens of the full answer, when the caller knows (e.g. a tool call's typical length). */
  expected_output_tokens?: number;
  /** Groups requests whose output lengths are alike, for the learned expectation (default "default"). */
  kind?: string;
}

export type Budget = 'full' | 'short';

/** What a finished request measured. */
export interface ServiceSample {
  evaluated_tokens: number;
  /** Time from holding a sequence to the first generated token. */
  prefill_ms: number;
  generated_tokens: number;
  /** Time from the first to the last generated token. */
  decode_ms: number;
  /** Sequences running in parallel while it ran (mean). */
  concurrency: number;
  kind?: string;
  budget?: Budget;
  /**
   * Wall time from the start of the job to its answer, when it finished normally: what it took beyond
   * prefill + decode (the caller's own work, event-loop delays, waiting for a sequence) is learned as the
   * residual and added to every estimate.
   */
  wall_ms?: number;
}

export interface ServiceModelSnapshot {
  prefill_overhead_ms: number | null;
  prefill_ms_per_token: number | null;
  /** Decode ms per token by parallel sequences. */
  decode_ms_per_token: Record<string, number>;
  stall_multiplier: number;
  stalls: number;
  samples: number;
  /** Learned time beyond prefill + decode (mean, and what estimates add: mean + deviation); null before any. */
  residual_ms?: { mean: number; added: number } | null;
}

export interface ServiceTimeModel {
  /** Predicted service time (ms) with `concurrency` sequences in parallel; null before any measurement. */
  estimate(plan: WorkPlan, budget: Budget, concurrency: number): number | null;
  /** Output tokens the estimate assumes. */
  expectedOutput(plan: WorkPlan, budget: Budget): number;
  observe(sample: ServiceSample): void;
  /** One inter-token gap; returns true when it counted as a stall. */
  observeGap(ms: number, concurrency: number): boolean;
  snapshot(): ServiceModelSnapshot;
}

export interface EwmaServiceModelOptions {
  clock: Clock;
  /** EWMA weight of a new sample. */
  alpha?: number;
  /** A gap above stall_factor x expected is a stall. */
  stall_factor?: number;
  /** Half-life (ms) of the stall multiplier. */
  stall_half_life_ms?: number;
  /** The stall multiplier never exceeds this (one huge gap must not shut the lane for long). */
  stall_cap?: number;
  /** Extra decode cost per additional parallel sequence, for unmeasured concurrency (0.6 = +60 %). */
  batch_cost?: number;
  /** Rates to start from (e.g. the engine's own measurements, or a calibration run). */
  seed?: { prefill_overhead_ms?: number; prefill_ms_per_token: number; decode_ms_per_token: number };
}

export function evaluatedTokens(plan: WorkPlan): number {
  const prefix = plan.prefix_tokens ?? 0;
  const cached = plan.prefix_cached ?? prefix > 0;
  return Math.max(1, plan.prompt_tokens + (cached ? 0 : prefix));
}

export function outputBudget(plan: WorkPlan, budget: Budget): number {
  return budget === 'short' && plan.short_output_tokens !== undefined ? plan.short_output_tokens : plan.max_output_tokens;
}

interface Ewma {
  mean: number;
  dev: number;
  n: number;
}

export class EwmaServiceModel implements ServiceTimeModel {
  readonly #clock: Clock;
  readonly #alpha: number;
  readonly #stallFactor: number;
  readonly #halfLife: number;
  readonly #batchCost: number;
  readonly #stallCap: number;
  // Weighted moments of (evaluated tokens, prefill ms) for the linear fit.
  #fit: { w: number; x: number; y: number; xx: number; xy: number } | null = null;
  readonly #gaps = new Map<number, Ewma>();
  readonly #outputs = new Map<string, Ewma>();
  #residual: Ewma | null = null;
  #stall = { multiplier: 1, at: 0 };
  #stalls = 0;
  #samples = 0;

  constructor(options: EwmaServiceModelOptions) {
    this.#clock = options.clock;
    this.#alpha = options.alpha ?? 0.2;
    this.#stallFactor = options.stall_factor ?? 4;
    this.#halfLife = options.stall_half_life_ms ?? 1000;
    this.#batchCost = options.batch_cost ?? 0.6;
    this.#stallCap = options.stall_cap ?? 8;
    if (options.seed) {
      const { prefill_overhead_ms = 0, prefill_ms_per_token: slope, decode_ms_per_token } = options.seed;
      // Two virtual samples on the seeded line (8 and 64 tokens), so the fit has a slope from the start.
      const at = (x: number) => prefill_overhead_ms + x * slope;
      this.#fit = { w: 1, x: 36, y: at(36), xx: (8 * 8 + 64 * 64) / 2, xy: (8 * at(8) + 64 * at(64)) / 2 };
      this.#gaps.set(1, { mean: decode_ms_per_token, dev: 0, n: 1 });
    }
  }

  #update(stat: Ewma | undefined, value: number): Ewma {
    if (!stat) return { mean: value, dev: 0, n: 1 };
    const a = this.#alpha;
    const diff = value - stat.mean;
    return { mean: stat.mean + a * diff, dev: (1 - a) * stat.dev + a * Math.abs(diff), n: stat.n + 1 };
  }

  /** Intercept and slope of prefill time against evaluated tokens. */
  #prefill(): { overhead: number; perToken: number } | null {
    const f = this.#fit;
    if (!f) return null;
    const mx = f.x / f.w;
    const my = f.y / f.w;
    const variance = f.xx / f.w - mx * mx;
    let perToken: number;
    let overhead: number;
    // Fit a line only when prompt lengths spread enough for the slope to mean something (noise over a
    // spread of one or two tokens gives absurd slopes); otherwise, or when the line would need a negative
    // intercept or slope, go through the origin: the prediction at the usual length is right either way.
    const spread = Math.sqrt(Math.max(0, variance));
    if (spread > Math.max(2, 0.25 * mx)) {
      perToken = (f.xy / f.w - mx * my) / variance;
      overhead = my - perToken * mx;
      if (perToken >= 0 && overhead >= 0) return { overhead, perToken };
    }
    perToken = my / Math.max(1, mx);
    overhead = 0;
    return { overhead, perToken };
  }

  #gap(k: number): number | null {
    const exact = this.#gaps.get(k);
    if (exact) return exact.mean;
    let nearest: number | null = null;
    for (const measured of this.#gaps.keys()) {
      if (nearest === null || Math.abs(measured - k) < Math.abs(nearest - k) || (Math.abs(measured - k) === Math.abs(nearest - k) && measured > nearest)) {
        nearest = measured;
      }
    }
    if (nearest === null) return null;
    const base = this.#gaps.get(nearest)!.mean;
    const cost = (n: number) => 1 + this.#batchCost * (n - 1);
    return (base * cost(k)) / cost(nearest);
  }

  #multiplier(): number {
    const { multiplier, at } = this.#stall;
    if (multiplier <= 1) return 1;
    const elapsed = Math.max(0, this.#clock.now() - at);
    return 1 + (multiplier - 1) * 0.5 ** (elapsed / this.#halfLife);
  }

  expectedOutput(plan: WorkPlan, budget: Budget): number {
    const cap = Math.max(1, outputBudget(plan, budget));
    if (plan.expected_output_tokens !== undefined) return Math.min(cap, Math.max(1, plan.expected_output_tokens));
    const learned = this.#outputs.get(`${plan.kind ?? 'default'}/${budget}`);
    return learned ? Math.min(cap, Math.max(1, Math.ceil(learned.mean + learned.dev))) : cap;
  }

  estimate(plan: WorkPlan, budget: Budget, concurrency: number): number | null {
    const prefill = this.#prefill();
    const k = Math.max(1, Math.round(concurrency));
    const gap = this.#gap(k);
    if (!prefill || gap === null) return null;
    const output = this.expectedOutput(plan, budget);
    // The first output token comes out of the prefill; each further one costs a decode step.
    const ms = prefill.overhead + evaluatedTokens(plan) * prefill.perToken + Math.max(0, output - 1) * gap;
    return ms * this.#multiplier() + this.#residualAdded();
  }

  /** Mean + mean absolute deviation of the residual: a miss from a noisy residual costs a deadline. */
  #residualAdded(): number {
    return this.#residual ? Math.max(0, this.#residual.mean + this.#residual.dev) : 0;
  }

  observe(sample: ServiceSample): void {
    if (!(sample.prefill_ms >= 0) || !(sample.decode_ms >= 0) || sample.evaluated_tokens < 1) return;
    this.#samples++;
    const a = this.#alpha;
    const x = sample.evaluated_tokens;
    const y = sample.prefill_ms;
    const f = this.#fit;
    this.#fit = f
      ? { w: (1 - a) * f.w + a, x: (1 - a) * f.x + a * x, y: (1 - a) * f.y + a * y, xx: (1 - a) * f.xx + a * x * x, xy: (1 - a) * f.xy + a * x * y }
      : { w: 1, x, y, xx: x * x, xy: x * y };
    const k = Math.max(1, Math.round(sample.concurrency));
    if (sample.generated_tokens >= 2) {
      this.#gaps.set(k, this.#update(this.#gaps.get(k), sample.decode_ms / (sample.generated_tokens - 1)));
    }
    if (sample.generated_tokens >= 1) {
      const key = `${sample.kind ?? 'default'}/${sample.budget ?? 'full'}`;
      this.#outputs.set(key, this.#update(this.#outputs.get(key), sample.generated_tokens));
    }
    if (sample.wall_ms !== undefined && sample.wall_ms >= 0) {
      this.#residual = this.#update(this.#residual ?? undefined, Math.max(0, sample.wall_ms - sample.prefill_ms - sample.decode_ms));
    }
  }

  observeGap(ms: number, concurrency: number): boolean {
    if (!(ms >= 0)) return false;
    const k = Math.max(1, Math.round(concurrency));
    const expected = this.#gap(k);
    if (expected === null) {
      this.#gaps.set(k, { mean: ms, dev: 0, n: 1 });
      return false;
    }
    if (ms > this.#stallFactor * expected) {
      // Act on the first slow token: every estimate slows now, not after the request ends.
      const current = this.#multiplier();
      this.#stall = { multiplier: Math.min(this.#stallCap, Math.max(current, ms / expected)), at: this.#clock.now() };
      this.#stalls++;
      return true;
    }
    // A normal gap after a stall: it was transient (a GC pause, a short burst elsewhere); halve the excess.
    if (this.#stall.multiplier > 1) this.#stall = { multiplier: 1 + (this.#multiplier() - 1) * 0.5, at: this.#clock.now() };
    this.#gaps.set(k, this.#update(this.#gaps.get(k), ms));
    return false;
  }

  /** Stalls seen so far. */
  get stalls(): number {
    return this.#stalls;
  }

  snapshot(): ServiceModelSnapshot {
    const prefill = this.#prefill();
    const round = (n: number) => Math.round(n * 1000) / 1000;
    return {
      prefill_overhead_ms: prefill ? round(prefill.overhead) : null,
      prefill_ms_per_token: prefill ? round(prefill.perToken) : null,
      decode_ms_per_token: Object.fromEntries([...this.#gaps].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), round(v.mean)])),
      stall_multiplier: round(this.#multiplier()),
      stalls: this.#stalls,
      samples: this.#samples,
      residual_ms: this.#residual ? { mean: round(this.#residual.mean), added: round(this.#residualAdded()) } : null,
    };
  }
}

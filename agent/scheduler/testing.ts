/**
 * Test doubles for the scheduler: a service-time model with a fixed formula (so a test states exactly what
 * the scheduler believes), and a lane whose jobs finish when the test says so, or after their predicted
 * time on a FakeClock. Nothing here is used in production.
 */
import type { FakeClock } from './clock.js';
import type { Lane, LaneJob } from './scheduler.js';
import type { Budget, ServiceModelSnapshot, ServiceSample, ServiceTimeModel, WorkPlan } from './service-model.js';

export class FixedServiceModel implements ServiceTimeModel {
  readonly samples: ServiceSample[] = [];
  readonly gaps: Array<{ ms: number; concurrency: number }> = [];
  stallAbove = Number.POSITIVE_INFINITY;
  stalled = false;

  constructor(public service: (plan: WorkPlan, budget: Budget, k: number) => number | null) {}

  estimate(plan: WorkPlan, budget: Budget, k: number): number | null {
    return this.service(plan, budget, k);
  }

  expectedOutput(plan: WorkPlan, budget: Budget): number {
    return budget === 'short' ? (plan.short_output_tokens ?? plan.max_output_tokens) : plan.max_output_tokens;
  }

  observe(sample: ServiceSample): void {
    this.samples.push(sample);
  }

  observeGap(ms: number, concurrency: number): boolean {
    this.gaps.push({ ms, concurrency });
    if (ms > this.stallAbove) {
      this.stalled = true;
      return true;
    }
    return false;
  }

  snapshot(): ServiceModelSnapshot {
    return { prefill_overhead_ms: null, prefill_ms_per_token: null, decode_ms_per_token: {}, stall_multiplier: this.stalled ? 2 : 1, stalls: 0, samples: this.samples.length };
  }
}

export interface FakeJob<Req> {
  job: LaneJob<Req>;
  finish(result?: string): void;
  fail(error: unknown): void;
  settled: boolean;
}

/** A lane whose jobs stay running until finish() — or, with `clock` + `autoMs`, finish on their own. */
export class FakeLane<Req = string> implements Lane<Req, string> {
  readonly jobs: FakeJob<Req>[] = [];
  sequences: number;
  up = true;
  /** When set, a job's abort signal rejects it (a well-behaved engine). */
  honourAbort = true;

  constructor(
    readonly model: ServiceTimeModel,
    options: { sequences?: number; clock?: FakeClock; autoMs?: (job: LaneJob<Req>) => number } = {},
  ) {
    this.sequences = options.sequences ?? 8;
    this.#clock = options.clock;
    this.#autoMs = options.autoMs;
  }

  readonly #clock: FakeClock | undefined;
  readonly #autoMs: ((job: LaneJob<Req>) => number) | undefined;

  maxSequences(): number {
    return this.sequences;
  }

  available(): boolean {
    return this.up;
  }

  get running(): FakeJob<Req>[] {
    return this.jobs.filter((j) => !j.settled);
  }

  run(job: LaneJob<Req>): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const fake: FakeJob<Req> = {
        job,
        settled: false,
        finish: (result = `done:${String(job.request)}`) => {
          if (fake.settled) return;
          fake.settled = true;
          resolve(result);
        },
        fail: (error) => {
          if (fake.settled) return;
          fake.settled = true;
          reject(error);
        },
      };
      this.jobs.push(fake);
      if (this.honourAbort) job.signal.addEventListener('abort', () => fake.fail(job.signal.reason), { once: true });
      if (this.#clock && this.#autoMs) {
        const ms = this.#autoMs(job);
        this.#clock.after(ms, () => fake.finish());
      }
    });
  }
}

/** Lets pending promise callbacks run (the scheduler answers through promises). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Resolves to the outcome, or to the error for a rejection (so tests can await many without unhandled rejections). */
export function settle<T>(promise: Promise<T>): { value: () => T | undefined; error: () => unknown; done: () => boolean } {
  let value: T | undefined;
  let error: unknown;
  let done = false;
  promise.then(
    (v) => {
      value = v;
      done = true;
    },
    (e: unknown) => {
      error = e;
      done = true;
    },
  );
  return { value: () => value, error: () => error, done: () => done };
}

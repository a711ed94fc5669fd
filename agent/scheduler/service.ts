/**
 * SchedulerService: the runtime component around the Scheduler. At start it reads the `scheduler:` config
 * section, registers the `scheduler` status section (recent p50/p99, shed rate, queue, lanes) and the
 * Prometheus figures, and from then on every agent request goes through `submit`.
 */
import type { Component, RuntimeContext } from '../../runtime/context.js';
import { ClawboxError } from '../../runtime/errors.js';
import type { Clock, Timers } from './clock.js';
import type { SchedulerConfig } from './config-schema.js';
import { SchedulerMetrics } from './metrics.js';
import { type FastPathMatcher, type Lane, type LaneName, type Outcome, Scheduler, type SchedulerOptions, type Submission } from './scheduler.js';
import type { WorkPlan } from './service-model.js';

export interface SchedulerServiceDeps<Req, Res> {
  lanes: Partial<Record<LaneName, Lane<Req, Res>>>;
  plan: (request: Req) => WorkPlan | Promise<WorkPlan>;
  tryFastPath?: FastPathMatcher<Req, Res>;
  /** Routing policy (hybrid deployment: local_only / remote_first); see Scheduler's options. */
  route?: SchedulerOptions<Req, Res>['route'];
  /** Overrides the config section (tests); otherwise ctx.config.scheduler. */
  config?: Partial<SchedulerConfig>;
  clock?: Clock & Timers;
}

export class SchedulerService<Req, Res> implements Component {
  readonly name = 'scheduler';
  readonly #deps: SchedulerServiceDeps<Req, Res>;
  #scheduler: Scheduler<Req, Res> | null = null;
  #metrics: SchedulerMetrics | null = null;
  #unregister: (() => void) | null = null;

  constructor(deps: SchedulerServiceDeps<Req, Res>) {
    this.#deps = deps;
  }

  /** The running scheduler (null before start and after stop). */
  get scheduler(): Scheduler<Req, Res> | null {
    return this.#scheduler;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    const section = this.#deps.config ?? (ctx.config as { scheduler?: Partial<SchedulerConfig> }).scheduler ?? {};
    const logger = ctx.logger('scheduler');
    const scheduler = new Scheduler<Req, Res>({
      config: section,
      logger,
      lanes: this.#deps.lanes,
      plan: this.#deps.plan,
      ...(this.#deps.tryFastPath ? { tryFastPath: this.#deps.tryFastPath } : {}),
      ...(this.#deps.route ? { route: this.#deps.route } : {}),
      ...(this.#deps.clock ? { clock: this.#deps.clock } : {}),
      onEvent: (event) => this.#metrics?.observe(event),
    });
    this.#metrics = new SchedulerMetrics(ctx.metrics, {
      queued: () => scheduler.load().queued,
      running: () => scheduler.load().running,
      concurrency: () => scheduler.concurrency,
    });
    this.#unregister = ctx.status.register('scheduler', () => scheduler.status());
    this.#scheduler = scheduler;
    logger.info(
      { default_deadline_ms: scheduler.config.default_deadline_ms, max_queue: scheduler.config.max_queue, concurrency: scheduler.config.max_concurrency },
      `scheduler ready: ${scheduler.config.default_deadline_ms} ms default deadline`,
    );
  }

  /** See Scheduler.submit; BUSY while the component is not running. */
  submit(submission: Submission<Req>): Promise<Outcome<Res>> {
    if (!this.#scheduler) return Promise.reject(new ClawboxError('BUSY', 'the scheduler is not running', { retry_after_ms: 1000 }));
    return this.#scheduler.submit(submission);
  }

  async stop(): Promise<void> {
    this.#scheduler?.stop();
    this.#scheduler = null;
    this.#unregister?.();
    this.#unregister = null;
    this.#metrics?.remove();
    this.#metrics = null;
  }
}

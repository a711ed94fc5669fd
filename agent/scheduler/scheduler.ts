/**
 * The agent-lane scheduler: every agent request passes through `submit`. It gets a deadline, a priority
 * class, and an admission decision before any work starts:
 *
 *   fast path (matches)  -> runs at once, never queued behind model work
 *   model lane           -> predicted completion = queue wait (simulated over the running sequences and the
 *                           requests ahead) + service time (learned model) x (1 + margin); admitted if it
 *                           meets the deadline, else the degrade ladder:
 *                             1 fast path (when fast_path = fallback)  2 shorter output budget
 *                             3 the small model  4 the remote brain  5 BUSY with retry_after_ms
 *
 * Admitted requests wait in an AdaptiveQueue (priority, adaptive LIFO, CoDel drops) and run with an
 * AbortSignal that fires at their deadline. The decision path is synchronous and reads only `clock.now()`;
 * the only timers (deadline aborts, queue sweeps) go through the injected `Timers`.
 */
import { ClawboxError } from '../../runtime/errors.js';
import { type Clock, type TimerHandle, type Timers, systemClock } from './clock.js';
import {
  type ResolvedSchedulerConfig,
  type SchedulerConfig,
  resolveSchedulerConfig,
} from './config-schema.js';
import { AdaptiveQueue, type Queued } from './queue.js';
import { type Budget, type ServiceSample, type ServiceTimeModel, type WorkPlan, outputBudget } from './service-model.js';
import { type Path, type Rung, type SchedulerEvent, SchedulerStats, type SchedulerStatsSnapshot, type ShedReason } from './stats.js';

export type LaneName = 'main' | 'small' | 'remote';

/** What an admitted request is allowed: which lane, which rung of the ladder, which output budget. */
export interface Grant {
  lane: LaneName;
  path: 'model' | 'remote';
  rung: Rung;
  budget: Budget;
  max_output_tokens: number;
  /** False on the short rung: answer with the tool call only, no free-text explanation. */
  explain: boolean;
}

/** Measurements a lane reports while and after it runs a job; they feed the lane's service model. */
export interface LaneReporter {
  /** One inter-token gap (ms), as it happens: a stall lowers the estimate at once. */
  tokenGap(ms: number): void;
  /** The finished job's figures. */
  done(usage: { evaluated_tokens: number; prefill_ms: number; generated_tokens: number; decode_ms: number }): void;
}

export interface LaneJob<Req> {
  request: Req;
  plan: WorkPlan;
  grant: Grant;
  /** Aborted at the deadline (DEADLINE_EXCEEDED) or when the caller cancels. */
  signal: AbortSignal;
  /** Clock time of the deadline. */
  deadline: number;
  report: LaneReporter;
  /**
   * Called right before the job does something that cannot be undone (a device action). False: the
   * deadline passed or the caller went away, so it must not be done. True: from now on the job is
   * answered with its own result, however late, so the caller is never told "failed" about what ran.
   */
  commit(): boolean;
}

/** One way to run model work (the main model, the small one, a remote brain). Engine-agnostic. */
export interface Lane<Req, Res> {
  readonly model: ServiceTimeModel;
  /** Parallel sequences it can run (the engine's context sequences). */
  maxSequences(): number;
  /** False while its model is not loaded (the ladder skips it). */
  available(): boolean;
  run(job: LaneJob<Req>): Promise<Res>;
}

export type FastRunner<Res> = () => Res | Promise<Res>;

/**
 * Returns a runner when the request can be answered without the model, else null (or a promise of
 * either). Must be cheap: it is asked for every request before the admission decision.
 */
export type FastPathMatcher<Req, Res> = (request: Req) => FastRunner<Res> | null | Promise<FastRunner<Res> | null>;

export interface SchedulerLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  isLevelEnabled?(level: string): boolean;
}

export interface SchedulerOptions<Req, Res> {
  config?: Partial<SchedulerConfig> | ResolvedSchedulerConfig;
  clock?: Clock & Timers;
  logger?: SchedulerLogger;
  lanes: { main?: Lane<Req, Res>; small?: Lane<Req, Res>; remote?: Lane<Req, Res> };
  tryFastPath?: FastPathMatcher<Req, Res>;
  /** The routing policy of a request that has no `route` of its own. */
  route?: (submission: Submission<Req>, plan: WorkPlan) => Route;
  /** The work shape of a request (tokens in, expected tokens out); called once per model-bound request. */
  plan: (request: Req) => WorkPlan | Promise<WorkPlan>;
  /** Called with every event (metrics). */
  onEvent?: (event: SchedulerEvent) => void;
  /** Re-tune auto concurrency after this many completions (default 32; 0 never). */
  tune_every?: number;
  /** A lane that ignores its abort gets its slot back this long after the deadline (default 2000 ms). */
  abort_grace_ms?: number;
}

export interface Submission<Req> {
  request: Req;
  /** mqtt, http, channel, panel, ... (decides default deadline and priority class). */
  source?: string;
  /** Per-request deadline, clamped to [min_deadline_ms, max_deadline_ms]. */
  deadline_ms?: number;
  /** Overrides options.plan(request). */
  plan?: WorkPlan;
  /** The caller gives up (client went away). */
  signal?: AbortSignal;
  /** Where model work may run; unset: options.route decides (default any). */
  route?: Route;
}

/**
 * Hybrid deployment: `local_only` keeps a request off the remote lane (its data must not leave the box),
 * `remote_first` tries the remote brain before the local lanes (it needs the bigger model), `after_remote`
 * is the rest of the ladder for a request whose brain failed (local lanes, then BUSY).
 */
export type Route = 'any' | 'local_only' | 'remote_first' | 'after_remote';

export interface Outcome<Res> {
  result: Res;
  path: Path;
  lane: LaneName | null;
  rung: Rung;
  deadline_ms: number;
  /** True when it finished after its deadline (counted as a miss). */
  late: boolean;
  timings: { queue_ms: number; service_ms: number; total_ms: number };
}

/** The admission decision, also returned by `decide` for inspection. */
export interface Decision {
  action: 'fast' | 'admit' | 'reject';
  rung: Rung;
  grant?: Grant;
  /** Predicted queue wait and completion (ms from now); null on a probe (no measurement yet). */
  wait_ms?: number;
  predicted_ms?: number | null;
  retry_after_ms?: number;
  shed?: ShedReason;
  reason: string;
  /** no_model because the request must stay on the box and no local lane is loaded. */
  local_only?: true;
}

interface Item<Req, Res> extends Queued {
  request: Req;
  plan: WorkPlan;
  grant: Grant;
  lane: Lane<Req, Res>;
  group: Group<Req, Res>;
  cls: string;
  arrival: number;
  deadline: number;
  deadline_ms: number;
  /** Predicted service time with margin (ms). */
  est: number;
  resolve: (outcome: Outcome<Res>) => void;
  reject: (error: unknown) => void;
  unlisten: (() => void) | null;
  started: number | null;
  kStart: number;
  /** Parallel sequences its `est` was last computed for (running items). */
  kNow: number;
  controller: AbortController | null;
  timer: TimerHandle | null;
  /** The caller has been answered (result, error or deadline). */
  answered: boolean;
  /** The job started something irreversible: the deadline no longer answers for it (LaneJob.commit). */
  committed: boolean;
  /** What the lane reported when its generation finished; observed when the job answers. */
  usage: ServiceSample | null;
  /** Remote jobs: the same request on the local rungs, same deadline (when the brain fails early). */
  fallback: (() => Promise<Outcome<Res>>) | null;
}

interface Group<Req, Res> {
  name: 'local' | 'remote';
  queue: AdaptiveQueue<Item<Req, Res>>;
  running: Set<Item<Req, Res>>;
  sweep: TimerHandle | null;
  sweepAt: number;
}

interface Prediction {
  feasible: boolean;
  wait: number;
  service: number | null;
  /** When a fresh request of this shape would be admitted if nothing else arrived (ms from now). */
  retry: number;
  note: string;
  evict?: Item<unknown, unknown> | null;
  queueFull?: boolean;
}

const LOCAL: readonly LaneName[] = ['main', 'small'];

export class Scheduler<Req, Res> {
  readonly config: ResolvedSchedulerConfig;
  readonly stats = new SchedulerStats();
  readonly #clock: Clock & Timers;
  readonly #logger: SchedulerLogger | null;
  readonly #lanes: Partial<Record<LaneName, Lane<Req, Res>>>;
  readonly #tryFastPath: FastPathMatcher<Req, Res> | undefined;
  readonly #plan: (request: Req) => WorkPlan | Promise<WorkPlan>;
  readonly #onEvent: ((event: SchedulerEvent) => void) | undefined;
  readonly #tuneEvery: number;
  readonly #abortGrace: number;
  readonly #route: SchedulerOptions<Req, Res>['route'];
  readonly #groups: { local: Group<Req, Res>; remote: Group<Req, Res> };
  #seq = 0;
  #limit: number;
  #completedSinceTune = 0;
  #lastPlan: WorkPlan | null = null;
  #stopped = false;

  constructor(options: SchedulerOptions<Req, Res>) {
    const config = options.config as ResolvedSchedulerConfig | undefined;
    this.config = config && 'default_class' in config ? config : resolveSchedulerConfig(options.config as Partial<SchedulerConfig>);
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? null;
    this.#lanes = { ...options.lanes };
    this.#tryFastPath = options.tryFastPath;
    this.#plan = options.plan;
    this.#onEvent = options.onEvent;
    this.#tuneEvery = options.tune_every ?? 32;
    this.#abortGrace = options.abort_grace_ms ?? 2000;
    this.#route = options.route;
    const group = (name: 'local' | 'remote'): Group<Req, Res> => ({
      name,
      queue: new AdaptiveQueue(this.config.codel),
      running: new Set(),
      sweep: null,
      sweepAt: Number.POSITIVE_INFINITY,
    });
    this.#groups = { local: group('local'), remote: group('remote') };
    // auto starts at one sequence and is raised by tuneConcurrency() once measurements show it pays.
    this.#limit = this.config.max_concurrency === 'auto' ? 1 : this.config.max_concurrency;
  }

  // ---- configuration hooks -------------------------------------------------------------------------

  /** Replaces a lane (a model finished loading, or was unloaded: pass undefined). */
  setLane(name: LaneName, lane: Lane<Req, Res> | undefined): void {
    if (lane) this.#lanes[name] = lane;
    else delete this.#lanes[name];
    this.#pump(this.#groups[name === 'remote' ? 'remote' : 'local']);
  }

  lane(name: LaneName): Lane<Req, Res> | undefined {
    return this.#lanes[name];
  }

  /** Model requests run in parallel on the local lanes, at most. */
  get concurrency(): number {
    return Math.max(1, Math.min(this.#limit, this.#localSequences()));
  }

  /** Sets the parallel-sequence limit (a tuner's hook); capped by the lanes' sequences. */
  setConcurrency(n: number): void {
    this.#limit = Math.max(1, Math.floor(n));
    this.#pump(this.#groups.local);
  }

  /**
   * Picks the parallel-sequence count with the highest predicted throughput whose service time still fits
   * the default deadline (with margin and room to queue). Unmeasured counts are predicted from the nearest
   * measured one, so a count one above the current one gets tried when it looks worthwhile, then kept or
   * dropped on what it measured. Only acts when max_concurrency is auto; returns the limit in force.
   */
  tuneConcurrency(): number {
    const lane = this.#lanes.main;
    const plan = this.#lastPlan;
    if (this.config.max_concurrency !== 'auto' || !lane || !plan) return this.concurrency;
    const budget = this.config.default_deadline_ms * 0.8;
    const max = Math.min(lane.maxSequences(), this.#limit + 1);
    let best = 1;
    let bestRate = 0;
    for (let k = 1; k <= max; k++) {
      const service = lane.model.estimate(plan, 'full', k);
      if (service === null) break;
      if (service * (1 + this.config.estimate_margin) > budget) break;
      const rate = k / service;
      if (rate > bestRate * 1.05) {
        best = k;
        bestRate = rate;
      }
    }
    if (best !== this.#limit) {
      this.#logger?.debug({ from: this.#limit, to: best }, `scheduler: concurrency ${this.#limit} -> ${best}`);
      this.setConcurrency(best);
    }
    return this.concurrency;
  }

  #localSequences(): number {
    let total = 0;
    for (const name of LOCAL) {
      const lane = this.#lanes[name];
      if (lane?.available()) total += lane.maxSequences();
    }
    return Math.max(1, total);
  }

  #groupLimit(group: Group<Req, Res>): number {
    if (group.name === 'remote') return Math.max(1, this.#lanes.remote?.maxSequences() ?? 1);
    return this.concurrency;
  }

  // ---- classes and deadlines ------------------------------------------------------------------------

  classOf(source: string | undefined): { name: string; priority: number; reserve: number } {
    const name = (source && this.config.sources[source]?.class) || this.config.default_class;
    const cls = this.config.classes[name] ?? { priority: 0, reserve: 0 };
    return { name, ...cls };
  }

  /** The request's own deadline, else its source's, else chat_deadline_ms where a person waits, else the default. */
  deadlineFor(source: string | undefined, requested: number | undefined): number {
    const configured = source ? this.config.sources[source] : undefined;
    const sourceDefault = configured?.deadline_ms ?? (configured?.human ? this.config.chat_deadline_ms : undefined);
    const base = requested ?? sourceDefault ?? this.config.default_deadline_ms;
    const value = Number.isFinite(base) ? base : this.config.default_deadline_ms;
    return Math.min(this.config.max_deadline_ms, Math.max(this.config.min_deadline_ms, Math.round(value)));
  }

  /** Slots a class may use now: the limit minus the unused reservations of the other classes. */
  #slotsFor(group: Group<Req, Res>, cls: string): number {
    const limit = this.#groupLimit(group);
    if (group.name === 'remote') return limit;
    let held = 0;
    for (const [name, c] of Object.entries(this.config.classes)) {
      if (name === cls || c.reserve <= 0) continue;
      const reserved = Math.floor(c.reserve * limit);
      let using = 0;
      for (const item of group.running) if (item.cls === name) using++;
      held += Math.max(0, reserved - using);
    }
    return Math.max(0, limit - held);
  }

  #laneRunning(group: Group<Req, Res>, lane: Lane<Req, Res>): number {
    let n = 0;
    for (const item of group.running) if (item.lane === lane) n++;
    return n;
  }

  #canStart(group: Group<Req, Res>, item: Item<Req, Res>): boolean {
    if (this.#laneRunning(group, item.lane) >= item.lane.maxSequences()) return false;
    if (group.running.size < this.#groupLimit(group)) return group.running.size < this.#slotsFor(group, item.cls);
    return this.#mayExceedLimit(group, item);
  }

  /**
   * The auto limit is tuned for throughput within the default (device-command) deadline. Work with a
   * longer deadline — a person reading a streamed answer — may start on a free sequence beyond it when
   * that pushes no running request past its deadline: a chat then gets its first tokens at once instead
   * of waiting for other chats to finish.
   */
  #mayExceedLimit(group: Group<Req, Res>, item: Item<Req, Res>): boolean {
    if (this.config.max_concurrency !== 'auto' || group.name !== 'local') return false;
    if (item.deadline_ms <= this.config.default_deadline_ms) return false;
    const now = this.#clock.now();
    return group.running.size < this.#localSequences() && this.#hurtsRunning(group, now) === 0;
  }

  // ---- prediction -----------------------------------------------------------------------------------

  /** Ms from now until each of `slots` slots is free, after the running work. */
  #slotTimes(running: Iterable<Item<Req, Res>>, slots: number, now: number): number[] {
    const times = [...running].map((item) => Math.max(0, (item.started ?? now) + item.est - now)).sort((a, b) => a - b);
    // A class held back by reservations only gets the earliest `slots` of them.
    while (times.length < slots) times.unshift(0);
    return times.slice(0, Math.max(1, slots));
  }

  #popMin(times: number[]): number {
    let at = 0;
    for (let i = 1; i < times.length; i++) if (times[i]! < times[at]!) at = i;
    const value = times[at]!;
    times.splice(at, 1);
    return value;
  }

  /**
   * Predicted wait before a new request of `priority`/`cls` starts on `lane`, and the number ahead: list
   * scheduling of the requests ahead over the group's slots, and over the lane's own sequences when those
   * are fewer (the larger wait wins). `all`: behind everything queued (the drain time).
   */
  #wait(group: Group<Req, Res>, lane: Lane<Req, Res>, priority: number, cls: string, now: number, all = false): { wait: number; ahead: number } {
    const ahead = all ? group.queue.serviceOrder(now) : group.queue.ahead(priority, now);
    const simulate = (running: Iterable<Item<Req, Res>>, queued: readonly Item<Req, Res>[], slots: number) => {
      // Every slot held for other classes: this class cannot start until their reservations are used.
      if (slots <= 0) return Number.POSITIVE_INFINITY;
      const times = this.#slotTimes(running, slots, now);
      for (const item of queued) {
        const start = this.#popMin(times);
        times.push(start + item.est);
      }
      return this.#popMin(times);
    };
    let wait = simulate(group.running, ahead, this.#slotsFor(group, cls));
    const sequences = lane.maxSequences();
    if (sequences < this.#groupLimit(group)) {
      const own = (item: Item<Req, Res>) => item.lane === lane;
      wait = Math.max(wait, simulate([...group.running].filter(own), ahead.filter(own), sequences));
    }
    return { wait, ahead: ahead.length };
  }

  #predict(laneName: LaneName, budget: Budget, plan: WorkPlan, cls: { name: string; priority: number }, remaining: number, now: number): Prediction {
    const lane = this.#lanes[laneName]!;
    const group = this.#groups[laneName === 'remote' ? 'remote' : 'local'];
    const { wait, ahead } = this.#wait(group, lane, cls.priority, cls.name, now);
    const k = Math.min(this.#groupLimit(group), group.running.size + ahead + 1);
    const raw = lane.model.estimate(plan, budget, k);
    const service = raw === null ? null : raw * (1 + this.config.estimate_margin);
    // The drain time (behind everything queued) only matters for a refusal's retry hint: computed lazily.
    const drain = () => this.#wait(group, lane, cls.priority, cls.name, now, true).wait;
    const idle = group.running.size === 0 && group.queue.length === 0;
    if (service === null) {
      // No measurement yet: one probe at a time on an idle lane teaches the model.
      return idle
        ? { feasible: true, wait: 0, service: null, retry: 0, note: `${laneName}: probe (not measured yet)` }
        : { feasible: false, wait, service: null, retry: Math.max(drain(), 1), note: `${laneName}: not measured yet, lane busy` };
    }
    const needsQueue = wait > 0 || !this.#fitsNow(group, lane, cls.name);
    const slack = remaining - service;
    const retry = () => (slack >= 0 ? Math.max(0, drain() - slack) : drain() + service);
    let evict: Item<Req, Res> | null = null;
    if (needsQueue && group.queue.length >= this.config.max_queue) {
      evict = group.queue.evictionFor(cls.priority, now);
      if (!evict) return { feasible: false, wait, service, retry: retry(), note: `${laneName}: queue full (${group.queue.length})`, queueFull: true };
    }
    const total = wait + service;
    // Starting now adds a parallel sequence, which slows the running ones: never at the cost of their deadline.
    const hurt = needsQueue ? 0 : this.#hurtsRunning(group, now);
    const feasible = total <= remaining && hurt === 0;
    const note =
      hurt > 0
        ? `${laneName}/${budget}: would push ${hurt} running request(s) past their deadline`
        : `${laneName}/${budget}: wait ${wait.toFixed(1)} + service ${service.toFixed(1)} ${feasible ? '<=' : '>'} ${remaining.toFixed(1)} ms`;
    if (feasible) return { feasible, wait, service, retry: 0, note, evict: evict as Item<unknown, unknown> | null };
    return { feasible, wait, service, retry: hurt > 0 ? Math.max(retry(), this.#earliestEnd(group, now)) : retry(), note };
  }

  /** Remaining time of a running item if `k` sequences ran from now on (its lane's model, scaled). */
  #remainingAt(item: Item<Req, Res>, k: number, now: number): number {
    const remaining = Math.max(0, (item.started ?? now) + item.est - now);
    if (k === item.kNow || remaining === 0) return remaining;
    const before = item.lane.model.estimate(item.plan, item.grant.budget, item.kNow);
    const after = item.lane.model.estimate(item.plan, item.grant.budget, k);
    return before && after ? (remaining * after) / before : remaining;
  }

  /** After the running set changed: each running item's estimate follows the new parallelism. */
  #rescale(group: Group<Req, Res>, now: number): void {
    const k = Math.max(1, group.running.size);
    for (const item of group.running) {
      if (item.kNow === k) continue;
      item.est = now - (item.started ?? now) + this.#remainingAt(item, k, now);
      item.kNow = k;
    }
  }

  /** Running requests that would miss their deadline if one more sequence ran beside them from now. */
  #hurtsRunning(group: Group<Req, Res>, now: number): number {
    const k = group.running.size + 1;
    let hurt = 0;
    for (const item of group.running) if (now + this.#remainingAt(item, k, now) > item.deadline) hurt++;
    return hurt;
  }

  /** Ms until the first running request of the group should end. */
  #earliestEnd(group: Group<Req, Res>, now: number): number {
    let earliest = Number.POSITIVE_INFINITY;
    for (const item of group.running) earliest = Math.min(earliest, Math.max(0, (item.started ?? now) + item.est - now));
    return Number.isFinite(earliest) ? earliest : 0;
  }

  #fitsNow(group: Group<Req, Res>, lane: Lane<Req, Res>, cls: string): boolean {
    return (
      group.running.size < this.#groupLimit(group) &&
      group.running.size < this.#slotsFor(group, cls) &&
      this.#laneRunning(group, lane) < lane.maxSequences()
    );
  }

  /**
   * The admission decision for a request arriving now (pure: nothing is queued or run). `fast` tells
   * whether the fast path matches (undefined: ask a synchronous tryFastPath).
   */
  decide(submission: Submission<Req>, fast?: boolean): Decision {
    const now = this.#clock.now();
    const matches = () => {
      if (fast !== undefined) return fast;
      const run = this.#tryFastPath?.(submission.request) ?? null;
      // An async matcher's answer is not known here; decide() then assumes no match.
      return run !== null && typeof (run as Promise<unknown>).then !== 'function';
    };
    return this.#decide(submission, now, now + this.deadlineFor(submission.source, submission.deadline_ms), this.classOf(submission.source), matches).decision;
  }

  #decide(
    submission: Submission<Req>,
    now: number,
    deadline: number,
    cls: { name: string; priority: number },
    fastMatches: () => boolean,
  ): { decision: Decision; plan: WorkPlan | null; evict?: Item<Req, Res> | null } {
    const remaining = deadline - now;
    const notes: string[] = [];
    if (this.config.fast_path === 'first' && fastMatches()) {
      return { decision: { action: 'fast', rung: 'none', reason: 'fast path matches' }, plan: null };
    }
    const given = submission.plan ?? this.#plan(submission.request);
    if (isPromise(given)) throw new TypeError('decide() needs submission.plan when the planner is asynchronous');
    const plan = given;
    const steps: Array<{ rung: Rung; lane: LaneName; budget: Budget } | { rung: 'fast' }> = [{ rung: 'none', lane: 'main', budget: 'full' }];
    if (this.config.fast_path === 'fallback') steps.push({ rung: 'fast' });
    const canShorten = plan.short_output_tokens !== undefined && plan.short_output_tokens < plan.max_output_tokens;
    if (canShorten) steps.push({ rung: 'short', lane: 'main', budget: 'short' });
    steps.push({ rung: 'small', lane: 'small', budget: 'full' });
    if (canShorten) steps.push({ rung: 'small', lane: 'small', budget: 'short' });
    steps.push({ rung: 'remote', lane: 'remote', budget: 'full' });
    const route = submission.route ?? this.#route?.(submission, plan) ?? 'any';
    if (route !== 'any') {
      const [remote] = steps.splice(steps.length - 1, 1);
      if (route === 'remote_first') steps.unshift(remote!);
      else notes.push(`remote: not for this request (${route})`);
    }

    let anyLane = false;
    let retry = Number.POSITIVE_INFINITY;
    let queueFull = false;
    for (const step of steps) {
      if (step.rung === 'fast') {
        if (fastMatches()) return { decision: { action: 'fast', rung: 'fast', reason: `${notes.join('; ')}; fast path matches` }, plan };
        notes.push('fast path: no match');
        continue;
      }
      const lane = this.#lanes[step.lane];
      if (!lane?.available()) continue;
      anyLane = true;
      const p = this.#predict(step.lane, step.budget, plan, cls, remaining, now);
      notes.push(p.note);
      if (p.feasible) {
        const grant: Grant = {
          lane: step.lane,
          path: step.lane === 'remote' ? 'remote' : 'model',
          rung: step.rung,
          budget: step.budget,
          max_output_tokens: outputBudget(plan, step.budget),
          explain: step.budget === 'full',
        };
        return {
          decision: { action: 'admit', rung: step.rung, grant, wait_ms: p.wait, predicted_ms: p.service === null ? null : p.wait + p.service, reason: notes.join('; ') },
          plan,
          evict: (p.evict ?? null) as Item<Req, Res> | null,
        };
      }
      retry = Math.min(retry, p.retry);
      if (p.queueFull) queueFull = true;
    }
    if (!anyLane && route === 'after_remote') {
      const retry = this.#retryAfter(this.config.default_deadline_ms);
      return { decision: { action: 'reject', rung: 'none', shed: 'estimate', retry_after_ms: retry, reason: notes.concat('the brain failed and no local model is loaded').join('; ') }, plan };
    }
    if (!anyLane) {
      const localOnly = route === 'local_only' && this.#lanes.remote?.available() === true;
      return {
        decision: { action: 'reject', rung: 'none', shed: 'no_model', reason: notes.concat('no model loaded').join('; '), ...(localOnly ? { local_only: true as const } : {}) },
        plan,
      };
    }
    return {
      decision: {
        action: 'reject',
        rung: 'none',
        shed: queueFull ? 'queue_full' : 'estimate',
        retry_after_ms: this.#retryAfter(retry),
        reason: notes.join('; '),
      },
      plan,
    };
  }

  #retryAfter(ms: number): number {
    const value = Number.isFinite(ms) ? ms : this.config.default_deadline_ms;
    return Math.min(60_000, Math.max(10, Math.ceil(value)));
  }

  /** The retry hint for a request shed from `group` now (queue drain time minus the slack it would have). */
  #retryFor(item: Item<Req, Res>, now: number): number {
    const drain = this.#wait(item.group, item.lane, item.priority, item.cls, now, true).wait;
    const slack = item.deadline_ms - item.est;
    return this.#retryAfter(slack >= 0 ? drain - slack : drain + item.est);
  }

  // ---- submission -----------------------------------------------------------------------------------

  /**
   * Runs a request on the fast path or a model lane, or rejects it before any work: BUSY (with
   * `retry_after_ms`), MODEL_NOT_LOADED (no lane), DEADLINE_EXCEEDED (admitted but overran; aborted).
   */
  submit(submission: Submission<Req>): Promise<Outcome<Res>> {
    if (this.#stopped) return Promise.reject(new ClawboxError('BUSY', 'the scheduler is stopping', { retry_after_ms: 1000 }));
    const arrival = this.#clock.now();
    let match: FastRunner<Res> | null | Promise<FastRunner<Res> | null>;
    try {
      match = this.#tryFastPath?.(submission.request) ?? null;
    } catch (error) {
      return Promise.reject(error);
    }
    // An async matcher (the agent reads its device list) is awaited; the deadline still runs from arrival.
    if (isPromise(match)) return match.then((run) => this.#planned(submission, arrival, run));
    return this.#planned(submission, arrival, match);
  }

  /** Gets the work plan (possibly async: the agent tokenizes its prompt) unless the fast path takes it. */
  #planned(submission: Submission<Req>, arrival: number, fastRun: FastRunner<Res> | null): Promise<Outcome<Res>> {
    if ((fastRun && this.config.fast_path === 'first') || submission.plan) return this.#admit(submission, arrival, fastRun);
    let plan: WorkPlan | Promise<WorkPlan>;
    try {
      plan = this.#plan(submission.request);
    } catch (error) {
      return Promise.reject(error);
    }
    if (isPromise(plan)) return plan.then((p) => this.#admit({ ...submission, plan: p }, arrival, fastRun));
    return this.#admit({ ...submission, plan }, arrival, fastRun);
  }

  #admit(submission: Submission<Req>, arrival: number, fastRun: FastRunner<Res> | null): Promise<Outcome<Res>> {
    const started = performance.now();
    const now = this.#clock.now();
    const deadlineMs = this.deadlineFor(submission.source, submission.deadline_ms);
    const deadline = arrival + deadlineMs;
    const cls = this.classOf(submission.source);
    let decided: { decision: Decision; plan: WorkPlan | null; evict?: Item<Req, Res> | null };
    try {
      decided = this.#decide(submission, now, deadline, cls, () => fastRun !== null);
    } catch (error) {
      return Promise.reject(error);
    }
    const { decision, plan } = decided;
    const decisionUs = (performance.now() - started) * 1000;
    const kind = decision.action === 'fast' ? 'fast' : decision.action === 'admit' ? decision.grant!.path : decision.shed === 'no_model' ? 'no_model' : 'busy';
    this.#emit({ type: 'decision', decision: kind, rung: decision.rung, decision_us: decisionUs });
    if (this.#logger && (this.#logger.isLevelEnabled?.('debug') ?? true)) {
      this.#logger.debug(
        { source: submission.source, class: cls.name, deadline_ms: deadlineMs, decision: decision.action, rung: decision.rung, reason: decision.reason, us: Math.round(decisionUs) },
        `scheduler: ${decision.action}${decision.rung !== 'none' ? ` (${decision.rung})` : ''}`,
      );
    }
    if (plan) this.#lastPlan = plan;

    if (decision.action === 'fast') return this.#runFast(fastRun!, decision.rung, arrival, deadline, deadlineMs);
    if (decision.action === 'reject') {
      if (decision.shed === 'no_model') {
        this.#emit({ type: 'shed', reason: 'no_model', retry_after_ms: 0 });
        if (decision.local_only) return Promise.reject(new ClawboxError('LOCAL_ONLY', 'this request involves local_only devices or data and no local model is loaded to answer it'));
        return Promise.reject(new ClawboxError('MODEL_NOT_LOADED', 'no model is loaded and the fast path does not match this request'));
      }
      const retry = decision.retry_after_ms ?? this.config.default_deadline_ms;
      this.#emit({ type: 'shed', reason: decision.shed ?? 'estimate', retry_after_ms: retry });
      return Promise.reject(busy(decision.shed ?? 'estimate', retry, deadlineMs));
    }
    if (submission.signal?.aborted) return Promise.reject(cancelled(submission.signal));
    const grant = decision.grant!;
    const group = this.#groups[grant.lane === 'remote' ? 'remote' : 'local'];
    const lane = this.#lanes[grant.lane]!;
    if (decided.evict) this.#shed(decided.evict, 'evicted', now);
    return new Promise<Outcome<Res>>((resolve, reject) => {
      const item: Item<Req, Res> = {
        seq: ++this.#seq,
        priority: cls.priority,
        enqueued: now,
        expectedStart: now + (decision.wait_ms ?? 0),
        request: submission.request,
        plan: plan!,
        grant,
        lane,
        group,
        cls: cls.name,
        arrival: now,
        deadline,
        deadline_ms: deadlineMs,
        est: (decision.predicted_ms ?? null) === null ? deadlineMs : decision.predicted_ms! - (decision.wait_ms ?? 0),
        resolve,
        reject,
        unlisten: null,
        started: null,
        kStart: 0,
        kNow: 1,
        controller: null,
        timer: null,
        answered: false,
        committed: false,
        usage: null,
        fallback: grant.lane === 'remote' ? () => this.#admit({ ...submission, route: 'after_remote' }, arrival, fastRun) : null,
      };
      if (submission.signal) {
        const signal = submission.signal;
        const onAbort = () => this.#cancel(item, signal);
        signal.addEventListener('abort', onAbort, { once: true });
        item.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      group.queue.push(item, now);
      this.#pump(group);
    });
  }

  async #runFast(run: FastRunner<Res>, rung: Rung, arrival: number, deadline: number, deadlineMs: number): Promise<Outcome<Res>> {
    try {
      const result = await run();
      const end = this.#clock.now();
      const late = end > deadline;
      this.#emit({ type: 'done', path: 'fast', rung, total_ms: end - arrival, queue_ms: 0, late });
      return { result, path: 'fast', lane: null, rung, deadline_ms: deadlineMs, late, timings: { queue_ms: 0, service_ms: end - arrival, total_ms: end - arrival } };
    } catch (error) {
      this.#emit({ type: 'failed', path: 'fast', code: codeOf(error) });
      throw error;
    }
  }

  // ---- queue and execution --------------------------------------------------------------------------

  #answer(item: Item<Req, Res>, settle: () => void): void {
    if (item.answered) return;
    item.answered = true;
    item.unlisten?.();
    item.unlisten = null;
    settle();
  }

  #shed(item: Item<Req, Res>, reason: ShedReason, now: number): void {
    item.group.queue.remove(item, now);
    const retry = this.#retryFor(item, now);
    this.#emit({ type: 'shed', reason, retry_after_ms: retry });
    this.#logger?.debug({ reason, waited_ms: Math.round(now - item.arrival), retry_after_ms: retry }, `scheduler: dropped queued request (${reason})`);
    this.#answer(item, () => item.reject(busy(reason, retry, item.deadline_ms)));
  }

  #cancel(item: Item<Req, Res>, signal: AbortSignal): void {
    const now = this.#clock.now();
    if (item.started === null) {
      if (!item.group.queue.remove(item, now)) return;
      this.#emit({ type: 'cancelled', path: item.grant.path, stage: 'queued' });
      this.#answer(item, () => item.reject(cancelled(signal)));
      this.#pump(item.group);
      return;
    }
    this.#emit({ type: 'cancelled', path: item.grant.path, stage: 'running' });
    item.controller?.abort(cancelled(signal));
    // A committed job reports what it did; the abort only stops what it has not started.
    if (!item.committed) this.#answer(item, () => item.reject(cancelled(signal)));
  }

  /** Drops what can no longer make it, starts what fits, and arms the next sweep. */
  #pump(group: Group<Req, Res>): void {
    if (this.#stopped) return;
    const now = this.#clock.now();
    for (const victim of group.queue.codelVictims(now)) this.#shed(victim, 'codel', now);
    for (const item of [...group.queue.items()]) {
      if (!this.#stillFeasible(item, now)) this.#shed(item, 'deadline_unreachable', now);
    }
    for (;;) {
      const next = group.queue.next(now, (item) => this.#canStart(group, item));
      if (!next) break;
      group.queue.remove(next, now);
      this.#start(next, now);
    }
    this.#armSweep(group, now);
  }

  /**
   * Re-checks a queued item against its deadline at today's estimate, from the earliest moment a slot can
   * be free for it (a lower bound on its wait); may shorten its output budget.
   */
  #stillFeasible(item: Item<Req, Res>, now: number): boolean {
    const k = Math.min(this.#groupLimit(item.group), item.group.running.size + 1);
    const raw = item.lane.model.estimate(item.plan, item.grant.budget, k);
    if (raw === null) return true;
    const slots = this.#slotsFor(item.group, item.cls);
    const start = now + (slots > 0 ? Math.min(...this.#slotTimes(item.group.running, slots, now)) : 0);
    const service = raw * (1 + this.config.estimate_margin);
    item.est = service;
    if (start + service <= item.deadline) return true;
    const canShorten = item.grant.budget === 'full' && item.plan.short_output_tokens !== undefined && item.plan.short_output_tokens < item.plan.max_output_tokens;
    if (!canShorten) return false;
    const shortRaw = item.lane.model.estimate(item.plan, 'short', k);
    if (shortRaw === null || start + shortRaw * (1 + this.config.estimate_margin) > item.deadline) return false;
    item.est = shortRaw * (1 + this.config.estimate_margin);
    item.grant = { ...item.grant, budget: 'short', rung: item.grant.rung === 'none' ? 'short' : item.grant.rung, max_output_tokens: outputBudget(item.plan, 'short'), explain: false };
    return true;
  }

  #armSweep(group: Group<Req, Res>, now: number): void {
    let at = Number.POSITIVE_INFINITY;
    const codel = group.queue.nextCheck(now);
    if (codel !== null) at = codel;
    for (const item of group.queue.items()) at = Math.min(at, item.deadline - item.est + 0.001);
    if (at === group.sweepAt) return;
    group.sweep?.cancel();
    group.sweep = null;
    group.sweepAt = at;
    if (!Number.isFinite(at)) return;
    group.sweep = this.#clock.after(Math.max(0, at - now), () => {
      group.sweep = null;
      group.sweepAt = Number.POSITIVE_INFINITY;
      this.#pump(group);
    });
  }

  #start(item: Item<Req, Res>, now: number): void {
    const group = item.group;
    item.started = now;
    group.running.add(item);
    item.kStart = group.running.size;
    item.kNow = group.running.size;
    this.#rescale(group, now);
    const controller = new AbortController();
    item.controller = controller;
    const remaining = item.deadline - now;
    item.timer = this.#clock.after(remaining, () => this.#deadlinePassed(item));
    const lane = item.lane;
    const report: LaneReporter = {
      tokenGap: (ms) => {
        if (lane.model.observeGap(ms, group.running.size)) {
          this.#emit({ type: 'stall', lane: item.grant.lane, gap_ms: ms });
          this.#logger?.debug({ lane: item.grant.lane, gap_ms: Math.round(ms) }, 'scheduler: inter-token stall; service estimate lowered');
          // Queued requests that the slower estimate makes hopeless get their answer now (not re-entering the lane).
          queueMicrotask(() => this.#pump(group));
        }
      },
      done: (usage) => {
        // Observed when the job answers, with the wall time (see ServiceSample.wall_ms).
        item.usage = {
          ...usage,
          concurrency: (item.kStart + group.running.size) / 2,
          budget: item.grant.budget,
          ...(item.plan.kind ? { kind: item.plan.kind } : {}),
        };
      },
    };
    let promise: Promise<Res>;
    try {
      const commit = () => {
        if (item.answered || controller.signal.aborted) return false;
        if (!item.committed) {
          item.committed = true;
          item.timer?.cancel();
          item.timer = null;
        }
        return true;
      };
      promise = lane.run({ request: item.request, plan: item.plan, grant: item.grant, signal: controller.signal, deadline: item.deadline, report, commit });
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (result) => this.#finished(item, result, null),
      (error: unknown) => this.#finished(item, null, error),
    );
  }

  #deadlinePassed(item: Item<Req, Res>): void {
    item.timer = null;
    if (item.answered) return;
    const now = this.#clock.now();
    const error = new ClawboxError('DEADLINE_EXCEEDED', `the request did not finish within its ${item.deadline_ms} ms deadline`, {
      deadline_ms: item.deadline_ms,
    });
    item.controller?.abort(error);
    this.#emit({ type: 'miss', path: item.grant.path, rung: item.grant.rung, total_ms: now - item.arrival });
    this.#answer(item, () => item.reject(error));
    // The lane should return promptly on abort; if it ignores it, take the slot back after a grace period.
    item.timer = this.#clock.after(this.#abortGrace, () => {
      item.timer = null;
      if (!item.group.running.has(item)) return;
      this.#logger?.warn({ lane: item.grant.lane }, 'scheduler: a lane ignored its abort; releasing its slot');
      this.#release(item);
    });
  }

  #release(item: Item<Req, Res>): void {
    item.timer?.cancel();
    item.timer = null;
    if (!item.group.running.delete(item)) return;
    this.#rescale(item.group, this.#clock.now());
    this.#pump(item.group);
  }

  #finished(item: Item<Req, Res>, result: Res | null, error: unknown): void {
    const now = this.#clock.now();
    const wasRunning = item.group.running.has(item);
    if (item.usage) {
      // Only a normal finish measures the whole job (late ones included: they are the costly case).
      item.lane.model.observe(error === null && item.started !== null ? { ...item.usage, wall_ms: now - item.started } : item.usage);
      item.usage = null;
    }
    const brainFailed = error !== null && item.fallback && !item.committed && ['BRAIN_UNAVAILABLE', 'BUSY'].includes(codeOf(error));
    if (brainFailed && !item.answered && now < item.deadline) {
      // The brain failed before the deadline: the ladder goes on below it (local lanes, then BUSY).
      const fallback = item.fallback!;
      this.#emit({ type: 'failed', path: item.grant.path, code: codeOf(error) });
      this.#answer(item, () => fallback().then(item.resolve, item.reject));
    }
    if (!item.answered) {
      if (error === null) {
        const late = now > item.deadline;
        const queueMs = (item.started ?? now) - item.arrival;
        this.#emit({ type: 'done', path: item.grant.path, rung: item.grant.rung, total_ms: now - item.arrival, queue_ms: queueMs, late });
        const outcome: Outcome<Res> = {
          result: result as Res,
          path: item.grant.path,
          lane: item.grant.lane,
          rung: item.grant.rung,
          deadline_ms: item.deadline_ms,
          late,
          timings: { queue_ms: queueMs, service_ms: now - (item.started ?? now), total_ms: now - item.arrival },
        };
        this.#answer(item, () => item.resolve(outcome));
      } else {
        this.#emit({ type: 'failed', path: item.grant.path, code: codeOf(error) });
        this.#answer(item, () => item.reject(error));
      }
    }
    if (wasRunning) {
      this.#completedSinceTune++;
      this.#release(item);
      if (this.#tuneEvery > 0 && this.#completedSinceTune >= this.#tuneEvery) {
        this.#completedSinceTune = 0;
        this.tuneConcurrency();
      }
    }
  }

  #emit(event: SchedulerEvent): void {
    this.stats.record(event);
    this.#onEvent?.(event);
  }

  // ---- status and lifecycle -------------------------------------------------------------------------

  /** Queue length and running requests per group. */
  load(): { queued: number; running: number; remote_queued: number; remote_running: number; mode: 'fifo' | 'lifo' } {
    const now = this.#clock.now();
    return {
      queued: this.#groups.local.queue.length,
      running: this.#groups.local.running.size,
      remote_queued: this.#groups.remote.queue.length,
      remote_running: this.#groups.remote.running.size,
      mode: this.#groups.local.queue.standing(now) ? 'lifo' : 'fifo',
    };
  }

  status(): Record<string, unknown> & { stats: SchedulerStatsSnapshot } {
    const lanes: Record<string, unknown> = {};
    for (const [name, lane] of Object.entries(this.#lanes)) {
      if (lane) lanes[name] = { available: lane.available(), sequences: lane.maxSequences(), service_model: lane.model.snapshot() };
    }
    return {
      ...this.load(),
      concurrency: this.concurrency,
      concurrency_mode: this.config.max_concurrency === 'auto' ? 'auto' : 'fixed',
      max_queue: this.config.max_queue,
      default_deadline_ms: this.config.default_deadline_ms,
      lanes,
      stats: this.stats.snapshot(),
    };
  }

  /** Refuses new work, answers everything queued with BUSY and aborts what runs. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    const now = this.#clock.now();
    for (const group of Object.values(this.#groups)) {
      group.sweep?.cancel();
      group.sweep = null;
      for (const item of [...group.queue.items()]) {
        group.queue.remove(item, now);
        this.#answer(item, () => item.reject(busy('stopping', 1000, item.deadline_ms)));
      }
      for (const item of group.running) {
        const error = new ClawboxError('BUSY', 'the scheduler is stopping', { retry_after_ms: 1000 });
        item.controller?.abort(error);
        item.timer?.cancel();
        if (!item.committed) this.#answer(item, () => item.reject(error));
      }
    }
  }
}

function busy(reason: ShedReason | 'stopping', retryAfterMs: number, deadlineMs: number): ClawboxError {
  const why: Record<string, string> = {
    estimate: `cannot answer within ${deadlineMs} ms now`,
    queue_full: 'the model queue is full',
    evicted: 'a more urgent request took this queue place',
    codel: 'the model queue is not draining; newer requests go first',
    deadline_unreachable: `can no longer finish within ${deadlineMs} ms`,
    stopping: 'the scheduler is stopping',
  };
  return new ClawboxError('BUSY', `busy: ${why[reason] ?? reason}; retry in ${retryAfterMs} ms`, { retry_after_ms: retryAfterMs, reason });
}

function cancelled(signal: AbortSignal): ClawboxError {
  const reason: unknown = signal.reason;
  if (reason instanceof ClawboxError) return reason;
  return new ClawboxError('DEADLINE_EXCEEDED', 'the request was cancelled by its caller', { cancelled: true });
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'INTERNAL';
}

/**
 * Deterministic tests of the scheduler core: a FakeClock, a fixed service-time model and lanes whose jobs
 * finish when the test says. No wall-clock timing is asserted.
 */
import t from 'tap';
import { ClawboxError, isClawboxError } from '../../runtime/errors.js';
import { FakeClock } from './clock.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';
import type { Budget, WorkPlan } from './service-model.js';
import { FakeLane, FixedServiceModel, flush, settle } from './testing.js';

const PLAN: WorkPlan = { prompt_tokens: 10, max_output_tokens: 20, short_output_tokens: 5 };

function fixed(full: number | null, short: number | null = full): FixedServiceModel {
  return new FixedServiceModel((_plan, budget: Budget) => (budget === 'full' ? full : short));
}

function setup(options: Partial<SchedulerOptions<string, string>> & { config?: Record<string, unknown> } = {}) {
  const clock = new FakeClock();
  const logs: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  const scheduler = new Scheduler<string, string>({
    clock,
    plan: () => PLAN,
    lanes: {},
    logger: { debug: (obj, msg) => logs.push({ obj: obj as Record<string, unknown>, msg }), warn: (obj, msg) => logs.push({ obj: obj as Record<string, unknown>, msg }) },
    ...options,
    config: { estimate_margin: 0, max_concurrency: 1, ...options.config },
  });
  return { clock, scheduler, logs };
}

function code(error: unknown): string {
  return isClawboxError(error) ? error.code : `not a ClawboxError: ${String(error)}`;
}

t.test('admits a request that fits its deadline and reports path, rung and timings', async (t) => {
  const main = new FakeLane(fixed(100));
  const { clock, scheduler, logs } = setup({ lanes: { main } });
  const outcome = settle(scheduler.submit({ request: 'hello', source: 'mqtt' }));
  t.equal(main.running.length, 1, 'started at once');
  t.equal(main.jobs[0]!.job.grant.rung, 'none');
  t.equal(main.jobs[0]!.job.grant.max_output_tokens, 20);
  t.equal(main.jobs[0]!.job.grant.explain, true);
  t.equal(main.jobs[0]!.job.deadline, clock.now() + 200, 'default deadline 200 ms');
  clock.advance(90);
  main.jobs[0]!.finish('answer');
  await flush();
  const value = outcome.value()!;
  t.equal(value.result, 'answer');
  t.equal(value.path, 'model');
  t.equal(value.lane, 'main');
  t.equal(value.late, false);
  t.equal(value.timings.total_ms, 90);
  t.equal(value.timings.queue_ms, 0);
  const decision = logs.find((l) => l.msg.startsWith('scheduler: admit'));
  t.ok(decision, 'the decision is logged at debug');
  t.match(decision?.obj.reason, /main\/full: wait 0\.0 \+ service 100\.0 <= 200\.0 ms/);
  t.equal(scheduler.stats.snapshot().decisions.model, 1);
});

t.test('the queue ahead counts: a second request waits, a third that would miss walks the ladder', async (t) => {
  const main = new FakeLane(fixed(80, 30));
  const { clock, scheduler } = setup({ lanes: { main } });
  const a = settle(scheduler.submit({ request: 'a' }));
  const b = settle(scheduler.submit({ request: 'b' }));
  t.equal(main.running.length, 1, 'concurrency 1: b waits');
  t.equal(scheduler.load().queued, 1);
  // c: 80 (a) + 80 (b) + 80 = 240 > 200 in full; 80 + 80 + 30 = 190 with the short budget.
  const c = settle(scheduler.submit({ request: 'c' }));
  t.equal(scheduler.load().queued, 2);
  clock.advance(80);
  main.jobs[0]!.finish();
  await flush();
  t.equal(main.jobs[1]!.job.request, 'b', 'FIFO while the queue drains');
  clock.advance(80);
  main.jobs[1]!.finish();
  await flush();
  const job = main.jobs[2]!.job;
  t.equal(job.request, 'c');
  t.equal(job.grant.rung, 'short');
  t.equal(job.grant.budget, 'short');
  t.equal(job.grant.max_output_tokens, 5);
  t.equal(job.grant.explain, false, 'no free-text explanation on the short rung');
  clock.advance(30);
  main.jobs[2]!.finish();
  await flush();
  t.equal(a.value()?.rung, 'none');
  t.equal(b.value()?.rung, 'none');
  t.equal(c.value()?.rung, 'short');
  t.equal(c.value()?.late, false);
  t.same(scheduler.stats.snapshot().degraded, { short: 1 });
});

t.test('ladder: small model, then remote brain, then BUSY', async (t) => {
  const main = new FakeLane(fixed(150, 120));
  const small = new FakeLane(fixed(60));
  const remote = new FakeLane(fixed(100));
  const { scheduler } = setup({ lanes: { main, small, remote }, config: { max_concurrency: 2 } });
  main.sequences = 1;
  small.sequences = 1;
  remote.sequences = 1;
  settle(scheduler.submit({ request: 'a' }));
  t.equal(main.running.length, 1);
  // Main is busy for 150 ms: full 300 and short 270 miss; the idle small model fits.
  const b = settle(scheduler.submit({ request: 'b' }));
  t.equal(small.running.length, 1, 'rung 3: small model');
  t.equal(small.jobs[0]!.job.grant.rung, 'small');
  // Now both local slots are busy: main 150 + 150, small 60 + 60 = 120 fits on the small lane again? No:
  // the group limit is 2 and both run, so the earliest slot frees at 60 ms: small 60+60 = 120 fits.
  const c = settle(scheduler.submit({ request: 'c' }));
  t.equal(scheduler.load().queued, 1, 'queued behind the small model');
  // A fourth: small 60+60+60 = 180 fits too; a fifth: 240 misses, short on small too -> remote.
  settle(scheduler.submit({ request: 'd' }));
  const e = settle(scheduler.submit({ request: 'e' }));
  t.equal(remote.running.length, 1, 'rung 4: remote brain');
  t.equal(remote.jobs[0]!.job.grant.path, 'remote');
  // A sixth: remote busy 100 + 100 = 200 fits exactly; a seventh: nothing fits -> BUSY.
  settle(scheduler.submit({ request: 'f' }));
  const g = settle(scheduler.submit({ request: 'g' }));
  await flush();
  t.equal(code(g.error()), 'BUSY');
  const details = (g.error() as ClawboxError).details;
  t.type(details.retry_after_ms, 'number');
  t.ok((details.retry_after_ms as number) >= 10, 'a sensible retry hint');
  t.equal(details.reason, 'estimate');
  t.notOk(b.done() || c.done() || e.done(), 'admitted requests are still running or queued');
  t.same(scheduler.stats.snapshot().degraded, { small: 3, remote: 2 });
});

t.test('one more parallel sequence is refused when it would push running requests past their deadline', async (t) => {
  // Each extra sequence slows every running one: 80 ms alone, 160 with two, 240 with three.
  const main = new FakeLane(new FixedServiceModel((_p, _b, k) => 80 * k));
  const { clock, scheduler } = setup({ lanes: { main }, config: { max_concurrency: 3 } });
  settle(scheduler.submit({ request: 'a' }));
  clock.advance(10);
  settle(scheduler.submit({ request: 'b' }));
  t.equal(main.running.length, 2, 'b fits: a then ends at 150, b at 170');
  clock.advance(10);
  const decision = scheduler.decide({ request: 'c' });
  t.equal(decision.action, 'reject');
  t.match(decision.reason, /would push 2 running request\(s\) past their deadline/);
  const c = settle(scheduler.submit({ request: 'c' }));
  await flush();
  t.equal(code(c.error()), 'BUSY');
  t.equal(main.running.length, 2);
});

t.test('an asynchronous planner is awaited; the deadline still runs from arrival', async (t) => {
  const main = new FakeLane(fixed(100));
  const { clock, scheduler } = setup({
    lanes: { main },
    plan: async () => {
      await flush();
      return { ...PLAN, kind: 'async' };
    },
  });
  const a = settle(scheduler.submit({ request: 'a' }));
  t.equal(main.jobs.length, 0, 'not decided before the plan is known');
  await flush();
  t.equal(main.jobs.length, 1);
  t.equal(main.jobs[0]!.job.plan.kind, 'async');
  t.equal(main.jobs[0]!.job.deadline, clock.now() + 200);
  main.jobs[0]!.finish();
  await flush();
  t.ok(a.value());
  t.throws(() => scheduler.decide({ request: 'b' }), TypeError, 'decide() cannot wait for a plan');
  t.equal(scheduler.decide({ request: 'b', plan: PLAN }).action, 'admit');
});

t.test('fast path first: a matching request never waits behind model work', async (t) => {
  const main = new FakeLane(fixed(150));
  const { scheduler } = setup({
    lanes: { main },
    tryFastPath: (req) => (req.startsWith('turn') ? () => `fast:${req}` : null),
  });
  settle(scheduler.submit({ request: 'a' }));
  settle(scheduler.submit({ request: 'b' }));
  const fast = await scheduler.submit({ request: 'turn on the lamp' });
  t.equal(fast.path, 'fast');
  t.equal(fast.rung, 'none', 'not a degradation');
  t.equal(fast.result, 'fast:turn on the lamp');
  t.equal(main.jobs.length, 1, 'the model was not used');
});

t.test('fast path as fallback: rung 1 of the ladder when the model would miss', async (t) => {
  const main = new FakeLane(fixed(150));
  const { scheduler } = setup({
    config: { fast_path: 'fallback' },
    lanes: { main },
    // An async matcher (the agent's reads its device list).
    tryFastPath: async (req) => (req.startsWith('turn') ? () => 'fast' : null),
  });
  const first = settle(scheduler.submit({ request: 'turn on the lamp' }));
  await flush();
  t.equal(main.jobs.length, 1, 'the model serves it while it can');
  const second = await scheduler.submit({ request: 'turn off the lamp' });
  t.equal(second.path, 'fast');
  t.equal(second.rung, 'fast', 'counted as degraded to the fast path');
  t.notOk(first.done());
});

t.test('BUSY carries retry_after_ms from the queue drain time, and the retry then fits', async (t) => {
  const main = new FakeLane(fixed(150));
  const { clock, scheduler } = setup({ lanes: { main } });
  settle(scheduler.submit({ request: 'a' }));
  // 150 remaining + 150 = 300 > 200: needs the running one to drain by 100 ms first.
  const rejected = settle(scheduler.submit({ request: 'b' }));
  await flush();
  t.equal(code(rejected.error()), 'BUSY');
  t.equal((rejected.error() as ClawboxError).details.retry_after_ms, 100);
  t.match((rejected.error() as ClawboxError).message, /retry in 100 ms/);
  clock.advance(99);
  t.equal(scheduler.decide({ request: 'b' }).action, 'reject', 'one ms early is still too early');
  clock.advance(1);
  t.equal(scheduler.decide({ request: 'b' }).action, 'admit', 'at retry_after_ms it fits');
});

t.test('a request that cannot fit even on an idle lane is BUSY with the drain time plus its service', async (t) => {
  const main = new FakeLane(fixed(250));
  const { scheduler } = setup({ lanes: { main } });
  const decision = scheduler.decide({ request: 'x' });
  t.equal(decision.action, 'reject');
  t.equal(decision.retry_after_ms, 250);
  t.match(decision.reason, /service 250\.0 > 200\.0/);
});

t.test('no model loaded: MODEL_NOT_LOADED, while the fast path still answers', async (t) => {
  const main = new FakeLane(fixed(100));
  main.up = false;
  const { scheduler } = setup({ lanes: { main }, tryFastPath: (req) => (req === 'lamp on' ? () => 'ok' : null) });
  const error = await scheduler.submit({ request: 'tell me a story' }).catch((e: unknown) => e);
  t.equal(code(error), 'MODEL_NOT_LOADED');
  t.equal((await scheduler.submit({ request: 'lamp on' })).result, 'ok');
  main.up = true;
  scheduler.setLane('main', main);
  t.equal(scheduler.decide({ request: 'tell me a story' }).action, 'admit', 'admitted once the lane is up');
});

t.test('deadlines: per source, per request, bounded', async (t) => {
  const main = new FakeLane(fixed(10));
  const { scheduler } = setup({
    lanes: { main },
    config: { sources: { channel: { deadline_ms: 1500 } }, min_deadline_ms: 50, max_deadline_ms: 5000 },
  });
  t.equal(scheduler.deadlineFor('mqtt', undefined), 200);
  t.equal(scheduler.deadlineFor('channel', undefined), 1500);
  t.equal(scheduler.deadlineFor('mqtt', 800), 800);
  t.equal(scheduler.deadlineFor('mqtt', 1), 50, 'raised to the minimum');
  t.equal(scheduler.deadlineFor('mqtt', 1e9), 5000, 'lowered to the maximum');
  t.equal(scheduler.deadlineFor('mqtt', Number.NaN), 200, 'nonsense falls back to the default');
  t.equal(scheduler.classOf('panel').name, 'high');
  t.equal(scheduler.classOf('channel').name, 'low');
  t.equal(scheduler.classOf('unknown-source').name, 'normal');
});

t.test('the queue is bounded; a more urgent arrival evicts the least urgent', async (t) => {
  const main = new FakeLane(fixed(10));
  const { scheduler } = setup({ lanes: { main }, config: { max_queue: 2, default_deadline_ms: 10000 } });
  settle(scheduler.submit({ request: 'run', source: 'mqtt' }));
  const low = settle(scheduler.submit({ request: 'low', source: 'channel' }));
  settle(scheduler.submit({ request: 'q2', source: 'mqtt' }));
  t.equal(scheduler.load().queued, 2);
  const over = settle(scheduler.submit({ request: 'q3', source: 'channel' }));
  await flush();
  t.equal(code(over.error()), 'BUSY', 'full queue, no one less urgent: refused');
  t.equal((over.error() as ClawboxError).details.reason, 'queue_full');
  const urgent = settle(scheduler.submit({ request: 'urgent', source: 'mqtt' }));
  await flush();
  t.equal(code(low.error()), 'BUSY', 'the low-priority queued request made room');
  t.equal((low.error() as ClawboxError).details.reason, 'evicted');
  t.notOk(urgent.done(), 'the urgent one is queued');
  t.equal(scheduler.load().queued, 2);
  t.same(scheduler.stats.snapshot().shed, { queue_full: 1, evicted: 1 });
});

t.test('priorities: higher class first; a reservation keeps a slot for its class', async (t) => {
  const main = new FakeLane(fixed(10));
  const { clock, scheduler } = setup({
    lanes: { main },
    config: { max_concurrency: 2, default_deadline_ms: 10000, classes: { high: { reserve: 0.5 } } },
  });
  settle(scheduler.submit({ request: 'n1', source: 'mqtt' }));
  settle(scheduler.submit({ request: 'n2', source: 'mqtt' }));
  t.equal(main.running.length, 1, 'the second slot is reserved for the high class');
  const p = settle(scheduler.submit({ request: 'panel', source: 'panel' }));
  t.equal(main.running.length, 2, 'the panel request takes its reserved slot at once');
  t.equal(main.jobs[1]!.job.request, 'panel');
  const low = settle(scheduler.submit({ request: 'chat', source: 'channel' }));
  settle(scheduler.submit({ request: 'n3', source: 'mqtt' }));
  clock.advance(5);
  main.jobs[0]!.finish();
  await flush();
  t.equal(main.jobs[2]!.job.request, 'n2', 'normal before low, although low arrived earlier than n3');
  main.jobs[2]!.finish();
  await flush();
  t.equal(main.jobs[3]!.job.request, 'n3');
  main.jobs[1]!.finish();
  main.jobs[3]!.finish();
  await flush();
  t.equal(main.jobs[4]!.job.request, 'chat', 'low runs last');
  main.jobs[4]!.finish();
  await flush();
  t.ok(p.done() && low.done());
});

t.test('adaptive LIFO and CoDel drops once queued requests run late past the interval', async (t) => {
  const main = new FakeLane(fixed(50));
  const { clock, scheduler } = setup({ lanes: { main }, config: { default_deadline_ms: 5000, codel: { target_ms: 5, interval_ms: 100 } } });
  settle(scheduler.submit({ request: 'a' }));
  clock.advance(1);
  const b = settle(scheduler.submit({ request: 'b' })); // promised start +50
  clock.advance(1);
  const c = settle(scheduler.submit({ request: 'c' })); // promised start +100
  t.equal(scheduler.load().mode, 'fifo', 'nothing late: FIFO');
  // a runs far past its estimate: b is late from +55; after the interval the queue counts as standing.
  clock.advance(100);
  await flush();
  t.equal(scheduler.load().mode, 'fifo', 'late, but not for an interval yet');
  t.notOk(b.done());
  clock.advance(54);
  await flush();
  t.equal(scheduler.load().mode, 'lifo');
  t.equal(code(b.error()), 'BUSY', 'b is more than target late under a standing queue: dropped by the sweep');
  t.equal((b.error() as ClawboxError).details.reason, 'codel');
  t.type((b.error() as ClawboxError).details.retry_after_ms, 'number');
  t.notOk(c.done(), 'c, the newest, is kept for the next free slot');
  const d = settle(scheduler.submit({ request: 'd' }));
  await flush();
  t.equal(code(c.error()), 'BUSY', 'c is no longer the newest: dropped');
  main.jobs[0]!.finish();
  await flush();
  t.equal(main.jobs[1]!.job.request, 'd', 'the newest request is served');
  main.jobs[1]!.finish();
  await flush();
  t.equal(d.value()?.path, 'model');
  t.same(scheduler.stats.snapshot().shed, { codel: 2 });
  t.equal(scheduler.load().mode, 'fifo', 'drained: FIFO again');
});

t.test('a burst that admission sized right is served in order, with no drops', async (t) => {
  const main = new FakeLane(fixed(50));
  const { clock, scheduler } = setup({ lanes: { main }, config: { default_deadline_ms: 1000 } });
  const answers = ['a', 'b', 'c', 'd', 'e'].map((r) => settle(scheduler.submit({ request: r })));
  t.equal(scheduler.load().queued, 4, 'all admitted: 250 ms of work in a 1000 ms deadline');
  for (let i = 0; i < 5; i++) {
    clock.advance(50);
    main.jobs[i]!.finish();
    await flush();
  }
  t.same(main.jobs.map((j) => j.job.request), ['a', 'b', 'c', 'd', 'e'], 'FIFO: the queue stood for 250 ms but was never late');
  t.ok(answers.every((a) => a.value()?.late === false));
  t.same(scheduler.stats.snapshot().shed, {});
});

t.test('a queued request that can no longer make its deadline is dropped early, not run late', async (t) => {
  const main = new FakeLane(fixed(80));
  const { clock, scheduler } = setup({ lanes: { main } });
  settle(scheduler.submit({ request: 'a' }));
  const b = settle(scheduler.submit({ request: 'b' }));
  // a overruns: at 121 ms b could only finish at 201 > 200.
  clock.advance(121);
  await flush();
  t.equal(code(b.error()), 'BUSY');
  t.equal((b.error() as ClawboxError).details.reason, 'deadline_unreachable');
  t.equal(main.jobs.length, 1, 'b never started');
});

t.test('a queued request is shortened at dispatch when only the short budget still fits', async (t) => {
  const main = new FakeLane(fixed(80, 20));
  const { clock, scheduler } = setup({ lanes: { main } });
  settle(scheduler.submit({ request: 'a' }));
  const b = settle(scheduler.submit({ request: 'b' }));
  clock.advance(150);
  main.jobs[0]!.finish();
  await flush();
  t.equal(main.jobs[1]!.job.grant.budget, 'short', '150 + 80 misses, 150 + 20 fits');
  main.jobs[1]!.finish();
  await flush();
  t.equal(b.value()?.rung, 'short');
});

t.test('deadline cancellation: the running job is aborted at its deadline via AbortSignal', async (t) => {
  const main = new FakeLane(fixed(100));
  const { clock, scheduler } = setup({ lanes: { main } });
  const a = settle(scheduler.submit({ request: 'a' }));
  const signal = main.jobs[0]!.job.signal;
  clock.advance(199);
  t.notOk(signal.aborted);
  clock.advance(1);
  await flush();
  t.ok(signal.aborted, 'aborted at the deadline');
  t.equal(code(signal.reason), 'DEADLINE_EXCEEDED');
  t.equal(code(a.error()), 'DEADLINE_EXCEEDED');
  t.equal(scheduler.stats.snapshot().deadline_misses, 1);
  t.equal(scheduler.load().running, 0, 'the slot is free again');
});

t.test('a lane that ignores its abort: the caller is answered at the deadline, the slot comes back after a grace', async (t) => {
  const main = new FakeLane(fixed(100));
  main.honourAbort = false;
  const { clock, scheduler, logs } = setup({ lanes: { main }, abort_grace_ms: 500 });
  const a = settle(scheduler.submit({ request: 'a' }));
  clock.advance(200);
  await flush();
  t.equal(code(a.error()), 'DEADLINE_EXCEEDED', 'answered at the deadline, not when the lane returns');
  t.equal(scheduler.load().running, 1);
  clock.advance(500);
  await flush();
  t.equal(scheduler.load().running, 0);
  t.ok(logs.some((l) => /ignored its abort/.test(l.msg)));
});

t.test('the caller cancels: queued requests leave the queue, running ones are aborted', async (t) => {
  const main = new FakeLane(fixed(50));
  const { scheduler } = setup({ lanes: { main }, config: { default_deadline_ms: 1000 } });
  const runningCtl = new AbortController();
  const queuedCtl = new AbortController();
  const a = settle(scheduler.submit({ request: 'a', signal: runningCtl.signal }));
  const b = settle(scheduler.submit({ request: 'b', signal: queuedCtl.signal }));
  queuedCtl.abort();
  await flush();
  t.ok(b.done());
  t.equal(scheduler.load().queued, 0);
  runningCtl.abort(new ClawboxError('BUSY', 'client gone'));
  await flush();
  t.ok(main.jobs[0]!.job.signal.aborted, 'the job sees the abort');
  t.equal(code(a.error()), 'BUSY', 'the caller reason is kept');
  t.equal(main.jobs.length, 1, 'b never ran');
});

t.test('unmeasured lane: one probe at a time', async (t) => {
  const main = new FakeLane(fixed(null));
  const { scheduler } = setup({ lanes: { main } });
  const first = scheduler.decide({ request: 'a' });
  t.equal(first.action, 'admit');
  t.equal(first.predicted_ms, null);
  t.match(first.reason, /probe/);
  settle(scheduler.submit({ request: 'a' }));
  const second = settle(scheduler.submit({ request: 'b' }));
  await flush();
  t.equal(code(second.error()), 'BUSY');
});

t.test('stall watch: a long inter-token gap is reported and re-checks the queue at once', async (t) => {
  let slow = false;
  const model = new FixedServiceModel(() => (slow ? 190 : 60));
  model.stallAbove = 50;
  const main = new FakeLane(model);
  const { scheduler } = setup({ lanes: { main } });
  settle(scheduler.submit({ request: 'a' }));
  const b = settle(scheduler.submit({ request: 'b' }));
  main.jobs[0]!.job.report.tokenGap(10);
  t.equal(scheduler.stats.snapshot().stalls, 0);
  slow = true;
  main.jobs[0]!.job.report.tokenGap(120);
  await flush();
  t.equal(scheduler.stats.snapshot().stalls, 1);
  t.equal(code(b.error()), 'BUSY', 'b cannot make it at the slower rate: told at once');
  t.equal(model.gaps.length, 2);
  t.equal(model.gaps[1]!.concurrency, 1, 'gaps carry the concurrency they were measured at');
});

t.test('usage reports feed the lane model with the concurrency seen', async (t) => {
  const model = fixed(50);
  const main = new FakeLane(model);
  const { clock, scheduler } = setup({ lanes: { main }, config: { max_concurrency: 2 } });
  const a = settle(scheduler.submit({ request: 'a', plan: { ...PLAN, kind: 'tool' } }));
  const b = settle(scheduler.submit({ request: 'b' }));
  clock.advance(100);
  main.jobs[0]!.job.report.done({ evaluated_tokens: 10, prefill_ms: 20, generated_tokens: 8, decode_ms: 70 });
  t.equal(model.samples.length, 0, 'observed when the job answers, with its wall time');
  clock.advance(5);
  main.jobs[0]!.finish();
  await flush();
  t.ok(a.done());
  t.match(model.samples[0], { evaluated_tokens: 10, generated_tokens: 8, concurrency: 1.5, kind: 'tool', budget: 'full', wall_ms: 105 });
  // A failed job still reports its token work, but no wall time (it did not finish its work).
  main.jobs[1]!.job.report.done({ evaluated_tokens: 4, prefill_ms: 8, generated_tokens: 2, decode_ms: 10 });
  main.jobs[1]!.fail(new Error('engine crashed'));
  await flush();
  t.ok(b.done());
  t.match(model.samples[1], { evaluated_tokens: 4 });
  t.equal(model.samples[1]!.wall_ms, undefined);
});

t.test('auto concurrency: raised while throughput grows within the deadline, not beyond', async (t) => {
  // Two in parallel: 1.3x slower each (throughput 1.54x); three: 2.2x (150 ms x 2.2 misses the budget).
  const factor = [0, 1, 1.3, 2.2];
  const model = new FixedServiceModel((_p, _b, k) => 70 * (factor[k] ?? 10));
  const main = new FakeLane(model);
  const { scheduler } = setup({ lanes: { main }, config: { max_concurrency: 'auto' }, tune_every: 0 });
  t.equal(scheduler.concurrency, 1, 'auto starts at one');
  scheduler.decide({ request: 'a' });
  settle(scheduler.submit({ request: 'a' }));
  t.equal(scheduler.tuneConcurrency(), 2);
  t.equal(scheduler.tuneConcurrency(), 2, '3 in parallel would break the deadline');
  scheduler.setConcurrency(5);
  t.equal(scheduler.concurrency, 5, 'the hook sets it directly');
  main.sequences = 3;
  t.equal(scheduler.concurrency, 3, 'never above the lane sequences');
});

t.test('status: counts, recent percentiles and shed rate', async (t) => {
  const main = new FakeLane(fixed(150));
  const { clock, scheduler } = setup({ lanes: { main } });
  const a = settle(scheduler.submit({ request: 'a' }));
  settle(scheduler.submit({ request: 'b' }));
  clock.advance(120);
  main.jobs[0]!.finish();
  await flush();
  t.ok(a.done());
  const status = scheduler.status();
  t.equal(status.stats.completed, 1);
  t.equal(status.stats.recent.shed_rate, 0.5);
  t.same(status.stats.recent.latency_ms.model, { count: 1, p50: 120, p99: 120, max: 120 });
  t.equal(status.concurrency, 1);
  t.ok(typeof status.stats.decision_us.max === 'number');
});

t.test('stop answers queued work with BUSY and aborts running work', async (t) => {
  const main = new FakeLane(fixed(50));
  const { scheduler } = setup({ lanes: { main }, config: { default_deadline_ms: 1000 } });
  const a = settle(scheduler.submit({ request: 'a' }));
  const b = settle(scheduler.submit({ request: 'b' }));
  scheduler.stop();
  await flush();
  t.equal(code(a.error()), 'BUSY');
  t.equal(code(b.error()), 'BUSY');
  t.ok(main.jobs[0]!.job.signal.aborted);
  t.equal(code(await scheduler.submit({ request: 'c' }).catch((e: unknown) => e)), 'BUSY');
});

t.test('a committed job is answered with its own result, however late; a job past its deadline may not commit', async (t) => {
  const main = new FakeLane(fixed(100));
  main.honourAbort = false;
  const { clock, scheduler } = setup({ lanes: { main } });

  const committed = settle(scheduler.submit({ request: 'turn on the heater', source: 'mqtt' }));
  t.equal(main.jobs[0]!.job.commit(), true, 'before the deadline the action may start');
  clock.advance(500);
  await flush();
  t.notOk(committed.done(), 'the deadline passed, but the caller is not told DEADLINE_EXCEEDED about an action that runs');
  main.jobs[0]!.finish('heater on');
  await flush();
  t.equal(committed.value()?.result, 'heater on', "the caller gets the device's answer");
  t.equal(committed.value()?.late, true, 'marked late');

  const missed = settle(scheduler.submit({ request: 'turn on the heater', source: 'mqtt' }));
  clock.advance(500);
  await flush();
  t.equal(code(missed.error()), 'DEADLINE_EXCEEDED', 'an uncommitted job misses its deadline as before');
  t.equal(main.jobs[1]!.job.commit(), false, 'and may not start its action afterwards');
  main.jobs[1]!.finish('too late');
});

t.test('a caller that cancels a committed job still gets what it did', async (t) => {
  const main = new FakeLane(fixed(100));
  main.honourAbort = false;
  const { scheduler } = setup({ lanes: { main } });
  const controller = new AbortController();
  const outcome = settle(scheduler.submit({ request: 'lock the door', source: 'mqtt', signal: controller.signal }));
  t.equal(main.jobs[0]!.job.commit(), true);
  controller.abort();
  await flush();
  t.notOk(outcome.done(), 'not answered "cancelled" while the action runs');
  t.equal(main.jobs[0]!.job.commit(), false, 'further actions of the job may not start');
  main.jobs[0]!.finish('locked');
  await flush();
  t.equal(outcome.value()?.result, 'locked');
});

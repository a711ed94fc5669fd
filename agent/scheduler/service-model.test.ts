import t from 'tap';
import { FakeClock } from './clock.js';
import { resolveSchedulerConfig } from './config-schema.js';
import { AdaptiveQueue } from './queue.js';
import { EwmaServiceModel, evaluatedTokens } from './service-model.js';

const plan = { prompt_tokens: 20, max_output_tokens: 10 };

t.test('no estimate before a measurement; a seed gives one at once', async (t) => {
  const clock = new FakeClock();
  t.equal(new EwmaServiceModel({ clock }).estimate(plan, 'full', 1), null);
  const seeded = new EwmaServiceModel({ clock, seed: { prefill_overhead_ms: 5, prefill_ms_per_token: 2, decode_ms_per_token: 10 } });
  // 5 + 20 x 2 + (10 - 1) x 10
  t.equal(Math.round(seeded.estimate(plan, 'full', 1)!), 135);
  t.match(seeded.snapshot(), { prefill_overhead_ms: 5, prefill_ms_per_token: 2, decode_ms_per_token: { 1: 10 } });
});

t.test('prefill: the fit separates the fixed cost from the per-token cost', async (t) => {
  const model = new EwmaServiceModel({ clock: new FakeClock(), alpha: 0.3 });
  for (let i = 0; i < 40; i++) {
    const tokens = [8, 16, 64, 128][i % 4]!;
    model.observe({ evaluated_tokens: tokens, prefill_ms: 12 + 3 * tokens, generated_tokens: 5, decode_ms: 40, concurrency: 1 });
  }
  const snap = model.snapshot();
  t.ok(Math.abs(snap.prefill_overhead_ms! - 12) < 0.5, `overhead ${snap.prefill_overhead_ms}`);
  t.ok(Math.abs(snap.prefill_ms_per_token! - 3) < 0.05, `per token ${snap.prefill_ms_per_token}`);
  t.equal(snap.decode_ms_per_token['1'], 10);
});

t.test('residual: time a job took beyond prefill + decode is learned and added to estimates', async (t) => {
  const model = new EwmaServiceModel({ clock: new FakeClock(), seed: { prefill_ms_per_token: 2, decode_ms_per_token: 10 } });
  const before = model.estimate(plan, 'full', 1)!;
  t.equal(model.snapshot().residual_ms, null, 'nothing added before a job reports its wall time');
  model.observe({ evaluated_tokens: 20, prefill_ms: 40, generated_tokens: 10, decode_ms: 90, concurrency: 1 });
  t.equal(model.estimate(plan, 'full', 1), before, 'samples without wall time add nothing');
  // Every job took 30 ms more than its engine time (validation, execution, event-loop delay).
  for (let i = 0; i < 20; i++) model.observe({ evaluated_tokens: 20, prefill_ms: 40, generated_tokens: 10, decode_ms: 90, concurrency: 1, wall_ms: 160 });
  const steady = model.estimate(plan, 'full', 1)! - before;
  t.ok(Math.abs(steady - 30) < 2, `a steady residual adds itself (${steady.toFixed(1)} ms)`);
  // A noisy residual (10 or 50 ms, mean 30) adds its deviation too.
  for (let i = 0; i < 40; i++) model.observe({ evaluated_tokens: 20, prefill_ms: 40, generated_tokens: 10, decode_ms: 90, concurrency: 1, wall_ms: i % 2 ? 140 : 180 });
  const noisy = model.estimate(plan, 'full', 1)! - before;
  t.ok(noisy > steady + 10, `a noisy residual adds more than its mean (${noisy.toFixed(1)} ms)`);
  t.match(model.snapshot().residual_ms, { mean: Number, added: Number });
});

t.test('prefix cache: a miss adds the prefix to the evaluated tokens', async (t) => {
  t.equal(evaluatedTokens({ prompt_tokens: 12, prefix_tokens: 200, max_output_tokens: 5 }), 12, 'cached by default');
  t.equal(evaluatedTokens({ prompt_tokens: 12, prefix_tokens: 200, prefix_cached: false, max_output_tokens: 5 }), 212);
  const model = new EwmaServiceModel({ clock: new FakeClock(), seed: { prefill_ms_per_token: 1, decode_ms_per_token: 10 } });
  const hit = model.estimate({ prompt_tokens: 12, prefix_tokens: 200, max_output_tokens: 5 }, 'full', 1)!;
  const miss = model.estimate({ prompt_tokens: 12, prefix_tokens: 200, prefix_cached: false, max_output_tokens: 5 }, 'full', 1)!;
  t.equal(Math.round(miss - hit), 200);
});

t.test('output tokens: the caller hint, else what this kind generated, capped by the budget', async (t) => {
  const model = new EwmaServiceModel({ clock: new FakeClock(), seed: { prefill_ms_per_token: 1, decode_ms_per_token: 10 } });
  const tool = { prompt_tokens: 10, max_output_tokens: 64, short_output_tokens: 24, kind: 'tool' };
  t.equal(model.expectedOutput(tool, 'full'), 64, 'unknown: the whole budget');
  t.equal(model.expectedOutput({ ...tool, expected_output_tokens: 18 }, 'full'), 18);
  for (let i = 0; i < 20; i++) model.observe({ evaluated_tokens: 10, prefill_ms: 10, generated_tokens: 12, decode_ms: 110, concurrency: 1, kind: 'tool' });
  t.equal(model.expectedOutput(tool, 'full'), 12);
  t.equal(model.expectedOutput(tool, 'short'), 24, 'short budget not learned yet: its cap');
  t.equal(model.expectedOutput({ ...tool, max_output_tokens: 8 }, 'full'), 8, 'never above the budget');
});

t.test('parallel sequences: measured per count, extrapolated for unmeasured counts', async (t) => {
  const model = new EwmaServiceModel({ clock: new FakeClock(), batch_cost: 0.5, seed: { prefill_ms_per_token: 0, decode_ms_per_token: 10 } });
  const p = { prompt_tokens: 1, max_output_tokens: 11, expected_output_tokens: 11 };
  t.equal(Math.round(model.estimate(p, 'full', 1)!), 100);
  t.equal(Math.round(model.estimate(p, 'full', 3)!), 200, 'unmeasured: +50 % per extra sequence');
  for (let i = 0; i < 30; i++) model.observe({ evaluated_tokens: 1, prefill_ms: 0, generated_tokens: 11, decode_ms: 130, concurrency: 2 });
  t.equal(Math.round(model.estimate(p, 'full', 2)!), 130, 'measured at 2');
  t.equal(Math.round(model.estimate(p, 'full', 3)!), Math.round((130 * 2) / 1.5), 'extrapolated from the nearest measured count');
});

t.test('stall watch: one slow gap slows every estimate at once, then it decays', async (t) => {
  const clock = new FakeClock();
  const model = new EwmaServiceModel({ clock, stall_factor: 4, stall_half_life_ms: 1000, seed: { prefill_ms_per_token: 0, decode_ms_per_token: 10 } });
  const p = { prompt_tokens: 1, max_output_tokens: 11, expected_output_tokens: 11 };
  t.equal(model.observeGap(12, 1), false, 'a normal gap');
  const before = model.estimate(p, 'full', 1)!;
  t.equal(model.observeGap(70, 1), true, 'a gap far above the average is a stall');
  const after = model.estimate(p, 'full', 1)!;
  t.ok(after > before * 5, `estimate ${before.toFixed(1)} -> ${after.toFixed(1)} at once`);
  clock.advance(1000);
  const later = model.estimate(p, 'full', 1)!;
  t.ok(later < after * 0.6 && later > before, 'half the excess after one half-life');
  clock.advance(20000);
  t.ok(Math.abs(model.estimate(p, 'full', 1)! - before) < 0.01, 'recovered when nothing else happens');
  t.equal(model.snapshot().stalls, 1);
  t.equal(model.observeGap(10_000, 1), true);
  t.equal(model.snapshot().stall_multiplier, 8, 'capped');
  model.observeGap(10, 1);
  t.equal(model.snapshot().stall_multiplier, 4.5, 'a normal gap right after halves the excess: it was transient');
});

t.test('prefill: prompts of nearly one length give a proportional fit, not a wild slope', async (t) => {
  const model = new EwmaServiceModel({ clock: new FakeClock() });
  for (let i = 0; i < 20; i++) {
    const tokens = 30 + (i % 2);
    model.observe({ evaluated_tokens: tokens, prefill_ms: i % 2 ? 40 : 100, generated_tokens: 2, decode_ms: 5, concurrency: 1 });
  }
  const estimate = model.estimate({ prompt_tokens: 30, max_output_tokens: 1 }, 'full', 1)!;
  t.ok(estimate > 40 && estimate < 100, `about the mean prefill: ${estimate.toFixed(1)}`);
  t.equal(model.snapshot().prefill_overhead_ms, 0);
});

t.test('queue: priority, FIFO, then LIFO and CoDel drops once requests run late past the interval', async (t) => {
  type Q = { seq: number; priority: number; enqueued: number; expectedStart: number };
  const q = new AdaptiveQueue<Q>({ target_ms: 5, interval_ms: 100 });
  // Promised starts: 1 at 50, 2 (higher class) at 10, 3 at 100, 4 at 150.
  q.push({ seq: 1, priority: 1, enqueued: 0, expectedStart: 50 }, 0);
  q.push({ seq: 2, priority: 2, enqueued: 1, expectedStart: 10 }, 1);
  q.push({ seq: 3, priority: 1, enqueued: 2, expectedStart: 100 }, 2);
  q.push({ seq: 4, priority: 1, enqueued: 3, expectedStart: 150 }, 3);
  t.same(q.serviceOrder(10).map((i) => i.seq), [2, 1, 3, 4], 'priority, then FIFO');
  t.equal(q.standing(40), false, 'item 2 is late, but not for an interval yet');
  t.same(q.codelVictims(40), []);
  t.ok(Math.abs(q.nextCheck(40)! - 55.001) < 1e-9, 'the next check is when item 1 turns late');
  t.ok(Math.abs(q.nextCheck(110)! - 115.001) < 1e-9, 'then when the first lateness has lasted an interval');
  t.equal(q.standing(116), true, 'late for 100 ms: the queue is not draining');
  t.same(q.serviceOrder(116).map((i) => i.seq), [2, 4, 3, 1], 'standing: LIFO within a class');
  t.same(q.codelVictims(116).map((i) => i.seq), [1, 3], 'more than target late, not the newest of their class');
  t.same(q.ahead(1, 116).map((i) => i.seq), [2], 'a new arrival waits only behind higher classes in LIFO');
  t.equal(q.evictionFor(2, 116)?.seq, 1, 'a full queue gives up the oldest of the lowest class');
  t.equal(q.evictionFor(0, 10), null, 'never for a less urgent arrival');
  q.remove(q.items()[1]!, 116);
  q.remove(q.items()[0]!, 116);
  q.remove(q.items()[0]!, 116);
  t.equal(q.standing(117), false, 'nothing late any more (item 4 is due at 150): FIFO again');
});

t.test('config: defaults and merged sources and classes; bad references are CONFIG_INVALID', async (t) => {
  const config = resolveSchedulerConfig({ sources: { mqtt: { deadline_ms: 300 } }, classes: { high: { reserve: 0.5 } } });
  t.equal(config.default_deadline_ms, 200);
  t.same(config.sources.mqtt, { class: 'normal', deadline_ms: 300 });
  t.same(config.sources.panel, { class: 'high' }, 'built-in sources kept');
  t.same(config.classes.high, { priority: 30, reserve: 0.5 });
  t.same(config.codel, { target_ms: 5, interval_ms: 100 });
  t.throws(() => resolveSchedulerConfig({ sources: { mqtt: { class: 'nope' } } }), { code: 'CONFIG_INVALID' });
  t.throws(() => resolveSchedulerConfig({ classes: { a: { reserve: 0.6 }, b: { reserve: 0.6 } } }), { code: 'CONFIG_INVALID' });
});

t.test('config schema: compiles under the runtime ajv options, fills defaults, refuses bad values', async (t) => {
  const { Ajv } = await import('ajv');
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictRequired: false, allowUnionTypes: true });
  const { schedulerConfigSchema } = await import('./config-schema.js');
  // Composed as a property of the root schema, as runtime/config/schema.ts does.
  const root = ajv.compile({ type: 'object', properties: { scheduler: schedulerConfigSchema } });
  const doc: Record<string, unknown> = {};
  t.ok(root(doc));
  t.match(doc.scheduler, { default_deadline_ms: 200, max_queue: 64, max_concurrency: 'auto', codel: { target_ms: 5, interval_ms: 100 } });
  const validate = (scheduler: unknown) => root({ scheduler });
  t.notOk(validate({ default_deadline_ms: -1 }));
  t.notOk(validate({ max_concurrency: 'lots' }));
  t.notOk(validate({ sources: { 'Bad Name': {} } }));
  t.notOk(validate({ sources: { mqtt: { deadline_ms: 100, extra: 1 } } }));
  t.ok(validate({ sources: { mqtt: { deadline_ms: 100 } }, classes: { high: { priority: 50, reserve: 0.3 } }, max_concurrency: 2 }));
});

/**
 * Where a person waits: human-facing sources get the chat deadline, and their long requests may use free
 * sequences beyond the auto concurrency limit without hurting running work. FakeClock, fixed service model.
 */
import t from 'tap';
import { FakeClock } from './clock.js';
import { Scheduler } from './scheduler.js';
import type { WorkPlan } from './service-model.js';
import { FakeLane, FixedServiceModel, flush, settle } from './testing.js';

const PLAN: WorkPlan = { prompt_tokens: 10, max_output_tokens: 20 };

function setup(service: (k: number) => number, config: Record<string, unknown> = {}) {
  const clock = new FakeClock();
  const main = new FakeLane(new FixedServiceModel((_plan, _budget, k) => service(k)), { sequences: 4 });
  const scheduler = new Scheduler<string, string>({ clock, plan: () => PLAN, lanes: { main }, tune_every: 0, config: { estimate_margin: 0, ...config } });
  return { clock, main, scheduler };
}

t.test('deadlines per source: machines keep 200 ms, people get the chat deadline', async (t) => {
  const { scheduler } = setup(() => 100);
  for (const source of ['mqtt', 'http', 'panel', undefined]) t.equal(scheduler.deadlineFor(source, undefined), 200, `${source ?? 'no source'}: 200 ms`);
  for (const source of ['chat', 'openai', 'channel']) t.equal(scheduler.deadlineFor(source, undefined), 15_000, `${source}: 15 s`);
  t.equal(scheduler.deadlineFor('openai', 800), 800, 'a request still names its own');

  const configured = setup(() => 100, { chat_deadline_ms: 20_000, sources: { openai: { deadline_ms: 5000 }, kiosk: { human: true } } }).scheduler;
  t.equal(configured.deadlineFor('chat', undefined), 20_000, 'chat_deadline_ms is configurable');
  t.equal(configured.deadlineFor('openai', undefined), 5000, "a source's own deadline wins");
  t.equal(configured.deadlineFor('kiosk', undefined), 20_000, 'a configured source can be marked human');
  t.equal(configured.config.sources.openai?.human, true, 'configuring a deadline keeps the built-in human flag');
});

t.test('a chat that would miss 200 ms is admitted within its own deadline', async (t) => {
  const { scheduler, main, clock } = setup(() => 900);
  const arrival = clock.now();
  const machine = settle(scheduler.submit({ request: 'm', source: 'mqtt' }));
  await flush();
  t.match(machine.error(), { code: 'BUSY' }, 'a 900 ms answer cannot meet a machine deadline');
  settle(scheduler.submit({ request: 'c', source: 'chat' }));
  await flush();
  t.equal(main.running.length, 1, 'the same work for a person starts');
  t.equal(main.jobs[0]!.job.deadline - arrival, 15_000, 'with the chat deadline');
});

t.test('auto concurrency: long chats start side by side on free sequences while nobody is hurt', async (t) => {
  // Each extra sequence slows every running one a little: 1 s alone, +10 % per sequence.
  const { scheduler, main, clock } = setup((k) => 1000 * (1 + 0.1 * (k - 1)), { max_concurrency: 'auto' });
  t.equal(scheduler.concurrency, 1, 'auto starts at one sequence');
  for (const name of ['a', 'b', 'c', 'd']) settle(scheduler.submit({ request: name, source: 'openai' }));
  await flush();
  t.equal(main.running.length, 4, 'four chats stream at once on the four sequences');
  const fifth = settle(scheduler.submit({ request: 'e', source: 'openai' }));
  await flush();
  t.equal(main.running.length, 4, 'no more than the lane has');
  t.notOk(fifth.done(), 'the fifth waits in the queue (its deadline allows)');
  clock.advance(500);
  main.jobs[0]!.finish();
  await flush();
  t.equal(main.running.length, 4, 'and starts when a sequence is free');
});

t.test('auto concurrency: machine requests keep the tuned limit, and a chat does not push them past their deadline', async (t) => {
  // A second sequence doubles the service time: 150 ms alone, 300 ms with two.
  const { scheduler, main } = setup((k) => 150 * k, { max_concurrency: 'auto' });
  settle(scheduler.submit({ request: 'machine', source: 'mqtt' }));
  await flush();
  t.equal(main.running.length, 1);
  const chat = settle(scheduler.submit({ request: 'chat', source: 'chat' }));
  await flush();
  t.equal(main.running.length, 1, 'the chat waits: starting it would make the machine request miss 200 ms');
  t.notOk(chat.done());
  main.jobs[0]!.finish();
  await flush();
  t.equal(main.running.length, 1, 'it starts once the machine request is done');
  t.equal(main.running[0]!.job.request, 'chat');
});

import t from 'tap';
import { makeTestContext } from '../../app/testing/test-context.js';
import { isClawboxError } from '../../runtime/errors.js';
import { FakeClock } from './clock.js';
import { SchedulerService } from './service.js';
import { FakeLane, FixedServiceModel, flush } from './testing.js';

t.test('the component: status section, Prometheus figures, restartable', async (t) => {
  const test = makeTestContext();
  t.teardown(() => test.cleanup());
  const clock = new FakeClock();
  const main = new FakeLane(new FixedServiceModel(() => 150), { clock, autoMs: () => 120 });
  const service = new SchedulerService<string, string>({
    lanes: { main },
    plan: () => ({ prompt_tokens: 10, max_output_tokens: 8 }),
    tryFastPath: (request) => (request === 'lamp on' ? () => 'done' : null),
    config: { max_concurrency: 1 },
    clock,
  });
  const before = await service.submit({ request: 'x' }).catch((e: unknown) => e);
  t.ok(isClawboxError(before, 'BUSY'), 'BUSY before start');

  await service.start(test.ctx);
  const fast = await service.submit({ request: 'lamp on', source: 'panel' });
  t.equal(fast.path, 'fast');
  const model = service.submit({ request: 'tell me', source: 'mqtt' });
  const busy = await service.submit({ request: 'and me', source: 'mqtt' }).catch((e: unknown) => e);
  t.ok(isClawboxError(busy, 'BUSY'));
  clock.advance(120);
  await flush();
  t.equal((await model).path, 'model');

  const snapshot = (await test.ctx.status.snapshot()).scheduler as { stats: { completed: number; recent: { shed_rate: number } }; queued: number };
  t.equal(snapshot.stats.completed, 2);
  t.equal(snapshot.stats.recent.shed_rate, 0.333);
  t.equal(snapshot.queued, 0);
  const text = await test.ctx.metrics.metrics();
  t.match(text, /clawbox_scheduler_decisions_total\{decision="model"\} 1/);
  t.match(text, /clawbox_scheduler_decisions_total\{decision="fast"\} 1/);
  t.match(text, /clawbox_scheduler_shed_total\{reason="estimate"\} 1/);
  t.match(text, /clawbox_scheduler_latency_seconds_count\{path="model"\} 1/);
  t.match(text, /clawbox_scheduler_queue_length 0/);

  await service.stop();
  t.notOk(test.ctx.metrics.getSingleMetric('clawbox_scheduler_decisions_total'), 'figures removed at stop');
  t.notOk('scheduler' in (await test.ctx.status.snapshot()), 'status section removed at stop');
  await service.start(test.ctx);
  t.equal((await service.submit({ request: 'lamp on' })).path, 'fast', 'starts again');
  await service.stop();
});

/**
 * The remote rung of the ladder (hybrid deployment): routing per request (local_only never reaches the
 * remote lane, remote_first tries it first) and a brain that fails before the deadline handing the request
 * back to the local rungs with the same deadline. FakeClock and fake lanes: no wall-clock timing.
 */
import t from 'tap';
import { ClawboxError, isClawboxError } from '../../runtime/errors.js';
import { FakeClock } from './clock.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';
import type { WorkPlan } from './service-model.js';
import { FakeLane, FixedServiceModel, flush, settle } from './testing.js';

const PLAN: WorkPlan = { prompt_tokens: 10, max_output_tokens: 20 };
const fixed = (ms: number) => new FixedServiceModel(() => ms);

function setup(options: Partial<SchedulerOptions<string, string>> = {}) {
  const clock = new FakeClock();
  const scheduler = new Scheduler<string, string>({ clock, plan: () => PLAN, lanes: {}, ...options, config: { estimate_margin: 0, max_concurrency: 1 } });
  return { clock, scheduler };
}

const code = (error: unknown) => (isClawboxError(error) ? error.code : `not a ClawboxError: ${String(error)}`);

t.test('local_only requests never reach the remote lane; without a local model they are LOCAL_ONLY', async (t) => {
  const remote = new FakeLane(fixed(50));
  const { scheduler } = setup({ lanes: { remote }, route: (s) => (s.request.includes('lock') ? 'local_only' : 'any') });
  const refused = settle(scheduler.submit({ request: 'open the lock' }));
  const offloaded = settle(scheduler.submit({ request: 'lamp on' }));
  await flush();
  t.equal(code(refused.error()), 'LOCAL_ONLY');
  t.equal(remote.jobs.length, 1, 'only the other request went to the brain');
  t.equal(remote.jobs[0]!.job.request, 'lamp on');
  remote.jobs[0]!.finish();
  await flush();
  t.equal(offloaded.value()?.path, 'remote');
});

t.test('a local_only request with a local model runs locally even when the brain would be faster', async (t) => {
  const main = new FakeLane(fixed(150));
  const remote = new FakeLane(fixed(20));
  const { scheduler } = setup({ lanes: { main, remote } });
  settle(scheduler.submit({ request: 'busy', deadline_ms: 1000 }));
  const local = settle(scheduler.submit({ request: 'x', deadline_ms: 1000, route: 'local_only' }));
  await flush();
  t.equal(remote.jobs.length, 0);
  t.equal(scheduler.load().queued, 1, 'queued behind the running local request');
  main.jobs[0]!.finish();
  await flush();
  main.jobs[1]!.finish();
  await flush();
  t.equal(local.value()?.lane, 'main');
});

t.test('remote_first: a request that needs the bigger model goes to the brain although main would fit', async (t) => {
  const main = new FakeLane(fixed(50));
  const remote = new FakeLane(fixed(80));
  const { scheduler } = setup({ lanes: { main, remote }, route: (s) => (s.source === 'channel' ? 'remote_first' : 'any') });
  settle(scheduler.submit({ request: 'a', source: 'channel' }));
  settle(scheduler.submit({ request: 'b', source: 'mqtt' }));
  await flush();
  t.equal(remote.jobs.length, 1);
  t.equal(remote.jobs[0]!.job.request, 'a');
  t.equal(remote.jobs[0]!.job.grant.rung, 'remote');
  t.equal(main.jobs.length, 1);
  t.equal(main.jobs[0]!.job.request, 'b');
});

t.test('a brain that fails before the deadline hands the request to the next rung, same deadline', async (t) => {
  const main = new FakeLane(fixed(60));
  const remote = new FakeLane(fixed(50));
  const { scheduler, clock } = setup({ lanes: { main, remote }, route: () => 'remote_first' });
  const answer = settle(scheduler.submit({ request: 'a', deadline_ms: 200 }));
  await flush();
  t.equal(remote.jobs.length, 1);
  clock.advance(30);
  remote.jobs[0]!.fail(new ClawboxError('BRAIN_UNAVAILABLE', 'connection reset'));
  await flush();
  t.equal(main.jobs.length, 1, 'the local lane took it');
  t.equal(main.jobs[0]!.job.deadline, remote.jobs[0]!.job.deadline, 'with the deadline it had');
  main.jobs[0]!.finish('local answer');
  await flush();
  t.equal(answer.value()?.result, 'local answer');
  t.equal(answer.value()?.lane, 'main');
});

t.test('a brain that fails when no local rung can make it: BUSY within the deadline, not a hang', async (t) => {
  const main = new FakeLane(fixed(500));
  const remote = new FakeLane(fixed(50));
  const { scheduler } = setup({ lanes: { main, remote } });
  const answer = settle(scheduler.submit({ request: 'a', deadline_ms: 200 }));
  await flush();
  t.equal(remote.jobs.length, 1, 'main cannot make 200 ms: offloaded');
  remote.jobs[0]!.fail(new ClawboxError('BRAIN_UNAVAILABLE', 'brain killed'));
  await flush();
  t.equal(code(answer.error()), 'BUSY');
  t.equal(main.jobs.length, 0);
});

t.test('other failures of the brain (an invalid answer) are the answer, not a retry', async (t) => {
  const main = new FakeLane(fixed(60));
  const remote = new FakeLane(fixed(50));
  const { scheduler } = setup({ lanes: { main, remote }, route: () => 'remote_first' });
  const answer = settle(scheduler.submit({ request: 'a', deadline_ms: 200 }));
  await flush();
  remote.jobs[0]!.fail(new ClawboxError('MODEL_OUTPUT_INVALID', 'nonsense'));
  await flush();
  t.equal(code(answer.error()), 'MODEL_OUTPUT_INVALID');
  t.equal(main.jobs.length, 0);
});

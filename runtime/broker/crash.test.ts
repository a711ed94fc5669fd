/**
 * Nothing acknowledged is lost: kill -9 of the real runtime at random points of bursts of acknowledged
 * QoS 1 messages (retained, and queued for an offline persistent session), restart, and every
 * acknowledged message is delivered and retained (crash-harness.ts). A short run; `npm run
 * bench:broker-crash` runs at least 100 kills.
 */
import t from 'tap';
import { newStateDir, startRuntime } from '../../test/runtime-process.js';
import { runCrashRounds } from './testing/crash-harness.js';

t.test('kill -9 during and right after bursts of acknowledged QoS 1 messages loses none of them', async (t) => {
  const seed = Number(process.env.CLAWBOX_CRASH_SEED ?? Date.now() % 100_000);
  const results = await runCrashRounds({
    // A loaded machine (the suite's other files) can take well over 20 s to start the runtime from sources.
    start: (stateDir) => startRuntime({ stateDir, env: { CLAWBOX_LOG_LEVEL: 'info' }, startTimeoutMs: 60_000 }),
    stateDir: newStateDir(),
    rounds: 2, // one kill in the middle of a burst, one right after it
    burst: 500,
    seed,
    deliveryTimeoutMs: 20_000,
  });
  for (const r of results) {
    t.same(r.lost, [], `round ${r.round} (seed ${seed}): all ${r.acknowledged} acknowledged messages delivered after the restart`);
    t.same(r.staleRetained, [], `round ${r.round}: every topic retains its last acknowledged value or a later one`);
    t.ok(r.sessionPresent, `round ${r.round}: the persistent session is present after the restart`);
  }
});

/** The first-use holder: one load for any number of callers, a failed load retried, nothing loaded once closed. */
import t from 'tap';
import { RuntimeRegistry } from '../runtime/metrics.js';
import { LazyFeature, registerFeatureGauge } from './lazy-feature.js';

t.test('loads once for callers that come together, and says so', async (t) => {
  let loads = 0;
  const feature = new LazyFeature('part', async () => {
    loads++;
    return { n: loads };
  });
  t.equal(feature.loaded, false);
  t.equal(feature.peek(), undefined, 'peek does not load');
  t.equal(loads, 0);
  const [a, b] = await Promise.all([feature.get(), feature.get()]);
  t.equal(loads, 1, 'one load');
  t.equal(a, b, 'the same part for both');
  t.equal(feature.loaded, true);
  t.equal(feature.peek(), a);
});

t.test('a failed load fails its callers and the next use tries again', async (t) => {
  let loads = 0;
  const feature = new LazyFeature('part', async () => {
    loads++;
    if (loads === 1) throw new Error('disk on fire');
    return 'ok';
  });
  await t.rejects(feature.get(), /disk on fire/);
  t.equal(feature.loaded, false);
  t.equal(await feature.get(), 'ok');
  t.equal(loads, 2);
});

t.test('closed: nothing loads, and what was loaded is handed back to close', async (t) => {
  const idle = new LazyFeature('part', async () => 'never');
  t.equal(await idle.close(), undefined, 'nothing was loaded');
  await t.rejects(idle.get(), { code: 'BUSY' }, 'no load after close');

  const used = new LazyFeature('part', async () => 'loaded');
  await used.get();
  t.equal(await used.close(), 'loaded');
});

t.test('clawbox_feature_loaded reads each part when scraped', async (t) => {
  const registry = new RuntimeRegistry('clawbox_');
  const feature = new LazyFeature('agent', async () => 1);
  registerFeatureGauge(registry, [feature]);
  t.match(await registry.metrics(), /^clawbox_feature_loaded\{feature="agent"\} 0$/m);
  await feature.get();
  t.match(await registry.metrics(), /^clawbox_feature_loaded\{feature="agent"\} 1$/m);
});

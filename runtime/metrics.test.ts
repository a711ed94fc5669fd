import { createRequire } from 'node:module';
import t from 'tap';
import { Counter, RuntimeRegistry } from './metrics.js';

const require = createRequire(import.meta.url);

t.test("loading the metric classes leaves prom-client's index and default metrics unloaded", async (t) => {
  const loaded = (file: string) => Object.keys(require.cache).some((key) => key.endsWith(`/node_modules/prom-client/${file}`));
  t.equal(loaded('index.js'), false, 'no index.js');
  t.equal(loaded('lib/defaultMetrics.js'), false, 'no default metrics yet');
  t.equal(loaded('lib/cluster.js'), false, 'no cluster aggregator');
});

t.test('default metrics join on the first scrape, with the prefix, beside the registered ones', async (t) => {
  const registry = new RuntimeRegistry('test_');
  const calls = new Counter({ name: 'test_calls_total', help: 'calls', labelNames: ['kind'], registers: [registry] });
  calls.inc({ kind: 'a' }, 2);
  t.equal(registry.getSingleMetric('test_process_cpu_seconds_total'), undefined, 'none before the first scrape');
  const cpuBefore = process.cpuUsage();
  const text = await registry.metrics();
  t.match(text, /^test_calls_total\{kind="a"\} 2$/m);
  t.match(text, /^test_process_cpu_seconds_total \d/m);
  t.match(text, /^test_nodejs_heap_size_used_bytes \d+/m);
  const cpuSeconds = Number(/^test_process_cpu_seconds_total (\S+)$/m.exec(text)?.[1]);
  t.ok(cpuSeconds >= (cpuBefore.user + cpuBefore.system) / 1e6, `CPU counted from the process's start (${cpuSeconds} s)`);
  t.match(text, /^test_nodejs_eventloop_lag_seconds /m);
  const again = await registry.metrics();
  t.equal(again.match(/^# TYPE test_process_cpu_seconds_total/gm)?.length, 1, 'registered once');
  const json = await new RuntimeRegistry('other_').getMetricsAsJSON();
  t.ok(json.some((m) => m.name === 'other_process_resident_memory_bytes'), 'the JSON form gets them too');
  registry.clear();
});

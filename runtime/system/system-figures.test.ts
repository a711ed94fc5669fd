import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import t from 'tap';
import { SystemSampler } from './system-figures.js';

// systeminformation starts processes through the CommonJS child_process module; count them there.
const childProcess = createRequire(import.meta.url)('node:child_process') as Record<string, (...args: unknown[]) => unknown>;

t.test('fast figures every sample; temperature and disk (which start processes) every 6th, kept between', async (t) => {
  let started = 0;
  for (const name of ['exec', 'execFile', 'spawn', 'execSync', 'spawnSync']) {
    const real = childProcess[name]!;
    childProcess[name] = function (this: unknown, ...args: unknown[]) {
      started++;
      return real.apply(this, args);
    };
    t.teardown(() => {
      childProcess[name] = real;
    });
  }
  const sampler = new SystemSampler({ intervalMs: 10, diskPath: tmpdir() });
  t.teardown(() => sampler.stop());
  sampler.start();
  await sampler.whenSampled();
  const first = sampler.figures();
  const afterFirst = started;
  t.ok(afterFirst > 0, `the first sample reads disk and temperature (${afterFirst} processes)`);
  t.match(first.disk, { mount: String, total_bytes: Number });
  t.ok(first.cpu.load_percent !== null && first.cpu.load_percent >= 0 && first.cpu.load_percent <= 100, `CPU load ${first.cpu.load_percent} %`);
  // The next samples start (almost) no processes, and the disk figure stays in between.
  const seen = new Set<string>([String(first.sampled_at)]);
  let diskMissing = 0;
  while (seen.size < 6) {
    const figures = sampler.figures();
    seen.add(String(figures.sampled_at));
    if (!figures.disk) diskMissing++;
    await new Promise((r) => setTimeout(r, 2));
  }
  t.equal(diskMissing, 0, 'the disk figure is kept between slow samples');
  // Without the slow cadence each of these 5 samples would start as many processes as the first.
  t.ok(started - afterFirst <= afterFirst, `5 more samples started ${started - afterFirst} processes (at most one slow sample's worth)`);
});

import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import t from 'tap';
import { SystemSampler, cpuLoadMeter } from './system-figures.js';

const require = createRequire(import.meta.url);
// systeminformation starts processes through the CommonJS child_process module; count them there.
const childProcess = require('node:child_process') as Record<string, (...args: unknown[]) => unknown>;
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
const systemInformationLoaded = (): boolean => require.resolve('systeminformation') in require.cache;

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// First in this file: nothing else may have loaded systeminformation yet.
t.test('a sampler nobody reads neither loads systeminformation nor starts processes', async (t) => {
  const sampler = new SystemSampler({ intervalMs: 5, diskPath: tmpdir() });
  t.teardown(() => sampler.stop());
  sampler.start();
  await tick(100); // 20 ticks: the CPU load is sampled, nothing else
  t.equal(started, 0, 'no process started');
  t.notOk(systemInformationLoaded(), 'systeminformation not imported');
});

t.test('the first read starts the slow sample; later reads get temperature and disk from it', async (t) => {
  const sampler = new SystemSampler({ intervalMs: 10, diskPath: tmpdir() });
  t.teardown(() => sampler.stop());
  sampler.start();
  const unread = sampler.figures();
  t.equal(unread.sampled_at, null, 'the first read does not wait for systeminformation');
  t.equal(unread.disk, null);
  t.match(unread.memory, { total_bytes: Number, available_bytes: Number, used_percent: Number }, 'memory comes from node:os at once');
  await sampler.whenSampled();
  t.ok(systemInformationLoaded(), 'systeminformation imported on first need');
  const first = sampler.figures();
  t.type(first.sampled_at, 'string');
  t.match(first.disk, { mount: String, total_bytes: Number });
  t.ok(first.cpu.load_percent !== null && first.cpu.load_percent >= 0 && first.cpu.load_percent <= 100, `CPU load ${first.cpu.load_percent} %`);
  t.ok(first.memory.available_bytes > 0 && first.memory.available_bytes <= first.memory.total_bytes);
});

t.test('slow samples: at most every 6th tick, and only while someone reads', async (t) => {
  const sampler = new SystemSampler({ intervalMs: 10, diskPath: tmpdir() });
  t.teardown(() => sampler.stop());
  sampler.start();
  await sampler.whenSampled();
  const firstAt = sampler.figures().sampled_at;
  t.ok(started > 0, 'the slow sample started processes (df, sensors)');

  // Read on every tick: a new slow sample comes after about 6 ticks, not on each one.
  const seen = new Set<string>([String(firstAt)]);
  let reads = 0;
  let diskMissing = 0;
  while (seen.size < 3) {
    const figures = sampler.figures();
    if (!figures.disk) diskMissing++;
    seen.add(String(figures.sampled_at));
    reads++;
    await tick(2);
  }
  t.equal(diskMissing, 0, 'the disk figure is kept between slow samples');
  t.ok(reads > 10, `2 more slow samples took ${reads} reads, not one each`);

  // Nobody reads from here on. The last read may still bring one more slow sample: wait until no process
  // has started for a second, then 60 ticks (10 slow periods) must start none.
  let last = started;
  for (let quietSince = Date.now(); Date.now() - quietSince < 1000; await tick(50)) {
    if (started !== last) {
      last = started;
      quietSince = Date.now();
    }
  }
  await tick(600);
  t.equal(started, last, 'no process started while nobody read the figures');
});

t.test('CPU load: the share of time not idle between two reads of the counters', async (t) => {
  const samples = [
    { idle: 1000, total: 2000 },
    { idle: 1300, total: 2400 }, // 400 more, 300 of them idle: 25 % busy
    { idle: 1300, total: 2400 }, // no time passed: no figure
  ];
  const meter = cpuLoadMeter(() => samples.shift());
  meter(); // since boot
  t.equal(meter(), 25);
  t.ok(Number.isNaN(meter()), 'no figure without time passing');
});

t.test('CPU load without /proc/stat: node:os counters from the first read on', async (t) => {
  let reads = 0;
  const meter = cpuLoadMeter(() => {
    reads++;
    return undefined;
  });
  const sinceBoot = meter();
  t.ok(sinceBoot >= 0 && sinceBoot <= 100, `since boot ${sinceBoot} %`);
  meter();
  t.equal(reads, 1, '/proc/stat tried once, then left alone');
});

t.test('CPU load from this host\'s /proc/stat, where there is one', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const meter = cpuLoadMeter();
  const sinceBoot = meter();
  t.ok(sinceBoot >= 0 && sinceBoot <= 100, `since boot ${sinceBoot} %`);
});

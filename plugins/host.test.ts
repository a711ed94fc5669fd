/**
 * The plugin host against real plugins: a Node worker, a Node child process and a python3 child, each
 * asked to behave and to misbehave (throw, hang, exit, crash later, flood, print garbage, run out of
 * memory). After every misbehaviour the host still answers, the other plugins are untouched, and the
 * broken plugin is back after a restart.
 */
import t, { type Test } from 'tap';
import { isClawboxError } from '../runtime/errors.js';
import type { PluginHost } from './host.js';
import { startHost } from './test/support.js';

const ALL = ['node-basic', 'node-process', 'py-basic'];

/**
 * The deadline of a call whose time is not what the test checks: it includes waiting for the plugin to
 * (re)start, which on a loaded machine can take longer than the host's 3 s default in these tests.
 */
const UNHURRIED = { timeoutMs: 60_000 };

async function instance(host: PluginHost, plugin: string): Promise<string> {
  return ((await host.call(plugin, 'whoami', {}, UNHURRIED)) as { instance: string }).instance;
}

/** Waits until each plugin reports `running` (started eagerly: `lazy: false`). */
async function running(host: PluginHost, plugins: string[]): Promise<void> {
  const deadline = Date.now() + UNHURRIED.timeoutMs;
  const states = () => plugins.map((name) => `${name}: ${host.list().find((p) => p.name === name)?.figures.state}`);
  while (!states().every((line) => line.endsWith(': running'))) {
    if (Date.now() > deadline) throw new Error(`plugins not running: ${states().join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until the plugin answers again (after a restart with backoff), as another instance than `before`. */
async function backUp(host: PluginHost, plugin: string, before?: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const now = await instance(host, plugin);
      if (before === undefined || now !== before || Date.now() > deadline) return now;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function failure(t: Test, reason: string, pattern?: RegExp) {
  return (error: unknown) => {
    t.ok(isClawboxError(error, 'PLUGIN_FAILED'), `PLUGIN_FAILED (got ${(error as Error).message})`);
    if (isClawboxError(error)) {
      t.equal(error.details.reason, reason, `reason ${reason}: ${error.message}`);
      if (pattern) t.match(error.message, pattern);
    }
  };
}

async function expectFailure(t: Test, work: Promise<unknown>, reason: string, pattern?: RegExp): Promise<void> {
  await work.then(
    (value) => t.fail(`expected PLUGIN_FAILED (${reason}), got ${JSON.stringify(value)}`),
    failure(t, reason, pattern),
  );
}

/** The host is fine: every other plugin answers. */
async function othersFine(t: Test, host: PluginHost, except: string): Promise<void> {
  for (const plugin of ALL.filter((p) => p !== except)) {
    t.same(await host.call(plugin, 'add', { a: 2, b: 3 }, UNHURRIED), { sum: 5 }, `${plugin} unaffected`);
  }
}

t.test('valid and invalid arguments, results checked both ways, caller permissions', async (t) => {
  const { host } = await startHost(t, { plugins: { allow: ALL, lazy: false, config: { 'node-basic': { greeting: 'hey' } } } });
  await running(host, ALL);
  for (const plugin of ALL) t.same(await host.call(plugin, 'add', { a: 1, b: 2.5 }), { sum: 3.5 }, `${plugin} adds`);
  t.same(await host.call('node-basic', 'hello', {}), { text: 'hey, world' }, 'plugin config and argument defaults applied');
  t.same(await host.call('py-basic', 'hello', { who: 'you' }), { text: 'hi, you' }, 'manifest config default');

  for (const plugin of ['node-basic', 'py-basic']) {
    await t.rejects(host.call(plugin, 'add', { a: 1 }), { code: 'PAYLOAD_INVALID', message: /must have required property 'b'/ });
    await t.rejects(host.call(plugin, 'add', { a: 1, b: '2' }), { code: 'PAYLOAD_INVALID', message: /\/b must be number/ });
    await t.rejects(host.call(plugin, 'add', { a: 1, b: 2, c: 3 }), { code: 'PAYLOAD_INVALID', message: /additional properties/ });
    await t.rejects(host.call(plugin, 'add', 'a string'), { code: 'PAYLOAD_INVALID' });
    await expectFailure(t, host.call(plugin, 'bad_result', {}), 'result_invalid', /\/sum must be number/);
  }
  t.equal(host.list().find((p) => p.name === 'node-basic')?.figures.calls, 3, 'invalid arguments never reached the plugin');
  await t.rejects(host.call('nope', 'add', {}), { code: 'NOT_FOUND', message: /no plugin "nope"/ });
  await t.rejects(host.call('node-basic', 'nope', {}), { code: 'NOT_FOUND', message: /has no tool "nope"/ });
  await t.rejects(host.call('node-basic', 'add', { a: 1, b: 2 }, { caller: { tools: ['py-basic/*'] } }), { code: 'FORBIDDEN' });
  t.same(await host.call('node-basic', 'add', { a: 1, b: 2 }, { caller: { tools: ['node-basic/add'] } }), { sum: 3 });

  const tools = host.tools({ tools: ['node-basic/add', 'py-basic/*'] });
  t.same(
    tools.map((tool) => tool.id).sort(),
    ['node-basic/add', ...host.tools().filter((x) => x.plugin === 'py-basic').map((x) => x.id)].sort(),
  );
  t.match(tools.find((x) => x.id === 'node-basic/add'), {
    plugin: 'node-basic',
    tool: 'add',
    description: 'Adds two numbers.',
    arguments: { required: ['a', 'b'] },
    result: { required: ['sum'] },
  });
});

t.test('throw, hang, exit, crash, flood, garbage, memory: the call fails, the plugin restarts, the host carries on', async (t) => {
  const { host, tc } = await startHost(t, { plugins: { allow: ALL, lazy: false, memory_limit_mb: 48 } });
  await running(host, ALL);
  const calls: unknown[] = [];
  tc.ctx.bus.on('plugin.call', (e) => calls.push(e));

  await t.test('throws: that call fails, the plugin keeps running', async (t) => {
    for (const plugin of ['node-basic', 'node-process', 'py-basic']) {
      const before = await instance(host, plugin);
      await expectFailure(t, host.call(plugin, 'throws', {}, UNHURRIED), 'threw', /boom/);
      t.equal(await instance(host, plugin), before, `${plugin} was not restarted for a thrown error`);
    }
    await t.rejects(host.call('node-basic', 'coded', {}, UNHURRIED), { code: 'FORBIDDEN', message: 'not for you' }, 'a coded error keeps its code');
    await t.rejects(host.call('py-basic', 'coded', {}, UNHURRIED), { code: 'FORBIDDEN', message: 'not for you' });
  });

  await t.test('hangs: timeout, then a restart', async (t) => {
    for (const plugin of ['node-basic', 'node-process', 'py-basic']) {
      const before = await instance(host, plugin);
      await expectFailure(t, host.call(plugin, 'hang', {}, { timeoutMs: 300 }), 'timeout', /did not answer within 300 ms/);
      await othersFine(t, host, plugin);
      t.not(await backUp(host, plugin), before, `${plugin} was restarted`);
      t.same(await host.call(plugin, 'add', { a: 1, b: 1 }, UNHURRIED), { sum: 2 });
    }
    // Slow but alive is not hung: the call times out, the plugin is not restarted.
    const before = await instance(host, 'node-basic');
    await expectFailure(t, host.call('node-basic', 'slow', { ms: 2000 }, { timeoutMs: 100 }), 'timeout');
    await new Promise((resolve) => setTimeout(resolve, 1200));
    t.equal(await instance(host, 'node-basic'), before, 'a plugin that still answers pings keeps running');
  });

  await t.test('exits: the call fails with the exit, the plugin restarts', async (t) => {
    for (const [plugin, code] of [['node-basic', 3], ['node-process', 4], ['py-basic', 3]] as const) {
      const before = await instance(host, plugin);
      await expectFailure(t, host.call(plugin, 'exit', {}, UNHURRIED), 'exited', new RegExp(`exited with code ${code}`));
      await othersFine(t, host, plugin);
      t.not(await backUp(host, plugin), before, `${plugin} restarted`);
    }
  });

  await t.test('throws outside a call: restarted', async (t) => {
    const before = await instance(host, 'node-basic');
    t.same(await host.call('node-basic', 'crash_later', {}, UNHURRIED), { ok: true });
    const after = await backUp(host, 'node-basic', before);
    t.not(after, before, 'restarted');
    t.match(host.list().find((p) => p.name === 'node-basic')?.figures.last_error, { reason: 'crashed', message: /late boom/ });
  });

  await t.test('floods: stdout flood is drained, protocol flood and garbage restart the plugin', async (t) => {
    const before = await instance(host, 'node-basic');
    t.same(await host.call('node-basic', 'flood', { mb: 64 }, UNHURRIED), { written_mb: 64 }, 'a worker writing 64 MB to stdout still answers');
    t.equal(await instance(host, 'node-basic'), before, 'and is not restarted for it');
    t.same(await host.call('py-basic', 'chatty', {}, UNHURRIED), { ok: true }, 'print() and fd 1 writes go to the log, not the protocol');

    for (const tool of ['garbage', 'flood']) {
      const py = await instance(host, 'py-basic');
      await expectFailure(t, host.call('py-basic', tool, {}, UNHURRIED), 'protocol', tool === 'garbage' ? /not JSON/ : /without a newline/);
      await othersFine(t, host, 'py-basic');
      t.not(await backUp(host, 'py-basic'), py, `py-basic restarted after ${tool}`);
    }
    await t.rejects(host.call('node-basic', 'huge_result', {}, UNHURRIED), { code: 'PAYLOAD_TOO_LARGE' }, 'an oversized result fails the call');
  });

  await t.test('runs out of memory: restarted', async (t) => {
    const before = await instance(host, 'node-basic');
    await expectFailure(t, host.call('node-basic', 'eat_memory', {}, UNHURRIED), 'memory', /48 MB heap/);
    await othersFine(t, host, 'node-basic');
    t.not(await backUp(host, 'node-basic'), before);
  });

  const status = (await tc.ctx.status.snapshot()).plugins as { plugins: { name: string; restarts: number; state: string }[] };
  t.ok(status.plugins.every((p) => p.state === 'running' && p.restarts >= 2), 'status: all running again, restarts counted');
  t.match(calls, [{ plugin: 'node-basic', tool: 'whoami', ok: true }], 'plugin.call events');
});

t.test('stop ends every plugin process; start again works', async (t) => {
  const { host, tc } = await startHost(t, { plugins: { allow: ['node-process', 'py-basic'], lazy: false } });
  const pids = host
    .list()
    .map((p) => p.figures.pid)
    .filter((pid): pid is number => pid !== null);
  t.equal(pids.length, 2, 'the process and python plugins have pids');
  await host.stop();
  for (const pid of pids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} is gone`);
  await t.rejects(host.call('py-basic', 'add', { a: 1, b: 1 }), { code: 'NOT_FOUND' });
  await host.start(tc.ctx);
  t.same(await host.call('py-basic', 'add', { a: 1, b: 1 }), { sum: 2 }, 'started again');
});

t.test('lazy: nothing runs until the first call', async (t) => {
  const { host } = await startHost(t, { plugins: { allow: ['py-basic', 'node-basic'], lazy: true } });
  t.same(
    host.list().map((p) => [p.name, p.figures.state, p.figures.pid]),
    [
      ['node-basic', 'idle', null],
      ['py-basic', 'idle', null],
    ],
  );
  t.same(await host.call('py-basic', 'add', { a: 2, b: 2 }, UNHURRIED), { sum: 4 }, 'the first call starts it');
  t.match(host.list().find((p) => p.name === 'py-basic')?.figures, { state: 'running', pid: Number });
  t.equal(host.list().find((p) => p.name === 'node-basic')?.figures.state, 'idle', 'the other is still idle');
});

/**
 * The update helper as the OS image runs it: `clawbox update serve` started by systemd's socket activation
 * (systemd-socket-activate passes the listening socket as fd 3 with LISTEN_FDS/LISTEN_PID, as
 * clawbox-updater.socket does), answering the runtime's client; and the two unit files load cleanly in
 * systemd-analyze verify. The rights (root, group clawbox on the socket) exist only on the box.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildUnitRoot } from '../systemd/unit-root.js';
import { cleanEnv, ROOT, runInProcess } from '../test/cli-helpers.js';
import { askHelper } from './helper-client.js';
import type { UpdateStatus } from './status.js';
import { fakeSystem } from './testing/fixture.js';

t.setTimeout(90_000);

const UNITS = path.join(import.meta.dirname, 'units');

t.test('clawbox update serve, socket-activated: answers the runtime on the socket systemd passed', async (t) => {
  const system = fakeSystem();
  const dir = mkdtempSync(path.join(tmpdir(), 'clawbox-serve-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(system.root, { recursive: true, force: true });
  });
  const socketPath = path.join(dir, 'updater.sock');
  const child: ChildProcess = spawn(
    'systemd-socket-activate',
    ['-l', socketPath, process.execPath, '--import', 'tsx', path.join(ROOT, 'app', 'main.ts'), 'update', 'serve', '--root', system.root, '--bundle', path.join(dir, 'bundle.tar')],
    { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  // systemd-socket-activate makes the socket before it starts the program.
  const until = Date.now() + 30_000;
  while (!existsSync(socketPath) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  const status = await askHelper<UpdateStatus>(socketPath, { op: 'status' }, { signal: AbortSignal.timeout(60_000) });
  t.match(status, { version: '0.1.0', booted: 'a', slots: [{ slot: 'a', state: 'good' }, { slot: 'b', state: 'empty' }] }, 'the status from the socket-activated helper');
  await t.rejects(askHelper(socketPath, { op: 'check' }, { signal: AbortSignal.timeout(60_000) }), { code: 'NOT_FOUND', message: /no bundle/ }, 'nothing downloaded yet');
  t.match(output, /listening on the socket from systemd/);
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM ends it cleanly');
});

t.test('clawbox update serve needs a socket', async (t) => {
  const result = await runInProcess(['update', 'serve']);
  t.match(result.stderr, /USAGE: update serve: --socket PATH/);
});

t.test('clawbox-updater.socket and .service load cleanly in systemd-analyze verify', async (t) => {
  const root = buildUnitRoot({
    'clawbox-updater.socket': readFileSync(path.join(UNITS, 'clawbox-updater.socket'), 'utf8'),
    'clawbox-updater.service': readFileSync(path.join(UNITS, 'clawbox-updater.service'), 'utf8'),
  });
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const unit of ['clawbox-updater.socket', 'clawbox-updater.service']) {
    const result = spawnSync('systemd-analyze', ['verify', `--root=${root}`, unit], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_COLORS: '0' } });
    t.equal(result.stderr, '', `${unit}: no warnings`);
    t.equal(result.status, 0, `${unit}: exit 0`);
  }
});

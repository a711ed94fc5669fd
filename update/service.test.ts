/**
 * Updates through the front door (system.update.*, system.reboot), with real parts up to the boundary
 * that only the appliance has: bundles made and signed here, served by a loopback HTTP server, downloaded
 * by the runtime into its state folder, and checked and installed by the real update helper on a unix
 * socket against a fake system root (slot partitions are plain files, the ESP a folder). Not real here:
 * root rights, systemd's socket activation and the reboot (the helper counts reboot requests).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { makeTestContext, type TestContext } from '../app/testing/test-context.js';
import { FrontDoor } from '../runtime/operations/front-door.js';
import { principalWithFilters } from '../runtime/operations/principal.js';
import { createLogging } from '../runtime/logging.js';
import { applyUpdate } from './apply.js';
import { UpdateComponent } from './component.js';
import type { UpdateJobView, UpdateStatusView } from './service.js';
import { type FakeSystem, fakeSystem, keyPair, makeBundle, rootfsBytes, systemSnapshot } from './testing/fixture.js';
import { type BundleServer, startBundleServer, startHelper, type StartedHelper } from './testing/runtime-fixture.js';

t.setTimeout(120_000);

const admin = principalWithFilters('http', 'admin', ['#']);
const viewer = principalWithFilters('http', 'viewer', ['bridge/request/system/update']);


interface Rig {
  system: FakeSystem;
  tc: TestContext;
  frontDoor: FrontDoor;
  component: UpdateComponent;
  helper: StartedHelper | null;
  server: BundleServer;
  bundleFile: string;
  call<O = unknown>(name: string, input?: unknown, principal?: typeof admin): Promise<O>;
  /** The job `id` once it has finished (waits for its last event). */
  settled(id: number): Promise<UpdateJobView>;
}

async function rig(t: { teardown(fn: () => unknown): void }, options: { helper?: boolean; slotBytes?: number; leftBundle?: boolean } = {}): Promise<Rig> {
  const system = fakeSystem(options.slotBytes ? { slotBytes: options.slotBytes } : {});
  const tc = makeTestContext();
  const bundleFile = path.join(tc.stateDir, 'update', 'bundle.tar');
  const helper = options.helper === false ? null : await startHelper(system.layout, bundleFile);
  const server = await startBundleServer();
  const logging = createLogging({ level: 'silent', components: {}, pretty: false });
  const frontDoor = new FrontDoor({ logger: logging.forComponent('front-door') });
  const component = new UpdateComponent({
    api: { frontDoor, mqtt: { bridge: () => () => {} } },
    socketPath: helper?.socketPath ?? path.join(system.root, 'no-helper.sock'),
  });
  if (options.leftBundle) {
    mkdirSync(path.dirname(bundleFile), { recursive: true });
    writeFileSync(bundleFile, 'left by a runtime killed mid-download');
  }
  await component.start(tc.ctx);
  t.teardown(async () => {
    await component.stop();
    await helper?.close();
    await server.close();
    tc.cleanup();
    rmSync(system.root, { recursive: true, force: true });
  });
  const call = <O>(name: string, input: unknown = {}, principal = admin) => frontDoor.invoke<O>(name, input, { principal, source: 'http' });
  const settled = (id: number) =>
    new Promise<UpdateJobView>((resolve) => {
      const now = component.service?.view().job;
      if (now?.id === id && now.finished_at !== null) {
        resolve(now);
        return;
      }
      const off = tc.ctx.bus.on('update.job', (job) => {
        if (job.id === id && job.finished_at !== null) {
          off();
          resolve(job);
        }
      });
    });
  return { system, tc, frontDoor, component, helper, server, bundleFile, call, settled };
}

t.test('off the OS image: the status says why, and an apply fails before downloading anything', async (t) => {
  const r = await rig(t, { helper: false, leftBundle: true });
  t.notOk(existsSync(r.bundleFile), 'a bundle left by an earlier run is removed at start');
  const status = await r.call<UpdateStatusView>('system.update.status');
  t.match(status, { available: false, reason: { code: 'UPDATE_UNAVAILABLE', message: /update helper does not answer .*ENOENT/ }, job: null });
  const job = await r.call<UpdateJobView>('system.update.apply', { url: `${r.server.base}/b.tar` });
  const done = await r.settled(job.id);
  t.match(done, { phase: 'failed', error: { code: 'UPDATE_UNAVAILABLE' } });
  t.same(r.server.requests, [], 'nothing was downloaded');
  await t.rejects(r.call('system.reboot'), { code: 'UPDATE_UNAVAILABLE' }, 'no reboot without the helper either');
});

t.test('check, then apply the same URL: one download, slot b written and next to boot, then a reboot request', async (t) => {
  const r = await rig(t, { slotBytes: 8 * 1024 * 1024 });
  const rootfs = rootfsBytes(6 * 1024 * 1024);
  const bundle = makeBundle(r.system.root, { signer: r.system.privateKey, version: '0.2.0', rootfs });
  r.server.serve('clawbox-0.2.0.bundle', bundle.file);
  const url = `${r.server.base}/clawbox-0.2.0.bundle?token=secret`;
  const before = systemSnapshot(r.system);
  const events: UpdateJobView[] = [];
  r.tc.ctx.bus.on('update.job', (job) => events.push(job));

  const started = await r.call<UpdateJobView>('system.update.check', { url });
  t.match(started, { action: 'check', phase: 'downloading', url: `${r.server.base}/clawbox-0.2.0.bundle?…` }, 'answered at once; the URL shown without its query');
  await t.rejects(r.call('system.update.apply', { url }), { code: 'BUSY' }, 'one update at a time');
  const checked = await r.settled(started.id);
  t.match(checked, { phase: 'checked', bundle: { version: '0.2.0', arch: 'amd64', from: '0.1.0', slot: 'b' }, error: null });
  t.equal(checked.downloaded_bytes, readFileSync(bundle.file).length, 'every byte downloaded');
  t.same(systemSnapshot(r.system), before, 'a check writes nothing');

  const applying = await r.call<UpdateJobView>('system.update.apply', { url });
  const installed = await r.settled(applying.id);
  t.match(installed, { phase: 'installed', result: { slot: 'b', version: '0.2.0', from: '0.1.0', entry: 'clawbox-2-b+3.conf' }, error: null });
  t.equal(r.server.requests.length, 1, 'Apply after Check used the checked download');
  t.equal(installed.written_bytes, rootfs.length, 'progress reached the installed size');
  const writes = events.filter((e) => e.id === applying.id && e.phase === 'writing' && e.written_bytes > 0);
  t.ok(writes.length >= 2, `progress in bytes written (${writes.length} steps)`);
  const phases = events.filter((e) => e.id === applying.id).map((e) => e.phase);
  t.same(
    phases.filter((p, i) => p !== phases[i - 1]),
    ['verifying', 'writing', 'installed'],
    'apply after check: no second download; checks, then writing (kernel and entry included), then installed',
  );
  t.ok(readFileSync(r.system.layout.slotDevice('b')).subarray(0, rootfs.length).equals(rootfs), 'slot b holds the new root file system');
  t.notOk(existsSync(r.bundleFile), 'the downloaded bundle is removed once installed');

  const status = await r.call<UpdateStatusView & { available: true }>('system.update.status', {}, viewer);
  t.match(status, {
    available: true,
    version: '0.1.0',
    booted: 'a',
    slots: [
      { slot: 'a', state: 'good', booted: true, next_boot: false },
      { slot: 'b', version: '0.2.0', state: 'trying', tries_left: 3, next_boot: true },
    ],
    last: { result: 'installed', version: '0.2.0' },
    job: { phase: 'installed' },
  }, 'a viewer reads slots, versions and the last result');
  t.match(await r.tc.ctx.status.snapshot(), { update: { job: { id: applying.id, phase: 'installed' } } }, 'the status document shows the job');

  await t.rejects(r.call('system.reboot', {}, viewer), { code: 'FORBIDDEN' }, 'a viewer may not reboot');
  t.same(await r.call('system.reboot'), { rebooting: true });
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(r.helper?.reboots(), 1, 'the helper was asked to reboot');
});

t.test('refusals: coded errors, nothing changed, the download removed', async (t) => {
  const r = await rig(t);
  const stranger = keyPair();
  const cases: [string, Parameters<typeof makeBundle>[1] | null, string, RegExp][] = [
    ['signed by an unknown key', { signer: stranger.privateKey }, 'UPDATE_SIGNATURE_INVALID', /does not verify/],
    ['built for arm64', { signer: r.system.privateKey, arch: 'arm64' }, 'UPDATE_ARCH_MISMATCH', /for arm64/],
    ['an older version', { signer: r.system.privateKey, version: '0.0.9' }, 'UPDATE_VERSION_REFUSED', /older/],
    ['a corrupt root file system', { signer: r.system.privateKey, corrupt: 'rootfs' }, 'UPDATE_BUNDLE_INVALID', /does not match its sha256/],
    [
      'a root file system larger than the slot',
      { signer: r.system.privateKey, manifest: (m) => { (m.payloads as { rootfs: { installed_size: number } }).rootfs.installed_size = 1024 ** 3; } },
      'NO_SPACE',
      /slot b holds/,
    ],
    ['a URL that is not there', null, 'NOT_FOUND', /HTTP 404/],
  ];
  const before = systemSnapshot(r.system);
  for (const [what, spec, code, message] of cases) {
    const name = what.replaceAll(' ', '-');
    if (spec) r.server.serve(name, makeBundle(r.system.root, spec).file);
    for (const action of ['system.update.check', 'system.update.apply']) {
      const job = await r.call<UpdateJobView>(action, { url: `${r.server.base}/${name}` });
      const done = await r.settled(job.id);
      t.match(done, { phase: 'failed', error: { code, message } }, `${what}: ${action} refused`);
      t.same(systemSnapshot(r.system), before, `${what}: ${action} changed nothing`);
      t.notOk(existsSync(r.bundleFile), `${what}: the download is removed`);
    }
  }
  const bad: [unknown, string][] = [
    [{ url: 'ftp://example.org/b.tar' }, 'PAYLOAD_INVALID'],
    [{ url: 'not a url' }, 'PAYLOAD_INVALID'],
    [{ url: `${r.server.base}/x`, extra: 1 }, 'PAYLOAD_INVALID'],
    [{ url: `http://h/${'x'.repeat(2100)}` }, 'PAYLOAD_INVALID'],
    [{}, 'PAYLOAD_INVALID'],
  ];
  for (const [input, code] of bad) await t.rejects(r.call('system.update.apply', input), { code }, JSON.stringify(input).slice(0, 60));
  await t.rejects(r.call('system.update.apply', { url: `${r.server.base}/x` }, viewer), { code: 'FORBIDDEN' }, 'a viewer may not apply');
  await t.rejects(r.call('system.update.check', { url: `${r.server.base}/x` }, viewer), { code: 'FORBIDDEN' }, 'nor check (it downloads)');
  await t.rejects(r.call('system.update.cancel'), { code: 'NOT_FOUND' }, 'nothing to cancel');
  await t.rejects(r.call('system.update.status', {}, principalWithFilters('http', 'other', ['lamp/set'])), { code: 'FORBIDDEN' });
});

t.test('cancel during the download: the job ends cancelled, the slot keeps no entry, nothing else changed', async (t) => {
  const r = await rig(t);
  const bundle = makeBundle(r.system.root, { signer: r.system.privateKey, version: '0.2.0' });
  r.server.serve('b', bundle.file);
  r.server.holdAfter(64 * 1024);
  const before = systemSnapshot(r.system);
  const job = await r.call<UpdateJobView>('system.update.apply', { url: `${r.server.base}/b` });
  await r.server.whenHolding();
  // Cancelled once the runtime has received some of what the server sent before holding.
  await new Promise<void>((resolve) => {
    if ((r.component.service?.view().job?.downloaded_bytes ?? 0) > 0) resolve();
    const off = r.tc.ctx.bus.on('update.job', (view) => {
      if (view.downloaded_bytes > 0) {
        off();
        resolve();
      }
    });
  });
  const cancelled = await r.call<UpdateJobView>('system.update.cancel');
  t.equal(cancelled.id, job.id);
  const done = await r.settled(job.id);
  t.match(done, { phase: 'cancelled', error: null });
  t.ok(done.downloaded_bytes > 0 && done.downloaded_bytes < readFileSync(bundle.file).length, `stopped mid-download (${done.downloaded_bytes} bytes)`);
  t.same(systemSnapshot(r.system), before, 'slots, ESP and history unchanged');
  t.notOk(existsSync(r.bundleFile), 'the partial download is removed');
  r.server.release();
  r.server.holdAfter(undefined);
  const again = await r.call<UpdateJobView>('system.update.apply', { url: `${r.server.base}/b` });
  t.match(await r.settled(again.id), { phase: 'installed' }, 'the next try installs');
});

t.test('an install aborted while the slot is written leaves slot b without a boot entry, recorded failed', async (t) => {
  const system = fakeSystem({ slotBytes: 16 * 1024 * 1024 });
  t.teardown(() => rmSync(system.root, { recursive: true, force: true }));
  const bundle = makeBundle(system.root, { signer: system.privateKey, version: '0.2.0', rootfs: rootfsBytes(12 * 1024 * 1024) });
  const abort = new AbortController();
  let firstWrite = 0;
  await t.rejects(
    applyUpdate(bundle.file, system.layout, {
      signal: abort.signal,
      onWritten: (written) => {
        firstWrite ||= written;
        abort.abort(new Error('cancelled'));
      },
    }),
  );
  t.ok(firstWrite > 0 && firstWrite < 12 * 1024 * 1024, 'aborted after the first batch');
  t.same(readdirSync(path.join(system.layout.espDir, 'loader/entries')), ['clawbox-1-a.conf'], 'only the running slot can boot');
  t.match(JSON.parse(readFileSync(path.join(system.layout.stateDir, 'history.json'), 'utf8'))[0], { result: 'failed', slot: 'b' });
});

t.test('the helper: a caller that goes away cancels the install; bad requests get coded errors', async (t) => {
  const system = fakeSystem();
  t.teardown(() => rmSync(system.root, { recursive: true, force: true }));
  const bundleFile = path.join(system.root, 'bundle.tar');
  writeFileSync(bundleFile, 'a bundle');
  let installStarted: () => void = () => {};
  const installing = new Promise<void>((resolve) => {
    installStarted = resolve;
  });
  let installAborted: (reason: unknown) => void = () => {};
  const aborted = new Promise<unknown>((resolve) => {
    installAborted = resolve;
  });
  // The real installer is applyUpdate (tested above); this one waits for its signal, to see the wiring.
  const helper = await startHelper(system.layout, bundleFile, (_file, _layout, options) => {
    installStarted();
    return new Promise((_resolve, reject) => {
      options.signal?.addEventListener('abort', () => {
        installAborted(options.signal?.reason);
        reject(options.signal?.reason);
      });
    });
  });
  t.teardown(() => helper.close());
  const caller = net.createConnection(helper.socketPath);
  caller.write('{"op":"apply"}\n');
  await installing;
  caller.destroy();
  t.match(await aborted, { code: 'DEADLINE_EXCEEDED', message: /closed the connection/ }, 'the install got the abort');

  /** One request line, the helper's lines until it closes. */
  const ask = (line: string) =>
    new Promise<unknown[]>((resolve) => {
      const socket = net.createConnection(helper.socketPath);
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString();
      });
      socket.on('close', () => resolve(text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown)));
      socket.write(line);
    });
  t.match(await ask('not json\n'), [{ type: 'error', code: 'PAYLOAD_INVALID' }]);
  t.match(await ask('{"op":"format-disk"}\n'), [{ type: 'error', code: 'PAYLOAD_INVALID' }]);
  t.match(await ask(`${'x'.repeat(5000)}\n`), [{ type: 'error', code: 'PAYLOAD_TOO_LARGE' }]);
  t.match(await ask('{"op":"status"}\n'), [{ type: 'result', data: { booted: 'a', version: '0.1.0' } }]);
  rmSync(bundleFile);
  symlinkSync(system.layout.slotDevice('a'), bundleFile);
  t.match(await ask('{"op":"check"}\n'), [{ type: 'progress' }, { type: 'error', code: 'UPDATE_BUNDLE_INVALID', message: /is a symbolic link/ }], 'a link is not followed');
  rmSync(bundleFile);
  t.match(await ask('{"op":"apply"}\n'), [{ type: 'error', code: 'NOT_FOUND', message: /no bundle/ }]);
});

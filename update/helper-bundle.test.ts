/**
 * The update helper runs as root on a file the unprivileged runtime wrote: it opens that file once and
 * reads nothing else. Real files on this machine: a symbolic link, a FIFO, a hard link, a file of another
 * user (the helper is told another owner, so this runs without root too), a group-writable file, a path
 * swapped while the install runs, and the file rewritten in place while the install runs. Each refusal
 * is UPDATE_BUNDLE_INVALID with the reason and leaves the slots, the ESP and the history as they were.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { type ApplyResult, applyUpdate } from './apply.js';
import { openBundleFile } from './bundle.js';
import type { BundleCheck } from './helper.js';
import { askHelper } from './helper-client.js';
import type { HelperRequest } from './helper-protocol.js';
import { indexTar } from './tar-index.js';
import { type FakeSystem, fakeSystem, makeBundle, rootfsBytes, systemSnapshot } from './testing/fixture.js';
import { startHelper } from './testing/runtime-fixture.js';

t.setTimeout(120_000);



/** A fake box, a good 0.2.0 bundle elsewhere, and the runtime's download path (not there yet). */
function setup(t: { teardown(fn: () => unknown): void }, rootfs = rootfsBytes()) {
  const system = fakeSystem({ slotBytes: rootfs.length + 1024 * 1024 });
  t.teardown(() => rmSync(system.root, { recursive: true, force: true }));
  const good = makeBundle(system.root, { signer: system.privateKey, version: '0.2.0', rootfs });
  const bundleFile = path.join(system.root, 'runtime-state', 'update', 'bundle.tar');
  mkdirSync(path.dirname(bundleFile), { recursive: true });
  return { system, good, bundleFile };
}

/** Asks the helper; a FIFO that blocked the open would make this time out instead of answering. */
const ask = <T>(socketPath: string, request: HelperRequest) => askHelper<T>(socketPath, request, { signal: AbortSignal.timeout(60_000) });

t.test('the runtime\'s own plain file: checked and installed', async (t) => {
  const { system, good, bundleFile } = setup(t);
  writeFileSync(bundleFile, readFileSync(good.file), { mode: 0o600 });
  const helper = await startHelper(system.layout, bundleFile);
  t.teardown(() => helper.close());
  t.match(await ask<BundleCheck>(helper.socketPath, { op: 'check' }), { version: '0.2.0', slot: 'b' });
  t.match(await ask<ApplyResult>(helper.socketPath, { op: 'apply' }), { version: '0.2.0', slot: 'b', entry: 'clawbox-2-b+3.conf' });
  t.ok(readFileSync(system.layout.slotDevice('b')).subarray(0, good.rootfs.length).equals(good.rootfs), 'slot b holds the bundle\'s root file system');
});

t.test('refused at the open, for check and apply: a link, a FIFO, a hard link, another owner, writable by others', async (t) => {
  const { system, good, bundleFile } = setup(t);
  const helper = await startHelper(system.layout, bundleFile);
  const stranger = await startHelper(system.layout, bundleFile, undefined, (process.getuid?.() ?? 0) + 4242);
  t.teardown(async () => {
    await helper.close();
    await stranger.close();
  });
  const before = systemSnapshot(system);
  // Each case points at (or is) a correctly signed bundle: only the way the file is reached refuses it.
  const cases: [string, () => void, RegExp, string?][] = [
    ['a symbolic link to a good bundle', () => symlinkSync(good.file, bundleFile), /is a symbolic link/],
    ['a FIFO nobody writes to', () => execFileSync('mkfifo', ['-m', '0600', bundleFile]), /is not a regular file/],
    ['a hard link to a good bundle', () => linkSync(good.file, bundleFile), /has 2 names \(a hard link\)/],
    ['a file of another user', () => writeFileSync(bundleFile, readFileSync(good.file), { mode: 0o600 }), /belongs to user \d+, not to the runtime's user \d+/, 'stranger'],
    [
      'a file others may write',
      () => {
        writeFileSync(bundleFile, readFileSync(good.file));
        chmodSync(bundleFile, 0o664);
      },
      /is writable by others \(mode 664\)/,
    ],
  ];
  for (const [what, make, message, which] of cases) {
    rmSync(bundleFile, { force: true });
    make();
    const socketPath = (which === 'stranger' ? stranger : helper).socketPath;
    for (const op of ['check', 'apply'] as const) {
      await t.rejects(ask(socketPath, { op }), { code: 'UPDATE_BUNDLE_INVALID', message }, `${what}: ${op} refused`);
      t.same(systemSnapshot(system), before, `${what}: ${op} changed nothing`);
    }
  }
  rmSync(bundleFile, { force: true });
  t.ok(readFileSync(good.file).length > 0, 'the good bundle behind the links is still there');
});

t.test('clawbox update FIFO: refused at once instead of waiting for a writer', async (t) => {
  const { system, bundleFile } = setup(t);
  execFileSync('mkfifo', ['-m', '0600', bundleFile]);
  await t.rejects(applyUpdate(bundleFile, system.layout), { code: 'UPDATE_BUNDLE_INVALID', message: /is not a regular file/ });
  await t.rejects(openBundleFile(path.join(system.root, 'missing.tar')), { code: 'NOT_FOUND' });
});

/** The helper with the real installer, calling `during` once, when the first batch of the slot is written. */
async function helperWithHook(t: { teardown(fn: () => unknown): void }, system: FakeSystem, bundleFile: string, during: () => void) {
  let fired = false;
  const helper = await startHelper(system.layout, bundleFile, (file, layout, options) =>
    applyUpdate(file, layout, {
      ...options,
      onWritten: (written, total) => {
        options.onWritten?.(written, total);
        if (fired) return;
        fired = true;
        // Synchronous, between two batches: done before the install reads on.
        during();
      },
    }),
  );
  t.teardown(() => helper.close());
  return { helper, fired: () => fired };
}

t.test('the path swapped for a link to another bundle while the install runs: the file first opened is installed', async (t) => {
  const { system, good, bundleFile } = setup(t, rootfsBytes(12 * 1024 * 1024));
  writeFileSync(bundleFile, readFileSync(good.file), { mode: 0o600 });
  const other = makeBundle(system.root, { signer: system.privateKey, version: '0.3.0' });
  const link = `${bundleFile}.swap`;
  symlinkSync(other.file, link);
  const { helper, fired } = await helperWithHook(t, system, bundleFile, () => renameSync(link, bundleFile));
  const result = await ask<ApplyResult>(helper.socketPath, { op: 'apply' });
  t.ok(fired(), 'the path was swapped mid-install');
  t.match(result, { version: '0.2.0', slot: 'b' }, 'the bundle opened first was installed');
  t.ok(readFileSync(system.layout.slotDevice('b')).subarray(0, good.rootfs.length).equals(good.rootfs), 'slot b holds its root file system, not the other one');
  t.ok(readFileSync(path.join(system.layout.espDir, 'clawbox/b/vmlinuz')).equals(good.kernel), 'and its kernel');
  await t.rejects(ask(helper.socketPath, { op: 'check' }), { code: 'UPDATE_BUNDLE_INVALID', message: /is a symbolic link/ }, 'the swapped-in link is refused next time');
});

t.test('the file rewritten in place while the install runs: refused, slot b gets no boot entry', async (t) => {
  const { system, good, bundleFile } = setup(t, rootfsBytes(12 * 1024 * 1024));
  writeFileSync(bundleFile, readFileSync(good.file), { mode: 0o600 });
  const handle = await open(bundleFile, 'r');
  const rootfs = (await indexTar(handle, (await handle.stat()).size)).find((m) => m.name === 'rootfs.ext4.zst')!;
  await handle.close();
  const { helper, fired } = await helperWithHook(t, system, bundleFile, () => {
    // The last MiB of the compressed root file system, not read yet: the runtime (the file's owner) rewrites it.
    const writer = openSync(bundleFile, 'r+');
    writeSync(writer, Buffer.alloc(1024 * 1024, 0x5a), 0, 1024 * 1024, rootfs.offset + rootfs.size - 1024 * 1024);
    closeSync(writer);
  });
  await t.rejects(ask(helper.socketPath, { op: 'apply' }), { code: 'UPDATE_BUNDLE_INVALID', message: /does not match|could not be unpacked|changed/ });
  t.ok(fired(), 'the file was rewritten mid-install');
  t.same(readdirSync(path.join(system.layout.espDir, 'loader/entries')), ['clawbox-1-a.conf'], 'only the running slot can boot');
  t.match(JSON.parse(readFileSync(path.join(system.layout.stateDir, 'history.json'), 'utf8'))[0], { result: 'failed', slot: 'b', version: '0.2.0' });
});

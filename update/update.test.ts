/**
 * The update path on real files: bundles made with GNU tar and signed with ed25519 keys made here, a
 * system root in a temporary folder (slot partitions are plain files, the ESP a folder). Every refusal
 * must leave the slots, the boot entries and the history exactly as they were.
 */
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { runInProcess } from '../test/cli-helpers.js';
import { applyUpdate } from './apply.js';
import { listEntries } from './boot-entries.js';
import { readHistory } from './record.js';
import { recordBootVerdict, updateStatus } from './status.js';
import { fakeSystem, keyPair, makeBundle, OPTIONS, systemSnapshot } from './testing/fixture.js';
import { compareVersions } from './version.js';



function setup(t: { teardown(fn: () => unknown): void }, options: Parameters<typeof fakeSystem>[0] = {}) {
  const system = fakeSystem(options);
  t.teardown(() => rmSync(system.root, { recursive: true, force: true }));
  return system;
}

t.test('a good bundle is written into the inactive slot, which boots next with 3 tries', async (t) => {
  const system = setup(t);
  const bundle = makeBundle(system.root, { signer: system.privateKey, version: '0.2.0' });
  const messages: string[] = [];
  const result = await applyUpdate(bundle.file, system.layout, { progress: (m) => messages.push(m) });
  t.match(result, { slot: 'b', version: '0.2.0', from: '0.1.0', entry: 'clawbox-2-b+3.conf' });
  const slotB = readFileSync(system.layout.slotDevice('b'));
  t.ok(slotB.subarray(0, bundle.rootfs.length).equals(bundle.rootfs), 'slot b holds the root file system');
  t.equal(readFileSync(system.layout.slotDevice('a'))[0], 0xaa, 'slot a untouched');
  t.ok(readFileSync(path.join(system.layout.espDir, 'clawbox/b/vmlinuz')).equals(bundle.kernel));
  t.ok(readFileSync(path.join(system.layout.espDir, 'clawbox/b/initrd.img')).equals(bundle.initrd));
  const entry = readFileSync(path.join(system.layout.espDir, 'loader/entries/clawbox-2-b+3.conf'), 'utf8');
  t.match(entry, /^title +clawbox 0\.2\.0 \(slot b\)$/m);
  t.match(entry, /^linux +\/clawbox\/b\/vmlinuz$/m);
  t.match(entry, /^options root=PARTLABEL=clawbox-root-b clawbox\.slot=b rootfstype=ext4 rw quiet console=tty0 console=ttyS0,115200$/m);
  t.ok(messages.some((m) => /signature ok/.test(m)) && messages.some((m) => /boots clawbox 0\.2\.0/.test(m)), 'progress reported');

  const status = await updateStatus(system.layout);
  t.match(status.slots, [
    { slot: 'a', version: '0.1.0', state: 'good', booted: true, next_boot: false },
    { slot: 'b', version: '0.2.0', state: 'trying', tries_left: 3, booted: false, next_boot: true },
  ]);
  t.match(status.last, { result: 'installed', slot: 'b', version: '0.2.0' });
});

t.test('refusals change nothing', async (t) => {
  const system = setup(t);
  const stranger = keyPair();
  const cases: [string, Parameters<typeof makeBundle>[1], string, RegExp][] = [
    ['signed by an unknown key', { signer: stranger.privateKey }, 'UPDATE_SIGNATURE_INVALID', /does not verify/],
    ['manifest changed after signing', { signer: system.privateKey, tamper: (m) => { m.version = '9.9.9'; } }, 'UPDATE_SIGNATURE_INVALID', /does not verify/],
    ['built for arm64', { signer: system.privateKey, arch: 'arm64' }, 'UPDATE_ARCH_MISMATCH', /for arm64, this box runs amd64/],
    ['the running version', { signer: system.privateKey, version: '0.1.0' }, 'UPDATE_VERSION_REFUSED', /already running/],
    ['an older version', { signer: system.privateKey, version: '0.0.9' }, 'UPDATE_VERSION_REFUSED', /older .*--allow-downgrade/],
    ['a corrupt root file system', { signer: system.privateKey, corrupt: 'rootfs' }, 'UPDATE_BUNDLE_INVALID', /rootfs\.ext4\.zst does not match its sha256/],
    ['a corrupt kernel', { signer: system.privateKey, corrupt: 'kernel' }, 'UPDATE_BUNDLE_INVALID', /vmlinuz does not match its sha256/],
    [
      'a root file system larger than the slot',
      { signer: system.privateKey, manifest: (m) => { (m.payloads as { rootfs: { installed_size: number } }).rootfs.installed_size = 1024 ** 3; } },
      'NO_SPACE',
      /needs 1024\.0 MiB, slot b holds 0\.5 MiB/,
    ],
  ];
  const before = systemSnapshot(system);
  for (const [what, spec, code, message] of cases) {
    const bundle = makeBundle(system.root, spec);
    await t.rejects(applyUpdate(bundle.file, system.layout), { code, message }, what);
    t.same(systemSnapshot(system), before, `${what}: slots, ESP and history unchanged`);
  }
});

t.test('files that are not bundles are refused with UPDATE_BUNDLE_INVALID', async (t) => {
  const system = setup(t);
  const before = systemSnapshot(system);
  const good = makeBundle(system.root, { signer: system.privateKey });
  const bytes = readFileSync(good.file);
  const files: [string, Buffer, RegExp][] = [
    ['random bytes', Buffer.alloc(4096, 7), /damaged|ustar/],
    ['an empty file', Buffer.alloc(0), /truncated|end-of-archive/],
    ['a truncated bundle', bytes.subarray(0, bytes.length >> 1), /truncated|past the end|end-of-archive/],
  ];
  for (const [what, content, message] of files) {
    const file = path.join(system.root, `${what.replaceAll(' ', '-')}.tar`);
    writeFileSync(file, content);
    await t.rejects(applyUpdate(file, system.layout), { code: 'UPDATE_BUNDLE_INVALID', message }, what);
  }
  await t.rejects(applyUpdate(path.join(system.root, 'missing.tar'), system.layout), { code: 'NOT_FOUND' });
  t.same(systemSnapshot(system), before);
});

t.test('a system without slots or without trusted keys refuses before reading the bundle', async (t) => {
  const system = setup(t);
  const bundle = makeBundle(system.root, { signer: system.privateKey });
  writeFileSync(system.layout.cmdlineFile, 'root=/dev/sda2 rw quiet\n');
  await t.rejects(applyUpdate(bundle.file, system.layout), { code: 'UPDATE_UNAVAILABLE', message: /not booted from an A\/B slot/ });
  writeFileSync(system.layout.cmdlineFile, `${OPTIONS}\n`);
  rmSync(system.layout.keysDir, { recursive: true });
  await t.rejects(applyUpdate(bundle.file, system.layout), { code: 'UPDATE_SIGNATURE_INVALID', message: /trusts no update bundle/ });
});

t.test('boot counting: a healthy trial boot is marked good, a failing one bad, and the fallback is recorded', async (t) => {
  const system = setup(t);
  const { layout } = system;
  await applyUpdate(makeBundle(system.root, { signer: system.privateKey, version: '0.2.0' }).file, layout);
  const entries = path.join(layout.espDir, 'loader/entries');
  // What systemd-boot does when it starts the entry: one try used.
  renameSync(path.join(entries, 'clawbox-2-b+3.conf'), path.join(entries, 'clawbox-2-b+2-1.conf'));
  writeFileSync(layout.cmdlineFile, 'root=PARTLABEL=clawbox-root-b clawbox.slot=b rw\n');
  writeFileSync(layout.releaseFile, 'CLAWBOX_VERSION=0.2.0\nCLAWBOX_ARCH=amd64\n');
  t.match(await recordBootVerdict(layout, true, ''), /marked good/);
  t.same(readdirSync(entries).sort(), ['clawbox-1-a.conf', 'clawbox-2-b.conf']);
  t.match((await readHistory(layout.stateDir))[0], { result: 'good', slot: 'b', version: '0.2.0' });
  t.match(await recordBootVerdict(layout, false, 'x'), /not on trial/, 'a blessed slot is never condemned');
  t.same(readdirSync(entries).sort(), ['clawbox-1-a.conf', 'clawbox-2-b.conf']);

  // Now from b to a with 0.3.0, which fails its health check.
  await applyUpdate(makeBundle(system.root, { signer: system.privateKey, version: '0.3.0' }).file, layout);
  t.same(readdirSync(entries).sort(), ['clawbox-2-b.conf', 'clawbox-3-a+3.conf'], 'the old entry of slot a is gone');
  t.equal((await listEntries(layout.espDir))[0]?.file, 'clawbox-3-a+3.conf', 'the new slot sorts first');
  renameSync(path.join(entries, 'clawbox-3-a+3.conf'), path.join(entries, 'clawbox-3-a+2-1.conf'));
  writeFileSync(layout.cmdlineFile, 'root=PARTLABEL=clawbox-root-a clawbox.slot=a rw\n');
  writeFileSync(layout.releaseFile, 'CLAWBOX_VERSION=0.3.0\nCLAWBOX_ARCH=amd64\n');
  t.match(await recordBootVerdict(layout, false, '/healthz: connection refused'), /marked bad/);
  t.same(readdirSync(entries).sort(), ['clawbox-2-b.conf', 'clawbox-3-a+0-1.conf']);
  t.equal((await listEntries(layout.espDir))[0]?.file, 'clawbox-2-b.conf', 'the bad entry sorts last: slot b boots next');

  // systemd-boot falls back to b: the next health check records the rollback once.
  writeFileSync(layout.cmdlineFile, 'root=PARTLABEL=clawbox-root-b clawbox.slot=b rw\n');
  writeFileSync(layout.releaseFile, 'CLAWBOX_VERSION=0.2.0\nCLAWBOX_ARCH=amd64\n');
  t.match(await recordBootVerdict(layout, true, ''), /rolled back: slot b runs 0\.2\.0/);
  const status = await updateStatus(layout);
  t.match(status.last, { result: 'rolled-back', slot: 'a', version: '0.3.0' });
  t.match(status.slots, [{ slot: 'a', state: 'bad', tries_left: 0, next_boot: false }, { slot: 'b', state: 'good', booted: true, next_boot: true }]);
  t.match(await recordBootVerdict(layout, true, ''), /not on trial/, 'recorded once');
});

t.test('clawbox update on the command line: progress, status, coded refusals', async (t) => {
  const system = setup(t);
  const bad = makeBundle(system.root, { signer: keyPair().privateKey });
  const refused = await runInProcess(['update', bad.file, '--root', system.root]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /^clawbox: UPDATE_SIGNATURE_INVALID: /m);
  const good = makeBundle(system.root, { signer: system.privateKey, version: '0.2.0' });
  const applied = await runInProcess(['update', good.file, '--root', system.root]);
  t.equal(applied.code, 0, applied.stderr);
  t.match(applied.stdout, /signature ok[\s\S]*reboot to start clawbox 0\.2\.0 from slot b/);
  const status = await runInProcess(['update', 'status', '--root', system.root]);
  t.match(status.stdout, /slot a: 0\.1\.0 +good +\[running\]\n +slot b: 0\.2\.0 +trying \(3 tries left\) +\[boots next\]/);
  t.match(status.stdout, /last update: installed/);
  const json = JSON.parse((await runInProcess(['update', 'status', '--json', '--root', system.root])).stdout);
  t.match(json, { booted: 'a', version: '0.1.0', slots: [{ slot: 'a' }, { slot: 'b', state: 'trying' }] });
  t.match((await runInProcess(['update', 'ftp://example.org/b.tar', '--root', system.root])).stderr, /USAGE: update: only files and http\(s\) URLs/);
  t.equal((await runInProcess(['update', 'status', 'extra', '--root', system.root])).code, 64);
  const noSlots = await runInProcess(['update', 'status', '--root', path.join(tmpdir(), 'clawbox-no-such-root')]);
  t.match(noSlots.stderr, /UPDATE_UNAVAILABLE: this system was not booted from an A\/B slot/);
  t.equal(noSlots.code, 69);
});

t.test('versions order by number, a pre-release before its release', async (t) => {
  t.equal(compareVersions('0.10.0', '0.9.9'), 1);
  t.equal(compareVersions('1.0.0-rc.1', '1.0.0'), -1);
  t.equal(compareVersions('1.0.0-rc.10', '1.0.0-rc.9'), 1);
  t.equal(compareVersions('1.2.3', '1.2.3'), 0);
});

t.test('clawbox update URL: downloads through a redirect at a slow pace, and a missing bundle is NOT_FOUND', async (t) => {
  const system = setup(t);
  const good = makeBundle(system.root, { signer: system.privateKey, version: '0.2.0' });
  const body = readFileSync(good.file);
  let served = 0;
  const server = http.createServer((request, response) => {
    if (request.url === '/latest') {
      response.writeHead(302, { location: '/bundle' }).end();
    } else if (request.url === '/bundle') {
      served++;
      // Small chunks with pauses: the client's stream runs empty and fills again many times.
      response.writeHead(200, { 'content-length': body.length });
      void (async () => {
        for (let at = 0; at < body.length; at += 16_384) {
          response.write(body.subarray(at, at + 16_384));
          await new Promise((resolve) => setImmediate(resolve));
        }
        response.end();
      })();
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const missing = await runInProcess(['update', `${base}/nothing`, '--root', system.root]);
  t.match(missing.stderr, /NOT_FOUND: cannot download .*HTTP 404/);
  const applied = await runInProcess(['update', `${base}/latest`, '--root', system.root]);
  t.equal(applied.code, 0, applied.stderr);
  t.equal(served, 1, 'the redirect was followed to the bundle');
  t.match(applied.stdout, /downloading [\s\S]*signature ok[\s\S]*reboot to start clawbox 0\.2\.0 from slot b/);
});

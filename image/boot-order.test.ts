/**
 * The mounts and boot-order drop-ins of the image (lib/install.sh: install_fstab, install_boot_order; the
 * overlay's drop-ins), checked with systemd's own fstab generator: the ESP is an automount (mounted on
 * first access, not at every boot) while the data partition stays required by local-fs.target, and each
 * drop-in is named after the unit systemd actually makes, so it applies. No root file system, no boot.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

const IMAGE_DIR = import.meta.dirname;
const GENERATOR = '/usr/lib/systemd/system-generators/systemd-fstab-generator';
const work = mkdtempSync(path.join(tmpdir(), 'clawbox-boot-order-test-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const root = path.join(work, 'root');
mkdirSync(path.join(root, 'etc'), { recursive: true });
const installed = spawnSync(
  'bash',
  [
    '-c',
    `set -euo pipefail
    . "${IMAGE_DIR}/lib/common.sh"; . "${IMAGE_DIR}/lib/install.sh"; . "${IMAGE_DIR}/lib/disk.sh"
    install_fstab "$1"
    install_boot_order "$1"`,
    'boot-order-test',
    root,
  ],
  { encoding: 'utf8' },
);

/** Runs systemd's fstab generator on the image's fstab; returns the generated unit directory. */
function generate(): string {
  const out = path.join(work, 'generated');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out);
  const result = spawnSync(GENERATOR, [out, out, out], {
    encoding: 'utf8',
    env: { ...process.env, SYSTEMD_FSTAB: path.join(root, 'etc/fstab'), SYSTEMD_PROC_CMDLINE: '', SYSTEMD_LOG_LEVEL: 'warning' },
  });
  if (result.status !== 0) throw new Error(`systemd-fstab-generator failed: ${result.stderr}`);
  return out;
}

const listed = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);

t.test('install_fstab and install_boot_order run', async (t) => {
  t.equal(installed.stderr, '');
  t.equal(installed.status, 0);
});

t.test('the ESP is mounted on first access, the data partition at boot', { skip: !existsSync(GENERATOR) && 'no systemd-fstab-generator (apt-get install systemd)' }, async (t) => {
  const out = generate();
  t.ok(listed(path.join(out, 'local-fs.target.wants')).includes('boot-efi.automount'), 'local-fs.target wants the automount');
  const atBoot = [...listed(path.join(out, 'local-fs.target.wants')), ...listed(path.join(out, 'local-fs.target.requires'))];
  t.notOk(atBoot.includes('boot-efi.mount'), 'the ESP mount itself is not started at boot');
  t.ok(listed(path.join(out, 'local-fs.target.requires')).includes('data.mount'), 'the data partition is required at boot');
  t.match(readFileSync(path.join(out, 'boot-efi.mount'), 'utf8'), /^Requires=systemd-fsck@/m, 'the ESP is still checked when it is mounted');
});

t.test('each drop-in is named after a unit systemd makes', { skip: !existsSync(GENERATOR) && 'no systemd-fstab-generator' }, async (t) => {
  const out = generate();
  const dataFsck = /^Requires=(systemd-fsck@.+\.service)$/m.exec(readFileSync(path.join(out, 'data.mount'), 'utf8'))?.[1];
  t.ok(dataFsck, 'data.mount requires its fsck unit');
  const unitDir = path.join(root, 'usr/lib/systemd/system');
  const fsckDropIn = path.join(unitDir, `${dataFsck}.d/clawbox.conf`);
  t.match(readFileSync(fsckDropIn, 'utf8'), /^\[Unit\]\nConditionPathIsMountPoint=!\/data$/m, "the data partition's fsck is skipped when the initramfs mounted it");
  t.ok(existsSync(path.join(out, 'boot-efi.automount')), 'the generator makes boot-efi.automount');
  t.match(
    readFileSync(path.join(unitDir, 'boot-efi.automount.d/clawbox.conf'), 'utf8'),
    /^\[Unit\]\nConditionPathIsMountPoint=!\/boot\/efi$/m,
    'the automount is skipped when the initramfs mounted the ESP (first boot)',
  );
});

t.test("the overlay's CPU weight drop-ins name real units and one setting", async (t) => {
  const overlayUnits = path.join(IMAGE_DIR, 'overlay/usr/lib/systemd/system');
  for (const unit of ['systemd-udevd.service', 'systemd-networkd.service']) {
    const text = readFileSync(path.join(overlayUnits, `${unit}.d/clawbox.conf`), 'utf8');
    t.match(text, /^\[Service\]\nStartupCPUWeight=1000$/m, unit);
  }
  // The weight matches the runtime's own, so neither starves the other while the system boots.
  const runtimeUnit = readFileSync(path.join(IMAGE_DIR, '../systemd/clawbox.service'), 'utf8');
  t.match(runtimeUnit, /^StartupCPUWeight=1000$/m);
});

t.test('no overlay unit is ordered after the runtime', async (t) => {
  // resolved and timesyncd come before sysinit.target, and the update helper's socket (default dependencies)
  // after it: ordering either after clawbox.service leaves a window after the runtime is ready in which the
  // web app's updates answer UPDATE_UNAVAILABLE (no socket yet), which the boot test caught.
  const overlayUnits = path.join(IMAGE_DIR, 'overlay/usr/lib/systemd/system');
  const dropIns = readdirSync(overlayUnits, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.conf'));
  t.ok(dropIns.length > 0, 'the overlay has drop-ins');
  for (const name of dropIns) {
    t.notMatch(readFileSync(path.join(overlayUnits, name), 'utf8'), /^After=.*\bclawbox\.service\b/m, name);
  }
});

t.test('the blacklist blocks no driver the initramfs boots from', async (t) => {
  const blacklisted = [
    ...readFileSync(path.join(IMAGE_DIR, 'overlay/usr/lib/modprobe.d/clawbox.conf'), 'utf8').matchAll(/^blacklist (\S+)$/gm),
  ].map((m) => m[1] ?? '');
  t.ok(blacklisted.includes('kvm'), 'virtualisation is blacklisted');
  const rootfsRecipe = readFileSync(path.join(IMAGE_DIR, 'lib/rootfs.sh'), 'utf8');
  const storage = /<<'MODULES'\n([\s\S]*?)\nMODULES/.exec(rootfsRecipe)?.[1] ?? '';
  const bootDrivers = storage.split('\n').filter((line) => line && !line.startsWith('#'));
  t.ok(bootDrivers.includes('virtio_blk'), 'the storage list was found');
  for (const name of blacklisted) {
    t.notOk(bootDrivers.includes(name) || bootDrivers.includes(name.replaceAll('_', '-')), `${name} is not a boot driver`);
  }
});

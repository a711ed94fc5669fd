/**
 * The disk layer of the image build (lib/disk.sh), run for real on a tiny fake root: GPT layout and
 * partition types, the ESP's boot loader, boot entry and seed, the ext4 root found by its label, identical
 * bytes for identical inputs, and a clear failure when the root has no kernel. No debootstrap, no root
 * file system of a real OS, no loop devices.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

const IMAGE_DIR = import.meta.dirname;
const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const ROOT_X86_64 = '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709';

const work = mkdtempSync(path.join(tmpdir(), 'clawbox-disk-test-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const bootloader = randomBytes(64 * 1024);
function fakeRoot(dir: string, withKernel = true): string {
  const root = path.join(work, dir);
  mkdirSync(path.join(root, 'boot'), { recursive: true });
  mkdirSync(path.join(root, 'usr/lib/systemd/boot/efi'), { recursive: true });
  mkdirSync(path.join(root, 'etc'), { recursive: true });
  if (withKernel) {
    writeFileSync(path.join(root, 'boot/vmlinuz-6.1.0-9-amd64'), 'kernel');
    writeFileSync(path.join(root, 'boot/initrd.img-6.1.0-9-amd64'), 'initrd');
  }
  writeFileSync(path.join(root, 'usr/lib/systemd/boot/efi/systemd-bootx64.efi'), bootloader);
  writeFileSync(path.join(root, 'etc/hostname'), 'clawbox\n');
  // What install.sh's clamp_times does to a real root.
  spawnSync('bash', ['-c', 'find "$1" -exec touch -h -d @1700000000 {} +', 'clamp', root]);
  return root;
}

/** Runs disk_esp, disk_root and disk_assemble from lib/disk.sh; returns the exit status and stderr. */
function buildDisk(root: string, out: string, seed = '') {
  const script = `
    set -euo pipefail
    . "${IMAGE_DIR}/lib/common.sh"; . "${IMAGE_DIR}/lib/install.sh"; . "${IMAGE_DIR}/lib/disk.sh"
    arch_facts amd64
    ESP_MIB=64  # smaller than the image's 256 MiB: faster, same code path
    VERSION=9.9.9 SOURCE_DATE_EPOCH=1700000000 WORK=$(mktemp -d "${work}/w.XXXXXX")
    disk_esp "$1" "$WORK/esp.img" "$3"
    disk_root "$1" "$WORK/root.img"
    disk_assemble "$WORK/esp.img" "$WORK/root.img" "$2"
  `;
  return spawnSync('bash', ['-c', script, 'disk-test', root, out, seed], { encoding: 'utf8' });
}

function partitions(img: string) {
  const result = spawnSync('sfdisk', ['-J', img], { encoding: 'utf8' });
  return JSON.parse(result.stdout).partitiontable as {
    label: string;
    id: string;
    partitions: { start: number; size: number; type: string; uuid: string; name: string }[];
  };
}

function mtools(cmd: string, img: string, offset: number, ...args: string[]) {
  return spawnSync(cmd, ['-i', `${img}@@${offset}`, ...args], {
    encoding: 'utf8',
    env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
  });
}

const seedFile = path.join(work, 'seed.yaml');
writeFileSync(seedFile, 'mode: appliance\n');
const imgA = path.join(work, 'a.img');
const built = buildDisk(fakeRoot('rootA'), imgA, seedFile);
// The same content in another directory, built a moment later.
const imgB = path.join(work, 'b.img');
const builtB = buildDisk(fakeRoot('rootB'), imgB, seedFile);

t.test('builds a GPT image with an ESP and an x86-64 root partition, 1 MiB aligned', async (t) => {
  t.equal(built.status, 0, built.stderr);
  const table = partitions(imgA);
  t.equal(table.label, 'gpt');
  t.equal(table.partitions.length, 2);
  const [esp, root] = table.partitions;
  t.equal(esp?.type, ESP_TYPE);
  t.equal(esp?.start, 2048);
  t.equal(esp?.size, 64 * 2048, 'ESP of ESP_MIB');
  t.equal(root?.type, ROOT_X86_64, 'discoverable root partition type');
  t.equal((root?.start ?? 1) % 2048, 0, 'root starts on a MiB boundary');
  t.equal(root?.start, (esp?.start ?? 0) + (esp?.size ?? 0));
  t.equal(spawnSync('sfdisk', ['--verify', imgA]).status, 0, 'sfdisk --verify');
});

t.test('the ESP boots systemd-boot into the kernel with root=LABEL=', async (t) => {
  const offset = 2048 * 512;
  const entry = mtools('mtype', imgA, offset, '::/loader/entries/clawbox.conf');
  t.equal(entry.status, 0, entry.stderr);
  t.match(entry.stdout, /^linux +\/vmlinuz$/m);
  t.match(entry.stdout, /^initrd +\/initrd\.img$/m);
  t.match(entry.stdout, /^options .*root=LABEL=clawbox-root .*console=ttyS0,115200/m);
  t.match(mtools('mtype', imgA, offset, '::/loader/loader.conf').stdout, /^default clawbox\.conf$/m);
  const copied = path.join(work, 'BOOTX64.EFI');
  t.equal(mtools('mcopy', imgA, offset, '::/EFI/BOOT/BOOTX64.EFI', copied).status, 0);
  t.ok(readFileSync(copied).equals(bootloader), 'the fallback boot path holds systemd-boot');
  t.equal(mtools('mtype', imgA, offset, '::/vmlinuz').stdout, 'kernel');
  t.equal(mtools('mtype', imgA, offset, '::/clawbox/config.yaml').stdout, 'mode: appliance\n', 'seed on the ESP');
  t.match(spawnSync('blkid', ['-p', '-O', String(offset), '-o', 'export', imgA], { encoding: 'utf8' }).stdout, /LABEL=CLAWBOX-EFI/);
});

t.test('the root partition is ext4 labelled clawbox-root with the rootfs inside', async (t) => {
  const root = partitions(imgA).partitions[1]!;
  const rootImg = path.join(work, 'root-extracted.img');
  const dd = spawnSync('dd', [`if=${imgA}`, `of=${rootImg}`, 'bs=1M', `skip=${root.start / 2048}`, `count=${root.size / 2048}`, 'status=none']);
  t.equal(dd.status, 0);
  t.equal(spawnSync('e2fsck', ['-fn', rootImg]).status, 0, 'e2fsck clean');
  t.match(spawnSync('dumpe2fs', ['-h', rootImg], { encoding: 'utf8' }).stdout, /Filesystem volume name:\s+clawbox-root/);
  t.equal(spawnSync('debugfs', ['-R', 'cat /etc/hostname', rootImg], { encoding: 'utf8' }).stdout, 'clawbox\n');
});

t.test('the same inputs give the same ESP bytes, partition table and file system ids', async (t) => {
  t.equal(builtB.status, 0, builtB.stderr);
  const a = partitions(imgA);
  const b = partitions(imgB);
  t.equal(b.id, a.id, 'disk GUID');
  t.same(
    b.partitions.map((p) => [p.start, p.size, p.type, p.uuid, p.name]),
    a.partitions.map((p) => [p.start, p.size, p.type, p.uuid, p.name]),
    'partition GUIDs and layout',
  );
  const region = (img: string, start: number, size: number) => {
    const buffer = readFileSync(img);
    return createHash('sha256').update(buffer.subarray(start * 512, (start + size) * 512)).digest('hex');
  };
  const [espA, rootA] = a.partitions;
  t.equal(region(imgB, espA!.start, espA!.size), region(imgA, espA!.start, espA!.size), 'ESP byte for byte');
  // ext4: same UUID, label, hash seed and superblock times. Inode change times are the build time:
  // mke2fs 1.47.0 (bookworm) cannot set them (1.47.1 reads SOURCE_DATE_EPOCH), see README.
  const header = (img: string) => {
    const root = path.join(work, `${path.basename(img)}.root`);
    spawnSync('dd', [`if=${img}`, `of=${root}`, 'bs=1M', `skip=${rootA!.start / 2048}`, `count=${rootA!.size / 2048}`, 'status=none']);
    return spawnSync('dumpe2fs', ['-h', root], { encoding: 'utf8' }).stdout.replace(/^Checksum:.*$/m, '');
  };
  t.equal(header(imgB), header(imgA), 'ext4 superblock');
});

t.test('a root without a kernel stops with a clear message and writes no image', async (t) => {
  const img = path.join(work, 'nokernel.img');
  const result = buildDisk(fakeRoot('rootC', false), img);
  t.not(result.status, 0);
  t.match(result.stderr, /no kernel in the rootfs/);
  t.throws(() => readFileSync(img));
});

t.test('build.sh refuses bad arguments before doing anything', async (t) => {
  const bad = spawnSync('bash', [path.join(IMAGE_DIR, 'build.sh'), '--arch', 'sparc'], { encoding: 'utf8' });
  t.not(bad.status, 0);
  t.match(bad.stderr, /--arch must be amd64 or arm64/);
  const noArch = spawnSync('bash', [path.join(IMAGE_DIR, 'build.sh')], { encoding: 'utf8' });
  t.match(noArch.stderr, /--arch is required/);
  const seed = spawnSync('bash', [path.join(IMAGE_DIR, 'build.sh'), '--arch', 'amd64', '--seed', '/nonexistent/seed.yaml'], {
    encoding: 'utf8',
  });
  t.match(seed.stderr, /--seed \/nonexistent\/seed\.yaml: no such file/);
});

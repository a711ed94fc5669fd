/**
 * The disk layer of the image build (lib/disk.sh), run for real on a tiny fake root: GPT layout (ESP,
 * root slots A and B, data) and partition types, the ESP's boot loader, slot A's boot entry and seed,
 * the ext4 root and data file systems, identical bytes for identical inputs, and a clear failure when the
 * root has no kernel. No debootstrap, no root file system of a real OS, no loop devices.
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
const LINUX_DATA = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

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
  writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nclawbox:x:999:999::/var/lib/clawbox:/usr/sbin/nologin\n');
  writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nsystemd-journal:x:101:\nclawbox:x:999:\n');
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
    ESP_MIB=64 SLOT_MIB=24 ROOT_FREE_MIB=8 DATA_MIB=16  # smaller than the image's: faster, same code path
    VERSION=9.9.9 SOURCE_DATE_EPOCH=1700000000 WORK=$(mktemp -d "${work}/w.XXXXXX")
    disk_esp "$1" "$WORK/esp.img" "$3"
    disk_root "$1" "$WORK/root.img"
    disk_data "$1" "$WORK/data.img"
    disk_assemble "$WORK/esp.img" "$WORK/root.img" "$WORK/data.img" "$2"
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

t.test('builds a GPT image with an ESP, root slots A and B and a data partition, 1 MiB aligned', async (t) => {
  t.equal(built.status, 0, built.stderr);
  const table = partitions(imgA);
  t.equal(table.label, 'gpt');
  t.same(table.partitions.map((p) => p.name), ['esp', 'clawbox-root-a', 'clawbox-root-b', 'clawbox-data']);
  const [esp, root, rootB, data] = table.partitions;
  t.equal(esp?.type, ESP_TYPE);
  t.equal(esp?.start, 2048);
  t.equal(esp?.size, 64 * 2048, 'ESP of ESP_MIB');
  t.equal(root?.type, ROOT_X86_64, 'discoverable root partition type');
  t.equal(rootB?.type, ROOT_X86_64);
  t.equal(root?.size, 24 * 2048, 'slot of SLOT_MIB');
  t.equal(rootB?.size, 24 * 2048, 'both slots alike');
  t.equal(data?.type, LINUX_DATA);
  t.equal((root?.start ?? 1) % 2048, 0, 'root starts on a MiB boundary');
  t.equal(root?.start, (esp?.start ?? 0) + (esp?.size ?? 0));
  t.equal(rootB?.start, (root?.start ?? 0) + (root?.size ?? 0));
  t.equal(data?.start, (rootB?.start ?? 0) + (rootB?.size ?? 0), 'data is last (first boot grows it)');
  t.equal(spawnSync('sfdisk', ['--verify', imgA]).status, 0, 'sfdisk --verify');
});

t.test('the data partition is ext4 labelled clawbox-data with the shared folders, owned right', async (t) => {
  const data = partitions(imgA).partitions[3]!;
  const at = `${imgA}?offset=${data.start * 512}`;
  t.match(spawnSync('dumpe2fs', ['-h', at], { encoding: 'utf8' }).stdout, /Filesystem volume name:\s+clawbox-data/);
  const stat = (p: string) => spawnSync('debugfs', ['-R', `stat ${p}`, at], { encoding: 'utf8' }).stdout;
  const owner = (p: string) => /Mode:\s+(\d+)[\s\S]*User:\s+(\d+)\s+Group:\s+(\d+)/.exec(stat(p))?.slice(1);
  t.same(owner('/config'), ['0750', '0', '999'], 'config: root:clawbox 0750');
  t.same(owner('/state'), ['0750', '999', '999'], 'state: clawbox 0750');
  t.same(owner('/state/models'), ['0750', '999', '999']);
  t.same(owner('/journal'), ['02755', '0', '101'], 'journal: systemd-journal, setgid');
  t.same(owner('/update'), ['0750', '0', '0']);
});

t.test('the ESP boots systemd-boot into slot A by partition label, not counted', async (t) => {
  const offset = 2048 * 512;
  const entry = mtools('mtype', imgA, offset, '::/loader/entries/clawbox-1-a.conf');
  t.equal(entry.status, 0, entry.stderr);
  t.match(entry.stdout, /^title +clawbox 9\.9\.9 \(slot a\)$/m);
  t.match(entry.stdout, /^linux +\/clawbox\/a\/vmlinuz$/m);
  t.match(entry.stdout, /^initrd +\/clawbox\/a\/initrd\.img$/m);
  t.match(entry.stdout, /^options root=PARTLABEL=clawbox-root-a clawbox\.slot=a .*console=ttyS0,115200/m);
  t.match(mtools('mtype', imgA, offset, '::/loader/loader.conf').stdout, /^default clawbox-\*$/m);
  t.same(mtools('mdir', imgA, offset, '-b', '::/loader/entries').stdout.trim().split('\n'), ['::/loader/entries/clawbox-1-a.conf'], 'one entry');
  const copied = path.join(work, 'BOOTX64.EFI');
  t.equal(mtools('mcopy', imgA, offset, '::/EFI/BOOT/BOOTX64.EFI', copied).status, 0);
  t.ok(readFileSync(copied).equals(bootloader), 'the fallback boot path holds systemd-boot');
  t.equal(mtools('mtype', imgA, offset, '::/clawbox/a/vmlinuz').stdout, 'kernel');
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

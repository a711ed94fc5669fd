/**
 * Real files for the update tests: a system root in a temporary folder (slot "partitions" are plain
 * files, the ESP a folder, /proc/cmdline and /etc/clawbox-release plain files) and bundles built the way
 * image/lib/bundle.sh builds them (GNU tar --format=ustar, zstd, an ed25519 signature over the manifest).
 */
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject, randomFillSync, sign } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { zstdCompressSync } from 'node:zlib';
import { type SystemLayout, systemLayout } from '../system.js';

export const OPTIONS = 'root=PARTLABEL=clawbox-root-a clawbox.slot=a rootfstype=ext4 rw quiet console=tty0 console=ttyS0,115200';

export function keyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

export interface FakeSystem {
  readonly root: string;
  readonly layout: SystemLayout;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

/** A box running `version` from slot a, with slot b of `slotBytes` and a trusted key. */
export function fakeSystem(options: { version?: string; arch?: string; slotBytes?: number } = {}): FakeSystem {
  const root = mkdtempSync(path.join(tmpdir(), 'clawbox-update-root-'));
  const layout = systemLayout(root);
  const { privateKey, publicKey } = keyPair();
  mkdirSync(path.join(root, 'proc'), { recursive: true });
  writeFileSync(layout.cmdlineFile, `${OPTIONS}\n`);
  mkdirSync(path.dirname(layout.releaseFile), { recursive: true });
  writeFileSync(layout.releaseFile, `CLAWBOX_VERSION=${options.version ?? '0.1.0'}\nCLAWBOX_ARCH=${options.arch ?? 'amd64'}\nCLAWBOX_COMMIT=abc1234\n`);
  mkdirSync(layout.keysDir, { recursive: true });
  writeFileSync(path.join(layout.keysDir, 'test.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
  mkdirSync(path.dirname(layout.slotDevice('a')), { recursive: true });
  const slotBytes = options.slotBytes ?? 512 * 1024;
  writeFileSync(layout.slotDevice('a'), Buffer.alloc(slotBytes, 0xaa));
  writeFileSync(layout.slotDevice('b'), Buffer.alloc(slotBytes, 0xbb));
  mkdirSync(path.join(layout.espDir, 'loader', 'entries'), { recursive: true });
  mkdirSync(path.join(layout.espDir, 'clawbox', 'a'), { recursive: true });
  writeFileSync(path.join(layout.espDir, 'clawbox', 'a', 'vmlinuz'), 'old kernel');
  writeFileSync(path.join(layout.espDir, 'clawbox', 'a', 'initrd.img'), 'old initrd');
  writeFileSync(
    path.join(layout.espDir, 'loader', 'entries', 'clawbox-1-a.conf'),
    `title   clawbox ${options.version ?? '0.1.0'} (slot a)\nlinux   /clawbox/a/vmlinuz\ninitrd  /clawbox/a/initrd.img\noptions ${OPTIONS}\n`,
  );
  return { root, layout, publicKey, privateKey };
}

/** Everything an update may touch (both slots, the ESP's files, the history), to prove a refusal touched nothing. */
export function systemSnapshot(system: FakeSystem): { slotA: string; slotB: string; esp: string[]; history: string } {
  const { layout } = system;
  const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
  return {
    slotA: digest(layout.slotDevice('a')),
    slotB: digest(layout.slotDevice('b')),
    esp: (readdirSync(layout.espDir, { recursive: true }) as string[]).sort(),
    history: existsSync(path.join(layout.stateDir, 'history.json')) ? readFileSync(path.join(layout.stateDir, 'history.json'), 'utf8') : '',
  };
}

export interface BundleSpec {
  readonly version?: string;
  readonly arch?: string;
  readonly rootfs?: Buffer;
  /** Signs with this key instead of the system's. */
  readonly signer: KeyObject;
  /** Changes the manifest after signing (a tampered manifest). */
  readonly tamper?: (manifest: Record<string, unknown>) => void;
  /** Changes a payload after the manifest was made (a corrupt download). */
  readonly corrupt?: 'rootfs' | 'kernel';
  readonly manifest?: (manifest: Record<string, unknown>) => void;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Random bytes, so the slot's content proves what was written. */
export function rootfsBytes(size = 256 * 1024): Buffer {
  return randomFillSync(Buffer.alloc(size));
}

export function makeBundle(dir: string, spec: BundleSpec): { file: string; rootfs: Buffer; kernel: Buffer; initrd: Buffer } {
  const work = mkdtempSync(path.join(dir, 'bundle-'));
  const rootfs = spec.rootfs ?? rootfsBytes();
  const compressed = zstdCompressSync(rootfs);
  const kernel = Buffer.from(`kernel ${spec.version ?? '0.2.0'}`);
  const initrd = Buffer.from(`initrd ${spec.version ?? '0.2.0'}`);
  const manifest: Record<string, unknown> = {
    format: 'clawbox-update/1',
    name: 'clawbox',
    version: spec.version ?? '0.2.0',
    arch: spec.arch ?? 'amd64',
    kernel_version: '6.1.0-99-amd64',
    created: 1700000000,
    git_commit: 'abc1234',
    payloads: {
      rootfs: { file: 'rootfs.ext4.zst', size: compressed.length, sha256: sha256(compressed), installed_size: rootfs.length, installed_sha256: sha256(rootfs) },
      kernel: { file: 'vmlinuz', size: kernel.length, sha256: sha256(kernel) },
      initrd: { file: 'initrd.img', size: initrd.length, sha256: sha256(initrd) },
    },
  };
  spec.manifest?.(manifest);
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const signature = sign(null, manifestBytes, spec.signer);
  if (spec.tamper) {
    spec.tamper(manifest);
    writeFileSync(path.join(work, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  } else writeFileSync(path.join(work, 'manifest.json'), manifestBytes);
  writeFileSync(path.join(work, 'manifest.sig'), signature);
  const flip = (data: Buffer) => {
    const copy = Buffer.from(data);
    copy[copy.length >> 1]! ^= 0xff;
    return copy;
  };
  writeFileSync(path.join(work, 'rootfs.ext4.zst'), spec.corrupt === 'rootfs' ? flip(compressed) : compressed);
  writeFileSync(path.join(work, 'vmlinuz'), spec.corrupt === 'kernel' ? flip(kernel) : kernel);
  writeFileSync(path.join(work, 'initrd.img'), initrd);
  const file = path.join(dir, `bundle-${path.basename(work)}.tar`);
  execFileSync('tar', ['--format=ustar', '--owner=0', '--group=0', '-cf', file, '-C', work, 'manifest.json', 'manifest.sig', 'rootfs.ext4.zst', 'vmlinuz', 'initrd.img']);
  return { file, rootfs, kernel, initrd };
}

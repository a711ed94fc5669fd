/**
 * Where the A/B system keeps what an update touches. Every path hangs off one root ("/" on the box), so
 * tests run the real code against plain files in a temporary folder: slot "devices" are files there.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { ClawboxError } from '../runtime/errors.js';

export type Slot = 'a' | 'b';
export const SLOTS: readonly Slot[] = ['a', 'b'];
export const otherSlot = (slot: Slot): Slot => (slot === 'a' ? 'b' : 'a');

export interface SystemLayout {
  readonly root: string;
  /** The EFI system partition: systemd-boot's loader/ and each slot's kernel and initramfs. */
  readonly espDir: string;
  /** Trusted ed25519 public keys (SPKI PEM), part of each slot's root file system. */
  readonly keysDir: string;
  /** On the data partition, shared by both slots: the update's own records and downloads. */
  readonly stateDir: string;
  readonly cmdlineFile: string;
  readonly releaseFile: string;
  slotDevice(slot: Slot): string;
}

export function systemLayout(root = '/'): SystemLayout {
  const at = (...parts: string[]) => path.join(root, ...parts);
  return {
    root,
    espDir: at('boot/efi'),
    keysDir: at('usr/share/clawbox/update-keys'),
    stateDir: at('data/update'),
    cmdlineFile: at('proc/cmdline'),
    releaseFile: at('etc/clawbox-release'),
    slotDevice: (slot) => at('dev/disk/by-partlabel', `clawbox-root-${slot}`),
  };
}

export interface RunningSystem {
  readonly booted: Slot;
  readonly version: string;
  readonly arch: string;
}

/** The booted slot (from the kernel command line) and the running release; refuses a system without slots. */
export async function runningSystem(layout: SystemLayout): Promise<RunningSystem> {
  const cmdline = await readFile(layout.cmdlineFile, 'utf8').catch(() => '');
  const slot = /(?:^|\s)clawbox\.slot=([ab])(?:\s|$)/.exec(cmdline)?.[1] as Slot | undefined;
  if (!slot) {
    throw new ClawboxError('UPDATE_UNAVAILABLE', 'this system was not booted from an A/B slot of the clawbox OS image (no clawbox.slot= on the kernel command line); update it the way it was installed');
  }
  const release = await readFile(layout.releaseFile, 'utf8').catch(() => '');
  const value = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(release)?.[1]?.trim();
  const version = value('CLAWBOX_VERSION');
  const arch = value('CLAWBOX_ARCH');
  if (!version || !arch) throw new ClawboxError('UPDATE_UNAVAILABLE', `${layout.releaseFile} does not name the running version and architecture`);
  return { booted: slot, version, arch };
}

/** Bytes a slot can hold: a block device's size from sysfs, a plain file's (tests) from stat. */
export async function slotCapacity(layout: SystemLayout, slot: Slot): Promise<number> {
  const device = layout.slotDevice(slot);
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(device);
  } catch {
    throw new ClawboxError('UPDATE_UNAVAILABLE', `slot ${slot}'s partition ${device} is missing`);
  }
  if (info.isFile()) return info.size;
  if (!info.isBlockDevice()) throw new ClawboxError('UPDATE_UNAVAILABLE', `${device} is neither a block device nor a file`);
  const name = path.basename(await realpath(device));
  const sectors = Number((await readFile(path.join(layout.root, 'sys/class/block', name, 'size'), 'utf8')).trim());
  return sectors * 512;
}

/**
 * Installs a bundle into the slot that is not running. Everything that can refuse it is checked before
 * the first byte is written (signature, architecture, version, space, every payload's sha256); from then
 * on the target slot is first made unbootable, written and verified, and only then given a boot entry
 * with `+3` tries that sorts before the running slot's. A failure anywhere leaves the running slot the
 * one that boots.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createZstdDecompress } from 'node:zlib';
import { ClawboxError } from '../runtime/errors.js';
import { BOOT_TRIES, listEntries, removeEntries, slotOptions, writeEntry } from './boot-entries.js';
import { type BundleFile, checkPayloads, loadTrustedKeys, type Manifest, type OpenBundle, openBundle, type PayloadName, payloadStream, withBundleFile } from './bundle.js';
import { record } from './record.js';
import { otherSlot, type RunningSystem, runningSystem, type Slot, slotCapacity, type SystemLayout } from './system.js';
import { compareVersions } from './version.js';

export type Progress = (message: string) => void;

export interface ApplyOptions {
  readonly allowDowngrade?: boolean;
  readonly signal?: AbortSignal;
  readonly progress?: Progress;
  /** Bytes of the root file system written to the slot so far, and its installed size. */
  readonly onWritten?: (written: number, total: number) => void;
  /** Trusted keys; read from the layout's keys folder when not given. */
  readonly keys?: readonly KeyObject[];
}

export interface ApplyResult {
  readonly slot: Slot;
  readonly version: string;
  readonly from: string;
  readonly entry: string;
}

/** Room left on the ESP beyond the new kernel and initramfs (FAT needs some slack to rename files). */
const ESP_RESERVE = 1024 * 1024;
const WRITE_BATCH = 4 * 1024 * 1024;

/** The checks that need no payload bytes: architecture, version, the running slot's state, space. */
export async function preflight(bundle: OpenBundle, layout: SystemLayout, running: RunningSystem, allowDowngrade = false): Promise<Slot> {
  const { manifest } = bundle;
  if (manifest.arch !== running.arch) {
    throw new ClawboxError('UPDATE_ARCH_MISMATCH', `the bundle is for ${manifest.arch}, this box runs ${running.arch}`);
  }
  const order = compareVersions(manifest.version, running.version);
  if (order === 0) throw new ClawboxError('UPDATE_VERSION_REFUSED', `version ${manifest.version} is already running`);
  if (order < 0 && !allowDowngrade) {
    throw new ClawboxError('UPDATE_VERSION_REFUSED', `version ${manifest.version} is older than the running ${running.version} (add --allow-downgrade to install it anyway)`);
  }
  const entries = await listEntries(layout.espDir);
  const current = entries.find((e) => e.slot === running.booted);
  if (current?.state === 'trying') {
    throw new ClawboxError('UPDATE_UNAVAILABLE', `the running slot ${running.booted} is still on trial (its health check has not passed yet); try again once it is marked good`);
  }
  const target = otherSlot(running.booted);
  const capacity = await slotCapacity(layout, target);
  if (manifest.payloads.rootfs.installed_size > capacity) {
    throw new ClawboxError('NO_SPACE', `the root file system needs ${mib(manifest.payloads.rootfs.installed_size)}, slot ${target} holds ${mib(capacity)}`);
  }
  const esp = await statfs(layout.espDir);
  const replaced = await sizeOf(path.join(layout.espDir, 'clawbox', target, 'vmlinuz')) + (await sizeOf(path.join(layout.espDir, 'clawbox', target, 'initrd.img')));
  const needed = manifest.payloads.kernel.size + manifest.payloads.initrd.size + ESP_RESERVE;
  const free = esp.bavail * esp.bsize + replaced;
  if (needed > free) throw new ClawboxError('NO_SPACE', `the kernel and initramfs need ${mib(needed)} on the EFI partition, ${mib(free)} are free`);
  return target;
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

async function sizeOf(file: string): Promise<number> {
  return (await stat(file).catch(() => undefined))?.size ?? 0;
}

/** Decompresses the root file system into the slot, hashing what is written; checks size and sha256. */
async function writeRootfs(
  bundle: OpenBundle,
  device: string,
  capacity: number,
  progress: Progress,
  signal?: AbortSignal,
  onWritten?: ApplyOptions['onWritten'],
): Promise<void> {
  const expected = bundle.manifest.payloads.rootfs;
  const handle = await open(device, 'r+');
  const hash = createHash('sha256');
  let written = 0;
  let reported = 0;
  // Decompressed chunks are small; the partition is written in batches of a few MiB.
  let batch: Buffer[] = [];
  let batched = 0;
  const flush = async () => {
    const data = Buffer.concat(batch, batched);
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await handle.write(data, offset, data.length - offset, written + offset);
      offset += bytesWritten;
    }
    written += data.length;
    batch = [];
    batched = 0;
    onWritten?.(written, expected.installed_size);
    const percent = Math.floor((written / expected.installed_size) * 100);
    if (percent >= reported + 10) {
      reported = percent - (percent % 10);
      progress(`writing the root file system: ${reported}% (${mib(written)} of ${mib(expected.installed_size)})`);
    }
  };
  try {
    // pipeline, not pipe: a failed read of the bundle (or an abort) must end the loop, not leave it waiting.
    await pipeline(payloadStream(bundle, 'rootfs', signal), createZstdDecompress(), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) {
        signal?.throwIfAborted();
        if (written + batched + chunk.length > Math.min(expected.installed_size, capacity)) {
          throw new ClawboxError('UPDATE_BUNDLE_INVALID', 'the root file system is larger than its manifest says');
        }
        hash.update(chunk);
        batch.push(chunk);
        batched += chunk.length;
        if (batched >= WRITE_BATCH) await flush();
      }
    });
    if (batched > 0) await flush();
    await handle.sync();
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    if (error instanceof ClawboxError) throw error;
    throw new ClawboxError('UPDATE_BUNDLE_INVALID', `the root file system could not be unpacked: ${(error as Error).message}`, {}, { cause: error });
  } finally {
    await handle.close();
  }
  if (written !== expected.installed_size || hash.digest('hex') !== expected.installed_sha256) {
    throw new ClawboxError('UPDATE_BUNDLE_INVALID', 'the unpacked root file system does not match its size and sha256 in the signed manifest');
  }
}

/** Copies a payload to the ESP under a temporary name, checking its sha256, then renames it into place. */
async function installEspFile(bundle: OpenBundle, name: PayloadName, target: string, signal?: AbortSignal): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true });
  const handle = await open(`${target}.new`, 'w');
  const hash = createHash('sha256');
  try {
    for await (const chunk of payloadStream(bundle, name, signal)) {
      hash.update(chunk as Buffer);
      await handle.write(chunk as Buffer);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  if (hash.digest('hex') !== bundle.manifest.payloads[name].sha256) {
    await rm(`${target}.new`, { force: true });
    throw new ClawboxError('UPDATE_BUNDLE_INVALID', `${bundle.manifest.payloads[name].file} changed while it was being installed`);
  }
  await rename(`${target}.new`, target);
}

/** A second update while one runs would write the same slot twice: one at a time, by an exclusive lock file. */
async function withLock<T>(stateDir: string, work: () => Promise<T>): Promise<T> {
  await mkdir(stateDir, { recursive: true, mode: 0o750 });
  const lock = path.join(stateDir, 'lock');
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(lock, 'wx');
  } catch {
    const pid = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
    const alive = Number.isInteger(pid) && pid > 0 && (() => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    })();
    if (alive) throw new ClawboxError('UPDATE_UNAVAILABLE', `another update is running (pid ${pid})`);
    // Left behind by an update that was killed (or a reboot): take it over.
    await rm(lock, { force: true });
    handle = await open(lock, 'wx');
  }
  try {
    await handle.write(`${process.pid}\n`);
    await handle.close();
    return await work();
  } finally {
    await rm(lock, { force: true });
  }
}

/**
 * Installs the bundle `source`: a path (opened once here) or a file already open (the update helper's).
 * Every byte of it is read through that one descriptor.
 */
export async function applyUpdate(source: string | BundleFile, layout: SystemLayout, options: ApplyOptions = {}): Promise<ApplyResult> {
  const progress = options.progress ?? (() => {});
  const running = await runningSystem(layout);
  return withLock(layout.stateDir, () => withBundleFile(source, (file) => install(file, layout, running, options, progress)));
}

async function install(file: BundleFile, layout: SystemLayout, running: RunningSystem, options: ApplyOptions, progress: Progress): Promise<ApplyResult> {
  const { signal } = options;
  const keys = options.keys ?? (await loadTrustedKeys(layout.keysDir));
  const bundle = await openBundle(file, keys);
  const manifest: Manifest = bundle.manifest;
  progress(`bundle: clawbox ${manifest.version} (${manifest.arch}, kernel ${manifest.kernel_version}), signature ok`);
  const target = await preflight(bundle, layout, running, options.allowDowngrade);
  progress('checking the payloads against the signed manifest');
  await checkPayloads(bundle, signal);
  signal?.throwIfAborted();

  // From here on the inactive slot changes; the running one stays what boots until the very end.
  const base = { slot: target, version: manifest.version, from: running.version };
  await record(layout.stateDir, { ...base, result: 'installing', message: `writing ${manifest.version} into slot ${target}` });
  try {
    const entries = await listEntries(layout.espDir);
    const current = entries.find((e) => e.slot === running.booted);
    const generation = Math.max(0, ...entries.map((e) => e.generation)) + 1;
    await removeEntries(layout.espDir, target);
    progress(`writing slot ${target} (${layout.slotDevice(target)})`);
    await writeRootfs(bundle, layout.slotDevice(target), await slotCapacity(layout, target), progress, signal, options.onWritten);
    progress('installing the kernel and initramfs on the EFI partition');
    const slotDir = path.join(layout.espDir, 'clawbox', target);
    await installEspFile(bundle, 'kernel', path.join(slotDir, 'vmlinuz'), signal);
    await installEspFile(bundle, 'initrd', path.join(slotDir, 'initrd.img'), signal);
    signal?.throwIfAborted();
    const entry = await writeEntry(layout.espDir, {
      slot: target,
      generation,
      version: manifest.version,
      kernelVersion: manifest.kernel_version,
      options: slotOptions(current?.options ?? (await readFile(layout.cmdlineFile, 'utf8')), target),
      tries: BOOT_TRIES,
    });
    await record(layout.stateDir, { ...base, result: 'installed', message: `slot ${target} boots ${manifest.version} next (${BOOT_TRIES} tries, then back to slot ${running.booted})` });
    progress(`installed: slot ${target} boots clawbox ${manifest.version} on the next start (boot entry ${entry}); reboot to use it`);
    return { ...base, entry };
  } catch (error) {
    await removeEntries(layout.espDir, target).catch(() => {});
    await record(layout.stateDir, { ...base, result: 'failed', message: (error as Error).message }).catch(() => {});
    throw error;
  }
}

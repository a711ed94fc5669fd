/**
 * systemd-boot entries of the two slots, named `clawbox-<generation>-<slot>[+<left>[-<done>]].conf` on the
 * ESP. systemd-boot boots the highest-sorting entry that is not bad (the generation grows with each
 * update, so the newest slot sorts first), counts tries down by renaming the file before it starts it
 * (Boot Loader Specification, "boot counting"), and sorts an entry with no tries left (`+0`) after all
 * others, so a slot that keeps failing falls back to the other one without anybody touching the box.
 * markBoot does what systemd-bless-boot does: drop the counter (good) or set it to `+0` (bad).
 */
import { readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ClawboxError } from '../runtime/errors.js';
import type { Slot } from './system.js';

const ENTRY = /^clawbox-(\d{1,9})-([ab])(?:\+(\d{1,3})(?:-(\d{1,3}))?)?\.conf$/;
export const BOOT_TRIES = 3;

export type EntryState = 'good' | 'trying' | 'bad';

export interface BootEntry {
  readonly file: string;
  readonly generation: number;
  readonly slot: Slot;
  /** undefined: not counted (blessed or factory); 0: bad. */
  readonly triesLeft: number | undefined;
  readonly triesDone: number;
  readonly state: EntryState;
  readonly title: string;
  readonly options: string;
}

export const entriesDir = (espDir: string) => path.join(espDir, 'loader', 'entries');

export async function listEntries(espDir: string): Promise<BootEntry[]> {
  const dir = entriesDir(espDir);
  const names = await readdir(dir).catch(() => [] as string[]);
  const entries: BootEntry[] = [];
  for (const file of names) {
    const match = ENTRY.exec(file);
    if (!match) continue;
    const text = await readFile(path.join(dir, file), 'utf8').catch(() => '');
    const line = (key: string) => new RegExp(`^${key}[ \\t]+(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
    const triesLeft = match[3] === undefined ? undefined : Number(match[3]);
    entries.push({
      file,
      generation: Number(match[1]),
      slot: match[2] as Slot,
      triesLeft,
      triesDone: Number(match[4] ?? 0),
      state: triesLeft === undefined ? 'good' : triesLeft > 0 ? 'trying' : 'bad',
      title: line('title'),
      options: line('options'),
    });
  }
  // The order systemd-boot picks from: not-bad first, then the newest generation.
  return entries.sort((x, y) => Number(x.state === 'bad') - Number(y.state === 'bad') || y.generation - x.generation);
}

/** The entry systemd-boot starts next when nobody picks one by hand. */
export const nextBoot = (entries: readonly BootEntry[]) => entries[0];

/** The version named in an entry's title ("clawbox 0.1.1 (slot b)"). */
export const versionOf = (entry: BootEntry | undefined) => /^clawbox (\S+)/.exec(entry?.title ?? '')?.[1];

export async function removeEntries(espDir: string, slot: Slot): Promise<void> {
  for (const entry of await listEntries(espDir)) {
    if (entry.slot === slot) await unlink(path.join(entriesDir(espDir), entry.file));
  }
}

/** Replaces the root and slot on a command line, keeping every other option (console, quiet, ...). */
export function slotOptions(options: string, slot: Slot): string {
  // An update started from the command line (systemd.wants=clawbox-update@…) must not start again.
  const kept = options.split(/\s+/).filter((o) => o && !/^(root|clawbox\.slot|BOOT_IMAGE|initrd)=/.test(o) && !/^systemd\.wants=clawbox-update@/.test(o));
  return [`root=PARTLABEL=clawbox-root-${slot}`, `clawbox.slot=${slot}`, ...kept].join(' ');
}

export interface NewEntry {
  readonly slot: Slot;
  readonly generation: number;
  readonly version: string;
  readonly kernelVersion: string;
  readonly options: string;
  /** Boot tries before systemd-boot gives up on it; undefined for an entry that is known good. */
  readonly tries?: number;
}

export function entryText(entry: NewEntry): string {
  return [
    `title   clawbox ${entry.version} (slot ${entry.slot})`,
    `linux   /clawbox/${entry.slot}/vmlinuz`,
    `initrd  /clawbox/${entry.slot}/initrd.img`,
    `options ${entry.options}`,
    `# kernel ${entry.kernelVersion}`,
    '',
  ].join('\n');
}

export async function writeEntry(espDir: string, entry: NewEntry): Promise<string> {
  const file = `clawbox-${entry.generation}-${entry.slot}${entry.tries === undefined ? '' : `+${entry.tries}`}.conf`;
  const target = path.join(entriesDir(espDir), file);
  await writeFile(`${target}.tmp`, entryText(entry), { flush: true });
  await rename(`${target}.tmp`, target);
  return file;
}

/**
 * Blesses (good) or condemns (bad) the booted slot's counted entry. Returns the entry as it was, or
 * undefined when the slot's entry is not counted (a slot that was already good: nothing to decide).
 */
export async function markBoot(espDir: string, slot: Slot, verdict: 'good' | 'bad'): Promise<BootEntry | undefined> {
  const entry = (await listEntries(espDir)).find((e) => e.slot === slot);
  if (!entry) throw new ClawboxError('UPDATE_UNAVAILABLE', `slot ${slot} has no boot entry on the ESP`);
  if (entry.triesLeft === undefined) return undefined;
  const base = `clawbox-${entry.generation}-${entry.slot}`;
  const file = verdict === 'good' ? `${base}.conf` : `${base}+0-${Math.max(entry.triesDone, 1)}.conf`;
  if (file !== entry.file) await rename(path.join(entriesDir(espDir), entry.file), path.join(entriesDir(espDir), file));
  return entry;
}

/**
 * What may leave the box. Devices marked local_only (by id, by device class or by area) are left out of
 * the device directory the brain sees, and a request that names one of them is never offloaded: it is
 * answered locally or refused. Data classes (`history`: the conversation so far) marked local_only are not
 * sent either. Session keys (chat sender ids among them) are pseudonymised with a keyed HMAC before they
 * leave: stable per sender, so the brain can reuse its cache, but meaningless without the box's key.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const DATA_CLASSES = ['history'] as const;
export type DataClass = (typeof DATA_CLASSES)[number];

export interface LocalOnlyConfig {
  devices: readonly string[];
  device_classes: readonly string[];
  areas: readonly string[];
  data: readonly DataClass[];
}

/** What the policy needs to know of a device. */
export interface PolicyDevice {
  id: string;
  name: string;
  aliases?: readonly string[];
  area?: string;
  device_class?: string;
}

export class DataPolicy {
  readonly #config: LocalOnlyConfig;
  readonly #key: Buffer;

  constructor(config: LocalOnlyConfig, key: Buffer) {
    this.#config = config;
    this.#key = key;
  }

  get config(): LocalOnlyConfig {
    return this.#config;
  }

  isLocalOnly(device: PolicyDevice): boolean {
    const c = this.#config;
    return (
      c.devices.includes(device.id) ||
      (device.device_class !== undefined && c.device_classes.includes(device.device_class)) ||
      (device.area !== undefined && c.areas.some((a) => a.toLowerCase() === device.area!.toLowerCase()))
    );
  }

  keepsLocal(data: DataClass): boolean {
    return this.#config.data.includes(data);
  }

  /**
   * Whether `text` names a local_only device (id, name, alias, or its area): such a request stays on the
   * box. Case-insensitive, on word boundaries for Latin words and as a substring for CJK names.
   */
  involves(text: string, devices: readonly PolicyDevice[]): boolean {
    const haystack = ` ${text.toLowerCase().replace(/[\s_\-.,;:!?'"()]+/g, ' ')} `;
    const mentions = (word: string | undefined) => {
      if (!word) return false;
      const needle = word.toLowerCase().replace(/[\s_\-.,;:!?'"()]+/g, ' ').trim();
      if (!needle) return false;
      return /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u.test(needle) ? haystack.includes(needle) : haystack.includes(` ${needle} `);
    };
    for (const device of devices) {
      if (!this.isLocalOnly(device)) continue;
      if (mentions(device.id) || mentions(device.name) || (device.aliases ?? []).some(mentions)) return true;
    }
    return this.#config.areas.some(mentions);
  }

  /** A stable pseudonym for a session or sender id (keyed HMAC-SHA256, truncated). */
  pseudonym(id: string): string {
    return `p-${createHmac('sha256', this.#key).update(id).digest('base64url').slice(0, 22)}`;
  }
}

/**
 * The pseudonym key: read from `file`, or created there (32 random bytes, 0600) on first use, so
 * pseudonyms stay stable across restarts.
 */
export async function loadPseudonymKey(file: string): Promise<Buffer> {
  try {
    const key = await readFile(file);
    if (key.length >= 16) return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = randomBytes(32);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, key, { mode: 0o600 });
  await chmod(file, 0o600);
  return key;
}

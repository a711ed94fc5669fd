/**
 * Atomic file replacement: write a temp file beside the target, fsync it, rename over the target and
 * fsync the directory. A reader (or a restart after kill -9 or power loss) sees the old file or the new
 * one, never half of either. steno, lowdb's own writer, renames but does not fsync, which is not enough
 * on an appliance that can lose power.
 */
import { mkdirSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import path from 'node:path';

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o750 });
}

/**
 * The runtime's model hash cache (`<state dir>/models.json`, the `models` state-store document) as the
 * CLI sees it: `models list` reads it to say whether a file was verified since it last changed, and
 * `models add|pull|verify` record the hashes they computed so the next start does not hash again.
 * The key format is the one registry.ts uses: absolute path, size and mtime.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ensureDir, writeFileAtomic } from '../runtime/store/atomic-file.js';
import type { HashCache } from './registry.js';

/** The same bound ModelService keeps. */
const MAX_ENTRIES = 32;
const MAX_FILE_BYTES = 256 << 10;

export async function hashCacheKey(file: string): Promise<string | null> {
  try {
    const info = await stat(file);
    return `${path.resolve(file)}:${info.size}:${info.mtimeMs}`;
  } catch {
    return null;
  }
}

/** The whole document (other keys are kept on write) and its valid hashes. */
async function readDocument(file: string): Promise<{ doc: Record<string, unknown>; hashes: Record<string, string> }> {
  try {
    if ((await stat(file)).size > MAX_FILE_BYTES) return { doc: {}, hashes: {} };
    const doc = JSON.parse(await readFile(file, 'utf8')) as unknown;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { doc: {}, hashes: {} };
    const raw = (doc as { hashes?: unknown }).hashes;
    const entries = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? Object.entries(raw) : [];
    const hashes = Object.fromEntries(entries.filter(([, v]) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v))) as Record<string, string>;
    return { doc: doc as Record<string, unknown>, hashes };
  } catch {
    return { doc: {}, hashes: {} };
  }
}

/** A HashCache over the state directory's `models.json`; writes are best effort (a cache). */
export function stateHashCache(stateDir: string): HashCache {
  const file = path.join(stateDir, 'models.json');
  return {
    get: async (key) => (await readDocument(file)).hashes[key],
    set: async (key, sha256) => {
      try {
        const { doc, hashes } = await readDocument(file);
        delete hashes[key];
        hashes[key] = sha256;
        const keys = Object.keys(hashes);
        for (const old of keys.slice(0, Math.max(0, keys.length - MAX_ENTRIES))) delete hashes[old];
        ensureDir(stateDir);
        await writeFileAtomic(file, JSON.stringify({ ...doc, hashes }));
      } catch {
        // Only a cache: the runtime hashes the file again at its next start.
      }
    },
  };
}

/**
 * Gives glibc's free pages back to the system: `malloc_trim(0)` through the small addon in
 * native/malloc-trim (Node has no call for it). glibc returns memory only from the top of its heaps; what
 * is freed between live allocations stays resident, so a process that keeps churning buffers (socket and
 * serial reads, request bodies, MQTT packets) grows by those holes for a long time after its working set
 * has stopped growing. A trim hands the whole free pages back; the allocator keeps every live allocation.
 *
 * Without the addon (not built, or a libc without the call: macOS, musl) trimming is off and trimMalloc()
 * returns null; nothing else changes.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface MallocTrimAddon {
  /** True when memory was given back. */
  trim(): boolean;
  /** False where the libc has no malloc_trim. */
  supported: boolean;
}

/** The addon's folder relative to the package root (the same in a checkout, dist/ and the OS image). */
const ADDON = path.join('native', 'malloc-trim', 'build', 'Release', 'malloc_trim.node');

let loaded: MallocTrimAddon | null | undefined;

/** The package root: the nearest folder above this module with native/malloc-trim (sources, dist/ or the bundle). */
function addonPath(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 6; up++) {
    const candidate = path.join(dir, ADDON);
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  return null;
}

function addon(): MallocTrimAddon | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  const file = addonPath();
  if (file) {
    try {
      const candidate = createRequire(import.meta.url)(file) as MallocTrimAddon;
      if (candidate.supported && typeof candidate.trim === 'function') loaded = candidate;
    } catch {
      // A binary for another platform or Node: trimming stays off.
    }
  }
  return loaded;
}

/** Whether trimMalloc() does anything here. */
export function mallocTrimAvailable(): boolean {
  return addon() !== null;
}

/** Trims; returns whether memory was given back and how long it took, or null where trimming is off. */
export function trimMalloc(): { released: boolean; ms: number } | null {
  const trimmer = addon();
  if (!trimmer) return null;
  const began = performance.now();
  const released = trimmer.trim();
  return { released, ms: Math.round((performance.now() - began) * 100) / 100 };
}

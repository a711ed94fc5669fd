/**
 * V8's code cache for the validators compiled for one use (validator.ts, validatorForOneUse: the config's, at
 * every start). Such a validator is compiled from its precompiled file each time, outside the module cache,
 * so Node's own compile cache never sees it: V8 parsed and compiled half a megabyte of generated code at
 * every start. Where Node's compile cache is on (bin/compile-cache.js: `clawbox start` with a state dir), the
 * code V8 compiled for that use is kept with it, in `<state dir>/cache/node-compile/<Node version>/validators/`,
 * and handed to V8 on the next start. A file is named by a hash of the exact text it was made from, so a changed validator never
 * meets an old cache; V8 itself refuses data from another V8 version or other flags, and the validator is
 * then compiled and its cache written again. Only a speed-up: any failure here compiles as before, and
 * deleting the folder is always safe.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { Script } from 'node:vm';

/** Cache files kept; a new build's validators replace the oldest. */
export const CODE_CACHE_FILES_KEPT = 16;

/** undefined: beside Node's compile cache when that is on; null: off; a string: that folder (tests). */
let override: string | null | undefined;

export function useValidatorCodeCache(dir: string | null | undefined): void {
  override = dir;
}

function cacheDir(): string | undefined {
  if (override !== undefined) return override ?? undefined;
  // Node's folder for this Node version (`<state dir>/cache/node-compile/v22...`): V8's code is only good
  // for the V8 that made it, and the folder goes wherever Node's cache goes.
  const nodeCache = module.getCompileCacheDir?.();
  return nodeCache ? path.join(nodeCache, 'validators') : undefined;
}

/** Writes waiting for holdCodeCacheWrites' caller (undefined: each is made once its task is done). */
let held: Map<string, () => void> | undefined;

/**
 * Holds this process's cache writes until writeHeldCodeCache(): `clawbox start` makes them after it is
 * ready, with Node's own compile cache (app/cli.ts), instead of between the steps of its start. Writes
 * still held when the process ends are lost, which only costs the next start the speed-up.
 */
export function holdCodeCacheWrites(): void {
  held ??= new Map();
}

/** Makes the writes held since holdCodeCacheWrites(), and makes later ones as they come. */
export function writeHeldCodeCache(): void {
  const writes = held;
  held = undefined;
  for (const write of writes?.values() ?? []) write();
}

export type CommonJsWrapper = (module: { exports: unknown }, exports: unknown, require: NodeJS.Require) => void;

/**
 * Compiles a CommonJS file's text into its wrapper function, from the kept code where there is some
 * (`cached`). Otherwise the code is kept once the current task is done with the function (or once held
 * writes are made), so the parts V8 compiled on its first call are in it too.
 */
export function compileWithCodeCache(source: string, filename: string): { wrapper: CommonJsWrapper; cached: boolean } {
  const text = `(function (module, exports, require) {${source}\n})`;
  const dir = cacheDir();
  const file = dir === undefined ? undefined : path.join(dir, `${createHash('sha256').update(text).digest('hex').slice(0, 40)}.bin`);
  let cachedData: Buffer | undefined;
  if (file) {
    try {
      cachedData = readFileSync(file);
    } catch {
      cachedData = undefined; // none yet
    }
  }
  const script = new Script(text, { filename, ...(cachedData ? { cachedData } : {}) });
  const cached = cachedData !== undefined && script.cachedDataRejected === false;
  if (dir !== undefined && file !== undefined && !cached) {
    const write = () => keep(script, dir, file);
    if (held) held.set(file, write);
    else setImmediate(write);
  }
  return { wrapper: script.runInThisContext() as CommonJsWrapper, cached };
}

function keep(script: Script, dir: string, file: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    const partial = `${file}.${process.pid}.partial`;
    writeFileSync(partial, script.createCachedData());
    // Whole or absent: a reader never sees a file being written.
    renameSync(partial, file);
    const kept = readdirSync(dir)
      .filter((name) => name.endsWith('.bin'))
      .map((name) => ({ name, time: statSync(path.join(dir, name)).mtimeMs }))
      .sort((a, b) => b.time - a.time);
    for (const old of kept.slice(CODE_CACHE_FILES_KEPT)) rmSync(path.join(dir, old.name), { force: true });
  } catch {
    // An unwritable state dir only costs the speed-up.
  }
}

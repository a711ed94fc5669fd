/**
 * One memory-reducing garbage collection shortly after the runtime is ready. Starting leaves the old
 * generation full of garbage (module sources parsed once, config and schema work, the broker's restore)
 * that V8 keeps until its first major GC, and an idle appliance may not reach one for hours: the pages
 * stay in RSS. V8's last-resort collection (full GCs with compaction until nothing more is freed) gives
 * them back once; afterwards V8 sizes the old generation from what is really live.
 *
 * Node gives JavaScript no GC call without `--expose-gc`, and that flag on the command line would put
 * `gc()` on the global object of every context and worker in the process, plugins included. Instead the
 * flag is on only while one throwaway context is created (V8 installs `gc` into contexts made while it is
 * set), that context's `gc` stays private to this module, and the flag is off again before anything else
 * runs. This happens when the module is imported, at start, before any worker thread exists, so no other
 * isolate can be created while the flag is on.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from 'pino';

type Collect = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;

function privateGc(): Collect | undefined {
  const exposed = typeof (globalThis as { gc?: unknown }).gc === 'function';
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as Collect) : undefined;
  } catch {
    return undefined; // a V8 without the flag: the runtime simply keeps its startup garbage
  } finally {
    // The user's own `node --expose-gc` stays as it was.
    if (!exposed) setFlagsFromString('--no-expose-gc');
  }
}

const collect = privateGc();

/** How long after ready: past the work a start defers (first status sample, drivers connecting). */
export const SETTLE_AFTER_MS = 3000;

/**
 * Schedules the collection `delayMs` after now (call it once the runtime is ready). The pause is one
 * stop-the-world of about a tenth of a second on a slow box, once per process. Returns a cancel function.
 */
export function settleMemoryAfterStart(log: Logger, delayMs = SETTLE_AFTER_MS): () => void {
  if (!collect) return () => {};
  const timer = setTimeout(() => {
    const before = process.memoryUsage();
    const started = performance.now();
    collect({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    const after = process.memoryUsage();
    const mb = (bytes: number) => Math.round(bytes / 104857.6) / 10;
    log.debug(
      { ms: Math.round(performance.now() - started), heapTotalMb: [mb(before.heapTotal), mb(after.heapTotal)], rssMb: [mb(before.rss), mb(after.rss)] },
      'startup garbage collected',
    );
  }, delayMs);
  timer.unref();
  return () => clearTimeout(timer);
}

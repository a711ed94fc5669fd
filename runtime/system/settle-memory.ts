/**
 * Memory-reducing garbage collections at quiet moments: once shortly after the runtime is ready, and
 * again whenever the heap grew and the process went quiet. Starting (module sources, config and schema
 * work, the broker's restore) and bursts (a thousand clients connecting) grow V8's heap; its regular
 * major GCs free the objects but keep the pages committed, so RSS stays at the peak. A memory-reducing
 * collection (V8's last-resort one: full GCs with compaction until nothing more is freed) gives the pages
 * back. V8's own memory reducer should do that on an idle process, but here it keeps judging by the
 * start's allocation rate (--trace-memory-reducer: "high alloc") and never runs. The first collection also
 * drops the bytecode of functions only the start called (collectDroppingStartCode).
 *
 * Each collection is followed by a trim of glibc's heaps (malloc-trim.ts), and the heaps are trimmed at every
 * check besides (every 10 s), busy or not: what V8 and Node free outside the JavaScript heap (socket reads, buffers,
 * packets) leaves holes between live allocations that glibc never returns on its own, and under steady load
 * the process is never quiet enough for a collection.
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
import { trimMalloc } from './malloc-trim.js';

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

/** V8's default age, in full GCs without a call, at which a function's bytecode is dropped (recompiled on its next call). */
const BYTECODE_OLD_AGE = 6;
/** The age set for the first collection only; a user's own --bytecode-old-age is left alone. */
const START_BYTECODE_OLD_AGE = process.execArgv.some((arg) => arg.startsWith('--bytecode-old-age')) ? undefined : 1;

/**
 * A collection after which the bytecode of every function not called since the previous one is gone: what
 * only the start ran (config checks, schema and module set-up, each component's start) is held by an idle
 * box for nothing, and V8 drops it only after six full GCs without a call, which an idle process never
 * has. A function called again later is compiled again then, as on its first call.
 */
function collectDroppingStartCode(gc: Collect): void {
  const age = START_BYTECODE_OLD_AGE;
  if (age !== undefined) setFlagsFromString(`--bytecode-old-age=${age}`);
  try {
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } finally {
    if (age !== undefined) setFlagsFromString(`--bytecode-old-age=${BYTECODE_OLD_AGE}`);
  }
}

/** When: a while after ready (past the work a start defers: first status sample, drivers connecting), then
 * whenever the process has gone quiet after its heap grew (a burst of connections, a plugin run). */
export interface SettleOptions {
  /** After ready, ms. */
  firstAfterMs?: number;
  /** How often to look, ms. */
  checkEveryMs?: number;
  /** The heap must have grown this much since the last collection, bytes. */
  minGrowthBytes?: number;
  /** And the event loop must have been busy less than this share of the last check interval. */
  maxUtilization?: number;
  /** How often glibc's heaps are trimmed whatever the load, ms (rounded to whole checks, at least every check). */
  trimEveryMs?: number;
}

const DEFAULTS: Required<SettleOptions> = { firstAfterMs: 3000, checkEveryMs: 10_000, minGrowthBytes: 8 << 20, maxUtilization: 0.05, trimEveryMs: 10_000 };

/**
 * Whether to collect now. Only on a quiet event loop: under load V8's own GCs keep up and an extra pause
 * would land on clients' round trips; once the load is gone, what it left in the old generation is given
 * back (V8's own memory reducer does not do this here: it keeps judging the allocation rate of the start).
 */
export function shouldSettle(heapGrowthBytes: number, utilization: number, options: Required<SettleOptions> = DEFAULTS): boolean {
  return heapGrowthBytes >= options.minGrowthBytes && utilization < options.maxUtilization;
}

/**
 * Starts collecting as described above (call it once the runtime is ready). Each collection is one
 * stop-the-world pause (longer the more live heap; bench/README.md, "Footprint", has measured ones), at a
 * quiet moment by construction. Returns a stop function.
 */
export function settleMemory(log: Logger, settings: SettleOptions = {}): () => void {
  const options = { ...DEFAULTS, ...settings };
  let settledHeap = Number.POSITIVE_INFINITY; // the first collection does not wait for growth
  let lastLoop = performance.eventLoopUtilization();
  // A trim is a short walk of glibc's free lists, so every check can afford one: the shorter the interval, the
  // less of the churn's holes RSS holds between two trims.
  const checksPerTrim = Math.max(1, Math.round(options.trimEveryMs / options.checkEveryMs));
  let checksSinceTrim = 0;
  const mb = (bytes: number) => Math.round(bytes / 104857.6) / 10;
  const trim = (): { trimMs?: number } => {
    checksSinceTrim = 0;
    const trimmed = trimMalloc();
    return trimmed ? { trimMs: trimmed.ms } : {};
  };
  const settle = (why: string, dropStartCode = false): void => {
    if (!collect) return;
    const before = process.memoryUsage();
    const started = performance.now();
    if (dropStartCode) collectDroppingStartCode(collect);
    else collect({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    const ms = Math.round(performance.now() - started);
    const trimmed = trim();
    const after = process.memoryUsage();
    settledHeap = after.heapTotal;
    log.debug({ why, ms, ...trimmed, heapTotalMb: [mb(before.heapTotal), mb(after.heapTotal)], rssMb: [mb(before.rss), mb(after.rss)] }, 'memory settled');
  };
  const trimNow = (): void => {
    const before = process.memoryUsage.rss();
    const trimmed = trim();
    if (trimmed.trimMs !== undefined) log.debug({ ...trimmed, rssMb: [mb(before), mb(process.memoryUsage.rss())] }, 'malloc heaps trimmed');
  };
  const check = (): void => {
    const loop = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(loop, lastLoop).utilization;
    lastLoop = loop;
    if (shouldSettle(process.memoryUsage().heapTotal - settledHeap, utilization, options)) settle('heap grew while the process was quiet');
    else if (++checksSinceTrim >= checksPerTrim) trimNow();
  };
  let interval: NodeJS.Timeout | undefined;
  const first = setTimeout(() => {
    settle('after start', true);
    lastLoop = performance.eventLoopUtilization();
    interval = setInterval(check, options.checkEveryMs);
    interval.unref();
  }, options.firstAfterMs);
  first.unref();
  return () => {
    clearTimeout(first);
    clearInterval(interval);
  };
}

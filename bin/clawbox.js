#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=4 --invocation-count-for-turbofan=1000000 --invocation-count-for-feedback-allocation=1000
// The installed command runs the compiled runtime (npm ci builds it; `npm run build` rebuilds it).
// --max-semi-space-size=4 caps V8's young generation at 8 MB instead of letting it grow to 32 MB, which
// the runtime's start fills once and never gives back: less RSS for the same broker throughput.
// MALLOC_ARENA_MAX=2: glibc gives each thread that mallocs (libuv's pool, V8's workers) an arena of its own,
// up to 8 per core, and each keeps what it freed; two are enough for one JavaScript thread: less
// RSS, broker throughput the same (npm run bench:footprint with BENCH_NODE_FLAGS compares flag and
// environment sets; bench/README.md has the figures).
// --invocation-count-for-turbofan=1000000 (V8's default 3000): starting, Node's own module loader (path and
// URL parsing, the CommonJS lexer) calls a few functions often enough for V8 to hand them to TurboFan, and
// that first optimising compile pages much of the compiler's code out of the node binary into every idle
// process for good. Many times the calls keeps the start and an idle box in the interpreter and the
// baseline compiler; code that is really hot (a busy broker's per-message path) still reaches TurboFan,
// later: what it costs in warm-up is in bench/README.md ("Footprint", the flag runs).
// --invocation-count-for-feedback-allocation=1000 (V8's default 8): a function gets its feedback vector (the
// inline caches' memory, and the precondition for the baseline compiler's machine code) after a thousand
// calls instead of eight. Most of a start's functions run a few times and never again, and each kept a
// vector and often baseline code in every idle process; code that runs often still gets both, a little
// later (bench/README.md, "Footprint", fifth round, has the before/after).
// The systemd unit runs this file, so it gets all four.
// `npm start` runs this file through this line and the benchmarks read the flags from it: one place for them.
import { existsSync, statSync } from 'node:fs';
import { enableCompileCache } from './compile-cache.js';

// The runtime uses Node 22's APIs (zstd, the module compile cache): say so plainly on an older Node.
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
if (NODE_MAJOR < 22) {
  process.stderr.write(`clawbox: needs Node.js 22 or later (this is ${process.version}); see README, "Quick start"\n`);
  process.exit(1);
}

// `npm start` in a checkout: rebuild first when a source changed (bin/build-if-stale.js), in this process.
if (process.argv[2] === '--build-if-stale') {
  process.argv.splice(2, 1);
  const { buildIfStale } = await import('./build-if-stale.js');
  const status = buildIfStale();
  if (status !== 0) process.exit(status);
}

const entry = bundledEntry() ?? new URL('../dist/app/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('clawbox: the runtime is not built; run `npm run build` (npm ci does it for you)\n');
  process.exit(1);
}

// Node's compile cache in the state dir: a start after the first one compiles little (see the file).
enableCompileCache();

await import(entry.href);

/**
 * The runtime bundled by bin/bundle.js (what the OS image ships: fewer files to load at start), unless tsc
 * has built dist/ since (a checkout's dist/.tsbuildinfo; the image has none): then dist/ is newer.
 */
function bundledEntry() {
  const bundled = new URL('../dist/bundle/main.js', import.meta.url);
  const bundledAt = statSync(bundled, { throwIfNoEntry: false })?.mtimeMs;
  if (bundledAt === undefined) return null;
  const builtAt = statSync(new URL('../dist/.tsbuildinfo', import.meta.url), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  return bundledAt >= builtAt ? bundled : null;
}

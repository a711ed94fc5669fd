#!/usr/bin/env -S node --max-semi-space-size=4
// The installed command runs the compiled runtime (npm ci builds it; `npm run build` rebuilds it).
// --max-semi-space-size=4 caps V8's young generation at 8 MB instead of letting it grow to 32 MB, which
// the runtime's start fills once and never gives back: about 20 MB less RSS for the same broker throughput
// (npm run bench:footprint with BENCH_NODE_FLAGS compares flag sets; bench/README.md has the figures).
// `npm start` runs this file through this line and the benchmarks read the flags from it: one place for them.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/app/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('clawbox: the runtime is not built; run `npm run build` (npm ci does it for you)\n');
  process.exit(1);
}
await import(entry.href);

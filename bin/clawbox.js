#!/usr/bin/env -S node --max-semi-space-size=4
// The installed command runs the compiled runtime (npm ci builds it; `npm run build` rebuilds it).
// --max-semi-space-size=4 caps V8's young generation at 8 MB instead of letting it grow to 32 MB, which
// the runtime's start fills once and never gives back: about 20 MB less RSS for the same broker throughput
// (npm run bench:footprint with BENCH_NODE_FLAGS compares flag sets; bench/README.md has the figures).
// `npm start` runs this file through this line and the benchmarks read the flags from it: one place for them.
import { existsSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';

// `npm start` in a checkout: rebuild first when a source changed (bin/build-if-stale.js), in this process.
if (process.argv[2] === '--build-if-stale') {
  process.argv.splice(2, 1);
  const { buildIfStale } = await import('./build-if-stale.js');
  const status = buildIfStale();
  if (status !== 0) process.exit(status);
}

const entry = new URL('../dist/app/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('clawbox: the runtime is not built; run `npm run build` (npm ci does it for you)\n');
  process.exit(1);
}

/**
 * Node's on-disk compile cache (V8 code for every module loaded) in `<state dir>/cache/node-compile`, so a
 * start after the first one, a reboot or a kill -9 skips compiling the runtime's JavaScript again. Node
 * checks each entry against the file's contents and its own version. The state dir comes from the
 * environment only, as no config is read yet ($CLAWBOX_STATE_DIR, systemd's $STATE_DIRECTORY, else the
 * mode's default), and only an existing one is used: a command run elsewhere creates no folder.
 * $NODE_COMPILE_CACHE, when set, has already enabled Node's cache there, and NODE_DISABLE_COMPILE_CACHE=1
 * turns it off. An unwritable folder only costs the speed-up, never the start.
 */
function stateDirFromEnvironment() {
  const { CLAWBOX_STATE_DIR, STATE_DIRECTORY, CLAWBOX_MODE } = process.env;
  if (CLAWBOX_STATE_DIR) return path.resolve(CLAWBOX_STATE_DIR);
  const fromSystemd = STATE_DIRECTORY?.split(':')[0];
  if (fromSystemd) return fromSystemd;
  const args = process.argv.slice(2);
  const mode = args.find((arg, i) => args[i - 1] === '--mode' || arg.startsWith('--mode='))?.replace('--mode=', '') ?? CLAWBOX_MODE;
  return mode === 'appliance' ? '/var/lib/clawbox' : path.resolve('.clawbox');
}

if (!process.env.NODE_COMPILE_CACHE && typeof module.enableCompileCache === 'function') {
  try {
    const stateDir = stateDirFromEnvironment();
    if (existsSync(stateDir)) module.enableCompileCache(path.join(stateDir, 'cache', 'node-compile'));
  } catch {
    // A cache is an optimisation: the runtime starts without it.
  }
}

await import(entry.href);

/**
 * Node's on-disk compile cache (V8 code for every module loaded) in `<state dir>/cache/node-compile`, so a
 * start after the first one, a reboot or a kill -9 skips compiling the runtime's JavaScript again (the
 * runtime flushes it once serving: app/cli.ts). Node checks each entry against the file's contents and its
 * own version, so an update or a slot switch never runs stale code; deleting the folder is always safe.
 *
 * The state dir comes from the environment only, as no config is read yet ($CLAWBOX_STATE_DIR, systemd's
 * $STATE_DIRECTORY, else the mode's default), and only an existing one is used: a command run elsewhere
 * creates no folder. Only `clawbox start` uses it: other commands are short, and one run as root (first
 * boot, an update) would leave root-owned entries the runtime could not replace; for the same reason root
 * never writes into a state dir another user owns. $NODE_COMPILE_CACHE, when set, has already enabled
 * Node's cache there, and NODE_DISABLE_COMPILE_CACHE=1 turns it off. An unwritable folder only costs the
 * speed-up, never the start.
 */
import { statSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';

export function stateDirFromEnvironment(env = process.env, args = process.argv.slice(2), cwd = process.cwd()) {
  if (env.CLAWBOX_STATE_DIR) return path.resolve(cwd, env.CLAWBOX_STATE_DIR);
  const fromSystemd = env.STATE_DIRECTORY?.split(':')[0];
  if (fromSystemd) return fromSystemd;
  const flag = args.find((arg, i) => args[i - 1] === '--mode' || arg.startsWith('--mode='));
  const mode = flag?.replace(/^--mode=/, '') ?? env.CLAWBOX_MODE;
  return mode === 'appliance' ? '/var/lib/clawbox' : path.resolve(cwd, '.clawbox');
}

/** The command: the first argument that is neither an option nor an option's value. */
function commandOf(args) {
  return args.find((arg, i) => !arg.startsWith('-') && !['--config', '-c', '--mode'].includes(args[i - 1] ?? ''));
}

/** Enables the cache; returns its folder, or null when it is not used (never throws). */
export function enableCompileCache(env = process.env, args = process.argv.slice(2)) {
  if (env.NODE_COMPILE_CACHE || typeof module.enableCompileCache !== 'function' || commandOf(args) !== 'start') return null;
  try {
    const stateDir = stateDirFromEnvironment(env, args);
    const owner = statSync(stateDir, { throwIfNoEntry: false })?.uid;
    if (owner === undefined || (process.getuid?.() === 0 && owner !== 0)) return null;
    const result = module.enableCompileCache(path.join(stateDir, 'cache', 'node-compile'));
    return result.status === module.constants.compileCacheStatus.ENABLED ? (result.directory ?? null) : null;
  } catch {
    return null;
  }
}

/**
 * `clawbox start --wait-for-config SECONDS`: when the config file is not there yet, wait for it, bounded.
 *
 * Why: on an appliance's first boot, clawbox-firstboot.service writes the config (TLS certificate, password
 * hash, token) while clawbox.service starts beside it instead of after it. The runtime loads its code
 * meanwhile, which does not depend on the config: the two starts overlap instead of adding up.
 * The file is written last and renamed into place, so seeing it means it is complete.
 */
import { statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { configUnreadable } from '../runtime/config/load.js';
import { positiveIntegerOption } from '../runtime/cli-options.js';

/** How often the file is looked for: one stat each, and at most this much added to the start. */
const POLL_MS = 50;
/** The longest wait --wait-for-config accepts, in seconds. */
export const MAX_CONFIG_WAIT_SECONDS = 3600;

/** Reads `--wait-for-config`'s value: whole seconds, 1 to MAX_CONFIG_WAIT_SECONDS; 0 when not given. */
export function parseConfigWait(value: string | undefined): number {
  return positiveIntegerOption(value, '--wait-for-config', MAX_CONFIG_WAIT_SECONDS) ?? 0;
}

/**
 * Resolves once `file` exists; a CONFIG_UNREADABLE error (exit 78, not restarted) when it has not appeared
 * within `seconds`. `file` null (local mode without a file: embedded defaults) has nothing to wait for.
 * A stop meanwhile needs no signal here: nothing has started yet, so SIGTERM's default (exit) is right.
 */
export async function waitForConfigFile(file: string | null, seconds: number): Promise<void> {
  if (file === null) return;
  let missing = statError(file);
  if (missing === undefined) return;
  const began = performance.now();
  const deadline = began + seconds * 1000;
  process.stderr.write(`clawbox: waiting up to ${seconds} s for ${file} (first boot writes it)\n`);
  // Any error counts as "not yet", EACCES too: on first boot the directory's group is set while this waits.
  while (missing !== undefined) {
    if (performance.now() >= deadline) {
      throw configUnreadable(file, missing, ` after waiting ${seconds} s (on the OS image first boot writes it: journalctl -u clawbox-firstboot)`);
    }
    await sleep(POLL_MS);
    missing = statError(file);
  }
  process.stderr.write(`clawbox: ${file} is there after ${((performance.now() - began) / 1000).toFixed(1)} s\n`);
}

/** What stat(2) of `file` threw, or undefined when it is there. */
function statError(file: string): unknown {
  try {
    statSync(file);
    return undefined;
  } catch (error) {
    return error;
  }
}

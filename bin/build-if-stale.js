#!/usr/bin/env node
/**
 * `npm start`'s build step: runs `npm run build` only when a source file is newer than the last successful
 * build (dist/.build-stamp), so a built checkout starts at once. Sources are every .ts/.tsx/.json/.css/.html
 * file outside node_modules, dist and dot-folders, plus package.json and the tsconfigs.
 *
 * `npm start` runs it inside the runtime's own process (`bin/clawbox.js --build-if-stale start` imports
 * buildIfStale), which saves starting a second Node; `node bin/build-if-stale.js` runs it on its own.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist', '.build-stamp');
const SKIP = new Set(['node_modules', 'dist', 'image', 'bench', 'test', 'docs']);
const SOURCE = /\.(ts|tsx|json|css|html|proto|c|gyp)$/;

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || SKIP.has(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (SOURCE.test(entry.name)) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

function builtAt() {
  try {
    return statSync(stamp).mtimeMs;
  } catch {
    return -1;
  }
}

/** Rebuilds when a source is newer than the last build; returns the build's exit status (0: nothing to do or built). */
export function buildIfStale() {
  const started = Date.now();
  if (newestSource(root) < builtAt()) return 0;
  const result = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) return result.status ?? 1;
  // The stamp takes the time the build started: a file saved during the build makes the next start rebuild.
  writeFileSync(stamp, `${new Date(started).toISOString()}\n`);
  utimesSync(stamp, started / 1000, started / 1000);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) process.exit(buildIfStale());

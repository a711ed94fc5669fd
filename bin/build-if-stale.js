#!/usr/bin/env node
/**
 * `npm start`'s build step: runs `npm run build` only when a source file is newer than the last successful
 * build (dist/.build-stamp), so a built checkout starts at once. Sources are every .ts/.tsx/.json/.css/.html
 * file outside node_modules, dist and dot-folders, plus package.json and the tsconfigs.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist', '.build-stamp');
const SKIP = new Set(['node_modules', 'dist', 'image', 'bench', 'test', 'docs']);
const SOURCE = /\.(ts|tsx|json|css|html|proto)$/;

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

const started = Date.now();
if (newestSource(root) < builtAt()) process.exit(0);
const result = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
// The stamp takes the time the build started: a file saved during the build makes the next start rebuild.
writeFileSync(stamp, `${new Date(started).toISOString()}\n`);
const { utimesSync } = await import('node:fs');
utimesSync(stamp, started / 1000, started / 1000);

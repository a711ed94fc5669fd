#!/usr/bin/env node
/**
 * `npm run build`'s native step: compiles the runtime's own addon (native/malloc-trim, glibc's
 * malloc_trim: runtime/system/malloc-trim.ts) with node-gyp, unless its binary is newer than its sources.
 * node-gyp is npm's own ($npm_config_node_gyp inside npm scripts), with npm's settings (a
 * $npm_config_nodedir names the headers, as for the other addons `npm ci` compiles).
 * The OS image compiles the same folder for its target (image/lib/app.sh).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'native', 'malloc-trim');
const binary = path.join(dir, 'build', 'Release', 'malloc_trim.node');

function newestSource() {
  return Math.max(...readdirSync(dir).filter((name) => /\.(c|h|gyp)$/.test(name)).map((name) => statSync(path.join(dir, name)).mtimeMs));
}

function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp, path.join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
  return candidates.find((file) => file && existsSync(file)) ?? null;
}

if (existsSync(binary) && statSync(binary).mtimeMs >= newestSource()) process.exit(0);
const gyp = nodeGyp();
if (!gyp) {
  process.stderr.write('build-native: node-gyp not found; run the build through npm (`npm run build`), which brings its own\n');
  process.exit(1);
}
const result = spawnSync(process.execPath, [gyp, 'rebuild', '--release'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
if (result.status !== 0) {
  process.stderr.write('build-native: compiling native/malloc-trim failed (it needs a C compiler, as the other native addons do)\n');
  process.exit(result.status ?? 1);
}

#!/usr/bin/env node
/**
 * A build step (`npm run build`, after tsc): rewrites each compiled file in dist/ that holds a non-ASCII
 * character with `\u` escapes instead (runtime/system/ascii-source.ts says why: V8 keeps a loaded file's
 * source, at two bytes per character when one character needs it). dist/web (the browser's files) is left
 * alone. A file the escaper refuses stays as tsc wrote it, and is named. Source maps are not rewritten: a
 * column on a line that had such a character is off by the escapes' extra length.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const { AsciiRefused, asciiOnly, hasNonAscii } = await import(pathToFileURL(path.join(dist, 'runtime/system/ascii-source.js')).href);

let rewritten = 0;
const refused = [];
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.js')) continue;
  const file = path.join(entry.parentPath, entry.name);
  if (path.relative(dist, file).split(path.sep)[0] === 'web') continue;
  const source = readFileSync(file, 'utf8');
  if (!hasNonAscii(source)) continue;
  try {
    writeFileSync(file, asciiOnly(source));
    rewritten++;
  } catch (error) {
    if (!(error instanceof AsciiRefused)) throw error;
    refused.push(`${path.relative(root, file)} (${error.message})`);
  }
}
process.stdout.write(`ascii-dist: ${rewritten} files in dist/ rewritten ASCII-only${refused.length ? `; left as they were: ${refused.join(', ')}` : ''}\n`);

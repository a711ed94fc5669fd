#!/usr/bin/env node
/**
 * `node bin/flatten-packages.js APP_DIR`: joins each of FLATTENED_PACKAGES into one file, in place in
 * APP_DIR/node_modules: the package's entry file is replaced by an esbuild bundle of it (CommonJS in,
 * CommonJS out) with every module it loads, its own dependencies' included. For the OS image
 * (image/lib/app.sh runs it on the staged app, after bin/bundle.js), never on a checkout.
 *
 * Why: under the boot test's emulated CPU most of a start goes to Node's module loader, whose cost goes by
 * the file (image/README.md, "Where the runtime's start goes"), and these packages are many small files
 * that every start loads. Unlike BUNDLED_PACKAGES (bin/bundle.js) they stay packages: they are loaded by
 * path, or by other packages, so the runtime and those packages still find them where they were; only
 * fewer files are read. The package's other files stay too, for anything that imports one of them by name;
 * such an import gets a second copy of that module, not the joined one's, so the runtime reaches what it
 * patches in these packages through their exports.
 *
 * Refused (the package is left as it was, and the command fails): a module that names its own file or
 * folder (`__dirname`, `__filename`, `require.resolve`), which would name the entry's instead, and a
 * `require()` esbuild cannot follow (it warns).
 */
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The packages joined, and why each may be: a dependency joined in with one must hold no state another
 * copy of it would have to share (another package may load its own copy beside it).
 */
export const FLATTENED_PACKAGES = new Map([
  // ~70 modules; runtime/config/yaml.ts loads it by path for each parse and lets it go after.
  ['yaml', 'the config parser'],
  // aedes-persistence-level's codec (the broker's persisted sessions), with int64-buffer, ieee754 and
  // event-lite; runtime/broker/persistence.ts patches it through its exported Encoder, not by file.
  ['msgpack-lite', "the broker store's codec"],
  // classic-level (the broker store) imports only its entry, so its classes stay one copy.
  ['abstract-level', "the broker store's base classes"],
  // mDNS announcements, with multicast-dns and dns-packet (pure functions and their own sockets).
  ['bonjour-service', 'mDNS announcements'],
]);

/** What would be wrong once the file is joined into another: its own name or folder. */
const NAMES_ITS_OWN_FILE = /\b(__dirname|__filename|require\.resolve)\b/;

/** Joins one package's entry (as `require(name)` from appDir finds it); returns the number of files joined. */
async function flattenPackage(appDir, name) {
  const { build } = await import('esbuild');
  const entry = createRequire(path.join(appDir, 'package.json')).resolve(name);
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  if (result.warnings.length > 0) throw new Error(`${name}: ${result.warnings[0].text} (${result.warnings[0].location?.file})`);
  const inputs = Object.keys(result.metafile.inputs);
  for (const input of inputs) {
    const found = NAMES_ITS_OWN_FILE.exec(readFileSync(path.resolve(input), 'utf8'));
    if (found) throw new Error(`${name}: ${input} uses ${found[1]}, which would name the joined file instead`);
  }
  const header = `/* ${name}: ${inputs.length} files joined into one by clawbox's bin/flatten-packages.js (the OS image); the package's own files are beside it. */\n`;
  writeFileSync(entry, header + result.outputFiles[0].text);
  return inputs.length;
}

/** Joins each package named (FLATTENED_PACKAGES by default) in appDir/node_modules; returns `{ name: files joined }`. */
export async function flattenPackages(appDir, names = FLATTENED_PACKAGES.keys()) {
  const modules = path.resolve(appDir, 'node_modules');
  // A checkout's node_modules (or a link to one, as bench:startup makes) is never rewritten.
  if (realpathSync(modules) !== modules) throw new Error(`${modules} is a link: flatten a staged copy of the app only`);
  const joined = {};
  for (const name of names) joined[name] = await flattenPackage(appDir, name);
  return joined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const appDir = process.argv[2];
  if (!appDir) {
    process.stderr.write('usage: node bin/flatten-packages.js APP_DIR (a staged app with its production node_modules)\n');
    process.exit(64);
  }
  try {
    const joined = await flattenPackages(appDir);
    for (const [name, files] of Object.entries(joined)) process.stdout.write(`flatten: ${name} (${FLATTENED_PACKAGES.get(name)}): ${files} files into one\n`);
  } catch (error) {
    process.stderr.write(`flatten: ${error instanceof Error ? error.message : error}\n`);
    process.exit(1);
  }
}

#!/usr/bin/env node
/**
 * `node bin/bundle.js APP_DIR`: bundles APP_DIR's compiled runtime (dist/, from `npm run build`) into
 * APP_DIR/dist/bundle/ with esbuild, for the OS image (image/lib/app.sh runs it on the staged app) and for
 * bench:startup's "bundled" variant. bin/clawbox.js runs dist/bundle/main.js when it is there and newer
 * than the last tsc build.
 *
 * Why: a start loads ~300 of the runtime's own modules, and Node finds, reads, compiles and links each one
 * on its own; under an emulated CPU (the boot test's TCG) that per-file work is a large part of a start.
 * One file per load step does the same work in a few files: what `clawbox start` loads before it is ready
 * is main.js and the chunks it imports; what the runtime imports on first use (`import()`) stays a chunk of
 * its own, loaded on first use as before (splitting).
 *
 * What stays as it was:
 * - packages (node_modules) are not bundled, but for those in BUNDLED_PACKAGES: their own loaders, native
 *   addons and the runtime's patches of their module cache (runtime/broker/quiet-debug.ts and friends) work
 *   on the same files as before;
 * - every `import.meta.url` becomes the URL of the module it was written in (dist/...), so files found
 *   next to a module (precompiled validators, the web app, the plugin runner's entry, package.json) and
 *   packages resolved from it are the same files; dist/ ships beside the bundle for child processes and
 *   workers, which load their entry files from there;
 * - names of functions and classes (keepNames): error types and logs that print a constructor's name;
 * - stack traces: a source map per file, chained through dist's maps to the .ts sources
 *   (`node --enable-source-maps` uses them).
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const BUNDLE_DIR = path.join('dist', 'bundle');

/**
 * Packages bundled with the runtime's own code, with everything they import: under the boot test's TCG
 * the largest part of a start is Node's module loader, whose cost goes by the file (image/README.md,
 * "Where the runtime's start goes"), and these are loaded by every start. What may go here: a package the
 * runtime imports statically (esbuild sees the import), that nothing loads by path or through
 * `createRequire` (another copy would be loaded beside the bundled one), that finds no files next to its
 * own code (pino does only for transports, which the runtime does not use; pino-pretty, for development,
 * stays a package of its own), and whose exports survive esbuild's CommonJS interop as the runtime imports
 * them (bonjour-service's named `Bonjour` does not: its `import()` gets no constructor).
 */
export const BUNDLED_PACKAGES = new Set(['pino', 'lowdb']);

/** The package a bare import names (`pino`, `@scope/name`, from `pino/file` too). */
function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** esbuild's stand-in for `require` in ESM output: it calls the `require` of its scope, or throws without one. */
const REQUIRE_SHIM = /^var __require = /m;
const REQUIRE_PRELUDE = "import { createRequire as __bundleCreateRequire } from 'node:module';\nconst require = __bundleCreateRequire(import.meta.url);\n";

/**
 * A bundled package's require() of Node's modules goes through esbuild's shim, which needs a `require` in
 * its own chunk (ESM has none; esbuild names the runtime's own `require` variables apart, so this one
 * collides with none). Only the chunk that holds the shim gets it, not every chunk a start loads; its
 * source map moves down by the prelude's two lines.
 */
function giveRequireShimARequire(file) {
  const code = readFileSync(file, 'utf8');
  if (!REQUIRE_SHIM.test(code)) return;
  writeFileSync(file, REQUIRE_PRELUDE + code);
  const mapFile = `${file}.map`;
  if (!existsSync(mapFile)) return;
  const map = JSON.parse(readFileSync(mapFile, 'utf8'));
  map.mappings = `;;${map.mappings}`;
  writeFileSync(mapFile, JSON.stringify(map));
}

/** Bundles appDir/dist/app/main.js into appDir/dist/bundle; returns the files written. */
export async function bundleRuntime(appDir) {
  const { build } = await import('esbuild');
  const dist = path.resolve(appDir, 'dist');
  const outdir = path.resolve(appDir, BUNDLE_DIR);
  const entry = path.join(dist, 'app', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first`);
  rmSync(outdir, { recursive: true, force: true });
  const ownMetaUrl = {
    name: 'own-import-meta-url',
    setup(b) {
      b.onLoad({ filter: /\.js$/ }, (args) => {
        let contents = readFileSync(args.path, 'utf8');
        // These would name the bundle's folder instead of the module's: refused rather than shipped wrong.
        const unsupported = /import\.meta\.(dirname|filename)\b|import\.meta\.resolve\(\s*['"`]\.{1,2}\//.exec(contents);
        if (unsupported) throw new Error(`${args.path}: ${unsupported[0]} is not supported in the bundle; use import.meta.url`);
        if (contents.includes('import.meta.url')) {
          // Relative to whichever chunk the code lands in: chunks all sit in outdir.
          const relative = path.relative(outdir, args.path).split(path.sep).join('/');
          contents = contents.replaceAll('import.meta.url', `new URL(${JSON.stringify(relative)}, import.meta.url).href`);
        }
        return { contents, loader: 'js', resolveDir: path.dirname(args.path) };
      });
    },
  };
  // Bare imports of the runtime's own code stay imports of the installed package, but for
  // BUNDLED_PACKAGES; whatever a bundled package imports is bundled with it.
  const selectedPackages = {
    name: 'selected-packages',
    setup(b) {
      // (esbuild's filters are Go regular expressions, without lookahead: the test is here.)
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith('node:') || args.importer.split(path.sep).includes('node_modules')) return undefined;
        return BUNDLED_PACKAGES.has(packageName(args.path)) ? undefined : { path: args.path, external: true };
      });
    },
  };
  const result = await build({
    entryPoints: { main: entry },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    keepNames: true,
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
    plugins: [selectedPackages, ownMetaUrl],
  });
  const files = Object.keys(result.metafile.outputs);
  for (const file of files) if (file.endsWith('.js')) giveRequireShimARequire(path.resolve(file));
  writeFileSync(path.join(outdir, 'README'), 'Generated by bin/bundle.js from dist/ (do not edit); bin/clawbox.js runs main.js.\n');
  return files;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  // No default: a checkout bundled in place would run the bundle (until its next tsc build) in every test.
  const appDir = process.argv[2];
  if (!appDir) {
    process.stderr.write('usage: node bin/bundle.js APP_DIR (a copy of the built app: bin/, dist/, package.json)\n');
    process.exit(64);
  }
  try {
    const files = await bundleRuntime(appDir);
    process.stdout.write(`bundle: ${files.filter((f) => f.endsWith('.js')).length} files in ${path.join(appDir, BUNDLE_DIR)}\n`);
  } catch (error) {
    process.stderr.write(`bundle: ${error instanceof Error ? error.message : error}\n`);
    process.exit(1);
  }
}

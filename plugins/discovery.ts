/**
 * Finds plugins: the built-in folder, then $PLUGIN_DIR (colon-separated), then `plugins.dirs`. A source
 * folder holds plugin folders, or is one itself. A plugin is refused, with a PLUGIN_INVALID problem that
 * names the path, when its folder (or its source folder) is world-writable, when a symlink in it resolves
 * outside it, or when its manifest is invalid. The first plugin of a name wins: a built-in cannot be shadowed.
 */
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClawboxError } from '../runtime/errors.js';
import { type CompiledManifest, MANIFEST_FILE, manifestValidator, parseManifest } from './manifest.js';

export type PluginOrigin = 'builtin' | 'env' | 'config';

export interface PluginSource {
  dir: string;
  origin: PluginOrigin;
}

export interface DiscoveredPlugin {
  readonly name: string;
  /** The plugin folder, symlinks resolved. */
  readonly dir: string;
  readonly origin: PluginOrigin;
  readonly compiled: CompiledManifest;
  /** Absolute entry file to run (a .ts sibling of a missing .js when running from sources). */
  readonly entryPath: string;
}

export interface DiscoveryProblem {
  readonly path: string;
  readonly origin: PluginOrigin;
  readonly name?: string;
  readonly error: ClawboxError;
}

export interface DiscoveryResult {
  readonly plugins: DiscoveredPlugin[];
  readonly problems: DiscoveryProblem[];
  /** Found and valid, but not loaded because of plugins.allow / plugins.deny. */
  readonly skipped: { name: string; dir: string; reason: string }[];
}

export interface DiscoveryOptions {
  allow?: readonly string[] | undefined;
  deny?: readonly string[] | undefined;
}

/** Where the built-in plugins live: beside this module, in the sources and in dist/ alike. */
export const BUILTIN_PLUGIN_DIR = fileURLToPath(new URL('./builtin/', import.meta.url));
/** True when this module runs from TypeScript sources (tsx), so node entries may be .ts files. */
const FROM_SOURCES = import.meta.url.endsWith('.ts');
/** More entries than this in one plugin folder is refused rather than half-checked. */
const MAX_ENTRIES_CHECKED = 50_000;

export function pluginSources(
  config: { dirs: readonly string[] },
  env: NodeJS.ProcessEnv = process.env,
  builtinDir: string = BUILTIN_PLUGIN_DIR,
): PluginSource[] {
  const sources: PluginSource[] = [{ dir: builtinDir, origin: 'builtin' }];
  for (const dir of (env.PLUGIN_DIR ?? '').split(':').filter(Boolean)) sources.push({ dir, origin: 'env' });
  for (const dir of config.dirs) sources.push({ dir, origin: 'config' });
  return sources;
}

export function discoverPlugins(sources: readonly PluginSource[], options: DiscoveryOptions = {}): DiscoveryResult {
  const plugins: DiscoveredPlugin[] = [];
  const problems: DiscoveryProblem[] = [];
  const skipped: DiscoveryResult['skipped'] = [];
  const seen = new Map<string, string>();
  const problem = (where: string, origin: PluginOrigin, error: unknown, name?: string) =>
    problems.push({
      path: where,
      origin,
      ...(name ? { name } : {}),
      error: error instanceof ClawboxError ? error : new ClawboxError('PLUGIN_INVALID', `${where}: ${String(error)}`),
    });

  // One manifest validator for the pass (the built-in plugins are always there to check), let go with it.
  const validateManifest = manifestValidator();

  for (const source of sources) {
    let folders: string[];
    try {
      folders = pluginFolders(source.dir);
    } catch (error) {
      // A missing $PLUGIN_DIR or config folder is worth a warning, never a failed start.
      problem(source.dir, source.origin, error);
      continue;
    }
    for (const folder of folders) {
      let found: DiscoveredPlugin;
      try {
        found = loadPluginFolder(folder, source, validateManifest);
      } catch (error) {
        problem(folder, source.origin, error);
        continue;
      }
      const { name } = found;
      const earlier = seen.get(name);
      if (earlier) {
        problem(folder, source.origin, new ClawboxError('PLUGIN_INVALID', `${folder}: plugin "${name}" is already loaded from ${earlier}`), name);
        continue;
      }
      seen.set(name, found.dir);
      if (options.deny?.includes(name)) skipped.push({ name, dir: found.dir, reason: 'listed in plugins.deny' });
      else if (options.allow && !options.allow.includes(name)) skipped.push({ name, dir: found.dir, reason: 'not in plugins.allow' });
      else plugins.push(found);
    }
  }
  return { plugins, problems, skipped };
}

/** The plugin folders of a source: the source itself when it has a manifest, else its sub-folders that have one. */
function pluginFolders(sourceDir: string): string[] {
  const dir = path.resolve(sourceDir);
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(dir);
  } catch (error) {
    throw new ClawboxError('PLUGIN_INVALID', `plugin folder ${dir} cannot be read: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  if (!stat.isDirectory()) throw new ClawboxError('PLUGIN_INVALID', `plugin folder ${dir} is not a directory`);
  if (existsSync(path.join(dir, MANIFEST_FILE))) return [dir];
  assertNotWorldWritable(dir, stat.mode, 'plugin source folder');
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => (entry.isDirectory() || entry.isSymbolicLink()) && existsSync(path.join(dir, entry.name, MANIFEST_FILE)))
    .map((entry) => path.join(dir, entry.name))
    .sort();
}

/** Checks one plugin folder for safety, then parses its manifest (with the pass's validator) and resolves its entry. */
export function loadPluginFolder(folder: string, source: PluginSource, validateManifest = manifestValidator()): DiscoveredPlugin {
  const sourceReal = realpathSync(path.resolve(source.dir));
  const link = lstatSync(folder);
  const real = realpathSync(folder);
  if (link.isSymbolicLink() && real !== sourceReal && !isInside(real, sourceReal)) {
    throw new ClawboxError('PLUGIN_INVALID', `${folder} is a symlink to ${real}, outside ${sourceReal}; refused`);
  }
  assertFolderSafe(real);
  const manifestPath = path.join(real, MANIFEST_FILE);
  const compiled = parseManifest(readFileSync(manifestPath, 'utf8'), manifestPath, validateManifest);
  return {
    name: compiled.manifest.name,
    dir: real,
    origin: source.origin,
    compiled,
    entryPath: resolveEntry(real, compiled.manifest.entry, compiled.manifest.runtime),
  };
}

function resolveEntry(dir: string, entry: string, runtime: 'node' | 'python'): string {
  let file = path.resolve(dir, entry);
  if (!existsSync(file) && runtime === 'node' && FROM_SOURCES && file.endsWith('.js')) {
    const ts = file.replace(/\.js$/, '.ts');
    if (existsSync(ts)) file = ts;
  }
  if (!existsSync(file)) throw new ClawboxError('PLUGIN_INVALID', `${dir}: entry "${entry}" does not exist`);
  const real = realpathSync(file);
  if (!isInside(real, dir)) throw new ClawboxError('PLUGIN_INVALID', `${dir}: entry "${entry}" resolves outside the plugin folder`);
  if (!statSync(real).isFile()) throw new ClawboxError('PLUGIN_INVALID', `${dir}: entry "${entry}" is not a file`);
  return real;
}

/** Walks the folder: nothing in it may be world-writable, and no symlink may lead outside it. */
export function assertFolderSafe(root: string): void {
  assertNotWorldWritable(root, statSync(root).mode, 'plugin folder');
  let checked = 0;
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (++checked > MAX_ENTRIES_CHECKED) {
        throw new ClawboxError('PLUGIN_INVALID', `${root} has more than ${MAX_ENTRIES_CHECKED} entries; refused unchecked`);
      }
      const full = path.join(dir, entry.name);
      if (entry.isSymbolicLink()) {
        const target = symlinkTarget(full);
        if (target !== root && !isInside(target, root)) {
          throw new ClawboxError('PLUGIN_INVALID', `${full} is a symlink to ${target}, outside the plugin folder ${root}; refused`);
        }
        continue;
      }
      const { mode } = lstatSync(full);
      assertNotWorldWritable(full, mode, entry.isDirectory() ? 'folder in a plugin' : 'file in a plugin');
      if (entry.isDirectory()) stack.push(full);
    }
  }
}

function symlinkTarget(link: string): string {
  try {
    return realpathSync(link);
  } catch {
    // Dangling: judge by where it points.
    return path.resolve(path.dirname(link), readlinkSync(link));
  }
}

function assertNotWorldWritable(file: string, mode: number, what: string): void {
  if (mode & 0o002) {
    throw new ClawboxError(
      'PLUGIN_INVALID',
      `${what} ${file} is world-writable (mode ${(mode & 0o7777).toString(8)}); refused — run chmod o-w on it`,
    );
  }
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

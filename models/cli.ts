/**
 * `clawbox models list | verify [NAME...] | add FILE | pull URI` — app/cli.ts forwards the arguments
 * after `models` here. Exit codes: 0 ok, 1 a model failed verification, 64 bad arguments (thrown as
 * USAGE), 130 a pull interrupted by Ctrl-C (the partial file is kept; the same command resumes it),
 * others from the error catalog.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type ConfigLoader, localConfigFile, resolveStateDir } from '../runtime/config/load.js';
import type { Config } from '../runtime/config/schema.js';
import { ClawboxError } from '../runtime/errors.js';
import { type ModelConfigEntry, withModelDefaults } from './config-schema.js';
import { DownloadProgressWriter } from './download-progress.js';
import { hashCacheKey, stateHashCache } from './hash-cache-file.js';
import { DEFAULT_KEEP_FREE_BYTES, type PullProgress, checkModelUri, displayUri, pullModel } from './pull.js';
import { type HashCache, ModelRegistry, describeModelFile, modelNameFromUri } from './registry.js';
import { appendModelEntry, checkCanAppend } from './model-config-file.js';

export interface ModelsCliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** Whether stderr is a terminal (a progress bar) or a log (progress lines). */
  isTTY?: boolean;
  /** Stops a pull (tests); without it Ctrl-C does. */
  signal?: AbortSignal;
}

/** What a shell reports for a command stopped by Ctrl-C (128 + SIGINT). */
const INTERRUPTED = 130;

const USAGE = `Usage:
  clawbox models list   [--config FILE] [--json]             models in the config: header facts, verified or not
  clawbox models verify [NAME...] [--config FILE] [--json]    check files: GGUF header, completeness, sha256
  clawbox models add FILE [--name NAME] [--role main|small|standby] [--config FILE]
                                                             hash FILE, read its header, add it to the config
  clawbox models pull URI [--name NAME] [--role main|small|standby] [--sha256 HEX] [--dir DIR]
                          [--keep-free MIB] [--hf-endpoint URL] [--config FILE] [--json]
                                                             download a GGUF, check it, add it to the config
URI: https://host/file.gguf, hf:OWNER/REPO/FILE.gguf[#BRANCH] or hf:OWNER/REPO[:QUANT] (e.g. :Q4_K_M).
pull resumes an interrupted download (Ctrl-C keeps the partial file), checks free space first (keeping
--keep-free MiB free, default ${DEFAULT_KEEP_FREE_BYTES >> 20}), and saves to DIR (default <state dir>/models).
Without --config or $CLAWBOX_CONFIG, add and pull write the config file the runtime reads: the appliance's
in appliance mode, <state dir>/config.yaml in local mode (the next \`npm start\` uses it).
Gated Hugging Face repositories: set HF_TOKEN.`;

const defaultIo: ModelsCliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  isTTY: process.stderr.isTTY === true,
};

function formatBytes(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(2)} GiB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

function formatParams(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  return `${(n / 1e3).toFixed(0)}K`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return `${rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`;
}

function configFile(option: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (option === '') throw new ClawboxError('USAGE', '--config needs a file path');
  return option ?? (env.CLAWBOX_CONFIG || undefined);
}

function openRegistry(loadConfig: ConfigLoader['loadConfig'], file: string | undefined, env: NodeJS.ProcessEnv): { registry: ModelRegistry; stateDir: string } {
  const { config, source } = loadConfig({ ...(file ? { file } : {}), env });
  return {
    registry: new ModelRegistry(config.models, source ? path.dirname(path.resolve(source)) : process.cwd()),
    stateDir: resolveStateDir(config, env),
  };
}

/** `loadConfig` comes from the composition root, which knows every config section. */
export async function runModelsCommand(
  args: readonly string[],
  loadConfig: ConfigLoader['loadConfig'],
  io: ModelsCliIo = defaultIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      name: { type: 'string' },
      role: { type: 'string' },
      sha256: { type: 'string' },
      dir: { type: 'string' },
      'keep-free': { type: 'string' },
      'hf-endpoint': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    io.stdout(`${USAGE}\n`);
    return command === undefined && !values.help ? 64 : 0;
  }
  const file = configFile(values.config, io.env);
  const role = values.role ?? 'main';
  if (role !== 'main' && role !== 'small' && role !== 'standby') throw new ClawboxError('USAGE', `--role must be main, small or standby (got "${role}")`);
  switch (command) {
    case 'list': {
      if (rest.length > 0) throw new ClawboxError('USAGE', `models list takes no names (got "${rest.join(' ')}"; try models verify NAME)`);
      const { registry, stateDir } = openRegistry(loadConfig, file, io.env);
      return list(registry, stateHashCache(stateDir), values.json === true, io);
    }
    case 'verify': {
      const { registry, stateDir } = openRegistry(loadConfig, file, io.env);
      return verify(registry, stateHashCache(stateDir), rest, values.json === true, io);
    }
    case 'add': {
      const [modelFile, ...extra] = rest;
      if (!modelFile || extra.length > 0) throw new ClawboxError('USAGE', 'models add needs exactly one FILE');
      const target = configTarget(loadConfig, file, io.env);
      return add(modelFile, { ...(values.name ? { name: values.name } : {}), role, ...target }, io);
    }
    case 'pull': {
      const [uri, ...extra] = rest;
      if (!uri || extra.length > 0) throw new ClawboxError('USAGE', 'models pull needs exactly one URI');
      checkModelUri(uri);
      const keepFree = values['keep-free'] === undefined ? DEFAULT_KEEP_FREE_BYTES : mebibytes(values['keep-free'], '--keep-free');
      if (values.name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(values.name)) {
        throw new ClawboxError('USAGE', '--name must be 1-64 letters, digits, dots, dashes or underscores, starting with a letter or digit');
      }
      const target = configTarget(loadConfig, file, io.env);
      return pull(uri, {
        ...target,
        role,
        keepFree,
        json: values.json === true,
        dir: values.dir ? path.resolve(values.dir) : path.join(target.stateDir, 'models'),
        ...(values.name ? { name: values.name } : {}),
        ...(values.sha256 !== undefined ? { sha256: values.sha256 } : {}),
        ...(values['hf-endpoint'] ? { huggingFaceEndpoint: values['hf-endpoint'] } : {}),
      }, io);
    }
    default:
      throw new ClawboxError('USAGE', `unknown models command "${command}" (list, verify, add, pull)`);
  }
}

function mebibytes(text: string, option: string): number {
  if (!/^\d{1,7}$/.test(text)) throw new ClawboxError('USAGE', `${option} takes a whole number of MiB (got "${text}")`);
  return Number(text) * (1 << 20);
}

/**
 * The config file add/pull write, and the state dir: the named file; else the file the runtime would
 * read ($CLAWBOX_CONFIG, the appliance's, or an existing <state dir>/config.yaml); else a new
 * <state dir>/config.yaml, which local mode reads at the next start.
 */
function configTarget(loadConfig: ConfigLoader['loadConfig'], file: string | undefined, env: NodeJS.ProcessEnv): { configFile: string; stateDir: string } {
  let loaded: { config: Config; source: string | null };
  if (file && !existsSync(file)) loaded = { ...loadConfig({ env: { ...env, CLAWBOX_CONFIG: '' } }), source: file };
  else loaded = loadConfig({ ...(file ? { file } : {}), env });
  return { configFile: loaded.source ?? localConfigFile(env), stateDir: resolveStateDir(loaded.config, env) };
}

/**
 * Whether the file was hashed since it last changed (by the runtime, add, pull or verify) and matched:
 * `verified`; not hashed since: `unverified` (models verify hashes it); no sha256 in the config: `no sha256`.
 */
async function verifiedStatus(file: string, expected: string | undefined, cache: HashCache): Promise<{ status: string; verified: boolean | null }> {
  if (!expected) return { status: 'no sha256', verified: null };
  const key = await hashCacheKey(file);
  const known = key ? await cache.get(key) : undefined;
  if (known === undefined) return { status: 'unverified', verified: null };
  return known === expected.toLowerCase() ? { status: 'verified', verified: true } : { status: 'MODEL_HASH_MISMATCH', verified: false };
}

async function list(registry: ModelRegistry, cache: HashCache, json: boolean, io: ModelsCliIo): Promise<number> {
  const reports = await registry.report([], { hash: false });
  const statuses = await Promise.all(
    reports.map((r) => (r.ok ? verifiedStatus(r.file, registry.get(r.name)?.entry.sha256, cache) : { status: r.code ?? 'error', verified: false })),
  );
  if (json) {
    io.stdout(`${JSON.stringify(reports.map((r, i) => ({ ...r, verified: statuses[i]!.verified, entry: registry.get(r.name)?.entry })), null, 2)}\n`);
    return 0;
  }
  if (reports.length === 0) {
    io.stdout('no models configured (add one with: clawbox models pull URI, or clawbox models add FILE)\n');
    return 0;
  }
  const rows = [['NAME', 'ROLE', 'ARCH', 'PARAMS', 'QUANT', 'CTX', 'SIZE', 'FILE', 'STATUS']];
  for (const [i, r] of reports.entries()) {
    const entry = registry.get(r.name)!.entry;
    const s = r.summary;
    rows.push([
      r.name,
      entry.role,
      s?.architecture ?? '-',
      s ? formatParams(s.parameters) : '-',
      s?.quantization ?? '-',
      String(entry.context_size),
      s ? formatBytes(s.file_size) : '-',
      r.file,
      statuses[i]!.status,
    ]);
  }
  io.stdout(table(rows));
  for (const problem of registry.problems()) io.stderr(`warning: ${problem}\n`);
  return 0;
}

async function verify(registry: ModelRegistry, cache: HashCache, names: string[], json: boolean, io: ModelsCliIo): Promise<number> {
  // Hash again whatever the cache says (this is the explicit check), and record the result for the runtime.
  const reports = await registry.report(names, { hash: 'if-expected', hashCache: { get: () => undefined, set: (key, sha256) => cache.set(key, sha256) } });
  if (json) io.stdout(`${JSON.stringify(reports, null, 2)}\n`);
  else if (reports.length === 0) io.stdout('no models configured\n');
  else {
    for (const r of reports) {
      const entry = registry.get(r.name)!.entry;
      if (r.ok) {
        const hash = entry.sha256 ? 'sha256 ok' : 'no sha256 in config (add one to detect corruption)';
        io.stdout(`ok    ${r.name}: ${r.summary!.architecture} ${r.summary!.quantization}, ${hash}\n`);
      } else {
        io.stdout(`FAIL  ${r.name}: ${r.code}: ${r.message}\n`);
      }
    }
  }
  return reports.every((r) => r.ok) ? 0 : 1;
}

interface ConfigTarget {
  configFile: string;
  stateDir: string;
}

async function add(
  modelFile: string,
  options: ConfigTarget & { name?: string; role: ModelConfigEntry['role'] },
  io: ModelsCliIo,
): Promise<number> {
  let lastPercent = -1;
  const { entry, summary } = await describeModelFile(modelFile, {
    ...(options.name ? { name: options.name } : {}),
    role: options.role,
    onHashProgress: (bytes, total) => {
      const percent = Math.floor((bytes / Math.max(1, total)) * 100);
      if (total > 64 << 20 && percent >= lastPercent + 10) {
        lastPercent = percent;
        io.stderr(`hashing ${path.basename(modelFile)}: ${percent}%\n`);
      }
    },
  });
  const described = `${summary.architecture} ${formatParams(summary.parameters)} ${summary.quantization}, context ${summary.context_length ?? '?'}, sha256 ${entry.sha256}`;
  await appendModelEntry(options.configFile, configEntry(entry));
  await recordHash(options.stateDir, entry.path, entry.sha256!);
  io.stdout(`added ${entry.name} to ${options.configFile}: ${described}\n`);
  return 0;
}

/** The keys written to the config file (the rest keep their defaults, so later default changes apply). */
function configEntry(entry: ModelConfigEntry): Record<string, unknown> {
  return {
    name: entry.name,
    path: entry.path,
    sha256: entry.sha256,
    ...(entry.source ? { source: entry.source } : {}),
    role: entry.role,
    context_size: entry.context_size,
  };
}

async function recordHash(stateDir: string, file: string, sha256: string): Promise<void> {
  const key = await hashCacheKey(file);
  if (key) await stateHashCache(stateDir).set(key, sha256);
}

async function pull(
  uri: string,
  options: ConfigTarget & {
    role: ModelConfigEntry['role'];
    name?: string;
    sha256?: string;
    dir: string;
    keepFree: number;
    json: boolean;
    huggingFaceEndpoint?: string;
  },
  io: ModelsCliIo,
): Promise<number> {
  const plannedName = options.name ?? modelNameFromUri(uri);
  checkCanAppend(options.configFile, plannedName, options.role);
  const record = new DownloadProgressWriter(options.stateDir, uri, plannedName);
  const report = progressReporter(io, options.json);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  // `on`, not `once`: signal-exit (loaded by a dependency) re-raises SIGINT when it finds no other listener,
  // and a `once` listener is already gone when it looks.
  if (io.signal) io.signal.addEventListener('abort', onSigint, { once: true });
  else process.on('SIGINT', onSigint);
  try {
    const result = await pullModel({
      uri,
      dir: options.dir,
      keepFreeBytes: options.keepFree,
      signal: controller.signal,
      ...(options.sha256 !== undefined ? { sha256: options.sha256 } : {}),
      ...(options.huggingFaceEndpoint ? { huggingFaceEndpoint: options.huggingFaceEndpoint } : {}),
      onProgress: (progress) => {
        record.update(progress);
        report(progress);
      },
    });
    const name = plannedName;
    const contextSize = Math.max(128, Math.min(result.summary.context_length ?? 2048, 4096));
    const entry = withModelDefaults({ name, path: result.file, sha256: result.sha256, source: displayUri(uri), role: options.role, context_size: contextSize });
    await appendModelEntry(options.configFile, configEntry(entry));
    await recordHash(options.stateDir, result.file, result.sha256);
    const s = result.summary;
    const described = `${s.architecture} ${formatParams(s.parameters)} ${s.quantization}, ${formatBytes(result.size)}, sha256 ${result.sha256}`;
    if (options.json) io.stdout(`${JSON.stringify({ event: 'model.pulled', name, file: result.file, sha256: result.sha256, size: result.size, config: options.configFile, entry: configEntry(entry) })}\n`);
    else io.stdout(`pulled ${name} into ${result.file} and added it to ${options.configFile}: ${described}\n`);
    return 0;
  } catch (error) {
    if (controller.signal.aborted) {
      io.stderr(`interrupted: the partial download is kept in ${options.dir}; run the same command again to resume\n`);
      return INTERRUPTED;
    }
    throw error;
  } finally {
    if (io.signal) io.signal.removeEventListener('abort', onSigint);
    else process.removeListener('SIGINT', onSigint);
    await record.flush();
  }
}

/**
 * Progress on stderr: on a terminal one bar redrawn in place; otherwise one line per phase and per 10 %,
 * plain or as JSON lines (--json), so a log or a script can follow it. (ipull's own bar is not used: it
 * ends the process with status 0 on Ctrl-C, before the partial file is put aside for resuming.)
 */
function progressReporter(io: ModelsCliIo, json: boolean): (progress: PullProgress) => void {
  let lastPhase = '';
  let lastTenth = -1;
  let lastDraw = 0;
  let lastLine = '';
  const bar = io.isTTY === true && !json;
  return (progress) => {
    const fraction = progress.total_bytes > 0 ? Math.min(1, progress.downloaded_bytes / progress.total_bytes) : 0;
    const tenth = Math.floor(fraction * 10);
    const what = progress.file ?? progress.uri;
    if (bar && progress.phase === 'downloading') {
      const now = Date.now();
      if (now - lastDraw < 100 && fraction < 1) return;
      lastDraw = now;
      lastPhase = progress.phase;
      const filled = Math.round(fraction * 30);
      const speed = progress.speed_bps > 0 ? ` ${formatBytes(progress.speed_bps)}/s` : '';
      const eta = progress.eta_s !== null && progress.speed_bps > 0 && fraction < 1 ? ` ${progress.eta_s}s left` : '';
      const line = `${what} [${'#'.repeat(filled)}${'-'.repeat(30 - filled)}] ${Math.floor(fraction * 100)}% of ${formatBytes(progress.total_bytes)}${speed}${eta}`;
      if (line !== lastLine) io.stderr(`\r${line}\x1b[K`);
      lastLine = line;
      return;
    }
    const phaseChanged = progress.phase !== lastPhase;
    if (!phaseChanged && (progress.phase !== 'downloading' || tenth <= lastTenth)) return;
    if (bar && lastPhase === 'downloading') io.stderr('\n');
    lastPhase = progress.phase;
    if (progress.phase === 'downloading') lastTenth = tenth;
    if (json) {
      io.stderr(`${JSON.stringify({ time: new Date().toISOString(), event: 'model.download', ...progress })}\n`);
    } else if (progress.phase === 'downloading' && progress.total_bytes > 0) {
      io.stderr(`downloading ${what}: ${tenth * 10}% of ${formatBytes(progress.total_bytes)}\n`);
    } else if (progress.phase !== 'failed') {
      io.stderr(`${progress.phase} ${what}\n`);
    }
  };
}

/**
 * `clawbox models list | verify [NAME...] | add FILE` — app/cli.ts forwards the arguments after
 * `models` here. Exit codes: 0 ok, 1 a model failed verification, 64 bad arguments (thrown as USAGE).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { type ConfigLoader, ioReason, readConfigDocument } from '../runtime/config/load.js';
import { ClawboxError } from '../runtime/errors.js';
import { writeFileAtomic } from '../runtime/store/atomic-file.js';
import { type ModelConfigEntry, modelEntrySchema } from './config-schema.js';
import { ModelRegistry, describeModelFile } from './registry.js';
import { validatorFor } from '../runtime/operations/validator.js';

export interface ModelsCliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

const USAGE = `Usage:
  clawbox models list   [--config FILE] [--json]             models in the config, with header facts
  clawbox models verify [NAME...] [--config FILE] [--json]    check files: GGUF header, completeness, sha256
  clawbox models add FILE [--name NAME] [--role main|small] [--config FILE]
                                                             hash FILE, read its header, add it to the config
                                                             (prints the entry when there is no config file)`;

const validateEntry = validatorFor(modelEntrySchema, 'check');

const defaultIo: ModelsCliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
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

function openRegistry(loadConfig: ConfigLoader['loadConfig'], file: string | undefined, env: NodeJS.ProcessEnv): ModelRegistry {
  const { config, source } = loadConfig({ ...(file ? { file } : {}), env });
  return new ModelRegistry(config.models, source ? path.dirname(path.resolve(source)) : process.cwd());
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
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    io.stdout(`${USAGE}\n`);
    return command === undefined && !values.help ? 64 : 0;
  }
  const file = configFile(values.config, io.env);
  switch (command) {
    case 'list':
      if (rest.length > 0) throw new ClawboxError('USAGE', `models list takes no names (got "${rest.join(' ')}"; try models verify NAME)`);
      return list(openRegistry(loadConfig, file, io.env), values.json === true, io);
    case 'verify':
      return verify(openRegistry(loadConfig, file, io.env), rest, values.json === true, io);
    case 'add': {
      const [modelFile, ...extra] = rest;
      if (!modelFile || extra.length > 0) throw new ClawboxError('USAGE', 'models add needs exactly one FILE');
      const role = values.role ?? 'main';
      if (role !== 'main' && role !== 'small') throw new ClawboxError('USAGE', `--role must be main or small (got "${role}")`);
      return add(modelFile, { ...(values.name ? { name: values.name } : {}), role, configFile: file }, io);
    }
    default:
      throw new ClawboxError('USAGE', `unknown models command "${command}" (list, verify, add)`);
  }
}

async function list(registry: ModelRegistry, json: boolean, io: ModelsCliIo): Promise<number> {
  const reports = await registry.report([], { hash: false });
  if (json) {
    io.stdout(`${JSON.stringify(reports.map((r) => ({ ...r, entry: registry.get(r.name)?.entry })), null, 2)}\n`);
    return 0;
  }
  if (reports.length === 0) {
    io.stdout('no models configured (add one with: clawbox models add FILE)\n');
    return 0;
  }
  const rows = [['NAME', 'ROLE', 'ARCH', 'PARAMS', 'QUANT', 'CTX', 'SIZE', 'FILE', 'STATUS']];
  for (const r of reports) {
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
      r.ok ? 'ok' : (r.code ?? 'error'),
    ]);
  }
  io.stdout(table(rows));
  for (const problem of registry.problems()) io.stderr(`warning: ${problem}\n`);
  return 0;
}

async function verify(registry: ModelRegistry, names: string[], json: boolean, io: ModelsCliIo): Promise<number> {
  const reports = await registry.report(names, { hash: 'if-expected' });
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

async function add(
  modelFile: string,
  options: { name?: string; role: ModelConfigEntry['role']; configFile: string | undefined },
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
  const minimal: Record<string, unknown> = { name: entry.name, path: entry.path, sha256: entry.sha256, role: entry.role, context_size: entry.context_size };
  if (!options.configFile) {
    io.stderr(`${entry.name}: ${described}\nno config file (--config or $CLAWBOX_CONFIG); add this under models: yourself:\n`);
    io.stdout(YAML.stringify({ models: [minimal] }));
    return 0;
  }
  await appendToConfig(options.configFile, minimal);
  io.stdout(`added ${entry.name} to ${options.configFile}: ${described}\n`);
  return 0;
}

/** Appends a model entry to the YAML config, keeping comments and layout, written atomically. */
async function appendToConfig(file: string, entry: Record<string, unknown>): Promise<void> {
  if (!validateEntry(entry)) {
    throw new ClawboxError('USAGE', `the entry would not be valid config: ${(validateEntry.errors ?? []).map((e) => `${e.instancePath || 'entry'} ${e.message}`).join('; ')}`);
  }
  // The same limits as loading the config: this file may be the one `clawbox start` reads.
  const doc = existsSync(file) ? readConfigDocument(file) : new YAML.Document();
  if (doc.contents === null) doc.contents = doc.createNode({}) as unknown as typeof doc.contents;
  if (!YAML.isMap(doc.contents)) throw new ClawboxError('CONFIG_UNREADABLE', `config file ${file} must hold a mapping of keys at the top level`, { file });
  const models = doc.get('models');
  const existing = YAML.isSeq(models) ? (models.toJSON() as Array<{ name?: string; role?: string }>) : [];
  if (existing.some((m) => m?.name === entry.name)) {
    throw new ClawboxError('USAGE', `a model named "${entry.name}" is already in ${file} (use --name)`);
  }
  if (entry.role === 'main' && existing.some((m) => (m?.role ?? 'main') === 'main')) {
    throw new ClawboxError('USAGE', `${file} already has a main model; add this one with --role small or remove the other`);
  }
  if (YAML.isSeq(models)) models.add(doc.createNode(entry));
  else doc.set('models', doc.createNode([entry]));
  try {
    await writeFileAtomic(file, doc.toString());
  } catch (error) {
    throw new ClawboxError('FILE_UNWRITABLE', `cannot write config file ${file}: ${ioReason(error)}`, { file }, { cause: error });
  }
}

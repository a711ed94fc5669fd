/**
 * Loads the config: YAML file (optional in local mode) -> environment overrides -> CLI mode -> one ajv
 * validation with defaults -> checks that span keys -> deep freeze. Every problem is collected so that
 * `clawbox config check` can print them all at once.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';
import type { Document } from 'yaml';
import { ClawboxError, toClawboxError } from '../errors.js';
import { applyOverride, collectEnvOverrides } from './env.js';
import { type ConfigIssue, formatIssues, issuesFromAjv } from './issues.js';
import type { Config, ConfigSchema } from './schema.js';
import { parseYamlSafely, YAML_LIMITS, YamlRejected } from './yaml.js';
import { validatorForOneUse } from '../operations/validator.js';

export const APPLIANCE_CONFIG_PATH = '/etc/clawbox/config.yaml';

export interface LoadConfigOptions {
  /** Explicit file; otherwise $CLAWBOX_CONFIG, then the appliance default in appliance mode. */
  file?: string;
  /** Mode from the command line; wins over the file and environment. */
  mode?: 'local' | 'appliance';
  env?: NodeJS.ProcessEnv;
}

export interface LoadedConfig {
  config: Config;
  /** The file it came from, or null for embedded defaults. */
  source: string | null;
}

/** A rule that spans several keys of one section, supplied by the folder that owns the section. */
export type ConfigCrossCheck = (config: Config) => ConfigIssue[];

export interface ConfigLoader {
  /** The composed JSON Schema (`clawbox config schema` prints it). */
  readonly schema: ConfigSchema;
  /** Validates and returns every problem instead of throwing; used by `config check`. */
  checkConfig(options?: LoadConfigOptions): { loaded?: LoadedConfig; issues: ConfigIssue[] };
  /** Loads or throws CONFIG_INVALID / CONFIG_UNREADABLE with every problem in the message. */
  loadConfig(options?: LoadConfigOptions): LoadedConfig;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * The config file local mode reads when none is named: `<state dir>/config.yaml`, written by
 * `clawbox models add|pull` so that the next `npm start` uses the model. The state dir here comes from
 * the environment only ($CLAWBOX_STATE_DIR, $STATE_DIRECTORY, else ./.clawbox), as no file is read yet.
 */
export function localConfigFile(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  const stateDir = env.CLAWBOX_STATE_DIR
    ? path.resolve(cwd, env.CLAWBOX_STATE_DIR)
    : env.STATE_DIRECTORY?.split(':')[0] || path.resolve(cwd, '.clawbox');
  return path.join(stateDir, 'config.yaml');
}

/** The file a load with these options reads, or null for embedded defaults (local mode without a file). */
export function configFileFor(options: LoadConfigOptions, env: NodeJS.ProcessEnv = options.env ?? process.env): string | null {
  if (options.file) return options.file;
  if (env.CLAWBOX_CONFIG) return env.CLAWBOX_CONFIG;
  const mode = options.mode ?? env.CLAWBOX_MODE;
  if (mode === 'appliance') {
    // Under systemd, ConfigurationDirectory=clawbox sets $CONFIGURATION_DIRECTORY.
    const dir = env.CONFIGURATION_DIRECTORY?.split(':')[0];
    return dir ? path.join(dir, 'config.yaml') : APPLIANCE_CONFIG_PATH;
  }
  const local = localConfigFile(env);
  return existsSync(local) ? local : null;
}

const IO_REASON: Record<string, string> = {
  ENOENT: 'file not found',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a parent is not a directory',
  ELOOP: 'too many symbolic links',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EEXIST: 'already exists',
};

/** A file-system error in words (`permission denied`), for messages about a path the user named. */
/** CONFIG_UNREADABLE for a config file that could not be read (`error`: what the read threw); `detail` follows the reason. */
export function configUnreadable(file: string, error: unknown, detail = ''): ClawboxError {
  return new ClawboxError('CONFIG_UNREADABLE', `cannot read config file ${file}: ${ioReason(error)}${detail}`, { file });
}

export function ioReason(error: unknown): string {
  const code = String((error as NodeJS.ErrnoException | undefined)?.code);
  return IO_REASON[code] ?? (code === 'undefined' ? String((error as Error)?.message ?? error) : code);
}

const READ_CHUNK_BYTES = 16 * 1024;

/** Reads at most YAML_LIMITS.maxBytes: the size check must not depend on stat (pipes, /dev/zero, /proc). */
function readBounded(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    if (fstatSync(fd).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    // In chunks the size of a config, not one buffer of the limit: glibc serves a megabyte from mmap and,
    // once it is freed, raises its mmap threshold to that size, so the process's later short-lived buffers
    // come from the heap and leave it fragmented for good (an idle box held a megabyte more).
    const chunks: Buffer[] = [];
    let chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    let used = 0;
    let length = 0;
    while (length <= YAML_LIMITS.maxBytes) {
      if (used === chunk.length) {
        chunks.push(chunk);
        chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
        used = 0;
      }
      const n = readSync(fd, chunk, used, chunk.length - used, null);
      if (n === 0) break;
      used += n;
      length += n;
    }
    chunks.push(chunk.subarray(0, used));
    if (length > YAML_LIMITS.maxBytes) {
      throw new ClawboxError(
        'CONFIG_UNREADABLE',
        `config file ${file} is refused: larger than ${YAML_LIMITS.maxBytes} bytes`,
        { file },
      );
    }
    return Buffer.concat(chunks, length).toString('utf8');
  } catch (error) {
    if (error instanceof ClawboxError) throw error;
    throw configUnreadable(file, error);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Turns YamlRejected into CONFIG_UNREADABLE: one line for a broken limit, the parser's list otherwise. */
export function rejectedYaml(error: unknown, file: string): ClawboxError {
  if (!(error instanceof YamlRejected)) return toClawboxError(error);
  if (error.kind === 'limit') {
    return new ClawboxError('CONFIG_UNREADABLE', `config file ${file} is refused: ${error.problems[0]}`, { file });
  }
  const lines = error.problems.map((p) => `  ${p}`).join('\n');
  return new ClawboxError('CONFIG_UNREADABLE', `config file ${file} is not valid YAML:\n${lines}`, { file });
}

/** The config file as an editable YAML document, within the same limits as loading it. */
export function readConfigDocument(file: string): Document.Parsed {
  const text = readBounded(file);
  try {
    return parseYamlSafely(text).doc;
  } catch (error) {
    throw rejectedYaml(error, file);
  }
}

function readYaml(file: string): Record<string, unknown> {
  const text = readBounded(file);
  let data: unknown;
  try {
    data = parseYamlSafely(text).value;
  } catch (error) {
    throw rejectedYaml(error, file);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ClawboxError('CONFIG_UNREADABLE', `config file ${file} must hold a mapping of keys at the top level`, {
      file,
    });
  }
  return data as Record<string, unknown>;
}

/** Issues carry text from the file and the environment: keep each to one short, printable line. */
function printable(text: string, max = 500): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this removes
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return clean.length > max ? `${clean.slice(0, max)}… (${clean.length - max} more characters)` : clean;
}

const clean = (issue: ConfigIssue): ConfigIssue => ({ path: printable(issue.path, 200), message: printable(issue.message) });

/** Shown in the CONFIG_INVALID message; `clawbox config check` prints them all. */
const MAX_ISSUES_IN_MESSAGE = 20;

/** Rules that span several keys, which JSON Schema would state only clumsily. */
function coreCrossChecks(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const { tls } = config.broker;
  if (tls.enabled && (!tls.cert || !tls.key)) {
    issues.push({ path: 'broker.tls', message: 'enabled needs both cert and key file paths' });
  }
  // An appliance without http.token or http.password_hash starts in first-run setup (runtime/http/first-run.ts).
  if (config.http.tls?.enabled !== undefined && !config.http.tls.cert !== !config.http.tls.key) {
    issues.push({ path: 'http.tls', message: 'needs both cert and key file paths, or neither (a certificate is then generated)' });
  }
  if (config.mode === 'appliance' && config.broker.anonymous === 'always') {
    issues.push({ path: 'broker.anonymous', message: '"always" is refused in appliance mode; add users instead' });
  }
  const names = new Set<string>();
  for (const [i, user] of config.broker.users.entries()) {
    if (names.has(user.username)) issues.push({ path: `broker.users[${i}].username`, message: 'duplicate username' });
    names.add(user.username);
  }
  return issues;
}

/** A loader for one composed schema; the feature sections' own cross-checks run after the core's. */
export function createConfigLoader(schema: ConfigSchema, crossChecks: readonly ConfigCrossCheck[] = []): ConfigLoader {
  // Made on each use: commands such as `clawbox passwd` never validate, and a running box validates only
  // when its config changes, so it need not keep the (large) config validator in memory.
  const validator = (): ValidateFunction => validatorForOneUse(schema, 'config');

  const checkConfig = (options: LoadConfigOptions = {}): { loaded?: LoadedConfig; issues: ConfigIssue[] } => {
    const env = options.env ?? process.env;
    const source = configFileFor(options, env);
    const raw = source ? readYaml(source) : {};
    const { overrides, issues } = collectEnvOverrides(env, schema);
    for (const override of overrides) applyOverride(raw, override);
    const mode = options.mode ?? (env.CLAWBOX_MODE as LoadConfigOptions['mode']);
    if (mode) raw.mode = mode;

    const validate = validator();
    if (!validate(raw)) {
      issues.push(...issuesFromAjv(validate.errors ?? []));
      return { issues: issues.map(clean) };
    }
    const config = raw as unknown as Config;
    issues.push(...coreCrossChecks(config));
    for (const check of crossChecks) issues.push(...check(config));
    if (issues.length > 0) return { issues: issues.map(clean) };
    return { loaded: { config: deepFreeze(config), source }, issues };
  };

  const loadConfig = (options: LoadConfigOptions = {}): LoadedConfig => {
    const { loaded, issues } = checkConfig(options);
    if (!loaded) {
      const more = issues.length - MAX_ISSUES_IN_MESSAGE;
      const listed = formatIssues(issues.slice(0, MAX_ISSUES_IN_MESSAGE));
      const tail = more > 0 ? `\n  … and ${more} more (clawbox config check lists them all)` : '';
      throw new ClawboxError('CONFIG_INVALID', `configuration is invalid:\n${listed}${tail}`, { issues });
    }
    return loaded;
  };

  return { schema, checkConfig, loadConfig };
}

/** Where state lives: config, then systemd's $STATE_DIRECTORY, then the mode's default. */
export function resolveStateDir(config: Config, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  if (config.state_dir) return path.resolve(cwd, config.state_dir);
  const fromSystemd = env.STATE_DIRECTORY?.split(':')[0];
  if (fromSystemd) return fromSystemd;
  return config.mode === 'local' ? path.resolve(cwd, '.clawbox') : '/var/lib/clawbox';
}

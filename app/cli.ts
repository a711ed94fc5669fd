/**
 * The `clawbox` command. Exit codes (also in README and --help):
 *   0 ok · 1 a check found problems / unexpected failure · 64 bad arguments · 69 a port is in use or a
 *   listener failed · 73 state directory or an output file not writable · 78 config invalid or unreadable ·
 *   130 Ctrl-C at a prompt.
 */
import module from 'node:module';
import type { ReadStream } from 'node:tty';
import { parseArgs } from 'node:util';
import { hashPassword } from '../runtime/auth/password.js';
import { formatIssues } from '../runtime/config/issues.js';
import { configFileFor, ioReason, resolveStateDir } from '../runtime/config/load.js';
import { holdCodeCacheWrites, writeHeldCodeCache } from '../runtime/operations/validator-code-cache.js';
import { checkConfig, configSchema, loadConfig } from './config.js';
import { parseConfigWait, waitForConfigFile } from './config-wait.js';
import { ClawboxError, ERROR_CATALOG, toClawboxError } from '../runtime/errors.js';
import { HiddenInput, InputCancelled } from './hidden-input.js';
import { createLogging } from '../runtime/logging.js';
import { SystemdNotifier } from '../runtime/systemd-notify.js';
import { VERSION } from '../runtime/version.js';
import { brainConfigOf } from '../brain/config-schema.js';

const HELP = `clawbox ${VERSION} — local AI appliance runtime

Usage:
  clawbox start [--config FILE] [--mode local|appliance]   run the appliance runtime
  clawbox start --mode brain [--config FILE]               run as the remote brain of hybrid edges (brain.role)
  clawbox start ... --wait-for-config SECONDS              no config file yet: load meanwhile and wait for it, at
                                                           most SECONDS (the OS image's first boot writes it)
  clawbox brain certs | status                             the brain link's CA and key pairs (see clawbox brain --help)
  clawbox config check [FILE] [--mode local|appliance]     validate a config file, print every problem
  clawbox config schema                                    print the config JSON Schema (for editors)
  clawbox models list | verify | add FILE | pull URI       local GGUF models (see clawbox models --help)
  clawbox plugins list | info NAME | new NAME --lang node|python
  clawbox channels pairings | approve CODE                 senders waiting for pairing; approve one
  clawbox audit verify | tail | query [--state-dir DIR]    check or read the audit log (see clawbox audit --help)
  clawbox data inventory | export | erase | opt-out --subject S   people's data rights (see clawbox data --help)
  clawbox kb add FILE|DIR | list | search QUERY | remove FILE|DIR   the knowledge base (see clawbox kb --help)
  clawbox update FILE|URL | status | health               A/B system update with rollback (see clawbox update --help)
  clawbox passwd [PASSWORD]                                print a password hash for broker.users / http
                                                           (asks twice without echo on a terminal, else
                                                           reads the password from stdin)
  clawbox --version | --help

Config: --config FILE, else $CLAWBOX_CONFIG, else /etc/clawbox/config.yaml in appliance mode; local mode
needs no file and reads <state dir>/config.yaml when it exists (models add/pull write it).
Any key can be overridden by CLAWBOX_<SECTION>_<KEY> (e.g. CLAWBOX_BROKER_PORT=1884).

Exit codes:
  0   success
  1   config check found problems, or an unexpected failure
  64  bad command-line arguments
  69  a port is in use, a listener failed to start, or a model download failed
  73  the state directory, or a file the command was asked to write, cannot be written (or no space)
  78  the configuration is invalid or unreadable
  130 interrupted with Ctrl-C at a prompt
`;

type Mode = 'local' | 'appliance';

function parseMode(value: string | undefined): Mode | undefined {
  if (value === undefined) return undefined;
  if (value === 'local' || value === 'appliance') return value;
  throw new ClawboxError('USAGE', `--mode must be local or appliance (got "${value}")`);
}

/** scrypt takes any length; a bound keeps `clawbox passwd < /dev/zero` from reading forever. */
const MAX_PASSWORD = 1024;
/** How long after ready `clawbox start` writes Node's compile cache (see runStart). */
export const COMPILE_CACHE_FLUSH_DELAY_MS = 2000;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size > MAX_PASSWORD + 2) break;
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** What a shell reports for a command stopped by Ctrl-C (128 + SIGINT). */
const INTERRUPTED = 130;

/** Asks twice without echo; undefined after Ctrl-C. Ctrl-D on an empty line gives up. */
async function promptPassword(input: ReadStream): Promise<string | undefined> {
  const hidden = new HiddenInput(input, process.stderr, MAX_PASSWORD);
  try {
    const password = await hidden.read('Password: ');
    checkPassword(password);
    if ((await hidden.read('Repeat password: ')) !== password) throw new ClawboxError('USAGE', 'the two passwords do not match');
    return password;
  } catch (error) {
    if (!(error instanceof InputCancelled)) throw error;
    if (error.how === 'end') throw new ClawboxError('USAGE', 'no password entered');
    return undefined;
  } finally {
    hidden.close();
  }
}

function checkPassword(password: string): void {
  if (password.length < 8) throw new ClawboxError('USAGE', 'password must be at least 8 characters');
  if (password.length > MAX_PASSWORD) throw new ClawboxError('USAGE', `password must be at most ${MAX_PASSWORD} characters`);
}

function noMore(args: readonly (string | undefined)[], command: string): void {
  const extra = args.filter((a) => a !== undefined);
  if (extra.length > 0) throw new ClawboxError('USAGE', `${command}: unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((a) => `"${a}"`).join(' ')}`);
}

async function runStart(file: string | undefined, mode: Mode | undefined, brainMode = false, configWaitSeconds = 0): Promise<number> {
  // The validators' code cache is written once serving, with Node's compile cache (below).
  holdCodeCacheWrites();
  // With --wait-for-config the app's code starts loading first, so that it loads while the wait (if any) goes
  // on: it does not depend on the config.
  let appModule: Promise<typeof import('./app.js')> | undefined;
  if (configWaitSeconds > 0) {
    appModule = import('./app.js');
    // Awaited below; a failed load must not end the process while the wait is still on.
    appModule.catch(() => {});
    await waitForConfigFile(configFileFor({ file, mode }), configWaitSeconds);
  }
  const { config, source } = loadConfig({ file, mode });
  const logging = createLogging({ level: config.log.level, components: config.log.components });
  const log = logging.forComponent('main');
  const notifier = new SystemdNotifier(log);
  // Loaded here, not at the top: `config check` and friends should not pay for the broker and drivers.
  // The brain role (hybrid deployment) runs the models and the brain API only: no broker, no devices.
  const brainRole = brainMode || brainConfigOf(config).role === 'brain';
  const { createApp } = await (appModule ?? import('./app.js'));
  const createBrainApp = brainRole ? (await import('./brain-wiring.js')).createBrainApp : null;
  // Imported before the app exists: it borrows V8's gc once, before any worker thread can be made.
  const { settleMemory } = await import('../runtime/system/settle-memory.js');
  const app = createBrainApp ? createBrainApp({ config, configSource: source, logging }) : createApp({ config, configSource: source, logging });

  let exitCode = 0;
  let shuttingDown: Promise<void> | undefined;
  const shutdown = (signal: string) => {
    shuttingDown ??= (async () => {
      log.info({ signal }, 'shutting down');
      notifier.stopping();
      // Hard stop: whatever hangs, the process is gone within 5 s of the signal.
      setTimeout(() => {
        log.error('shutdown took longer than 5 s; exiting');
        process.exit(1);
      }, 5000).unref();
      await app.stop();
      notifier.close();
      log.info('stopped');
    })();
    return shuttingDown;
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('uncaughtException', (error) => {
    log.fatal({ err: error }, 'uncaught exception; stopping');
    exitCode = 1;
    void shutdown('uncaughtException').then(() => process.exit(1));
  });

  try {
    await app.start();
  } catch (error) {
    notifier.close();
    throw error;
  }
  notifier.ready();
  // What this start cost, for the boot report and the benchmarks: CPU and time since the process began.
  const startCost = startCostNow();
  settleMemory(logging.forComponent('system'));
  if (!('broker' in app)) {
    log.info(
      { version: VERSION, role: 'brain', config: source ?? '(embedded defaults)', stateDir: app.ctx.stateDir, brainPort: app.brain.port, httpPort: app.http.port, ...startCost },
      `clawbox ${VERSION} brain serving: grpcs://${brainConfigOf(config).listen.host}:${app.brain.port} http://${config.http.host}:${app.http.port}`,
    );
  } else log.info(
    {
      version: VERSION,
      mode: config.mode,
      config: source ?? '(embedded defaults)',
      stateDir: app.ctx.stateDir,
      mqttPort: app.broker.port,
      httpPort: app.http.port,
      ...startCost,
    },
    `clawbox ${VERSION} serving: mqtt://${config.broker.host}:${app.broker.port} http://${config.http.host}:${app.http.port}`,
  );
  // Node writes its compile cache (enabled by bin/clawbox.js) at exit; a kill -9 or a power cut would lose
  // it, so what a start compiled is written once serving: a little after ready, since the write is
  // synchronous and would hold up the first requests a new box answers (an exit before then writes it anyway).
  setTimeout(() => {
    module.flushCompileCache?.();
    writeHeldCodeCache();
  }, COMPILE_CACHE_FLUSH_DELAY_MS).unref();
  await new Promise<void>((resolve) => {
    app.ctx.bus.on('lifecycle', ({ state }) => state === 'stopped' && resolve());
  });
  await shuttingDown;
  return exitCode;
}

/** CPU time (user + system) and wall time since this process began, ms. */
function startCostNow(): { startCpuMs: number; startMs: number } {
  const { user, system } = process.cpuUsage();
  return { startCpuMs: Math.round((user + system) / 1000), startMs: Math.round(performance.now()) };
}

function runConfigCheck(file: string | undefined, mode: Mode | undefined): number {
  const { loaded, issues } = checkConfig({ file, mode });
  if (!loaded) {
    process.stderr.write(`config invalid (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${formatIssues(issues)}\n`);
    return 1;
  }
  process.stdout.write(`config ok: ${loaded.source ?? '(embedded defaults)'} (mode ${loaded.config.mode})\n`);
  return 0;
}

const GROUPS = ['plugins', 'channels', 'models', 'audit', 'data', 'brain', 'kb', 'update'];

/**
 * Takes --config and --mode out of `audit`'s arguments (its own parser knows only --state-dir) and notes
 * --state-dir and --help. Everything else is passed on untouched, for that parser to judge.
 */
function takeConfigOptions(args: readonly string[]) {
  const { tokens } = parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: false,
    tokens: true,
    options: {
      config: { type: 'string', short: 'c' },
      mode: { type: 'string' },
      'state-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const drop = new Set<number>();
  const found: { config?: string; mode?: string; stateDir?: boolean; help?: boolean } = {};
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    if (token.name === 'state-dir') found.stateDir = true;
    if (token.name === 'help') found.help = true;
    if (token.name !== 'config' && token.name !== 'mode') continue;
    if (token.value === undefined) throw new ClawboxError('USAGE', `--${token.name} needs a value`);
    found[token.name] = token.value;
    drop.add(token.index);
    if (!token.inlineValue) drop.add(token.index + 1);
  }
  return { ...found, rest: args.filter((_, i) => !drop.has(i)) };
}

async function runAudit(args: readonly string[]): Promise<number> {
  const { runAuditCommand } = await import('../runtime/audit/cli.js');
  const { config: file, mode, stateDir, help, rest } = takeConfigOptions(args);
  const parsedMode = parseMode(mode);
  // With --state-dir or --help the config is not needed, so a broken config does not stand in the way.
  const io = stateDir || help ? {} : { stateDir: resolveStateDir(loadConfig({ ...(file !== undefined ? { file: configPath(file) } : {}), ...(parsedMode ? { mode: parsedMode } : {}) }).config) };
  try {
    return await runAuditCommand(rest, io);
  } catch (error) {
    throw auditReadError(error);
  }
}

/** A state directory that is missing, a file or not readable is named as such, not as an internal error. */
function auditReadError(error: unknown): unknown {
  const { code, path: where } = error as NodeJS.ErrnoException;
  if (error instanceof ClawboxError || typeof code !== 'string') return error;
  const typed = code === 'ENOENT' || code === 'ENOTDIR' ? 'NOT_FOUND' : code === 'EACCES' || code === 'EPERM' ? 'FORBIDDEN' : undefined;
  if (!typed) return error;
  return new ClawboxError(typed, `cannot read the audit log at ${where ?? 'the state directory'}: ${ioReason(error)}`, {}, { cause: error });
}

/** `--config ""` would otherwise fall back to $CLAWBOX_CONFIG or the defaults without a word. */
function configPath(file: string | undefined): string | undefined {
  if (file === '') throw new ClawboxError('USAGE', '--config needs a file path');
  return file;
}

export async function main(argv: string[]): Promise<number> {
  // Command groups with their own options parse their own arguments.
  if (argv[0] === 'plugins') {
    const { runPluginsCommand } = await import('../plugins/cli.js');
    return runPluginsCommand(argv.slice(1), loadConfig);
  }
  if (argv[0] === 'channels') {
    const { runChannelsCommand } = await import('../channels/cli.js');
    return runChannelsCommand(argv.slice(1), loadConfig);
  }
  if (argv[0] === 'models') {
    const { runModelsCommand } = await import('../models/cli.js');
    return runModelsCommand(argv.slice(1), loadConfig);
  }
  if (argv[0] === 'kb') {
    const { runKbCommand } = await import('../knowledge/index.js');
    return runKbCommand(argv.slice(1), loadConfig);
  }
  if (argv[0] === 'data') {
    const { runDataCommand } = await import('../runtime/privacy/cli.js');
    return runDataCommand(argv.slice(1), loadConfig);
  }
  if (argv[0] === 'update') {
    const { runUpdateCommand } = await import('../update/index.js');
    return runUpdateCommand(argv.slice(1), { loadConfig });
  }
  if (argv[0] === 'audit') return runAudit(argv.slice(1));
  if (argv[0] === 'brain') {
    const { runBrainCommand } = await import('../brain/cli.js');
    return runBrainCommand(argv.slice(1), loadConfig);
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      mode: { type: 'string' },
      'wait-for-config': { type: 'string' },
      version: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const [command, sub, arg, ...extra] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  // --mode brain picks the role; the config's own mode (local/appliance) still applies.
  const brainMode = command === 'start' && values.mode === 'brain';
  const mode = parseMode(brainMode ? undefined : values.mode);
  const file = configPath(values.config);
  const configWaitSeconds = parseConfigWait(values['wait-for-config']);
  if (configWaitSeconds > 0 && command !== 'start') throw new ClawboxError('USAGE', '--wait-for-config is an option of clawbox start');
  switch (command) {
    case 'start':
      noMore([sub, arg, ...extra], 'start');
      return runStart(file, mode, brainMode, configWaitSeconds);
    case 'config':
      if (sub === 'check') {
        noMore(extra, 'config check');
        if (arg !== undefined && file !== undefined) throw new ClawboxError('USAGE', 'config check: give the file once, as FILE or --config');
        return runConfigCheck(configPath(arg) ?? file, mode);
      }
      if (sub === 'schema') {
        noMore([arg, ...extra], 'config schema');
        process.stdout.write(`${JSON.stringify(configSchema, null, 2)}\n`);
        return 0;
      }
      throw new ClawboxError('USAGE', `unknown config command "${sub ?? ''}" (try: check, schema)`);
    case 'passwd': {
      noMore([arg, ...extra], 'passwd');
      const stdin = process.stdin as ReadStream;
      const password = sub ?? (stdin.isTTY ? await promptPassword(stdin) : await readStdin());
      // Raw mode turns Ctrl-C into a key press; end as the interrupted command the user asked for.
      if (password === undefined) return INTERRUPTED;
      checkPassword(password);
      process.stdout.write(`${await hashPassword(password)}\n`);
      return 0;
    }
    default:
      if (GROUPS.includes(command)) {
        throw new ClawboxError('USAGE', `options go after the command group: clawbox ${command} … [--config FILE]`);
      }
      throw new ClawboxError('USAGE', `unknown command "${command}" (see clawbox --help)`);
  }
}

/** Runs main and turns errors into one clear line on stderr; returns the exit status. */
export async function execute(argv: string[]): Promise<number> {
  try {
    return await main(argv);
  } catch (error) {
    const typed = toClawboxError(error);
    process.stderr.write(`clawbox: ${typed.code}: ${typed.message}\n`);
    if (typed.code === 'INTERNAL' && typed.cause instanceof Error && typed.cause.stack) {
      process.stderr.write(`${typed.cause.stack}\n`);
    }
    return ERROR_CATALOG[typed.code].exit;
  }
}

/** The process entry's view: execute, then exit with its status. */
export async function run(argv: string[]): Promise<void> {
  const code = await execute(argv);
  // Exit explicitly: a stopped runtime must not linger on a forgotten timer. Writes to stdout/stderr
  // are synchronous for files and pipes on Linux, so nothing printed is lost.
  process.exit(code);
}

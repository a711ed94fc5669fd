/**
 * The `clawbox` command. Exit codes (also in README and --help):
 *   0 ok · 1 a check found problems / unexpected failure · 64 bad arguments · 69 a port is in use or a
 *   listener failed · 73 state directory not writable · 78 config invalid or unreadable.
 */
import { parseArgs } from 'node:util';
import { hashPassword } from '../runtime/auth/password.js';
import { formatIssues } from '../runtime/config/issues.js';
import { checkConfig, configSchema, loadConfig } from './config.js';
import { ClawboxError, ERROR_CATALOG, toClawboxError } from '../runtime/errors.js';
import { createLogging } from '../runtime/logging.js';
import { SystemdNotifier } from '../runtime/systemd-notify.js';
import { VERSION } from '../runtime/version.js';

const HELP = `clawbox ${VERSION} — local AI appliance runtime

Usage:
  clawbox start [--config FILE] [--mode local|appliance]   run the appliance runtime
  clawbox config check [FILE] [--mode local|appliance]     validate a config file, print every problem
  clawbox config schema                                    print the config JSON Schema (for editors)
  clawbox models list | verify | add FILE                  local GGUF models (see clawbox models --help)
  clawbox plugins list | info NAME | new NAME --lang node|python
  clawbox channels pairings | approve CODE                 senders waiting for pairing; approve one
  clawbox passwd [PASSWORD]                                print a password hash for broker.users / http
                                                           (reads the password from stdin when omitted)
  clawbox --version | --help

Config: --config FILE, else $CLAWBOX_CONFIG, else /etc/clawbox/config.yaml in appliance mode;
local mode needs no file. Any key can be overridden by CLAWBOX_<SECTION>_<KEY> (e.g. CLAWBOX_BROKER_PORT=1884).

Exit codes:
  0   success
  1   config check found problems, or an unexpected failure
  64  bad command-line arguments
  69  a port is in use or a listener failed to start
  73  the state directory cannot be written
  78  the configuration is invalid or unreadable
`;

type Mode = 'local' | 'appliance';

function parseMode(value: string | undefined): Mode | undefined {
  if (value === undefined) return undefined;
  if (value === 'local' || value === 'appliance') return value;
  throw new ClawboxError('USAGE', `--mode must be local or appliance (got "${value}")`);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function runStart(file: string | undefined, mode: Mode | undefined): Promise<number> {
  const { config, source } = loadConfig({ file, mode });
  const logging = createLogging({ level: config.log.level, components: config.log.components });
  const log = logging.forComponent('main');
  const notifier = new SystemdNotifier(log);
  // Loaded here, not at the top: `config check` and friends should not pay for the broker and drivers.
  const { createApp } = await import('./app.js');
  const app = createApp({ config, configSource: source, logging });

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
  log.info(
    {
      version: VERSION,
      mode: config.mode,
      config: source ?? '(embedded defaults)',
      stateDir: app.ctx.stateDir,
      mqttPort: app.broker.port,
      httpPort: app.http.port,
    },
    `clawbox ${VERSION} serving: mqtt://${config.broker.host}:${app.broker.port} http://${config.http.host}:${app.http.port}`,
  );
  await new Promise<void>((resolve) => {
    app.ctx.bus.on('lifecycle', ({ state }) => state === 'stopped' && resolve());
  });
  await shuttingDown;
  return exitCode;
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
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      mode: { type: 'string' },
      version: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const [command, sub, arg] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const mode = parseMode(values.mode);
  switch (command) {
    case 'start':
      return runStart(values.config, mode);
    case 'config':
      if (sub === 'check') return runConfigCheck(arg ?? values.config, mode);
      if (sub === 'schema') {
        process.stdout.write(`${JSON.stringify(configSchema, null, 2)}\n`);
        return 0;
      }
      throw new ClawboxError('USAGE', `unknown config command "${sub ?? ''}" (try: check, schema)`);
    case 'passwd': {
      const password = sub ?? (await readStdin());
      if (password.length < 8) throw new ClawboxError('USAGE', 'password must be at least 8 characters');
      process.stdout.write(`${await hashPassword(password)}\n`);
      return 0;
    }
    default:
      throw new ClawboxError('USAGE', `unknown command "${command}" (see clawbox --help)`);
  }
}

/** Runs main and turns errors into one clear line on stderr and the catalog's exit code. */
export async function run(argv: string[]): Promise<void> {
  let code: number;
  try {
    code = await main(argv);
  } catch (error) {
    const typed = toClawboxError(error);
    process.stderr.write(`clawbox: ${typed.code}: ${typed.message}\n`);
    if (typed.code === 'INTERNAL' && typed.cause instanceof Error && typed.cause.stack) {
      process.stderr.write(`${typed.cause.stack}\n`);
    }
    code = ERROR_CATALOG[typed.code].exit;
  }
  // Exit explicitly: a stopped runtime must not linger on a forgotten timer. Writes to stdout/stderr
  // are synchronous for files and pipes on Linux, so nothing printed is lost.
  process.exit(code);
}

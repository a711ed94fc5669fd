/**
 * `clawbox plugins list | info <name> | new <name> --lang node|python [--dir DIR]`, for app/cli.ts to
 * dispatch to: `return runPluginsCommand(argv.slice(1))`. Reads the same config as `clawbox start`
 * (--config FILE, $CLAWBOX_CONFIG …) and finds plugins exactly as the host does, without starting any.
 */
import { parseArgs } from 'node:util';
import { type ConfigLoader, ioReason } from '../runtime/config/load.js';
import { ClawboxError, ERROR_CATALOG, toClawboxError } from '../runtime/errors.js';
import type { PluginsConfig } from './config-schema.js';
import { type DiscoveryResult, discoverPlugins, pluginSources } from './discovery.js';
import { resolvePluginsConfig } from './host.js';
import { scaffoldPlugin } from './scaffold.js';

export const PLUGINS_HELP = `Usage:
  clawbox plugins list [--config FILE] [--json]          plugins found, refused (with the reason) and skipped
  clawbox plugins info <name> [--config FILE] [--json]   manifest, tools with their schemas, permissions
  clawbox plugins new <name> --lang node|python [--dir DIR]
                                                         scaffold a plugin with an example tool and a test
Plugins load from the built-ins, $PLUGIN_DIR (colon-separated) and plugins.dirs in the config.
`;

export interface PluginsCommandIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** `loadConfig` comes from the composition root, which knows every config section. */
export async function runPluginsCommand(
  args: readonly string[],
  loadConfig: ConfigLoader['loadConfig'],
  io: PluginsCommandIo = {}): Promise<number> {
  const out = io.stdout ?? ((text: string) => void process.stdout.write(text));
  const err = io.stderr ?? ((text: string) => void process.stderr.write(text));
  const env = io.env ?? process.env;
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string' },
        json: { type: 'boolean', default: false },
        lang: { type: 'string' },
        dir: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    const [command, name, ...rest] = positionals;
    if (values.help || command === undefined || command === 'help') {
      out(PLUGINS_HELP);
      return command === undefined && !values.help ? ERROR_CATALOG.USAGE.exit : 0;
    }
    if (rest.length > 0) throw new ClawboxError('USAGE', `unexpected arguments: ${rest.join(' ')}`);
    switch (command) {
      case 'list': {
        if (name !== undefined) throw new ClawboxError('USAGE', `"plugins list" takes no name (got "${name}")`);
        const found = discover(loadConfig, values.config, env);
        if (values.json) out(`${JSON.stringify(listJson(found), null, 2)}\n`);
        else out(listText(found));
        return 0;
      }
      case 'info': {
        if (!name) throw new ClawboxError('USAGE', 'plugins info needs a plugin name');
        const found = discover(loadConfig, values.config, env);
        const plugin = [...found.plugins].find((p) => p.name === name);
        if (!plugin) {
          const problem = found.problems.find((p) => p.name === name || p.path.endsWith(`/${name}`));
          const skipped = found.skipped.find((s) => s.name === name);
          const why = problem ? `refused: ${problem.error.message}` : skipped ? `not loaded: ${skipped.reason}` : 'not found';
          throw new ClawboxError(problem ? 'PLUGIN_INVALID' : 'NOT_FOUND', `plugin ${name}: ${why}`);
        }
        const m = plugin.compiled.manifest;
        if (values.json) {
          out(`${JSON.stringify({ ...m, dir: plugin.dir, origin: plugin.origin, entry_path: plugin.entryPath }, null, 2)}\n`);
          return 0;
        }
        const lines = [
          `${m.name} ${m.version} — ${m.description ?? ''}`,
          `  folder:      ${plugin.dir} (${plugin.origin})`,
          `  runtime:     ${m.runtime}${m.runtime === 'node' ? ` (${m.isolation})` : ''}, entry ${m.entry}`,
          `  permissions: devices ${JSON.stringify(m.permissions.devices)}, publish ${JSON.stringify(m.permissions.topics.publish)}, subscribe ${JSON.stringify(m.permissions.topics.subscribe)}, network ${JSON.stringify(m.permissions.network)}, database ${m.permissions.database}`,
          `  config:      ${JSON.stringify(m.config)}`,
          ...(m.kind === 'channel'
            ? [
                `  channel:     up to ${m.channel?.max_message_chars} characters a message, media ${m.channel?.media ? 'yes' : 'no'}`,
                ...(m.channel?.credentials ?? []).map((c) => `    credential ${c.name}${c.required ? '' : ' (optional)'} — ${c.description}`),
              ]
            : []),
          '  tools:',
          ...m.tools.flatMap((tool) => [
            `    ${tool.name} — ${tool.description}`,
            `      arguments: ${JSON.stringify(tool.arguments)}`,
            ...(tool.result ? [`      result:    ${JSON.stringify(tool.result)}`] : []),
          ]),
        ];
        out(`${lines.join('\n')}\n`);
        return 0;
      }
      case 'new': {
        if (!name) throw new ClawboxError('USAGE', 'plugins new needs a plugin name');
        const lang = values.lang;
        if (lang !== 'node' && lang !== 'python') throw new ClawboxError('USAGE', '--lang must be node or python');
        if (values.dir === '') throw new ClawboxError('USAGE', '--dir needs a folder');
        const parent = values.dir ?? io.cwd ?? process.cwd();
        let scaffolded: ReturnType<typeof scaffoldPlugin>;
        try {
          scaffolded = scaffoldPlugin(name, lang, parent);
        } catch (error) {
          if (error instanceof ClawboxError) throw error;
          throw new ClawboxError('FILE_UNWRITABLE', `cannot create plugin ${name} in ${parent}: ${ioReason(error)}`, {}, { cause: error });
        }
        const { dir, files } = scaffolded;
        const test = lang === 'node' ? 'npm test' : 'python3 -m unittest -v';
        out(
          `created ${dir}: ${files.join(', ')}\n` +
            `test it:  cd ${dir} && ${test}\n` +
            `load it:  add ${values.dir ? dir.replace(/\/[^/]+$/, '') : 'its parent folder'} to plugins.dirs (or $PLUGIN_DIR), then: clawbox plugins info ${name}\n`,
        );
        return 0;
      }
      default:
        throw new ClawboxError('USAGE', `unknown plugins command "${command}"\n${PLUGINS_HELP}`);
    }
  } catch (error) {
    const e = toClawboxError(error);
    err(`clawbox plugins: ${e.code}: ${e.message}\n`);
    return e.spec.exit;
  }
}

function discover(loadConfig: ConfigLoader['loadConfig'], file: string | undefined, env: NodeJS.ProcessEnv): DiscoveryResult {
  if (file === '') throw new ClawboxError('USAGE', '--config needs a file path');
  const { config } = loadConfig({ ...(file ? { file } : {}), env });
  const plugins: PluginsConfig = resolvePluginsConfig((config as unknown as { plugins?: unknown }).plugins);
  return discoverPlugins(pluginSources(plugins, env), { allow: plugins.allow, deny: plugins.deny });
}

function listJson(found: DiscoveryResult) {
  return {
    plugins: found.plugins.map((p) => ({
      name: p.name,
      version: p.compiled.manifest.version,
      runtime: p.compiled.manifest.runtime,
      origin: p.origin,
      dir: p.dir,
      kind: p.compiled.manifest.kind,
      tools: [...p.compiled.tools.keys()],
    })),
    refused: found.problems.map((p) => ({ path: p.path, name: p.name ?? null, code: p.error.code, message: p.error.message })),
    skipped: found.skipped,
  };
}

function listText(found: DiscoveryResult): string {
  const rows = found.plugins.map((p) => [
    p.name,
    p.compiled.manifest.version,
    p.compiled.manifest.runtime,
    p.origin,
    p.compiled.manifest.kind === 'channel' ? `(a chat channel, ${p.compiled.manifest.channel?.max_message_chars} characters a message)` : [...p.compiled.tools.keys()].join(', '),
  ]);
  const header = ['NAME', 'VERSION', 'RUNTIME', 'FROM', 'TOOLS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const out = [line(header), ...rows.map(line)];
  for (const s of found.skipped) out.push(`skipped ${s.name}: ${s.reason}`);
  for (const p of found.problems) out.push(`refused ${p.path}: ${p.error.message}`);
  return `${out.join('\n')}\n`;
}

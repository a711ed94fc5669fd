/**
 * The plugin host: finds plugins (built-in, $PLUGIN_DIR, plugins.dirs), checks their manifests and config,
 * runs each isolated under a supervisor, and offers their tools — to the agent through `call()`/`tools()`,
 * and to every client as the plugin.call operation (operations.ts; on MQTT through mqtt-bridge.ts).
 * Arguments are checked against the manifest schema before a call and results after it. A plugin reaches
 * devices and MQTT only through requests that this host checks against its manifest permissions and the
 * caller's.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Counter } from '../runtime/metrics.js';
import type { Component, RuntimeContext } from '../runtime/context.js';
import { ClawboxError, toClawboxError } from '../runtime/errors.js';
import type { Messaging } from '../runtime/messaging.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';
import type { MqttAdapter } from '../runtime/operations/mqtt-adapter.js';
import { validatorForOneUse } from '../runtime/operations/validator.js';
import { PluginChannelHandle } from './channel-handle.js';
import { type PluginsConfig, pluginsConfigSchema } from './config-schema.js';
import { type DiscoveredPlugin, type DiscoveryProblem, discoverPlugins, pluginSources } from './discovery.js';
import { type PluginManifest, formatAjvErrors } from './manifest.js';
import { pluginMqttRoute } from './mqtt-bridge.js';
import { pluginOperations } from './operations.js';
import {
  type CallerPermissions,
  deviceAllowed,
  filterCovers,
  isValidFilter,
  isValidTopic,
  toolAllowed,
} from './permissions.js';
import { type ActiveCall, PluginSupervisor, type SupervisorFigures, pluginFailed } from './runner/supervisor.js';

export type { CallerPermissions } from './permissions.js';

/** A device as the device layer reports it; DeviceService's DeviceSnapshot fits. */
export interface PluginDeviceSnapshot {
  id: string;
  name: string;
  availability: string;
  state: Record<string, unknown>;
  capabilities: readonly unknown[];
}

/** The part of the device layer plugins may use (DeviceService implements it). */
export interface PluginDevices {
  list(): PluginDeviceSnapshot[];
  get(id: string): PluginDeviceSnapshot | undefined;
  commandSchema(id: string): Record<string, unknown>;
  execute(id: string, command: unknown, options: { source: string; transaction?: string | number }): Promise<unknown>;
}

export interface PluginHostDeps {
  devices?: PluginDevices;
  messaging?: Messaging;
  /** Used instead of ctx.config.plugins (tests, and until the section is composed into the runtime schema). */
  config?: Record<string, unknown>;
  /** For $PLUGIN_DIR; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Default: plugins/builtin beside this module. */
  builtinDir?: string;
  /** Where plugin.call is registered and routed on MQTT (bridge/request/plugin/...); none without it. */
  api?: { frontDoor: FrontDoor; mqtt: MqttAdapter } | null;
}

export interface CallOptions {
  caller?: CallerPermissions;
  /** Per-call deadline; default the tool's timeout_ms, else plugins.call_timeout_ms. */
  timeoutMs?: number;
  transaction?: string | number;
  /** The caller's cancellation (ctx.signal): a call not yet sent is not sent; a sent one is cancelled. */
  signal?: AbortSignal;
  /** The caller's deadline (epoch ms): shortens the timeout; already past, the call is not sent. */
  deadline?: number;
}

/** One tool as the agent's grammar needs it. */
export interface ToolDescription {
  /** "plugin/tool" */
  id: string;
  plugin: string;
  tool: string;
  description: string;
  arguments: Record<string, unknown>;
  result: Record<string, unknown> | null;
}

export interface PluginInfo {
  name: string;
  version: string;
  description: string;
  runtime: 'node' | 'python';
  isolation: 'worker' | 'process';
  origin: DiscoveredPlugin['origin'];
  dir: string;
  tools: string[];
  permissions: PluginManifest['permissions'];
  figures: SupervisorFigures;
}

export interface PluginCallEvent {
  plugin: string;
  tool: string;
  caller: string | null;
  ok: boolean;
  code: string | null;
  ms: number;
}

declare module '../runtime/events.js' {
  interface RuntimeEvents {
    'plugin.call': [PluginCallEvent];
  }
}

interface Loaded {
  plugin: DiscoveredPlugin;
  config: Record<string, unknown>;
  supervisor: PluginSupervisor;
}

// The section's own `default: {}` matters where it is composed; at a schema root ajv's strict mode refuses it.
const { default: _sectionDefault, ...sectionSchema } = pluginsConfigSchema;

/** Applies the `plugins:` schema (defaults included) to a raw section; throws CONFIG_INVALID. */
export function resolvePluginsConfig(raw: unknown): PluginsConfig {
  const copy = structuredClone(raw ?? {});
  // Checked at start and when the config changes: the validator is not kept (the idle box holds it for nothing).
  const validateSection = validatorForOneUse(sectionSchema, 'request');
  if (!validateSection(copy)) {
    throw new ClawboxError('CONFIG_INVALID', `plugins: ${formatAjvErrors(validateSection.errors)}`);
  }
  return copy as unknown as PluginsConfig;
}

export class PluginHost implements Component {
  readonly name = 'plugins';
  readonly #deps: PluginHostDeps;
  /** Principals of calls in flight, by the reference their plugin requests carry. */
  readonly #principals = new Map<string, Pick<CallerPermissions, 'may' | 'act'>>();
  #ctx: RuntimeContext | undefined;
  #config: PluginsConfig | undefined;
  #plugins = new Map<string, Loaded>();
  /** Channel plugins found (kind: channel); they run only when the channel gateway opens them. */
  #channelPlugins = new Map<string, DiscoveredPlugin>();
  #channelHandles = new Map<string, PluginChannelHandle>();
  #problems: DiscoveryProblem[] = [];
  #skipped: { name: string; dir: string; reason: string }[] = [];
  #unregisterApi: (() => void)[] = [];
  #subscriptions = new Map<string, { plugins: Set<string>; unsubscribe: Promise<() => Promise<void>> }>();
  #unregisterStatus: (() => void) | undefined;
  #calls: Counter | undefined;

  constructor(deps: PluginHostDeps = {}) {
    this.#deps = deps;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    this.#ctx = ctx;
    const log = ctx.logger('plugins');
    const config = resolvePluginsConfig(this.#deps.config ?? (ctx.config as unknown as { plugins?: unknown }).plugins);
    this.#config = config;
    this.#unregisterStatus = ctx.status.register('plugins', () => this.status());
    this.#calls = new Counter({
      name: 'clawbox_plugin_calls_total',
      help: 'Plugin tool calls by outcome (ok or error code).',
      labelNames: ['plugin', 'tool', 'outcome'],
      registers: [ctx.metrics],
    });
    if (!config.enabled) {
      log.info('plugin host disabled (plugins.enabled: false)');
      return;
    }

    const found = discoverPlugins(pluginSources(config, this.#deps.env ?? process.env, this.#deps.builtinDir), {
      allow: config.allow,
      deny: config.deny,
    });
    this.#problems = [...found.problems];
    this.#skipped = found.skipped;
    for (const p of found.problems) log.warn({ path: p.path, code: p.error.code }, p.error.message);
    for (const name of Object.keys(config.config)) {
      if (![...found.plugins, ...found.skipped].some((p) => p.name === name)) {
        log.warn({ plugin: name }, `plugins.config.${name} is set but no such plugin was found`);
      }
    }

    for (const plugin of found.plugins) {
      if (plugin.compiled.manifest.kind === 'channel') {
        this.#channelPlugins.set(plugin.name, plugin);
        continue;
      }
      const pluginConfig = structuredClone(config.config[plugin.name] ?? {});
      const configErrors = plugin.compiled.checkConfig(pluginConfig);
      if (configErrors) {
        const error = new ClawboxError('PLUGIN_INVALID', `plugins.config.${plugin.name} ${formatAjvErrors(configErrors)}`);
        this.#problems.push({ path: plugin.dir, origin: plugin.origin, name: plugin.name, error });
        log.warn({ plugin: plugin.name }, error.message);
        continue;
      }
      const dataDir = path.join(ctx.stateDir, 'plugins', plugin.name);
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      const supervisor = new PluginSupervisor({
        plugin,
        config: pluginConfig,
        dataDir,
        logger: ctx.logger(`plugin:${plugin.name}`),
        limits: {
          memoryLimitMb: config.memory_limit_mb,
          maxMessageBytes: config.max_message_bytes,
          startTimeoutMs: config.start_timeout_ms,
          restart: config.restart,
          python: config.python,
        },
        hostRequest: (method, params, call) => this.#hostRequest(plugin, method, params, call),
      });
      this.#plugins.set(plugin.name, { plugin, config: pluginConfig, supervisor });
    }
    // Start together: one slow plugin does not hold up the others; a failing one restarts on its own.
    await Promise.all([...this.#plugins.values()].map((p) => p.supervisor.start({ lazy: config.lazy })));

    if (this.#deps.api) {
      const { frontDoor, mqtt } = this.#deps.api;
      for (const operation of pluginOperations(this)) this.#unregisterApi.push(frontDoor.register(operation));
      this.#unregisterApi.push(mqtt.bridge('plugins/restart', 'plugins.restart'));
      if (config.mqtt.enabled) {
        const baseTopic = this.#deps.messaging?.baseTopic ?? ctx.config.broker.base_topic;
        this.#unregisterApi.push(mqtt.bridgeHandledElsewhere('plugin/'));
        this.#unregisterApi.push(mqtt.route(pluginMqttRoute({ baseTopic, tools: config.mqtt.tools, maxPayloadBytes: config.mqtt.max_payload_bytes })));
      }
    }
    log.info(
      { plugins: [...this.#plugins.keys()], problems: this.#problems.length, skipped: this.#skipped.length },
      'plugin host started',
    );
  }

  async stop(): Promise<void> {
    for (const undo of this.#unregisterApi.splice(0)) undo();
    await Promise.allSettled([...this.#channelHandles.values()].map((h) => h.disconnect()));
    this.#channelHandles.clear();
    this.#channelPlugins.clear();
    await Promise.allSettled([...this.#plugins.values()].map((p) => p.supervisor.stop()));
    const subscriptions = [...this.#subscriptions.values()];
    this.#subscriptions.clear();
    await Promise.allSettled(subscriptions.map(async (s) => (await s.unsubscribe)()));
    this.#plugins.clear();
    this.#unregisterStatus?.();
    this.#unregisterStatus = undefined;
    if (this.#calls && this.#ctx) this.#ctx.metrics.removeSingleMetric('clawbox_plugin_calls_total');
    this.#calls = undefined;
  }

  /** Calls one tool. Rejects NOT_FOUND, FORBIDDEN, PAYLOAD_INVALID (arguments), PLUGIN_FAILED, or the plugin's own coded error. */
  async call(pluginName: string, toolName: string, args: unknown, options: CallOptions = {}): Promise<unknown> {
    const started = Date.now();
    const caller = options.caller ?? {};
    try {
      const result = await this.#call(pluginName, toolName, args, options);
      this.#record(pluginName, toolName, caller, null, started);
      return result;
    } catch (error) {
      const err = toClawboxError(error);
      this.#record(pluginName, toolName, caller, err.code, started);
      throw err;
    }
  }

  async #call(pluginName: string, toolName: string, args: unknown, options: CallOptions): Promise<unknown> {
    const loaded = this.#plugins.get(pluginName);
    if (!loaded) {
      throw new ClawboxError('NOT_FOUND', `no plugin "${String(pluginName).slice(0, 64)}"; loaded: ${[...this.#plugins.keys()].join(', ') || 'none'}`);
    }
    const tool = loaded.plugin.compiled.tools.get(toolName);
    if (!tool) {
      throw new ClawboxError(
        'NOT_FOUND',
        `plugin ${pluginName} has no tool "${String(toolName).slice(0, 64)}"; tools: ${[...loaded.plugin.compiled.tools.keys()].join(', ')}`,
      );
    }
    const caller = options.caller ?? {};
    if (!toolAllowed(caller.tools, pluginName, toolName)) {
      throw new ClawboxError('FORBIDDEN', `the caller may not use ${pluginName}/${toolName}`);
    }
    let checked: unknown;
    try {
      checked = structuredClone(args === undefined ? {} : args);
    } catch {
      throw new ClawboxError('PAYLOAD_INVALID', `${pluginName}/${toolName}: arguments must be JSON data`);
    }
    if (!tool.validateArgs(checked)) {
      throw new ClawboxError('PAYLOAD_INVALID', `${pluginName}/${toolName}: arguments ${formatAjvErrors(tool.validateArgs.errors)}`, {
        plugin: pluginName,
        tool: toolName,
      });
    }
    const config = this.#config!;
    let timeoutMs = options.timeoutMs ?? tool.manifest.timeout_ms ?? config.call_timeout_ms;
    if (options.deadline !== undefined) {
      const left = options.deadline - Date.now();
      if (left <= 0) {
        throw new ClawboxError('DEADLINE_EXCEEDED', `${pluginName}/${toolName} was not sent: the caller's deadline had passed`, {
          plugin: pluginName,
          tool: toolName,
          sent: false,
          not_run: true,
        });
      }
      // With a signal the caller's own abort ends the call at its deadline (as a cancellation, which it is).
      if (!options.signal) timeoutMs = Math.min(timeoutMs, left);
    }
    // The caller's principal stays in this process (functions do not cross to the plugin); the plugin's
    // requests on the caller's behalf find it by this reference.
    const principalRef = caller.may || caller.act ? randomUUID() : undefined;
    if (principalRef) this.#principals.set(principalRef, { may: caller.may, act: caller.act });
    let result: unknown;
    try {
      result = await loaded.supervisor.call({
        tool: toolName,
        args: checked,
        timeoutMs,
        caller: {
          ...(caller.id ? { id: caller.id } : {}),
          ...(caller.source ? { source: caller.source } : {}),
          ...(caller.devices ? { devices: [...caller.devices] } : {}),
          ...(principalRef ? { principal: principalRef } : {}),
        },
        ...(options.transaction === undefined ? {} : { transaction: options.transaction }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } finally {
      if (principalRef) this.#principals.delete(principalRef);
    }
    if (tool.validateResult && !tool.validateResult(result)) {
      throw pluginFailed(pluginName, 'result_invalid', `${toolName} returned a result that does not match its schema: ${formatAjvErrors(tool.validateResult.errors)}`, {
        tool: toolName,
      });
    }
    return result;
  }

  /**
   * Restarts a plugin or a platform channel now (asked for, so without backoff) and answers with its
   * figures afterwards. NOT_FOUND for an unknown name.
   */
  async restart(kind: 'plugin' | 'channel', name: string, reason: string): Promise<Record<string, unknown>> {
    if (kind === 'channel') {
      const handle = this.#channelHandles.get(name);
      if (!handle) throw new ClawboxError('NOT_FOUND', `no platform channel "${name.slice(0, 64)}" runs on a plugin (built-in channels have nothing to restart)`);
      await handle.restart(reason);
      return { kind, name, ...handle.status().process };
    }
    const loaded = this.#plugins.get(name);
    if (!loaded) throw new ClawboxError('NOT_FOUND', `no plugin "${name.slice(0, 64)}" is loaded`);
    await loaded.supervisor.restartNow(reason);
    return { kind, name, ...loaded.supervisor.figures() };
  }

  /** Tools the caller may use, with their schemas, for the agent's tool grammar. */
  tools(caller: CallerPermissions = {}): ToolDescription[] {
    const out: ToolDescription[] = [];
    for (const [name, loaded] of this.#plugins) {
      for (const [toolName, tool] of loaded.plugin.compiled.tools) {
        if (!toolAllowed(caller.tools, name, toolName)) continue;
        out.push({
          id: `${name}/${toolName}`,
          plugin: name,
          tool: toolName,
          description: tool.manifest.description,
          arguments: tool.manifest.arguments,
          result: tool.manifest.result ?? null,
        });
      }
    }
    return out;
  }

  list(): PluginInfo[] {
    return [...this.#plugins.values()].map(({ plugin, supervisor }) => {
      const m = plugin.compiled.manifest;
      return {
        name: m.name,
        version: m.version,
        description: m.description ?? '',
        runtime: m.runtime,
        isolation: m.isolation,
        origin: plugin.origin,
        dir: plugin.dir,
        tools: [...plugin.compiled.tools.keys()],
        permissions: m.permissions,
        figures: supervisor.figures(),
      };
    });
  }

  /** The channel plugins found (kind: channel), whether or not a channel uses them. */
  channelPlugins(): { name: string; version: string; description: string; origin: DiscoveredPlugin['origin']; channel: PluginManifest['channel'] }[] {
    return [...this.#channelPlugins.values()].map(({ name, origin, compiled: { manifest } }) => ({
      name,
      version: manifest.version,
      description: manifest.description ?? '',
      origin,
      channel: manifest.channel,
    }));
  }

  /**
   * A channel backed by a channel plugin, ready for the channel gateway (it connects it). The config is
   * checked against the manifest's schema; each credential the manifest declares comes from `credentials`
   * or, failing that, from the file `<credentialsDir>/<channel>.<credential>` (systemd LoadCredential=).
   * Throws NOT_FOUND (no such channel plugin) or CONFIG_INVALID (bad config, a required credential missing).
   */
  openChannel(
    channel: string,
    options: { plugin: string; config: Record<string, unknown>; credentials: Record<string, string>; credentialsDir?: string | undefined },
  ): PluginChannelHandle {
    const ctx = this.#ctx;
    const config = this.#config;
    if (!ctx || !config) throw new ClawboxError('BUSY', 'the plugin host is not started', { retry_after_ms: 1000 });
    const plugin = this.#channelPlugins.get(options.plugin);
    if (!plugin) {
      const known = [...this.#channelPlugins.keys()].join(', ') || 'none';
      throw new ClawboxError('NOT_FOUND', `no channel plugin "${options.plugin.slice(0, 64)}" (found: ${known}${config.enabled ? '' : '; plugins.enabled is false'})`);
    }
    const earlier = this.#channelHandles.get(channel);
    if (earlier && earlier.status().state !== 'stopped') throw new ClawboxError('CONFIG_INVALID', `channel "${channel}" is opened twice`);
    const checked = structuredClone(options.config);
    const configErrors = plugin.compiled.checkConfig(checked);
    if (configErrors) throw new ClawboxError('CONFIG_INVALID', `channels.platforms.${channel}.config ${formatAjvErrors(configErrors)}`);
    const declared = plugin.compiled.manifest.channel?.credentials ?? [];
    const credentials: Record<string, string> = {};
    for (const credential of declared) {
      const value = options.credentials[credential.name] ?? readCredentialFile(options.credentialsDir, `${channel}.${credential.name}`);
      if (value !== undefined && value !== '') credentials[credential.name] = value;
      else if (credential.required) {
        throw new ClawboxError(
          'CONFIG_INVALID',
          `channel ${channel} needs the credential "${credential.name}" (${credential.description}): set channels.platforms.${channel}.credentials.${credential.name}` +
            ` or provide the file ${channel}.${credential.name} in $CREDENTIALS_DIRECTORY`,
        );
      }
    }
    const unknown = Object.keys(options.credentials).filter((name) => !declared.some((c) => c.name === name));
    if (unknown.length > 0) {
      throw new ClawboxError('CONFIG_INVALID', `channels.platforms.${channel}.credentials: ${plugin.name} declares no credential ${unknown.map((u) => `"${u.slice(0, 64)}"`).join(', ')}`);
    }
    const dataDir = path.join(ctx.stateDir, 'channels', channel);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const handle = new PluginChannelHandle({
      name: channel,
      plugin,
      config: checked as Record<string, unknown>,
      credentials,
      dataDir,
      logger: ctx.logger(`channel:${channel}`),
      limits: {
        memoryLimitMb: config.memory_limit_mb,
        maxMessageBytes: config.max_message_bytes,
        startTimeoutMs: config.start_timeout_ms,
        restart: config.restart,
        python: config.python,
      },
    });
    this.#channelHandles.set(channel, handle);
    return handle;
  }

  /** Plugins found but refused (bad manifest, unsafe folder, bad config), with the reason. */
  problems(): { path: string; name: string | null; code: string; message: string }[] {
    return this.#problems.map((p) => ({ path: p.path, name: p.name ?? null, code: p.error.code, message: p.error.message }));
  }

  /** A plugin's config as checked against its manifest (defaults applied); e.g. content-safety for the channels. */
  configOf(name: string): Record<string, unknown> | undefined {
    return this.#plugins.get(name)?.config;
  }

  /** The data folder of a plugin (under the state dir). */
  dataDirOf(name: string): string | undefined {
    return this.#ctx && this.#plugins.has(name) ? path.join(this.#ctx.stateDir, 'plugins', name) : undefined;
  }

  status(): Record<string, unknown> {
    return {
      plugins: this.list().map((p) => ({ name: p.name, version: p.version, origin: p.origin, tools: p.tools, ...p.figures })),
      problems: this.problems(),
      skipped: this.#skipped,
      channel_plugins: [...this.#channelPlugins.keys()],
    };
  }

  #record(plugin: string, tool: string, caller: CallerPermissions, code: string | null, started: number): void {
    const known = this.#plugins.get(plugin)?.plugin.compiled.tools.has(tool) === true;
    // Unknown names stay out of metric labels: a caller must not be able to grow the label set.
    this.#calls?.inc({ plugin: known ? plugin : '(unknown)', tool: known ? tool : '(unknown)', outcome: code ?? 'ok' });
    this.#ctx?.bus.emit('plugin.call', {
      plugin: known ? plugin : '(unknown)',
      tool: known ? tool : '(unknown)',
      caller: caller.id ?? null,
      ok: code === null,
      code,
      ms: Date.now() - started,
    });
  }

  // ---- requests from plugins ------------------------------------------------------------------------

  async #hostRequest(plugin: DiscoveredPlugin, method: string, params: Record<string, unknown>, call: ActiveCall | undefined): Promise<unknown> {
    const permissions = plugin.compiled.manifest.permissions;
    const callerDevices = Array.isArray(call?.caller.devices) ? (call.caller.devices as string[]) : undefined;
    const principal = typeof call?.caller.principal === 'string' ? this.#principals.get(call.caller.principal) : undefined;
    if (method.startsWith('devices.')) {
      if (permissions.devices === false) {
        throw new ClawboxError('FORBIDDEN', `plugin ${plugin.name} has no devices permission in its manifest`);
      }
      const devices = this.#deps.devices;
      if (!devices) throw new ClawboxError('DEVICE_UNAVAILABLE', 'this runtime has no device layer');
      const write = method === 'devices.execute';
      const allowed = (id: string) =>
        deviceAllowed(permissions.devices, callerDevices, id) && (principal?.may?.(`${id}/${write ? 'set' : 'get'}`) ?? true);
      if (method === 'devices.list') return devices.list().filter((d) => allowed(d.id));
      const id = params.id;
      if (typeof id !== 'string' || id.length === 0 || id.length > 64) throw new ClawboxError('PAYLOAD_INVALID', 'a device id is required');
      if (!allowed(id)) {
        throw new ClawboxError('FORBIDDEN', `device ${id} is outside the permissions of ${call ? 'this caller or ' : ''}plugin ${plugin.name}`);
      }
      switch (method) {
        case 'devices.get': {
          const device = devices.get(id);
          if (!device) throw new ClawboxError('DEVICE_NOT_FOUND', `no device "${id}"`);
          return device;
        }
        case 'devices.schema':
          return devices.commandSchema(id);
        case 'devices.execute': {
          // As the caller through the front door (its permission, its deadline, the audit), when there is one.
          if (principal?.act) return principal.act(id, params.command);
          const source = typeof call?.caller.source === 'string' ? call.caller.source : 'plugin';
          return devices.execute(id, params.command, {
            source,
            ...(call?.transaction === undefined ? {} : { transaction: call.transaction }),
          });
        }
      }
    }
    if (method === 'mqtt.publish') return this.#publish(plugin, params);
    if (method === 'mqtt.subscribe') return this.#subscribe(plugin, params);
    throw new ClawboxError('NOT_FOUND', `the host has no request "${method.slice(0, 64)}"`);
  }

  async #publish(plugin: DiscoveredPlugin, params: Record<string, unknown>): Promise<null> {
    const messaging = this.#deps.messaging;
    if (!messaging) throw new ClawboxError('FORBIDDEN', 'this runtime has no MQTT messaging');
    const { topic, payload, retain } = params;
    if (typeof topic !== 'string' || !isValidTopic(topic)) throw new ClawboxError('TOPIC_INVALID', 'publish needs a topic without wildcards');
    if (typeof payload !== 'string') throw new ClawboxError('PAYLOAD_INVALID', 'publish needs a string payload');
    if (Buffer.byteLength(payload) > this.#config!.mqtt.max_payload_bytes) {
      throw new ClawboxError('PAYLOAD_TOO_LARGE', `payload is larger than ${this.#config!.mqtt.max_payload_bytes} bytes`);
    }
    const allowed = plugin.compiled.manifest.permissions.topics.publish;
    if (!allowed.some((filter) => filterCovers(filter, topic))) {
      throw new ClawboxError('FORBIDDEN', `plugin ${plugin.name} may not publish to ${topic}`);
    }
    await messaging.publish(topic, payload, { retain: retain === true });
    return null;
  }

  async #subscribe(plugin: DiscoveredPlugin, params: Record<string, unknown>): Promise<null> {
    const messaging = this.#deps.messaging;
    if (!messaging) throw new ClawboxError('FORBIDDEN', 'this runtime has no MQTT messaging');
    const { filter } = params;
    if (typeof filter !== 'string' || !isValidFilter(filter)) throw new ClawboxError('TOPIC_INVALID', 'subscribe needs a valid topic filter');
    const allowed = plugin.compiled.manifest.permissions.topics.subscribe;
    if (!allowed.some((a) => filterCovers(a, filter))) {
      throw new ClawboxError('FORBIDDEN', `plugin ${plugin.name} may not subscribe to ${filter}`);
    }
    // One broker subscription per filter, delivered to every plugin that asked (again after a restart).
    const existing = this.#subscriptions.get(filter);
    if (existing) {
      existing.plugins.add(plugin.name);
      return null;
    }
    const entry = {
      plugins: new Set([plugin.name]),
      unsubscribe: messaging.subscribe(filter, (topic, payload) => {
        for (const name of entry.plugins) this.#plugins.get(name)?.supervisor.notify('mqtt.message', { topic, payload: payload.toString('utf8') });
      }),
    };
    this.#subscriptions.set(filter, entry);
    await entry.unsubscribe;
    return null;
  }
}

/** A systemd credential file (trailing newline dropped); undefined when there is none. */
function readCredentialFile(dir: string | undefined, name: string): string | undefined {
  if (!dir) return undefined;
  try {
    return readFileSync(path.join(dir, name), 'utf8').replace(/\r?\n$/, '');
  } catch {
    return undefined;
  }
}

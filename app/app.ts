/**
 * The composition root: builds the context and the components in start order, and wires their public
 * services to each other. This is the one place that knows every part of the runtime.
 */
import { RuntimeRegistry } from '../runtime/metrics.js';
import { DeviceService } from '../devices/device-service.js';
import { registerDeviceRoutes } from '../devices/http-routes.js';
import { SensorHistoryComponent, chartedProperties } from '../devices/history.js';
import { registerHistoryRoute } from '../devices/history-routes.js';
import { registerModelRoutes } from '../models/http-routes.js';
import { ModelService } from '../models/service.js';
import { ChannelGateway, type SafetyCheck } from '../channels/gateway.js';
import { createContentSafety } from '../plugins/builtin/content-safety/safety.js';
import { PluginHost } from '../plugins/host.js';
import { registerPluginRoutes } from '../plugins/http-routes.js';
import { AuditLog } from '../runtime/audit/index.js';
import { DataRights, auditHolder, dataOperations, logLinesHolder, mqttSessionsHolder, registerDataRoutes } from '../runtime/privacy/index.js';
import { chatDataHolders } from '../channels/data-holder.js';
import { LoginGuard } from '../runtime/auth/login-guard.js';
import { FrontDoor } from '../runtime/operations/front-door.js';
import { MqttAdapter } from '../runtime/operations/mqtt-adapter.js';
import { AgentComponent, conversationHolder } from './agent-wiring.js';
import { KnowledgeComponent, registerKnowledgeRoutes } from '../knowledge/index.js';
import { BrainLinkService } from '../brain/service.js';
import { brainConfigOf } from '../brain/config-schema.js';
import { clusterWiring } from './cluster-wiring.js';
import { loadBuiltinDriver } from '../devices/drivers/index.js';
import { registerReadiness } from '../runtime/http/readiness.js';
import { Broker } from '../runtime/broker/broker.js';
import type { Config } from '../runtime/config/schema.js';
import type { DeviceDirectory } from '../agent/directory.js';
import type { Component, RuntimeContext } from '../runtime/context.js';
import { EventBus } from '../runtime/events.js';
import { HttpServer } from '../runtime/http/http-server.js';
import { Lifecycle } from '../runtime/lifecycle.js';
import { type Logging, createLogging } from '../runtime/logging.js';
import { StateStore } from '../runtime/store/state-store.js';
import { resolveStateDir } from '../runtime/config/load.js';
import { runtimeContext } from './runtime-context.js';
import { Discovery } from '../discovery/index.js';
import { isLoopbackHost } from '../runtime/http/auth.js';
import { registerWebRoutes, webRoot } from './web-wiring.js';
// Not update/index.js: that also loads the installer, the bundle reader and the CLI, which only the root
// update helper and `clawbox update` use.
import { UpdateComponent } from '../update/component.js';
import { registerUpdateRoutes } from '../update/http-routes.js';
import { registerFeatureGauge } from './lazy-feature.js';


export interface AppOptions {
  config: Config;
  configSource?: string | null;
  /** Tests pass their own (e.g. a silent one); otherwise built from config.log. */
  logging?: Logging;
  env?: NodeJS.ProcessEnv;
  /** The built web app (tests build their own); default: dist/web when it was built. */
  webRoot?: string;
  /** The update helper's socket (tests start their own); default the OS image's. */
  updateSocket?: string;
}

export interface App {
  readonly ctx: RuntimeContext;
  readonly lifecycle: Lifecycle;
  readonly broker: Broker;
  readonly http: HttpServer;
  readonly devices: DeviceService;
  readonly plugins: PluginHost;
  readonly models: ModelService;
  readonly update: UpdateComponent;
  readonly agent: AgentComponent;
  readonly channels: ChannelGateway;
  readonly frontDoor: FrontDoor;
  readonly audit: AuditLog;
  readonly dataRights: DataRights;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createApp(options: AppOptions): App {
  const { config } = options;
  const env = options.env ?? process.env;
  const logging = options.logging ?? createLogging({ level: config.log.level, components: config.log.components });
  const bus = new EventBus();
  // Process figures (CPU, memory, event loop, GC) join on the first scrape (runtime/metrics.ts).
  const metrics = new RuntimeRegistry('clawbox_');
  const stateDir = resolveStateDir(config, env);
  const store = new StateStore(stateDir, logging.forComponent('store'));

  // One guard for MQTT and HTTP logins: a flood on either backs off that address on both and shares one
  // bounded password-hash queue.
  const loginGuard = new LoginGuard();
  // Cluster mode (config `cluster:`): broker state, device leases and agent work shared on Redis.
  const cluster = clusterWiring(config, logging.forComponent('cluster'), {
    agentLoad: () => agent.load(),
    modelReady: () => Boolean(models.engine('main')),
    mqttClients: () => broker.connectedClients,
  });
  const broker = new Broker({ loginGuard, ...(cluster ? { cluster: cluster.brokerOptions } : {}) });
  const http = new HttpServer({ upgrades: { [config.broker.websocket.path]: broker }, loginGuard, webRoot: options.webRoot ?? webRoot() });
  // Every client action passes the front door; the audit log records the world-changing ones, naming
  // people by erasable pseudonyms (data rights).
  const dataRights = new DataRights();
  const audit = new AuditLog({ principals: dataRights.principals });
  const frontDoor = new FrontDoor({ logger: logging.forComponent('front-door'), audit });
  for (const operation of dataOperations(dataRights)) frontDoor.register(operation);
  registerDataRoutes(http, frontDoor);
  dataRights.addHolder(auditHolder(audit));
  // Before the log lines: disconnecting the person's clients may log lines that the next holder erases.
  dataRights.addHolder(mqttSessionsHolder(broker));
  dataRights.addHolder(logLinesHolder(logging.tail ? [logging.ring, logging.tail] : [logging.ring]));
  for (const holder of chatDataHolders(store)) dataRights.addHolder(holder);
  const mqtt = new MqttAdapter({
    frontDoor,
    messaging: broker,
    requests: broker,
    logger: logging.forComponent('mqtt-api'),
    maxPayloadBytes: config.broker.max_payload_bytes,
  });
  // HTTP first: /healthz answers 503 while the rest starts and stops (the broker refuses upgrades until running).
  const devices = new DeviceService({
    messaging: broker,
    api: { frontDoor, mqtt },
    ...(cluster ? { loadDriver: cluster.component.wrapLoader(loadBuiltinDriver) } : {}),
  });
  registerDeviceRoutes(http, frontDoor);
  // A short history per sensor reading, so the web app's charts have points when a page opens.
  const deviceHistory = new SensorHistoryComponent({
    frontDoor,
    charted: (id) => chartedProperties(devices.get(id)?.capabilities ?? []),
    exists: (id) => devices.get(id) !== undefined,
  });
  registerHistoryRoute(http, frontDoor);
  const plugins = new PluginHost({ devices, messaging: broker, api: { frontDoor, mqtt } });
  registerPluginRoutes(http, frontDoor);
  // The model loads in the background; until it is ready the agent answers on its fast path only.
  const models = new ModelService({ api: { frontDoor, mqtt } });
  registerModelRoutes(http, frontDoor);
  // Updates from the web app: the runtime downloads, the root update helper checks and installs.
  const update = new UpdateComponent({ api: { frontDoor, mqtt }, messaging: broker, socketPath: options.updateSocket });
  registerUpdateRoutes(http, frontDoor);
  // The web app's log view, audit view and device form.
  registerWebRoutes({ http, frontDoor, stateDir, tail: logging.tail });
  // Hybrid deployment: with brain.endpoint set, model work the box cannot do in time goes to the brain.
  const brainLink = new BrainLinkService();
  // Its wiring (a second agent for the brain's side) is loaded only when an endpoint is configured.
  const remote = async (directory: DeviceDirectory) => {
    if (!brainConfigOf(config).endpoint) return null;
    const { configuredClasses, remoteRung } = await import('./brain-wiring.js');
    return remoteRung({
      brain: brainLink,
      directory,
      devices,
      audit,
      logger: logging.forComponent('brain-link'),
      classOf: configuredClasses(config),
      mayLeave: (caller, region) => dataRights.mayLeave({ name: 'brain', region }, caller ?? null),
    });
  };
  // The knowledge base: kb.search for callers, and for the agent as its caller.
  const knowledge = new KnowledgeComponent({ frontDoor, mqtt });
  registerKnowledgeRoutes(http, frontDoor);
  const agent = new AgentComponent({ devices, models, messaging: broker, frontDoor, mqtt, remote, plugins, ...(cluster ? { shareWork: (h) => cluster.component.shareWork(h) } : {}) });
  dataRights.addHolder(conversationHolder(agent));
  // Chat senders reach the agent as chat.message, screened by the content-safety plugin's policy when it is loaded.
  const channels = new ChannelGateway({
    frontDoor,
    http,
    safety: () => chatSafety(plugins),
    // Chat platforms (channels.platforms) run as channel plugins under the plugin host's supervision.
    openPlatform: (name, options) => plugins.openChannel(name, options),
    // What the OpenAI-compatible API lists; MODEL_NOT_LOADED passes (503) only while one is loading.
    models: {
      names: () => models.configured().map((m) => m.name),
      loading: () => ['idle', 'verifying', 'loading'].includes(models.state('main').state) && models.configured().length > 0,
    },
  });
  // mDNS last: it announces ports that listen by then.
  const discovery = new Discovery({
    facts: (ctx) => ({
      name: http.boxName,
      version: ctx.version,
      http: { port: http.port, tls: http.tls, reachable: !isLoopbackHost(ctx.config.http.host) },
      mqtt: { port: broker.port, reachable: !isLoopbackHost(ctx.config.broker.host) },
      mqtts: broker.tlsPort === undefined ? null : { port: broker.tlsPort },
    }),
  });
  const components: Component[] = [dataRights, audit, http, ...(cluster ? [cluster.component] : []), broker, deviceHistory, devices, plugins, models, update, knowledge, brainLink, agent, channels, discovery];
  const lifecycle = new Lifecycle(components, bus, logging.forComponent('lifecycle'));
  // /readyz: serving, and (cluster mode) the shared Redis reachable; /healthz stays liveness only.
  registerReadiness(http, () => lifecycle.state, {
    broker: () => broker.sharedStateReady(),
    ...(cluster ? { cluster: () => cluster.component.ready() } : {}),
  });

  // Parts loaded on first use, and whether they are yet (clawbox_feature_loaded).
  registerFeatureGauge(metrics, [agent]);

  const ctx = runtimeContext({ config, configSource: options.configSource, stateDir, store, bus, metrics, logging, lifecycle });

  return {
    ctx,
    lifecycle,
    broker,
    http,
    devices,
    plugins,
    models,
    update,
    agent,
    channels,
    frontDoor,
    audit,
    dataRights,
    start: () => {
      mqtt.resume();
      return lifecycle.start(ctx);
    },
    // Requests still running are cancelled first: what has not reached a device does not start.
    stop: () => {
      mqtt.stop();
      return lifecycle.stop();
    },
  };
}

/** The content-safety plugin's config, applied in-process to chat; none when the plugin is not loaded (denied, disabled). */
function chatSafety(plugins: PluginHost): SafetyCheck | null {
  const config = plugins.configOf('content-safety');
  return config === undefined ? null : createContentSafety({ config, dataDir: plugins.dataDirOf('content-safety') });
}

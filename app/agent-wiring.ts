/**
 * Connects the agent to the rest of the runtime: the device layer seen through the agent's narrow
 * DeviceDirectory, the scheduler in front of the model, and the MQTT agent topic in front of both.
 * The agent itself (its intent tables, language packs, prompts) is loaded on first use: the first request,
 * or a model ready to be warmed; its operations, topics and the scheduler are there from the start.
 * Only the composition root (app.ts) uses this file.
 */
import type { DeviceService } from '../devices/device-service.js';
import type { Agent, AgentRequest, AgentResponse } from '../agent/agent.js';
import { BRIEF_OUTPUT_TOKENS } from '../agent/brief.js';
import type { AgentDevice, DeviceDirectory, StateValue } from '../agent/directory.js';
import type { RemoteRung } from './brain-wiring.js';
import { LazyFeature } from './lazy-feature.js';
import { ConfirmationStore } from '../agent/confirmations.js';
import { completeOperation } from '../agent/completion.js';
import { agentMqttRoutes, agentOperations } from '../agent/operations.js';
import type { ModelRole, ModelService } from '../models/service.js';
import type { PluginHost } from '../plugins/host.js';
import type { AgentTool } from '../agent/tools.js';
import type { Component, RuntimeContext } from '../runtime/context.js';
import type { DataHolder } from '../runtime/privacy/index.js';
import type { EventBus } from '../runtime/events.js';
import type { Messaging } from '../runtime/messaging.js';
import type { FrontDoor } from '../runtime/operations/front-door.js';
import type { MqttAdapter } from '../runtime/operations/mqtt-adapter.js';
import { expectSchema, schemasObserved } from '../runtime/operations/validator.js';
import { agentFastPath, agentHandler, agentLane, agentPlanner } from '../agent/scheduler/model-lane.js';
import { SchedulerService } from '../agent/scheduler/service.js';

/**
 * The device layer as the agent sees it: snapshots, command schemas, and the one validated execute path.
 * Devices whose safety policy is `deny` do not exist for the agent (nor for its model).
 */
export function deviceDirectory(devices: DeviceService, bus: () => EventBus | null): DeviceDirectory {
  const visible = (id: string) => {
    const device = devices.get(id);
    return device !== undefined && device.agent_policy !== 'deny';
  };
  return {
    list: () =>
      devices.list().filter((d) => d.agent_policy !== 'deny').map(
        (d): AgentDevice => ({
          id: d.id,
          name: d.name,
          ...(d.aliases ? { aliases: d.aliases } : {}),
          ...(d.area ? { area: d.area } : {}),
          capabilities: d.capabilities as unknown as AgentDevice['capabilities'],
          availability: d.availability === 'online' ? 'online' : 'offline',
          state: d.state as Record<string, StateValue>,
        }),
      ),
    commandSchema: (id) => (visible(id) ? (devices.commandSchema(id) as Record<string, unknown>) : undefined),
    execute: (id, command, options) => devices.execute(id, command, options),
    onChange: (listener) => bus()?.on('device.registry', () => listener()) ?? (() => {}),
  };
}

/** The agent lane as one component: agent + scheduler + MQTT topic, started and stopped together. */
export class AgentComponent implements Component {
  readonly name = 'agent';
  #ctx: RuntimeContext | null = null;
  #agent: AgentCalls | null = null;
  #parts: Component[] = [];
  #unsubscribe: (() => void) | null = null;
  #unregisterApi: (() => void) | null = null;

  constructor(
    private readonly deps: {
      devices: DeviceService;
      models: ModelService;
      messaging: Messaging;
      frontDoor: FrontDoor;
      mqtt: MqttAdapter;
      /** Plugin tools the agent may offer its model (each call still needs the caller's permission). */
      plugins?: PluginHost;
      /** Cluster mode: requests this replica cannot serve go to one that can (cluster/work-sharing.ts). */
      shareWork?: <R extends AgentRequest & { source?: string; deadline_ms?: number }, A>(handle: (request: R) => Promise<A>) => (request: R) => Promise<A>;
      /** Hybrid deployment: the remote rung (brain link) and its routing, built on the agent's directory. */
      remote?: (directory: DeviceDirectory) => RemoteRung | null | Promise<RemoteRung | null>;
    },
  ) {}

  #scheduler: SchedulerService<AgentRequest, AgentResponse> | null = null;
  #closeRemote: (() => void) | null = null;

  /** The scheduler's queue and running requests (null while stopped). */
  load(): { queued: number; running: number } | null {
    return this.#scheduler?.scheduler?.load() ?? null;
  }

  /** Actions waiting for their caller's confirmation (devices with safety policy `confirm`). */
  readonly confirmations = new ConfirmationStore();


  /** The agent, loaded on first use (one per start). */
  #feature: LazyFeature<Agent> | null = null;

  /** Whether the agent is loaded yet (the `clawbox_feature_loaded` gauge). */
  get loaded(): boolean {
    return this.#feature?.loaded ?? false;
  }

  async start(ctx: RuntimeContext): Promise<void> {
    this.#ctx = ctx;
    const { devices, models, messaging } = this.deps;
    const directory = deviceDirectory(devices, () => this.#ctx?.bus ?? null);
    // The agent checks proposed commands against these (agent/validate.ts): the build precompiles them.
    if (schemasObserved()) {
      for (const device of devices.list()) if (device.agent_policy !== 'deny') expectSchema(devices.commandSchema(device.id), 'proposal');
    }
    const created = new LazyFeature<Agent>(
      'agent',
      async () => {
        const { Agent } = await import('../agent/agent.js');
        return new Agent({
          directory,
          engine: () => models.engine('main'),
          logger: ctx.logger('agent'),
          tools: () => agentTools(this.deps.plugins),
          passages: (ctx.config as { knowledge?: { passages?: number } }).knowledge?.passages ?? 2,
        });
      },
      () => ctx.logger('agent'),
    );
    this.#feature = created;
    const agent = agentOnFirstUse(created);
    this.#agent = agent;
    const lanes = {
      main: agentLane(agent, () => models.engine('main')),
      small: agentLane(agent, () => models.engine('small')),
    };
    const remote = (await this.deps.remote?.(directory)) ?? null;
    this.#closeRemote = () => remote?.close();
    const scheduler = new SchedulerService<AgentRequest, AgentResponse>({
      lanes: { ...lanes, ...(remote ? { remote: remote.lane } : {}) },
      ...(remote ? { route: remote.route } : {}),
      tryFastPath: agentFastPath(agent),
      // Rung 2 of the ladder: a brief answer (replies cut short) when the full one would miss the deadline.
      plan: agentPlanner(() => models.engine('main'), { agent, short_output_tokens: BRIEF_OUTPUT_TOKENS }),
    });
    this.#scheduler = scheduler;
    const local = agentHandler(scheduler);
    const handle = this.deps.shareWork ? this.deps.shareWork(local) : local;
    this.#parts = [];
    await scheduler.start(ctx);
    this.#parts.push(scheduler);
    const { frontDoor, mqtt } = this.deps;
    const operations = agentOperations({
      handle,
      policyOf: (id) => devices.get(id)?.agent_policy,
      confirmations: this.confirmations,
    });
    const unregister = [
      ...operations.map((operation) => frontDoor.register(operation)),
      // OpenAI clients' own functions (tools): through the same scheduler, acting on nothing.
      frontDoor.register(completeOperation({ handle })),
      ...agentMqttRoutes(messaging.baseTopic).map((route) => mqtt.route(route)),
    ];
    this.#unregisterApi = () => {
      for (const off of unregister) off();
    };
    // A model that finished loading is measured and warmed before requests find it cold: the scheduler
    // gets service-time figures (else it probes one request at a time), and the prefix and jump-forward
    // grammars are ready. Models may finish loading before or after this component starts.
    const logger = ctx.logger('agent');
    const warm = (role: ModelRole) => {
      const engine = models.engine(role);
      if (!engine) return;
      (async () => {
        await lanes[role].calibrate({ runs: 3 });
        await agent.refreshPrefix(engine);
        logger.info({ role, rates: lanes[role].model.snapshot() }, `${role} model warmed up for the agent`);
      })().catch((error: unknown) => logger.warn({ err: error, role }, 'model warm-up failed; the first requests pay for it'));
    };
    // A changed device list changes the prompt prefix: re-warm it now (coalescing a burst of changes)
    // rather than let the next request evaluate it cold.
    let rewarm: NodeJS.Timeout | null = null;
    const devicesChanged = () => {
      if (rewarm) clearTimeout(rewarm);
      rewarm = setTimeout(() => {
        rewarm = null;
        for (const role of ['main', 'small'] as const) {
          const engine = models.engine(role);
          if (!engine || this.#agent !== agent) continue;
          agent
            .refreshPrefix(engine)
            .then(() => logger.info({ role }, `${role} model: prompt prefix re-warmed for the new device list`))
            .catch((error: unknown) => logger.warn({ err: error, role }, 'prefix re-warm failed; the next request pays for it'));
        }
      }, 50);
      rewarm.unref();
    };
    const unsubscribers = [
      ctx.bus.on('model.state', ({ role, state }) => {
        if (state === 'ready' && this.#agent === agent) warm(role);
      }),
      ctx.bus.on('device.registry', devicesChanged),
    ];
    this.#unsubscribe = () => {
      for (const off of unsubscribers) off();
      if (rewarm) clearTimeout(rewarm);
    };
    for (const role of ['main', 'small'] as const) warm(role);
  }

  async stop(): Promise<void> {
    this.#unregisterApi?.();
    this.#unregisterApi = null;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    for (const part of this.#parts.reverse()) await part.stop();
    this.#parts = [];
    this.#agent = null;
    // Nothing loads the agent after this; one loaded (or loading) is closed once there.
    const feature = this.#feature;
    this.#feature = null;
    void feature?.close().then((loaded) => loaded?.close());
    this.#closeRemote?.();
    this.#closeRemote = null;
  }

  /** People's data rights: the remembered turns of a conversation (session id), and forgetting them. */
  conversation(session: string): ReadonlyArray<{ user: string; assistant: string; at: number }> {
    // An agent not loaded yet has had no conversation.
    return this.#feature?.peek()?.sessions.history(session) ?? [];
  }

  forgetConversation(session: string): number {
    const turns = this.conversation(session).length;
    this.#feature?.peek()?.sessions.delete(session);
    return turns;
  }
}

/** What the scheduler and the warm-up call on the agent, each call loading it first if it is not yet. */
type AgentCalls = Pick<Agent, 'handle' | 'canAnswerFast' | 'estimate' | 'refreshPrefix'>;

function agentOnFirstUse(feature: LazyFeature<Agent>): AgentCalls {
  return {
    handle: async (request, options) => (await feature.get()).handle(request, options),
    canAnswerFast: async (request) => (await feature.get()).canAnswerFast(request),
    estimate: async (request, options) => (await feature.get()).estimate(request, options),
    refreshPrefix: async (engine) => (await feature.get()).refreshPrefix(engine),
  };
}

/**
 * The agent's conversation memory as a data holder: a chat sender's and an HTTP user's conversation is
 * named by their subject (`telegram:4711`, `http:ann`); MQTT conversations are per client id.
 */
export function conversationHolder(agent: AgentComponent): DataHolder {
  return {
    name: 'conversations',
    dataClass: 'chat',
    describes: 'The last turns of each conversation (at most 6 turns, forgotten after 10 minutes idle), in memory only, so follow-ups like "turn it off" work.',
    exportSubject: async (subject) => ({ turns: agent.conversation(subject) }),
    eraseSubject: async (subject) => agent.forgetConversation(subject),
  };
}

/** Plugins whose tools the model is not offered: the devices are offered directly, content safety screens chat. */
const NOT_AGENT_TOOLS = new Set(['iot-control', 'content-safety']);

/** The installed plugins' tools, for the model's grammar; whether a caller may call one is the front door's call. */
export function agentTools(plugins: Pick<PluginHost, 'tools'> | undefined): AgentTool[] {
  if (!plugins) return [];
  return plugins
    .tools()
    .filter((t) => !NOT_AGENT_TOOLS.has(t.plugin))
    .map((t) => ({ id: t.id, description: t.description, arguments: t.arguments, result: t.result }));
}

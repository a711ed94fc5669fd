/**
 * Hybrid deployment wiring (composition root only):
 * - the remote rung of the agent's ladder: a scheduler Lane that runs the agent's model path on the brain
 *   link, with a second Agent whose device directory leaves out local_only devices, so what the brain sees
 *   (prompt prefix, tool schema) never names them and a proposal for one is refused as unknown. Proposed
 *   actions come back through that agent's checks and the caller's front door, exactly like local ones.
 * - the routing policy: a request naming a local_only device stays on the box; configured sources or long
 *   prompts go to the brain first.
 * - the brain role's app: HTTP (health, status, metrics), the models and the brain service; no broker, no
 *   devices.
 */
import { randomUUID } from 'node:crypto';
import { RuntimeRegistry } from '../runtime/metrics.js';
import { Agent, type AgentRequest, type AgentResponse } from '../agent/agent.js';
import type { DeviceDirectory } from '../agent/directory.js';
import { EwmaServiceModel, type Lane, systemClock, type LaneJob, type Route, type Submission, type WorkPlan } from '../agent/scheduler/index.js';
// Not brain/index.js: that loads gRPC, which an edge without a brain never needs.
import { type BrainBackend, modelBackend } from '../brain/backend.js';
import type { DataPolicy, PolicyDevice } from '../brain/policy.js';
import { remoteEngine } from '../brain/remote-engine.js';
import { type BrainLinkService, BrainService } from '../brain/service.js';
import type { DeviceService } from '../devices/device-service.js';
import { ModelService } from '../models/service.js';
import { type AuditLog, digest } from '../runtime/audit/index.js';
import { resolveStateDir } from '../runtime/config/load.js';
import { ClawboxError } from '../runtime/errors.js';
import type { Config } from '../runtime/config/schema.js';
import type { Component, RuntimeContext } from '../runtime/context.js';
import { EventBus } from '../runtime/events.js';
import { HttpServer } from '../runtime/http/http-server.js';
import { Lifecycle } from '../runtime/lifecycle.js';
import { type Logger, type Logging, createLogging } from '../runtime/logging.js';
import { StateStore } from '../runtime/store/state-store.js';
import { runtimeContext } from './runtime-context.js';

/** What the data policy judges a device by; the class comes from the config (runtime-added devices have none). */
type ClassOf = (id: string) => string | undefined;

function policyDevice(d: { id: string; name: string; aliases?: readonly string[]; area?: string }, classOf: ClassOf): PolicyDevice {
  const cls = classOf(d.id);
  return { id: d.id, name: d.name, ...(d.aliases ? { aliases: d.aliases } : {}), ...(d.area ? { area: d.area } : {}), ...(cls ? { device_class: cls } : {}) };
}

/** device_class of each configured device, by id. */
export function configuredClasses(config: Config): ClassOf {
  const classes = new Map<string, string>();
  for (const d of ((config as { devices?: Array<{ id?: unknown; device_class?: unknown }> }).devices ?? [])) {
    if (typeof d.id === 'string' && typeof d.device_class === 'string') classes.set(d.id, d.device_class);
  }
  return (id) => classes.get(id);
}

/** The agent's directory without the devices the policy keeps on the box. */
export function shareableDirectory(directory: DeviceDirectory, devices: DeviceService, policy: () => DataPolicy | null, classOf: ClassOf): DeviceDirectory {
  const local = (id: string) => {
    const device = devices.get(id);
    const p = policy();
    // Unknown to the device layer, or no policy yet: not shared.
    return !device || !p ? true : p.isLocalOnly(policyDevice(device, classOf));
  };
  return {
    list: async () => (await directory.list()).filter((d) => !local(d.id)),
    commandSchema: (id) => (local(id) ? undefined : directory.commandSchema(id)),
    execute: (id, command, options) => directory.execute(id, command, options),
    ...(directory.onChange ? { onChange: (listener: () => void) => directory.onChange!(listener) } : {}),
  };
}

export interface RemoteRung {
  lane: Lane<AgentRequest, AgentResponse>;
  route: (submission: Submission<AgentRequest>, plan: WorkPlan) => Route;
  close(): void;
}

/** The remote lane and routing for an edge whose brain link runs; null without an endpoint. */
export function remoteRung(deps: {
  brain: BrainLinkService;
  directory: DeviceDirectory;
  devices: DeviceService;
  audit: AuditLog;
  logger: Logger;
  classOf: ClassOf;
  /** The people's data policy: whether this caller's work may go to this brain (region, opt-out). */
  mayLeave: (caller: AgentRequest['caller'], brainRegion: string | null) => boolean;
}): RemoteRung | null {
  const { brain, devices, audit, logger, classOf } = deps;
  const config = brain.config;
  if (!config?.endpoint) return null;
  const shareable = shareableDirectory(deps.directory, devices, () => brain.policy, classOf);
  const agent = new Agent({ directory: shareable, logger });
  const model = new EwmaServiceModel({ clock: systemClock });
  const lane: Lane<AgentRequest, AgentResponse> = {
    model,
    available: () => brain.link?.available() ?? false,
    maxSequences: () => brain.link?.sequences() ?? 1,
    async run(job: LaneJob<AgentRequest>): Promise<AgentResponse> {
      const link = brain.link;
      const policy = brain.policy;
      if (!link || !policy) throw new ClawboxError('BRAIN_UNAVAILABLE', 'the brain link is not running');
      // The scheduler's clock is monotonic; the gRPC deadline is wall-clock.
      const deadline = Date.now() + Math.max(0, job.deadline - performance.now());
      const keepHistory = !policy.keepsLocal('history');
      const session = job.request.session !== undefined && keepHistory ? policy.pseudonym(job.request.session) : undefined;
      let recorded: Promise<unknown> = Promise.resolve();
      let last: number | null = null;
      const engine = remoteEngine(link, {
        deadline,
        signal: job.signal,
        session: session ?? '',
        onSend: async (wire) => {
          const shared = (await shareable.list()).map((d) => d.id);
          // What left the box, and to which brain: digests and counts, never the raw text.
          recorded = audit
            .record({
              op: 'brain.offload',
              principal: { kind: 'system', id: 'brain-link' },
              trace: randomUUID(),
              input_digest: digest({ prefix: wire.prefix, prompt: wire.prompt }),
              decision: 'allowed',
              proposed: {
                brain: `${link.kind}:${link.target}`,
                devices: shared,
                session: wire.session || null,
                prompt_chars: wire.prompt.length,
                prefix_chars: wire.prefix.length,
                tool_schema: wire.tool_schema !== null,
                max_tokens: wire.max_tokens,
              },
              outcome: 'done',
            })
            .catch((error: unknown) => logger.warn({ err: error }, 'brain offload not audited'));
        },
        onText: () => {
          const now = performance.now();
          if (last !== null) job.report.tokenGap(now - last);
          last = now;
        },
        onReply: (reply) =>
          job.report.done({
            evaluated_tokens: reply.usage.evaluated_tokens,
            prefill_ms: reply.usage.prefill_ms,
            generated_tokens: reply.usage.generated_tokens,
            decode_ms: reply.usage.decode_ms,
          }),
      });
      try {
        const response = await agent.handle(
          { ...job.request, ...(session !== undefined ? { session } : { session: undefined }), signal: job.signal, commit: job.commit },
          { path: 'model', maxTokens: job.grant.max_output_tokens, engine, brief: !job.grant.explain },
        );
        return response;
      } finally {
        await recorded;
      }
    },
  };
  const route = (submission: Submission<AgentRequest>, plan: WorkPlan): Route => {
    const policy = brain.policy;
    if (!policy) return 'any';
    const text = typeof submission.request.text === 'string' ? submission.request.text : '';
    if (!deps.mayLeave(submission.request.caller, config.region ?? null)) return 'local_only';
    if (policy.involves(text, devices.list().map((d) => policyDevice(d, classOf)))) return 'local_only';
    const prefer = config.prefer_remote;
    if (submission.source && prefer.sources.includes(submission.source)) return 'remote_first';
    if (prefer.min_prompt_tokens > 0 && plan.prompt_tokens >= prefer.min_prompt_tokens) return 'remote_first';
    return 'any';
  };
  return { lane, route, close: () => agent.close() };
}

// ---- the brain role --------------------------------------------------------------------------------

export interface BrainApp {
  readonly ctx: RuntimeContext;
  readonly lifecycle: Lifecycle;
  readonly http: HttpServer;
  readonly models: ModelService;
  readonly brain: BrainService;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `clawbox start --mode brain` (or `brain.role: brain`): the models and the brain API, plus HTTP for
 * /healthz, /api/status (section `brain`) and /metrics. `backend` replaces the model backend (tests).
 */
export function createBrainApp(options: { config: Config; configSource?: string | null; logging?: Logging; env?: NodeJS.ProcessEnv; backend?: BrainBackend }): BrainApp {
  const { config } = options;
  const logging = options.logging ?? createLogging({ level: config.log.level, components: config.log.components });
  const bus = new EventBus();
  // Process figures (CPU, memory, event loop, GC) join on the first scrape (runtime/metrics.ts).
  const metrics = new RuntimeRegistry('clawbox_');
  const stateDir = resolveStateDir(config, options.env ?? process.env);
  const store = new StateStore(stateDir, logging.forComponent('store'));
  const http = new HttpServer({ upgrades: {} });
  const models = new ModelService({});
  const brain = new BrainService({
    backend: () =>
      options.backend ??
      modelBackend(() => {
        const engine = models.engine('main');
        const name = models.configured().find((m) => m.role === 'main')?.name ?? 'main';
        return engine ? { engine, name } : null;
      }),
  });
  const components: Component[] = [http, models, brain];
  const lifecycle = new Lifecycle(components, bus, logging.forComponent('lifecycle'));
  const ctx = runtimeContext({ config, configSource: options.configSource, stateDir, store, bus, metrics, logging, lifecycle });
  return { ctx, lifecycle, http, models, brain, start: () => lifecycle.start(ctx), stop: () => lifecycle.stop() };
}

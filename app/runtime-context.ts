/**
 * The RuntimeContext every component receives, built the same way for the edge runtime (app.ts) and the
 * brain role (brain-wiring.ts).
 */
import type { Config } from '../runtime/config/schema.js';
import type { RuntimeContext } from '../runtime/context.js';
import type { EventBus } from '../runtime/events.js';
import type { Lifecycle } from '../runtime/lifecycle.js';
import type { Logging } from '../runtime/logging.js';
import { StatusRegistry } from '../runtime/status.js';
import type { StateStore } from '../runtime/store/state-store.js';
import { VERSION } from '../runtime/version.js';
import type { Registry } from 'prom-client';

export function runtimeContext(parts: {
  config: Config;
  configSource: string | null | undefined;
  stateDir: string;
  store: StateStore;
  bus: EventBus;
  metrics: Registry;
  logging: Logging;
  lifecycle: Lifecycle;
}): RuntimeContext {
  const { logging, lifecycle } = parts;
  return {
    config: parts.config,
    configSource: parts.configSource ?? null,
    version: VERSION,
    startedAt: Date.now(),
    stateDir: parts.stateDir,
    store: parts.store,
    bus: parts.bus,
    status: new StatusRegistry(),
    metrics: parts.metrics,
    logRing: logging.ring,
    logger: (component) => logging.forComponent(component),
    lifecycleState: () => lifecycle.state,
  };
}

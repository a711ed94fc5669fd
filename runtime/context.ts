/**
 * The one context object every component receives in start(ctx), and the component contract.
 * Components get each other's public services through their constructors in the composition root
 * (app.ts), never by reaching into the context for internals.
 */
import type { Registry } from 'prom-client';
import type { Config } from './config/schema.js';
import type { EventBus, LifecycleState } from './events.js';
import type { Logger, LogRing } from './logging.js';
import type { StatusRegistry } from './status.js';
import type { StateStore } from './store/state-store.js';

export interface RuntimeContext {
  readonly config: Config;
  /** The config file in use, or null for embedded defaults. */
  readonly configSource: string | null;
  readonly version: string;
  readonly startedAt: number;
  readonly stateDir: string;
  readonly store: StateStore;
  readonly bus: EventBus;
  readonly status: StatusRegistry;
  readonly metrics: Registry;
  readonly logRing: LogRing;
  /** A child logger for one component, at that component's configured level. */
  logger(component: string): Logger;
  lifecycleState(): LifecycleState;
}

export interface Component {
  readonly name: string;
  start(ctx: RuntimeContext): Promise<void>;
  stop(): Promise<void>;
}

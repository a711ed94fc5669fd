/**
 * Starts components in order and stops them in reverse. A component that fails to start stops the ones
 * already running before the error goes up; a component that fails or hangs while stopping is logged and
 * the rest still stop, so shutdown always finishes.
 */
import type { Component, RuntimeContext } from './context.js';
import type { EventBus, LifecycleState } from './events.js';
import type { Logger } from './logging.js';

export const STOP_TIMEOUT_MS = 4000;

export class Lifecycle {
  #state: LifecycleState = 'stopped';
  #started: Component[] = [];
  #stopping: Promise<void> | undefined;

  constructor(
    private readonly components: readonly Component[],
    private readonly bus: EventBus,
    private readonly logger: Logger,
  ) {}

  get state(): LifecycleState {
    return this.#state;
  }

  #set(state: LifecycleState): void {
    this.#state = state;
    this.bus.emit('lifecycle', { state });
  }

  async start(ctx: RuntimeContext): Promise<void> {
    this.#set('starting');
    for (const component of this.components) {
      const began = performance.now();
      try {
        await component.start(ctx);
      } catch (error) {
        this.logger.error({ component: component.name }, `component ${component.name} failed to start`);
        await this.#stopStarted();
        this.#set('stopped');
        throw error;
      }
      this.#started.push(component);
      this.logger.debug({ component: component.name, ms: Math.round(performance.now() - began) }, 'started');
    }
    this.#set('serving');
  }

  /** Idempotent: a second call waits for the first. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#set('stopping');
      await this.#stopStarted();
      this.#set('stopped');
    })();
    return this.#stopping;
  }

  async #stopStarted(): Promise<void> {
    while (this.#started.length > 0) {
      const component = this.#started.pop()!;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
      });
      try {
        const outcome = await Promise.race([component.stop().then(() => 'stopped' as const), timeout]);
        if (outcome === 'timeout') this.logger.warn({ component: component.name }, 'component did not stop in time');
      } catch (error) {
        this.logger.error({ component: component.name, err: error }, 'component failed to stop');
      } finally {
        clearTimeout(timer);
      }
    }
  }
}

/**
 * The runtime's event bus: stages announce what happened; the status page, metrics and audit log listen.
 * Nothing reaches into another stage's internals. Each folder adds its own events by declaration merging:
 *
 *   declare module '../runtime/events.js' { interface RuntimeEvents { 'device.state': [DeviceStateEvent] } }
 */
import { EventEmitter } from 'node:events';

export type LifecycleState = 'starting' | 'serving' | 'stopping' | 'stopped';

export interface RuntimeEvents {
  lifecycle: [{ state: LifecycleState }];
}

type EventName = keyof RuntimeEvents & string;

export class EventBus {
  readonly #emitter = new EventEmitter();

  constructor() {
    // Many listeners (status page sockets, metrics) are normal here.
    this.#emitter.setMaxListeners(0);
  }

  emit<E extends EventName>(event: E, ...args: RuntimeEvents[E]): void {
    this.#emitter.emit(event, ...args);
  }

  on<E extends EventName>(event: E, listener: (...args: RuntimeEvents[E]) => void): () => void {
    this.#emitter.on(event, listener as (...args: unknown[]) => void);
    return () => this.#emitter.off(event, listener as (...args: unknown[]) => void);
  }
}

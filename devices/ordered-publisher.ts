/**
 * Publishes the device layer's messages one at a time, in call order.
 *
 * Why: aedes numbers each message when publish() is called (brokerCounter) but stores a retained one
 * (asynchronously, in the persistence) before forwarding it, and each client drops any message whose
 * number is lower than one it already got ("dedupe", meant for broker clusters). Two overlapping
 * publishes, a retained state and a later error or RESULT say, can so reach a client out of order and
 * the earlier one is silently lost. Waiting for each publish before starting the next keeps the numbers
 * in forwarding order, and gives clients the device layer's messages in the order things happened.
 *
 * The Broker now neutralises that dedupe (runtime/broker/delivery-order.ts), so nothing is lost any more
 * without this class; it stays for the order alone: with overlapping publishes a retained state can still
 * reach clients after a later RESULT/error, and devices/fuzz.test.ts (answers per command) fails then.
 */
import type { Messaging, PublishOptions } from '../runtime/messaging.js';

export class OrderedPublisher {
  #tail: Promise<void> = Promise.resolve();
  /** Publishes called and not yet settled: with none, the next one starts at once. */
  #unsettled = 0;

  constructor(private readonly messaging: Messaging) {}

  get baseTopic(): string {
    return this.messaging.baseTopic;
  }

  publish(topic: string, payload: string | Buffer, options?: PublishOptions): Promise<void> {
    // A device's messages are mostly far apart: then there is nothing to wait for, and no promise to chain.
    const next = this.#unsettled === 0 ? this.#start(topic, payload, options) : this.#tail.then(() => this.#start(topic, payload, options));
    this.#unsettled++;
    const settled = (): void => {
      this.#unsettled--;
    };
    this.#tail = next.then(settled, settled);
    return next;
  }

  #start(topic: string, payload: string | Buffer, options?: PublishOptions): Promise<void> {
    try {
      return this.messaging.publish(topic, payload, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  subscribe: Messaging['subscribe'] = (filter, handler) => this.messaging.subscribe(filter, handler);
}

/**
 * Test support: a real broker + DeviceService on a temp state dir, and an mqtt.js client that records
 * what it receives and can wait for a message. Everything started here is closed in t.teardown.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { Broker } from '../../runtime/broker/broker.js';
import { type TestContext, makeTestContext } from '../../runtime/broker/test-context.js';
import type { Messaging } from '../../runtime/messaging.js';
import { DeviceService, type DeviceServiceDeps } from '../device-service.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface Stack {
  tc: TestContext;
  broker: Broker;
  service: DeviceService;
  url: string;
  /** Stops service and broker (keeps the state dir) — for restart tests. */
  stop(): Promise<void>;
}

export async function startStack(
  t: Teardown,
  options: { config?: Record<string, unknown>; stateDir?: string; deps?: Partial<DeviceServiceDeps> } = {},
): Promise<Stack> {
  const tc = makeTestContext({
    config: { devices: [], ...options.config },
    ...(options.stateDir ? { stateDir: options.stateDir } : {}),
  });
  const broker = new Broker();
  await broker.start(tc.ctx);
  const service = new DeviceService({ messaging: broker, ...options.deps });
  await service.start(tc.ctx);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await service.stop();
    await broker.stop();
  };
  t.teardown(async () => {
    await stop();
    if (!options.stateDir) tc.cleanup();
  });
  return { tc, broker, service, url: `mqtt://127.0.0.1:${broker.port}`, stop };
}

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

interface Transport {
  subscribe(filters: string[]): Promise<void>;
  publish(topic: string, payload: string | Buffer, retain: boolean): Promise<unknown>;
}

export class TestClient {
  readonly received: Received[] = [];
  readonly #waiters = new Set<{ match: (m: Received) => boolean; resolve: (m: Received) => void }>();

  /** Use connectClient (a real mqtt.js client over TCP) or internalClient (the broker's own Messaging). */
  constructor(readonly transport: Transport) {}

  /** Called by the transport for every message. */
  deliver(topic: string, payload: Buffer, retain: boolean): void {
    const message = { topic, payload: payload.toString('utf8'), retain };
    this.received.push(message);
    for (const waiter of this.#waiters) {
      if (waiter.match(message)) {
        this.#waiters.delete(waiter);
        waiter.resolve(message);
      }
    }
  }

  async subscribe(...filters: string[]): Promise<void> {
    await this.transport.subscribe(filters);
  }

  publish(topic: string, payload: string | Buffer, retain = false): Promise<unknown> {
    return this.transport.publish(topic, payload, retain);
  }

  /** The next message (from now, or already received when `past` is set) on `topic` that matches. */
  waitFor(
    topic: string | string[],
    match: (payload: string) => boolean = () => true,
    timeoutMs = 3000,
    past = false,
  ): Promise<Received> {
    const topics = Array.isArray(topic) ? topic : [topic];
    if (past) {
      const hit = this.received.find((m) => topics.includes(m.topic) && match(m.payload));
      if (hit) return Promise.resolve(hit);
    }
    return new Promise((resolve, reject) => {
      const waiter = { match: (m: Received) => topics.includes(m.topic) && match(m.payload), resolve: (m: Received) => {
        clearTimeout(timer);
        resolve(m);
      } };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`no message on ${topic} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Publishes and waits for the answer on `answerTopic` (subscribed beforehand). */
  async request(topic: string, payload: string | Buffer, answerTopic: string | string[], match?: (p: string) => boolean) {
    const answer = this.waitFor(answerTopic, match);
    await this.publish(topic, payload);
    return answer;
  }

  clear(): void {
    this.received.length = 0;
  }
}

export async function connectClient(t: Teardown, url: string): Promise<TestClient> {
  const client: MqttClient = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 3000 });
  t.teardown(() => client.endAsync(true));
  const test = new TestClient({
    subscribe: async (filters) => {
      await client.subscribeAsync(filters, { qos: 0 });
    },
    publish: (topic, payload, retain) => client.publishAsync(topic, payload, { qos: 0, retain }),
  });
  client.on('message', (topic, payload, packet) => test.deliver(topic, payload, packet.retain));
  return test;
}

/** A client on the broker's internal Messaging: no socket, for tests that only need volume. */
export function internalClient(t: Teardown, messaging: Messaging): TestClient {
  const unsubscribes: Array<() => Promise<void>> = [];
  t.teardown(() => Promise.all(unsubscribes.map((u) => u())));
  const test: TestClient = new TestClient({
    subscribe: async (filters) => {
      for (const filter of filters) {
        unsubscribes.push(await messaging.subscribe(filter, (topic, payload) => test.deliver(topic, payload, false)));
      }
    },
    publish: (topic, payload, retain) => messaging.publish(topic, payload, { retain }),
  });
  return test;
}

export const json = (text: string): Record<string, unknown> => JSON.parse(text) as Record<string, unknown>;

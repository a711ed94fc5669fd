/**
 * Test support: a real broker + DeviceService on a temp state dir, and an mqtt.js client that records
 * what it receives and can wait for a message. Everything started here is closed in t.teardown.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { Broker } from '../../runtime/broker/broker.js';
import { type TestContext, makeTestContext } from '../../runtime/broker/test-context.js';
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

export class TestClient {
  readonly received: Received[] = [];
  readonly #waiters = new Set<{ match: (m: Received) => boolean; resolve: (m: Received) => void }>();

  constructor(readonly mqtt: MqttClient) {
    mqtt.on('message', (topic, payload, packet) => {
      const message = { topic, payload: payload.toString('utf8'), retain: packet.retain };
      this.received.push(message);
      for (const waiter of this.#waiters) {
        if (waiter.match(message)) {
          this.#waiters.delete(waiter);
          waiter.resolve(message);
        }
      }
    });
  }

  async subscribe(...filters: string[]): Promise<void> {
    await this.mqtt.subscribeAsync(filters, { qos: 0 });
  }

  publish(topic: string, payload: string | Buffer, retain = false): Promise<unknown> {
    return this.mqtt.publishAsync(topic, payload, { qos: 0, retain });
  }

  /** The next message (from now, or already received when `past` is set) on `topic` that matches. */
  waitFor(topic: string, match: (payload: string) => boolean = () => true, timeoutMs = 3000, past = false): Promise<Received> {
    if (past) {
      const hit = this.received.find((m) => m.topic === topic && match(m.payload));
      if (hit) return Promise.resolve(hit);
    }
    return new Promise((resolve, reject) => {
      const waiter = { match: (m: Received) => m.topic === topic && match(m.payload), resolve: (m: Received) => {
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
  async request(topic: string, payload: string | Buffer, answerTopic: string, match?: (p: string) => boolean) {
    const answer = this.waitFor(answerTopic, match);
    await this.publish(topic, payload);
    return answer;
  }

  clear(): void {
    this.received.length = 0;
  }
}

export async function connectClient(t: Teardown, url: string): Promise<TestClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 3000 });
  t.teardown(() => client.endAsync(true));
  return new TestClient(client);
}

export const json = (text: string): Record<string, unknown> => JSON.parse(text) as Record<string, unknown>;

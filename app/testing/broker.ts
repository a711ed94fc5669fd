/**
 * Test helpers for the broker: a real Broker on an ephemeral loopback port, mqtt.js clients that never
 * reconnect on their own, and a raw MQTT client (net socket + mqtt-packet) for the conformance tests that
 * mqtt.js will not let us write (a zero-length id without clean session, a client that stops pinging or
 * withholds acknowledgements).
 */
import net from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { type Packet, generate, parser } from 'mqtt-packet';
import { Broker } from '../../runtime/broker/broker.js';
import { type TestContext, type TestContextOptions, makeTestContext } from './test-context.js';

export interface TestBroker {
  broker: Broker;
  test: TestContext;
  url: string;
  /** Stops the broker (idempotent) and removes temp dirs. */
  close(): Promise<void>;
}

/** Starts a Broker; the lifecycle is set to `serving` so that bridge/state goes online. */
export async function startTestBroker(options: TestContextOptions = {}): Promise<TestBroker> {
  const test = makeTestContext(options);
  const broker = new Broker();
  await broker.start(test.ctx);
  test.setLifecycle('serving');
  return {
    broker,
    test,
    url: `mqtt://127.0.0.1:${broker.port}`,
    async close() {
      await broker.stop();
      if (!options.stateDir) test.cleanup();
    },
  };
}

export function connect(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options }, false);
}

export function closeClient(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.end(true, {}, () => resolve()));
}

export interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

/** Collects messages; `next(n)` waits until n have arrived (or fails after `ms`). */
export function collect(client: MqttClient): { all: Received[]; next(count?: number, ms?: number): Promise<Received[]> } {
  const all: Received[] = [];
  const waiters: (() => void)[] = [];
  client.on('message', (topic, payload, packet) => {
    all.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain });
    for (const wake of waiters.splice(0)) wake();
  });
  return {
    all,
    async next(count = 1, ms = 3000) {
      const deadline = Date.now() + ms;
      while (all.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`expected ${count} message(s), got ${all.length}: ${JSON.stringify(all)}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return all.slice(0, count);
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A started broker with a subscriber (whose messages `inbox` collects) and a publisher, all closed when the
 * test ends: the setup of most delivery tests.
 */
export async function brokerWithClients(
  t: { teardown(fn: () => unknown): void },
  options: TestContextOptions = {},
): Promise<{ tb: TestBroker; sub: MqttClient; pub: MqttClient; inbox: ReturnType<typeof collect> }> {
  const tb = await startTestBroker(options);
  t.teardown(() => tb.close());
  const sub = await connect(tb.url);
  const pub = await connect(tb.url);
  t.teardown(() => Promise.all([closeClient(sub), closeClient(pub)]));
  return { tb, sub, pub, inbox: collect(sub) };
}

/** Polls `condition` until it holds or `ms` pass (then resolves false): a positive wait that a loaded machine passes. */
export async function until(condition: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** A bare MQTT 3.1.1 (or, with `protocolVersion: 5`, MQTT 5) client: sends exactly the packets given and records every packet received. */
export class RawClient {
  readonly socket: net.Socket;
  readonly received: Packet[] = [];
  closed = false;
  readonly #waiters = new Set<() => void>();
  readonly #version: 4 | 5;

  private constructor(socket: net.Socket, version: 4 | 5) {
    this.socket = socket;
    this.#version = version;
    const p = parser({ protocolVersion: version });
    p.on('packet', (packet: Packet) => {
      this.received.push(packet);
      this.#wake();
    });
    socket.on('data', (chunk) => p.parse(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  static connect(port: number, options: { protocolVersion?: 4 | 5 } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(socket, options.protocolVersion ?? 4)));
      socket.once('error', reject);
    });
  }

  #wake(): void {
    for (const wake of this.#waiters) wake();
  }

  send(packet: Packet): void {
    this.socket.write(generate(packet, { protocolVersion: this.#version }));
  }

  /** Waits for the first received packet (from index `from`) that satisfies `match`. */
  async waitFor<P extends Packet>(match: (packet: Packet) => boolean, ms = 3000, from = 0): Promise<P> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.received.slice(from).find(match);
      if (found) return found as P;
      if (this.closed) throw new Error(`connection closed; received ${this.received.map((p) => p.cmd).join(', ')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received ${this.received.map((p) => p.cmd).join(', ')}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#waiters.add(wake);
      });
    }
  }

  waitForClose(ms = 5000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('connection still open')), ms);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * The runtime's request path, started by hand for tests, fixtures and benchmarks: a real Broker on an
 * ephemeral loopback port, the front door and its MQTT adapter wired to it as app.ts wires them. Features
 * (DeviceService, PluginHost, ...) are built by the caller with `api` and started through `add`, so that
 * stopping runs in app.ts' order: the adapter refuses new requests, the features stop (last added first),
 * then the broker.
 *
 *   const stack = await startFrontDoorStack({ config: { devices } });
 *   const service = await stack.add(new DeviceService({ messaging: stack.broker, api: stack.api }));
 *   ...; await stack.close();
 */
import { Broker } from '../../runtime/broker/broker.js';
import type { RuntimeContext } from '../../runtime/context.js';
import { FrontDoor } from '../../runtime/operations/front-door.js';
import { MqttAdapter } from '../../runtime/operations/mqtt-adapter.js';
import { type TestContext, type TestContextOptions, makeTestContext } from './test-context.js';

interface Startable {
  start(ctx: RuntimeContext): Promise<void>;
  stop(): Promise<void>;
}

export interface FrontDoorStackOptions extends TestContextOptions {
  /** Announce the lifecycle state `serving` (bridge/state goes online), as a started app does. Default true. */
  serving?: boolean;
  /** Runs `close()` when the test ends. */
  teardown?: { teardown(fn: () => unknown): void };
}

export interface FrontDoorStack {
  tc: TestContext;
  broker: Broker;
  frontDoor: FrontDoor;
  mqtt: MqttAdapter;
  /** What a feature takes as its `api` (DeviceService, PluginHost). */
  api: { frontDoor: FrontDoor; mqtt: MqttAdapter };
  url: string;
  /** Starts a component on this stack's context; stop() stops it before the broker. */
  add<C extends Startable>(component: C): Promise<C>;
  /** Stops the adapter, the added components and the broker (idempotent); the state dir stays, for restarts. */
  stop(): Promise<void>;
  /** stop(), then removes the temp dirs made here (not a stateDir passed in). */
  close(): Promise<void>;
}

export async function startFrontDoorStack(options: FrontDoorStackOptions = {}): Promise<FrontDoorStack> {
  const { serving = true, teardown, ...contextOptions } = options;
  const tc = makeTestContext(contextOptions);
  const cleanup = (): void => {
    if (!options.stateDir) tc.cleanup();
  };
  const broker = new Broker();
  try {
    await broker.start(tc.ctx);
  } catch (error) {
    cleanup();
    throw error;
  }
  if (serving) tc.setLifecycle('serving');
  const logger = tc.ctx.logger('front-door');
  const frontDoor = new FrontDoor({ logger });
  const mqtt = new MqttAdapter({ frontDoor, messaging: broker, requests: broker, logger, maxPayloadBytes: tc.ctx.config.broker.max_payload_bytes });
  const components: Startable[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      mqtt.stop();
      for (const component of components.splice(0).reverse()) await component.stop();
      await broker.stop();
    })();
    return stopping;
  };
  const stack: FrontDoorStack = {
    tc,
    broker,
    frontDoor,
    mqtt,
    api: { frontDoor, mqtt },
    url: `mqtt://127.0.0.1:${broker.port}`,
    async add(component) {
      // Registered first: a component that fails half-way through start still gets its stop().
      components.push(component);
      await component.start(tc.ctx);
      return component;
    },
    stop,
    async close() {
      try {
        await stop();
      } finally {
        cleanup();
      }
    },
  };
  teardown?.teardown(() => stack.close());
  return stack;
}
